from __future__ import annotations

from django.conf import settings
from django.db import models

from codingagent.lib.urls import reverse_pk
from projects.profile_display import TableDisplay, profile_tables


class ProjectQuerySet(models.QuerySet["Project"]):
    """The one place that decides who can see or change a project.

    Every page, API view, websocket consumer and file download scopes its
    lookups through these two methods (directly or via ``projects.selectors``).
    """

    def visible_to(self, user) -> ProjectQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(memberships__user=user)

    def editable_by(self, user) -> ProjectQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(
            memberships__user=user,
            memberships__role__in=[ProjectMember.Role.OWNER, ProjectMember.Role.EDITOR],
        )

    def owned_by(self, user) -> ProjectQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(memberships__user=user, memberships__role=ProjectMember.Role.OWNER)


class Project(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        # Cached pattern: the sidebar and the dashboard build one link per project.
        return reverse_pk("projects:project-detail", self.pk)


class ProjectMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"

    @property
    def can_edit(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.EDITOR)


def dataset_upload_to(instance: Dataset, filename: str) -> str:
    return f"projects/{instance.project_id}/datasets/{filename}"


class Dataset(models.Model):
    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        TSV = "tsv", "TSV"
        XLSX = "xlsx", "Excel"
        PARQUET = "parquet", "Parquet"
        JSON = "json", "JSON"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="uploaded_datasets"
    )
    # The sanitized name the sandbox sees in its working directory (unique per project).
    name = models.CharField(max_length=255)
    original_filename = models.CharField(max_length=255)
    file = models.FileField(upload_to=dataset_upload_to, max_length=500)
    size = models.BigIntegerField()
    format = models.CharField(max_length=10, choices=Format.choices)
    row_count = models.BigIntegerField(default=0)
    column_count = models.IntegerField(default=0)
    # {"columns": [{"name", "dtype", "missing", "stats": {...}}], "preview": {"columns": [...], "rows": [[...]]}}
    profile = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_dataset_name_per_project")]

    def __str__(self) -> str:
        return self.name

    @property
    def profile_tables(self) -> list[TableDisplay]:
        """The profile as people read it: one formatted table per sheet (workbooks) or for the whole file."""
        return profile_tables(self.profile)

    @property
    def sheet_names(self) -> list[str]:
        return [str(s.get("name", "")) for s in (self.profile or {}).get("sheets") or [] if isinstance(s, dict)]
