"""Permission-scoped reads for exports and artifacts (every lookup goes through visible_to/editable_by)."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from analysis.models import AnalysisSession, Artifact, Run, Step
from projects.models import Dataset, Project


def artifact_qs_for(*, user) -> QuerySet[Artifact]:
    return Artifact.objects.visible_to(user)


def artifact_editable_qs_for(*, user) -> QuerySet[Artifact]:
    return Artifact.objects.filter(project__in=Project.objects.editable_by(user))


def session_qs_for(*, user) -> QuerySet[AnalysisSession]:
    return AnalysisSession.objects.visible_to(user).select_related("project")


def artifact_list_for_session(*, session: AnalysisSession) -> QuerySet[Artifact]:
    return session.artifacts.order_by("created_at", "pk")


def artifact_list_for_project(*, project: Project) -> QuerySet[Artifact]:
    """The project's gallery: everything its sessions made plus items pinned to the project, pinned first."""
    return (
        Artifact.objects.filter(Q(project=project, session__isnull=False) | Q(project=project, pinned=True))
        .select_related("session")
        .order_by("-pinned", "-created_at", "-pk")
    )


def session_export_qs() -> QuerySet[AnalysisSession]:
    """Sessions with everything an export reads, in a fixed number of queries (runs, steps, artifacts, datasets)."""
    return AnalysisSession.objects.select_related("project", "user").prefetch_related(
        Prefetch(
            "runs",
            queryset=Run.objects.order_by("created_at", "pk").prefetch_related(
                Prefetch("steps", queryset=Step.objects.order_by("ordinal")),
                Prefetch("artifacts", queryset=Artifact.objects.order_by("created_at", "pk")),
            ),
        ),
        Prefetch("project__datasets", queryset=Dataset.objects.order_by("name")),
    )


def project_export_qs() -> QuerySet[Project]:
    return Project.objects.select_related("owner").prefetch_related(
        Prefetch("datasets", queryset=Dataset.objects.order_by("name")),
        Prefetch(
            "sessions",
            queryset=AnalysisSession.objects.order_by("created_at", "pk").prefetch_related(
                Prefetch(
                    "runs",
                    queryset=Run.objects.order_by("created_at", "pk").prefetch_related(
                        Prefetch("steps", queryset=Step.objects.order_by("ordinal")),
                        Prefetch("artifacts", queryset=Artifact.objects.order_by("created_at", "pk")),
                    ),
                )
            ),
        ),
        Prefetch(
            "artifacts",
            queryset=Artifact.objects.filter(pinned=True, session__isnull=True).order_by("created_at", "pk"),
            to_attr="project_pinned_artifacts",
        ),
    )
