"""Reads for the analysis app. Every lookup a page, API view or consumer makes is scoped here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from analysis.agent.models import model_name
from analysis.artifact_views import artifact_view_for
from analysis.claims import ValuePool
from analysis.models import AnalysisSession, Artifact, Run, Step, WorkerProcess
from codingagent.lib.http import get_object_or_403
from projects.models import Dataset, Project


def session_qs_for(*, user) -> QuerySet[AnalysisSession]:
    return AnalysisSession.objects.visible_to(user).select_related("project", "user")


def session_editable_qs_for(*, user) -> QuerySet[AnalysisSession]:
    return AnalysisSession.objects.editable_by(user).select_related("project", "user")


def session_get_editable(*, user, pk: int) -> AnalysisSession:
    """Session ``pk`` when ``user`` may change it: 404 if they cannot see it, 403 if they can only read it."""
    return get_object_or_403(session_editable_qs_for(user=user), visible=session_qs_for(user=user), pk=pk)


def run_qs_for(*, user) -> QuerySet[Run]:
    return Run.objects.visible_to(user).select_related("session", "session__project", "user")


def artifact_qs_for(*, user) -> QuerySet[Artifact]:
    return Artifact.objects.visible_to(user)


def session_list_for_project(*, project: Project) -> QuerySet[AnalysisSession]:
    """Sessions of a project with the status of their latest run, in one query."""
    latest = Run.objects.filter(session=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        AnalysisSession.objects.filter(project=project)
        .select_related("user")
        .annotate(
            last_run_status=Subquery(latest.values("status")[:1]),
            last_run_question=Subquery(latest.values("question")[:1]),
            n_runs=Count("runs", distinct=True),
        )
    )


def session_list_recent(*, user, limit: int = 10) -> list[AnalysisSession]:
    latest = Run.objects.filter(session=OuterRef("pk")).order_by("-created_at", "-pk")
    qs = (
        AnalysisSession.objects.visible_to(user)
        .select_related("project")
        .annotate(last_run_status=Subquery(latest.values("status")[:1]))
        .order_by("-updated_at", "-pk")
    )
    return list(qs[:limit])


def session_list_for_sidebar(*, session: AnalysisSession, limit: int = 30) -> list[AnalysisSession]:
    """The session page's sidebar in one query: the ``limit`` most recently changed sessions of its project, and
    the page's own session last when it is older, so a rename always finds its entry to swap out of band."""
    sessions = list(AnalysisSession.objects.filter(project_id=session.project_id).only("pk", "title")[:limit])
    if all(other.pk != session.pk for other in sessions):
        sessions.append(session)
    return sessions


def steps_for_session(*, session: AnalysisSession, after_pk: int = 0) -> QuerySet[Step]:
    """Steps of a session in the order they happened (pk order = creation order within a session)."""
    return (
        Step.objects.filter(run__session=session, pk__gt=after_pk)
        .select_related("run")
        .prefetch_related("artifacts")
        .order_by("pk")
    )


def steps_for_session_id(*, session_id: int, after_pk: int = 0) -> QuerySet[Step]:
    return (
        Step.objects.filter(run__session_id=session_id, pk__gt=after_pk)
        .select_related("run")
        .prefetch_related("artifacts")
        .order_by("pk")
    )


def run_list_for_session_page(*, session: AnalysisSession) -> list[Run]:
    """The session page's runs, each with its steps in ``run.step_list`` and each step's artifacts in
    ``step.artifact_list`` (three queries whatever the session holds), each artifact carrying its page view
    (``artifact.view``, built from its row: the page opens no artifact file, however many it shows).

    Read flat and grouped here rather than by prefetch_related: a prefetch into the related managers builds a
    queryset per run and per step, and even into lists it filters by every parent's pk (``IN`` of 300 steps)."""
    runs = list(session.runs.order_by("created_at", "pk"))
    steps = list(Step.objects.filter(run__session=session).order_by("run_id", "ordinal"))
    artifacts = Artifact.objects.filter(step__run__session=session).order_by("step_id", *Artifact._meta.ordering)
    by_step: dict[int, list[Artifact]] = {}
    for artifact in artifacts:
        artifact.view = artifact_view_for(artifact)
        by_step.setdefault(artifact.step_id, []).append(artifact)
    by_run: dict[int, list[Step]] = {}
    for step in steps:
        step.artifact_list = by_step.get(step.pk, [])
        by_run.setdefault(step.run_id, []).append(step)
    for run in runs:
        run.step_list = by_run.get(run.pk, [])
        for step in run.step_list:
            step.run = run  # the reverse of the grouping, so a step never reads its run again
    return runs


