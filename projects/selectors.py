"""Permission-scoped reads. Every project/dataset lookup in pages, API and downloads starts here.

The querysets come from ``Project.objects.visible_to/editable_by/owned_by`` (the one permission
helper); these functions only add the joins and annotations the callers need.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When

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


SIDEBAR_PROJECTS = 20


@dataclass(frozen=True)
class SidebarProjects:
    projects: list[Project]
    more: bool  # visible projects left out (the dashboard lists them all)


def project_sidebar_list_for_user(
    *, user: User, current_pk: int | None = None, limit: int = SIDEBAR_PROJECTS
) -> SidebarProjects:
    """The sidebar's list in one query: the ``limit`` most recently changed projects ``user`` can see (with
    their role), and the project ``current_pk`` too when it is visible but older, so the page's own project is
    always listed."""
    is_current = Case(When(pk=current_pk or 0, then=Value(1)), default=Value(0), output_field=IntegerField())
    rows = list(
        project_qs_for(user=user)
        .select_related(None)
        .only("pk", "name", "updated_at")
        .annotate(is_current=is_current)
        .order_by("-is_current", "-updated_at", "-pk")[: limit + 2]
    )
    current = rows[0] if rows and rows[0].is_current else None
    shown = [project for project in rows if not project.is_current][:limit]
    if current is not None:
        shown = sorted([*shown, current], key=lambda project: (project.updated_at, project.pk), reverse=True)
        if len(shown) > limit and shown[-1] is not current:
            shown.pop()
    return SidebarProjects(projects=shown, more=len(rows) > len(shown))


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
