"""State changes of sessions, runs, steps and artifacts.

The Run table is the durable queue: ``run_start`` inserts a queued run (the partial unique constraint makes it
the session's only active run), workers claim it atomically with ``run_claim``, prove they are alive with
``run_heartbeat`` and end it with ``run_finish``; ``runs_reap_stale`` fails runs whose worker died.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import stat
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import audit_record
from analysis import claims, locks, selectors
from analysis.agent.models import model_choices
from analysis.artifact_views import table_preview_meta
from analysis.models import AnalysisSession, Artifact, Run, Step, WorkerProcess
from analysis.sandbox import artifact_schema
from analysis.streaming import push
from projects.models import Project
from projects.selectors import project_role_for

logger = logging.getLogger(__name__)

QUESTION_MAX_CHARS = 10_000
CLAIM_LOCK_KEY = 0x636C61696D  # "claim": the advisory lock that serializes run claims on PostgreSQL
STALE_RUN_ERROR = (
    "The worker running this question stopped responding (it may have crashed or been restarted). "
    "The run was stopped; you can ask again."
)


class SessionBusy(Exception):
    """A run is already queued or running in this session."""

    def __init__(self, run: Run | None = None):
        self.run = run
        super().__init__("A question is already being answered in this session. Wait for it to finish or stop it.")


class RunQueueUnserved(Exception):
    """The run workers died (registered, none alive): a question queued now would wait for nobody."""

    def __init__(self):
        super().__init__(
            "No run worker is running right now, so nobody could answer this question; it was not queued. "
            "Try again in a minute, or ask an administrator to start a run worker."
        )


# --- sessions --------------------------------------------------------------------------------------


def _model_validate(model: str) -> str:
    model = (model or "").strip()
    if model and model not in {c.key for c in model_choices()}:
        raise ValidationError({"model": f"Unknown model {model!r}. Choose one of the available models."})
    return model


UNTITLED_SESSION = "Untitled session"


def _title_from(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= 80 else line[:79].rsplit(" ", 1)[0] + "…"


def session_create(*, project: Project, user, title: str, model: str = "") -> AnalysisSession:
    if not project_role_for(user, project).can_edit:
        raise PermissionDenied("Only owners and editors can start sessions in this project.")
    session = AnalysisSession(project=project, user=user, title=(title or "").strip() or UNTITLED_SESSION)
    session.model = _model_validate(model)
    session.full_clean()
    session.save()
    return session


def session_update(*, session: AnalysisSession, user, title: str | None = None, model: str | None = None):
    if not project_role_for(user, session.project).can_edit:
        raise PermissionDenied("Only owners and editors can change this session.")
    if title is not None:
        session.title = title.strip() or session.title
    if model is not None:
        session.model = _model_validate(model)
    session.full_clean()
    session.save()
    return session


def session_delete(*, session: AnalysisSession, user) -> None:
    if not project_role_for(user, session.project).can_edit:
        raise PermissionDenied("Only owners and editors can delete this session.")
    active = Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()
    if active is not None:
        run_cancel(run=active, user=user)
    audit_record(event=AuditEvent.Event.DELETION, user=user,
                 target=f"session {session.pk} {session.title!r} of project {session.project_id}")  # fmt: skip
    session.delete()


# --- runs --------------------------------------------------------------------------------------


def run_start(*, session: AnalysisSession, user, question: str) -> Run:
    """Queue a question. Raises ``SessionBusy`` while another run of the session is queued or running.

    The lock is the database's partial unique constraint ``one_active_run_per_session``. An active run whose
    worker died is reaped here, so a crashed worker never blocks a session longer than ``RUN_STALE_SECONDS``.
    """
    question = (question or "").strip()
    if not question:
        raise ValidationError({"question": "Type a question first."})
    if len(question) > QUESTION_MAX_CHARS:
        raise ValidationError({"question": f"Questions are limited to {QUESTION_MAX_CHARS} characters."})
    if not project_role_for(user, session.project).can_edit:
        raise PermissionDenied("Viewers can read this session but not ask questions.")
    active = Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()
    if active is not None and runs_reap_stale(session_id=session.pk):  # its worker died: the session is free again
        active = Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()
    if active is not None:
        raise SessionBusy(active)
    if selectors.run_queue_unserved():
        raise RunQueueUnserved()
    try:
        with transaction.atomic():
            run = Run.objects.create(session=session, user=user, question=question, model=session.model)
            changes = {"updated_at": timezone.now()}
            if session.title == UNTITLED_SESSION and not session.runs.exclude(pk=run.pk).exists():
                # A session started without a name (Ctrl+J) is named after its first question; still editable.
                changes["title"] = session.title = _title_from(question)
            AnalysisSession.objects.filter(pk=session.pk).update(**changes)
    except IntegrityError:  # a concurrent request won the race: the constraint is the lock
        raise SessionBusy(Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()) from None
    # Published by the worker that claims it, or by a worker's queue flush while it waits (see push.queue_flush).
    transaction.on_commit(lambda: locks.queue_wake(run_id=run.pk))
    return run


def run_cancel(*, run: Run, user) -> Run:
    """Ask for a run to stop. A queued run is cancelled at once; a running one by its worker within seconds."""
    if not project_role_for(user, run.session.project).can_edit:
        raise PermissionDenied("Only owners and editors can stop runs.")
    now = timezone.now()
    cancelled_queued = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.CANCELLED, cancel_requested=True, finished_at=now, error="Stopped before it started."
    )
    if cancelled_queued:
        transaction.on_commit(lambda: (push.run_push(run_id=run.pk), push.queue_push()))
    else:
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(cancel_requested=True)
        transaction.on_commit(lambda: locks.cancel_publish(run_id=run.pk))
    run.refresh_from_db()
    return run


def _claim_serialize() -> None:
    """Claims take turns (one short transaction each), so the per-user cap holds across workers.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the transaction is ``BEGIN IMMEDIATE`` already.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_KEY])