def run_active_for_session(*, session_id: int) -> Run | None:
    return Run.objects.filter(session_id=session_id, status__in=Run.ACTIVE_STATUSES).first()


def run_steps(*, run: Run, after_ordinal: int = 0) -> QuerySet[Step]:
    return run.steps.filter(ordinal__gt=after_ordinal).prefetch_related("artifacts").order_by("ordinal")


def usage_totals(*, runs: QuerySet[Run]) -> dict:
    totals = runs.aggregate(
        tokens_in=Coalesce(Sum("tokens_in"), 0),
        tokens_out=Coalesce(Sum("tokens_out"), 0),
        cost=Coalesce(Sum("cost"), Decimal("0")),
        n_runs=Count("pk"),
    )
    return totals


def usage_totals_of(runs: list[Run]) -> dict:
    """``usage_totals`` of runs already loaded, without a query."""
    return {
        "tokens_in": sum(r.tokens_in for r in runs),
        "tokens_out": sum(r.tokens_out for r in runs),
        "cost": sum((r.cost for r in runs), Decimal("0")),
        "n_runs": len(runs),
    }


def usage_totals_for_session(*, session: AnalysisSession) -> dict:
    return usage_totals(runs=Run.objects.filter(session=session))


def usage_totals_for_user(*, user) -> dict:
    return usage_totals(runs=Run.objects.filter(user=user))


# --- what the session page and its pushed fragments show (one builder: page and push cannot disagree) ---

CHART_HINTS = ("plotly", "px.", "go.Figure", "matplotlib", "plt.", ".plot(")


def run_activity(*, run: Run, last_step: Step | None, code_steps: int) -> str:
    """What the running indicator says a live run is doing, read from its newest step ("" once it has ended).

    A code step is being executed until its output arrives; text the model writes next to a tool call, and an
    output, mean it is thinking again; a result (a chart or table stored, or an output setting final_result)
    usually comes right before the answer."""
    if not run.is_active:
        return ""
    if run.status == Run.Status.QUEUED:
        return "Waiting to start…"
    kind = last_step.kind if last_step is not None else None
    if kind == Step.Kind.CODE:
        if any(hint in last_step.content for hint in CHART_HINTS):
            return "Drawing chart…"
        return f"Running code (step {code_steps})…"
    if kind in (Step.Kind.ARTIFACT, Step.Kind.ANSWER) or (
        kind == Step.Kind.OUTPUT and last_step.data.get("final_result") is not None
    ):
        return "Writing the answer…"
    return "Thinking…"


def run_live_prepare(run: Run, *, steps: list[Step] | None = None, last_step: Step | None = None) -> Run:
    """Set what a run's status fragment shows beyond its own row: ``run.model_name`` (the real name, while it
    runs too) and ``run.activity``. ``steps``: the run's steps in order when already loaded (the page); else
    ``last_step`` (a step being pushed: no query, a code step carries its execution number) or, for neither,
    one query for the newest."""
    run.model_name = model_name(run.model)
    run.activity = ""
    if not run.is_active:
        return run
    if steps is not None:
        last_step = steps[-1] if steps else None
        code_steps = sum(1 for s in steps if s.kind == Step.Kind.CODE)
    else:
        if last_step is None:
            last_step = run.steps.order_by("-ordinal").first()
        code_steps = 0
        if last_step is not None and last_step.kind == Step.Kind.CODE:
            code_steps = last_step.data.get("execution") or (
                run.steps.filter(kind=Step.Kind.CODE, ordinal__lte=last_step.ordinal).count()
            )
    run.activity = run_activity(run=run, last_step=last_step, code_steps=code_steps)
    return run


