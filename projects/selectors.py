"""Permission-scoped reads. Every project/dataset lookup in pages, API and downloads starts here.

The querysets come from ``Project.objects.visible_to/editable_by/owned_by`` (the one permission
helper); these functions only add the joins and annotations the callers need.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, OuterRef, QuerySet, Subquery

from accounts.models import User
from projects.models import Dataset, Project, ProjectMember


def _with_role(qs: QuerySet[Project], *, user: User) -> QuerySet[Project]:
    role = ProjectMember.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return qs.select_related("owner").annotate(my_role=Subquery(role))


def project_qs_for(*, user: User) -> QuerySet[Project]:
    """Projects ``user`` can see (any membership), annotated with ``my_role``."""
    return _with_role(Project.objects.visible_to(user), user=user)


@dataclass(frozen=True)
class ProjectRole:
    """What one user may do in one project. ``role`` is None for an outsider (who sees nothing)."""

    role: str | None

    @property
    def can_view(self) -> bool:
        return self.role is not None

    @property
    def can_edit(self) -> bool:
        """Owner or editor: edit the project, upload/delete datasets, start sessions, ask, pin, cancel."""
        return self.role in (ProjectMember.Role.OWNER, ProjectMember.Role.EDITOR)

    @property
    def is_owner(self) -> bool:
        """Owner: manage members, delete the project."""
        return self.role == ProjectMember.Role.OWNER


def project_role_for(user: User, project: Project) -> ProjectRole:
    """The one answer to "what may ``user`` do in ``project``" for pages, pushes, consumers and services.

    Uses the ``my_role`` annotation of ``project_qs_for`` when the project came from it (no query), else one
    query on the membership. Lookups stay scoped by the querysets above; this only says which actions to offer
    or allow on a project the caller already holds.
    """
    if not getattr(user, "is_authenticated", False):
        return ProjectRole(None)
    if "my_role" in project.__dict__:
        return ProjectRole(project.__dict__["my_role"])
    role = ProjectMember.objects.filter(project_id=project.pk, user=user).values_list("role", flat=True).first()
    return ProjectRole(role)


def project_editable_qs_for(*, user: User) -> QuerySet[Project]:
    """Projects ``user`` may change (owner or editor): edit, upload/delete datasets, create sessions."""
    return _with_role(Project.objects.editable_by(user), user=user)


def project_owned_qs_for(*, user: User) -> QuerySet[Project]:
    """Projects ``user`` owns: manage members, delete the project."""
    return _with_role(Project.objects.owned_by(user), user=user)


def project_list_for_user(*, user: User) -> QuerySet[Project]:
    """The dashboard/API list: visible projects with their dataset counts, most recently changed first."""
    # Explicit order: Meta.ordering is dropped from GROUP BY queries.
    return (
        project_qs_for(user=user)
        .annotate(dataset_count=Count("datasets", distinct=True))
        .order_by("-updated_at", "-pk")
    )


def project_sidebar_list_for_user(*, user: User) -> QuerySet[Project]:
    """The sidebar's list: visible projects with the caller's role, most recently changed first (one query,
    no counts, only the columns the list shows)."""
    return project_qs_for(user=user).select_related(None).only("pk", "name").order_by("-updated_at", "-pk")


def dataset_qs_for(*, user: User) -> QuerySet[Dataset]:
    """Datasets in projects ``user`` can see."""
    return Dataset.objects.filter(project__in=Project.objects.visible_to(user)).select_related("project", "uploaded_by")


def dataset_editable_qs_for(*, user: User) -> QuerySet[Dataset]:
    """Datasets ``user`` may delete (owner or editor of the project)."""
    return Dataset.objects.filter(project__in=Project.objects.editable_by(user)).select_related(
        "project", "uploaded_by"
    )


def dataset_list_for_project(*, project: Project) -> QuerySet[Dataset]:
    return project.datasets.select_related("uploaded_by").order_by("name")


def member_list_for_project(*, project: Project) -> QuerySet[ProjectMember]:
    return project.memberships.select_related("user").order_by("created_at", "pk")