def run_claim(*, worker_id: str) -> Run | None:
    """Atomically take the next run this worker may drive (see ``runs_claim``), or return None."""
    runs = runs_claim(worker_id=worker_id, limit=1)
    return runs[0] if runs else None


def runs_claim(*, worker_id: str, limit: int, publish: bool = True) -> list[Run]:
    """Atomically take up to ``limit`` runs this worker may drive, oldest first, and publish that they run
    (``publish=False``: the caller does, with ``push.run_push``, once each run is on its way).

    Skips runs of users already at ``RUN_MAX_ACTIVE_PER_USER`` running runs (counting the runs taken here) and
    runs whose session's kernel (its variables) lives on another worker that is still alive. Claims are
    serialized (see ``_claim_serialize``), so the cap is exact with any number of workers; a worker with many
    free slots takes a batch in one turn (50 questions at once cost 50 turns of the lock otherwise, each
    waiting for the one before: the last question waited seconds to start).
    """
    # Most claims find nothing (every finished run wakes a worker): one indexed read answers them without the
    # transaction, the claim lock and the candidates' query. A run queued just after it wakes a worker again.
    if not Run.objects.filter(status=Run.Status.QUEUED).exists():
        return []
    now = timezone.now()
    fields = {"status": Run.Status.RUNNING, "worker_id": worker_id, "started_at": now, "heartbeat_at": now}
    cap = settings.RUN_MAX_ACTIVE_PER_USER
    with transaction.atomic():
        _claim_serialize()
        candidates = list(selectors.run_claimable_qs(worker_id=worker_id).values_list("pk", "user_id")[: limit * 4])
        if not candidates:
            return []
        running = Counter(
            Run.objects.filter(status=Run.Status.RUNNING, user_id__in={user for _pk, user in candidates})
            .values_list("user_id", flat=True)
            .order_by()
        )
        chosen = []
        for pk, user_id in candidates:
            if len(chosen) < limit and running[user_id] < cap:
                running[user_id] += 1
                chosen.append(pk)
        Run.objects.filter(pk__in=chosen, status=Run.Status.QUEUED).update(**fields)
        runs = list(
            Run.objects.filter(pk__in=chosen, worker_id=worker_id, status=Run.Status.RUNNING, started_at=now)
            .select_related("session")
            .order_by("created_at", "pk")
        )
    if publish:
        for run in runs:
            transaction.on_commit(functools.partial(push.run_push, run_id=run.pk))
    transaction.on_commit(push.queue_push)
    return runs


def runs_heartbeat(*, worker_id: str, run_ids: list[int]) -> set[int]:
    """Record that the worker is alive for all of its runs at once; returns the ids the users asked to stop."""
    if not run_ids:
        return set()
    Run.objects.filter(pk__in=run_ids, worker_id=worker_id, status=Run.Status.RUNNING).update(
        heartbeat_at=timezone.now()
    )
    # A row that is gone (deleted with its session, which requested a cancel first) or not visible yet: no cancel.
    return runs_cancel_requested(run_ids=run_ids)