def session_live_context(
    *, session: AnalysisSession, runs: list[Run], steps_loaded: bool = False, last_step: Step | None = None
) -> dict:
    """The context the session's run, status, composer and usage fragments render from, on page load and in
    every push: each run prepared (``run_live_prepare``), the active run, and the session's totals (counting
    a run from the moment it is asked, so the footer never says 0 questions while one streams).
    ``steps_loaded``: ``runs`` are all of the session's runs with their steps (the page), so the totals are
    summed from them; ``last_step``: the one run's newest step (a push)."""
    for run in runs:
        run_live_prepare(run, steps=run.page_steps if steps_loaded else None, last_step=last_step)
    return {
        "session": session,
        "runs": runs,
        "active_run": next((r for r in runs if r.is_active), None),
        "usage": usage_totals_of(runs) if steps_loaded else usage_totals_for_session(session=session),
    }


def example_questions_for_session(*, session: AnalysisSession, limit: int = 3) -> list[str]:
    """Questions a newcomer could ask first, named after the project's columns (none without a dataset)."""
    for dataset in Dataset.objects.filter(project_id=session.project_id).order_by("-pk").only("profile")[:1]:
        columns = (dataset.profile or {}).get("columns") or []
        numbers = [c["name"] for c in columns if c.get("kind") == "numeric"]
        labels = [c["name"] for c in columns if c.get("kind") == "text"]
        examples = []
        if numbers and labels:
            examples.append(f"Average {numbers[-1]} by {labels[0]}")
            examples.append(f"Show a bar chart of {numbers[-1]} by {labels[0]}")
        if numbers:
            examples.append(f"Show the distribution of {numbers[0]}")
        return (examples or ["How many rows are there, and what do the columns contain?"])[:limit]
    return []


def datasets_for_session(*, session: AnalysisSession) -> list[Dataset]:
    return list(Dataset.objects.filter(project_id=session.project_id).order_by("name"))


def conversation_for_session(*, session: AnalysisSession, before_run: Run | None = None, limit: int = 10) -> list[Run]:
    """Previous finished questions and answers in this session, oldest first (the agent's memory)."""
    qs = Run.objects.filter(session=session).exclude(status__in=Run.ACTIVE_STATUSES)
    if before_run is not None:
        qs = qs.filter(pk__lt=before_run.pk)
    return list(reversed(qs.order_by("-pk")[:limit]))


def run_value_pool(*, run: Run) -> ValuePool:
    """Every number the run's steps computed: final_result and printed output of each output step, and every
    cell of each table artifact (one storage read per table)."""
    pool = ValuePool()
    steps = run.steps.filter(kind__in=[Step.Kind.OUTPUT, Step.Kind.ARTIFACT]).prefetch_related(
        Prefetch("artifacts", queryset=Artifact.objects.filter(kind=Artifact.Kind.TABLE))
    )
    for step in steps:
        if step.kind == Step.Kind.OUTPUT:
            pool.add_output(step=step.ordinal, stdout=step.content, data=step.data or {})
        for artifact in step.artifacts.all() if step.kind == Step.Kind.ARTIFACT else []:
            table = table_artifact_body(artifact=artifact)
            if table:
                pool.add_table_body(table, step=step.ordinal, title=artifact.title)
    return pool


def table_artifact_body(*, artifact: Artifact) -> dict | None:
    """The stored JSON of a table artifact, or None when it cannot be read (a missing or broken file)."""
    try:
        with artifact.file.open("rb") as fh:
            body = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def run_claims(*, run: Run) -> list[dict]:
    """The claims of the run's answer (see analysis/claims.py); uses prefetched steps when there are some."""
    answers = [s for s in run.steps.all() if s.kind == Step.Kind.ANSWER]
    return answer_claims(answers[-1] if answers else None)


def answer_claims(answer: Step | None) -> list[dict]:
    """The claims an answer step carries (none without an answer)."""
    return list(((answer.data if answer is not None else None) or {}).get("claims") or [])


# --- the run queue ----------------------------------------------------------------------------------


def workers_alive_qs() -> QuerySet[WorkerProcess]:
    """Run workers whose heartbeat is younger than ``RUN_STALE_SECONDS``."""
    return WorkerProcess.objects.filter(
        heartbeat_at__gte=timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    )


def _users_at_cap() -> QuerySet:
    running = Run.objects.filter(status=Run.Status.RUNNING).order_by().values("user_id")
    return running.annotate(n=Count("pk")).filter(n__gte=settings.RUN_MAX_ACTIVE_PER_USER).values("user_id")