def run_heartbeat(*, run_id: int, worker_id: str) -> bool:
    """Record that the worker is alive; returns True when the user asked to cancel the run."""
    return run_id in runs_heartbeat(worker_id=worker_id, run_ids=[run_id])


def runs_cancel_requested(*, run_ids: list[int]) -> set[int]:
    if not run_ids:
        return set()
    return set(Run.objects.filter(pk__in=run_ids, cancel_requested=True).values_list("pk", flat=True))


def run_cancel_requested(*, run_id: int) -> bool:
    return Run.objects.filter(pk=run_id, cancel_requested=True).exists()


def run_finish(
    *,
    run: Run,
    status: str,
    answer: str = "",
    error: str = "",
    model: str = "",
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost: Decimal | float = Decimal("0"),
) -> bool:
    """End a running run once (a reaped or already-finished run is left alone)."""
    updated = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=status,
        answer=answer,
        error=error[:5000],
        model=model or run.model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=Decimal(str(cost or 0)),
        finished_at=timezone.now(),
    )
    AnalysisSession.objects.filter(pk=run.session_id).update(updated_at=timezone.now())
    # A slot, a user's share and maybe a session kernel are free now: other workers look at the queue again.
    transaction.on_commit(lambda: (push.run_push(run_id=run.pk), locks.queue_wake(run_id=0), push.queue_push()))
    return bool(updated)


def runs_reap_stale(*, session_id: int | None = None) -> list[int]:
    """Fail running runs whose worker stopped heartbeating (killed, OOM, machine lost). Idempotent."""
    cutoff = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    stale = Run.objects.filter(status=Run.Status.RUNNING, heartbeat_at__lt=cutoff)
    if session_id is not None:
        stale = stale.filter(session_id=session_id)
    reaped = []
    for run in stale.only("pk", "session_id"):
        # An answer already saved is the run's result: its worker died (or lost its services) just after it.
        answer = run.steps.filter(kind=Step.Kind.ANSWER).order_by("-ordinal").values_list("content", flat=True).first()
        end = (
            {"status": Run.Status.SUCCEEDED, "answer": answer}
            if answer is not None
            else {"status": Run.Status.FAILED, "error": STALE_RUN_ERROR}
        )
        if Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, heartbeat_at__lt=cutoff).update(
            **end, finished_at=timezone.now()
        ):
            reaped.append(run.pk)
            transaction.on_commit(lambda pk=run.pk: push.run_push(run_id=pk))
    if reaped:
        logger.warning("Reaped stale runs %s", reaped)
        transaction.on_commit(lambda: (locks.queue_wake(run_id=0), push.queue_push()))
    return reaped


# --- run workers and session kernels -------------------------------------------------------------------


def worker_register(*, worker_id: str, hostname: str, pid: int, concurrency: int) -> WorkerProcess:
    now = timezone.now()
    worker, _ = WorkerProcess.objects.update_or_create(
        pk=worker_id,
        defaults={"hostname": hostname, "pid": pid, "started_at": now, "heartbeat_at": now, "concurrency": concurrency},
    )
    return worker


def worker_heartbeat(
    *,
    worker_id: str,
    runs_active: int,
    kernels: int,
    kernel_pss_mb: float,
    worker_pss_mb: float,
    recreate: bool = True,
) -> None:
    """Refresh the registry row; with ``recreate``, a row that is gone (an operator, ``run_worker --reap`` after
    an outage, or a restore removed it) is written again. The worker passes False once it is stopping, so a
    beat in flight never brings back the row ``worker_unregister`` just deleted."""
    figures = {
        "heartbeat_at": timezone.now(),
        "runs_active": runs_active,
        "kernels": kernels,
        "kernel_pss_mb": round(kernel_pss_mb, 1),
        "worker_pss_mb": round(worker_pss_mb, 1),
    }
    if not WorkerProcess.objects.filter(pk=worker_id).update(**figures) and recreate:
        host, pid = (worker_id.split(":") + ["0", "0"])[:2]
        WorkerProcess.objects.update_or_create(
            pk=worker_id,
            defaults={
                **figures,
                "hostname": host,
                "pid": int(pid) if pid.isdigit() else 0,
                "started_at": timezone.now(),
            },
        )


def worker_unregister(*, worker_id: str) -> None:
    """A clean stop: the sessions whose kernels it held are free for any worker (their variables are gone)."""
    AnalysisSession.objects.filter(kernel_worker=worker_id).update(
        kernel_worker="", kernel_lost_reason="the worker holding them was restarted"
    )
    WorkerProcess.objects.filter(pk=worker_id).delete()


def workers_forget_stale(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete registry rows of workers silent for long (killed without a clean stop)."""
    deleted, _ = WorkerProcess.objects.filter(heartbeat_at__lt=timezone.now() - older_than).delete()
    return deleted


def session_kernel_take(*, session: AnalysisSession, worker_id: str) -> tuple[str, str]:
    """Record that ``worker_id`` holds the session's kernel; returns the previous (holder, lost reason), as read
    with ``session`` (the caller reads it just before). Writes nothing when the worker holds it already."""
    previous = (session.kernel_worker, session.kernel_lost_reason)
    if previous != (worker_id, ""):
        AnalysisSession.objects.filter(pk=session.pk).update(kernel_worker=worker_id, kernel_lost_reason="")
        session.kernel_worker, session.kernel_lost_reason = worker_id, ""
    return previous


def session_kernel_release(*, session_id: int, worker_id: str, reason: str) -> None:
    """The worker closed the session's kernel: any worker may take the next run; ``reason`` tells it why."""
    AnalysisSession.objects.filter(pk=session_id, kernel_worker=worker_id).update(
        kernel_worker="", kernel_lost_reason=reason[:300]
    )


# --- steps and artifacts ----------------------------------------------------------------------


def db_retry(fn, *, attempts: int = 40, delay: float = 0.05):
    """Call ``fn`` again when SQLite reports a lock (busy writers, or shared-cache table locks in tests)."""
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1 or connection.in_atomic_block:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def step_create(*, run: Run, kind: str, content: str = "", data: dict | None = None) -> Step:
    """Save the next step of a run, then publish it (after commit: the DB is the source of truth)."""

    def save() -> Step:
        ordinal = (run.steps.order_by("-ordinal").values_list("ordinal", flat=True).first() or 0) + 1
        return Step.objects.create(run=run, ordinal=ordinal, kind=kind, content=content, data=data or {})

    step = db_retry(save)
    if step.data.get("refusals"):
        # The sandbox refused some of the model's code (policy or isolation): a security event.
        audit_record(event=AuditEvent.Event.SANDBOX_REFUSAL, user=run.user, target=f"run {run.pk} of session {run.session_id}",
                     detail={"refusals": [str(r)[:500] for r in step.data["refusals"]][:20], "step": step.pk})  # fmt: skip
    transaction.on_commit(lambda: push.step_push(step=step))
    return step


def step_refusals_record(*, step: Step, refusals: list[str]) -> Step:
    """Record on a code step what the sandbox policy refused while it ran (``data["refusals"]``, a list of
    short descriptions). No push of its own: the step saved next carries the warning to live pages."""
    step.data = {**(step.data or {}), "refusals": list(refusals)}
    db_retry(lambda: step.save(update_fields=["data"]))
    return step


def answer_step_create(*, run: Run, answer: str, values: claims.ValuePool | None = None) -> Step:
    """Save the run's answer with its claims: each number it states, linked to the step that computed it or flagged
    as found nowhere (analysis/claims.py). `values` are the numbers the run's steps computed, gathered while they
    were saved; without them they are read back from the steps and the table files. Call it after every other
    step of the run is saved."""
    answer = claims.strip_sentinels(answer)
    pool = values if values is not None else selectors.run_value_pool(run=run)
    found = claims.claims_match(answer=answer, question=run.question, pool=pool)
    return step_create(run=run, kind=Step.Kind.ANSWER, content=answer, data={"claims": found})


class ArtifactRejected(ValueError):
    """An artifact the run reported cannot be stored; the message says why (shown to the user and the model)."""


@dataclass
class ArtifactBudget:
    """What one run may still store: ``SANDBOX_MAX_ARTIFACTS`` artifacts, ``SANDBOX_MAX_FILE_ARTIFACTS_MB`` of files."""

    max_count: int = field(default_factory=lambda: settings.SANDBOX_MAX_ARTIFACTS)
    max_file_bytes: int = field(default_factory=lambda: settings.SANDBOX_MAX_FILE_ARTIFACTS_MB * 1024 * 1024)
    count: int = 0
    file_bytes: int = 0

    @property
    def full(self) -> bool:
        return self.count >= self.max_count


@dataclass
class PreparedArtifact:
    checked: artifact_schema.CheckedArtifact
    body: bytes


def path_within(root: str, path: str) -> bool:
    """True when ``path`` (symlinks resolved) is ``root`` or inside it. A plain prefix test is not enough:
    ``/data/session-10`` starts with ``/data/session-1``."""
    root, path = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([root, path]) == root


def workspace_file_read(*, workspace: str, path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file inside the workspace, opened one path part at a time without following
    symlinks (so a kernel still running cannot swap one in after the check); at most ``max_bytes``."""
    if not path_within(workspace, os.path.join(workspace, path)):
        raise ArtifactRejected(f"{path} is outside the session's workspace, so it was not stored.")
    *folders, name = path.split("/")
    fd = os.open(os.path.realpath(workspace), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=fd)
    except OSError as exc:
        raise ArtifactRejected(f"{path} could not be opened ({exc.strerror}), so it was not stored.") from None
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(file_fd)
        raise ArtifactRejected(f"{path} is not a plain file (a link, folder, pipe or device), so it was not stored.")
    with os.fdopen(file_fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ArtifactRejected(f"{path} is larger than the {_mb(max_bytes)} left for files in this run.")
    return data


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def artifact_prepare(*, payload: object, workspace: str | None, budget: ArtifactBudget) -> PreparedArtifact:
    """Check one sandbox artifact against the schema (``analysis.sandbox.artifact_schema``) and the run's budget,
    and read its bytes. Raises ArtifactRejected with a readable reason; charges the budget only on success."""
    if budget.full:
        raise ArtifactRejected(
            f"This run already stored {budget.max_count} artifacts, the limit (SANDBOX_MAX_ARTIFACTS)."
        )
    try:
        checked = artifact_schema.artifact_check(payload)
    except artifact_schema.ArtifactInvalid as exc:
        raise ArtifactRejected(f"This output is not a valid artifact: {exc}.") from None
    body = checked.body
    room = budget.max_file_bytes - budget.file_bytes
    if checked.kind == "file" and body is None:
        if not workspace:
            raise ArtifactRejected(f"{checked.path} cannot be read: this run has no workspace.")
        body = workspace_file_read(workspace=workspace, path=checked.path, max_bytes=max(room, 0))
    elif checked.kind == "file" and len(body) > room:
        raise ArtifactRejected(f"{checked.path} is larger than the {_mb(max(room, 0))} left for files in this run.")
    budget.count += 1
    if checked.kind == "file":
        budget.file_bytes += len(body)
    return PreparedArtifact(checked=checked, body=body)


def artifact_store(*, run: Run, step: Step, prepared: PreparedArtifact) -> Artifact:
    """Save a prepared artifact and link it to the run's step."""
    checked = prepared.checked
    meta = dict(checked.meta)
    if checked.kind == Artifact.Kind.TABLE:
        # The first page, so the session page shows the table without opening its file (see artifact_views).
        preview = table_preview_meta(json.loads(prepared.body))
        if preview is not None:
            meta["preview"] = preview
    artifact = Artifact(
        project_id=run.session.project_id,
        session_id=run.session_id,
        run=run,
        step=step,
        kind=checked.kind,
        title=checked.title,
        mime=checked.mime,
        size=len(prepared.body),
        meta=meta,
    )
    artifact.file.save(f"run{run.pk}-step{step.ordinal}-{checked.filename}", ContentFile(prepared.body), save=False)
    artifact.save()
    return artifact


def artifact_create_from_sandbox(
    *, run: Run, step: Step, payload: dict, workspace: str | None = None, budget: ArtifactBudget | None = None
) -> Artifact:
    """Store one sandbox artifact (schema: ``analysis.sandbox.artifact_schema``) and link it to the run's step.
    Raises ArtifactRejected (a ValueError) for anything that does not meet the schema or the run's budget;
    without a ``budget`` the run's stored artifacts count against a fresh one."""
    if budget is None:
        stored = Artifact.objects.filter(run=run)
        budget = ArtifactBudget(
            count=stored.count(), file_bytes=sum(stored.filter(kind=Artifact.Kind.FILE).values_list("size", flat=True))
        )
    return artifact_store(
        run=run, step=step, prepared=artifact_prepare(payload=payload, workspace=workspace, budget=budget)
    )


def run_usage_add(*, run_id: int, tokens_in: int, tokens_out: int, cost: Decimal) -> None:
    Run.objects.filter(pk=run_id).update(
        tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out, cost=F("cost") + cost
    )