def run_claimable_qs(*, worker_id: str) -> QuerySet[Run]:
    """Queued runs ``worker_id`` may take, oldest first: not of a user at the running-runs cap, and not of a
    session whose kernel lives on another live worker."""
    elsewhere = workers_alive_qs().exclude(pk=worker_id).values("pk")
    return (
        Run.objects.filter(status=Run.Status.QUEUED)
        .exclude(user_id__in=_users_at_cap())
        .exclude(session__kernel_worker__in=elsewhere)
        .order_by("created_at", "pk")
    )


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class QueueInfo:
    position: int  # 1 = next to be claimed among the runs that can be
    waiting_for: str  # "a free worker", "your other question to finish", ...

    @property
    def text(self) -> str:
        return f"{ordinal(self.position)} in the queue, waiting for {self.waiting_for}"


def run_queue_info(*, run: Run) -> QueueInfo | None:
    """Where a queued run stands and what it waits for (None once it is claimed or ended)."""
    if run.status != Run.Status.QUEUED:
        return None
    at_cap = _users_at_cap()
    earlier = Q(created_at__lt=run.created_at) | Q(created_at=run.created_at, pk__lt=run.pk)
    ahead = Run.objects.filter(earlier, status=Run.Status.QUEUED).exclude(user_id__in=at_cap).count()
    alive = workers_alive_qs()
    holder = AnalysisSession.objects.filter(pk=run.session_id).values_list("kernel_worker", flat=True).first()
    if Run.objects.filter(status=Run.Status.RUNNING, user_id=run.user_id).count() >= settings.RUN_MAX_ACTIVE_PER_USER:
        others = "question" if settings.RUN_MAX_ACTIVE_PER_USER == 1 else "questions"
        waiting_for = f"your other {others} to finish"
    elif not alive.exists():
        waiting_for = "a run worker to start (none is running)"
    elif holder and alive.filter(pk=holder).exists():
        waiting_for = "the worker that holds this session's variables"
    else:
        waiting_for = "a free worker"
    return QueueInfo(position=ahead + 1, waiting_for=waiting_for)


def run_queue_attach(runs) -> None:
    """Set ``run.queue`` on the queued runs among ``runs`` (there is at most one per session)."""
    for run in runs:
        if run.status == Run.Status.QUEUED:
            run.queue = run_queue_info(run=run)


def runs_queued_ids(*, limit: int = 200) -> list[int]:
    return list(
        Run.objects.filter(status=Run.Status.QUEUED).order_by("created_at", "pk").values_list("pk", flat=True)[:limit]
    )


def run_workers_report(*, with_processes: bool = False) -> dict:
    """What /healthz says about the run workers: how many are alive by heartbeat, the queue (count and the
    oldest queued run's age), their kernels and memory; each process too when ``with_processes``."""
    now = timezone.now()
    alive = list(workers_alive_qs().order_by("started_at", "pk"))
    queued = Run.objects.filter(status=Run.Status.QUEUED)
    oldest = queued.order_by("created_at").values_list("created_at", flat=True).first()
    report = {
        "alive": len(alive),
        "runs_queued": queued.count(),
        "runs_running": Run.objects.filter(status=Run.Status.RUNNING).count(),
        "oldest_queued_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "runs_active_capacity": sum(w.concurrency for w in alive),
        "kernels": sum(w.kernels for w in alive),
        "kernel_pss_mb": round(sum(w.kernel_pss_mb for w in alive), 1),
    }
    if with_processes:
        report["processes"] = [
            {
                "id": w.pk,
                "hostname": w.hostname,
                "pid": w.pid,
                "started_at": w.started_at.isoformat(),
                "heartbeat_age_seconds": round((now - w.heartbeat_at).total_seconds(), 1),
                "runs_active": w.runs_active,
                "concurrency": w.concurrency,
                "kernels": w.kernels,
                "kernel_pss_mb": w.kernel_pss_mb,
                "worker_pss_mb": w.worker_pss_mb,
            }
            for w in alive
        ]
    return report


def run_queue_unserved() -> bool:
    """True when run workers registered but none is alive now (killed, or their machine lost): a question queued
    now would wait for nobody. Before any worker registered (a fresh install starting up), or after every worker
    stopped cleanly (their rows are gone), questions queue as usual and the page says what they wait for."""
    cutoff = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    workers = WorkerProcess.objects.aggregate(
        registered=Count("pk"), alive=Count("pk", filter=Q(heartbeat_at__gte=cutoff))
    )
    return workers["registered"] > 0 and workers["alive"] == 0
