"""State changes of sessions, runs, steps and artifacts.

The Run table is the durable queue: ``run_start`` inserts a queued run (the partial unique constraint makes it
the session's only active run), workers claim it atomically with ``run_claim``, prove they are alive with
``run_heartbeat`` and end it with ``run_finish``; ``runs_reap_stale`` fails runs whose worker died.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import os
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from analysis import claims, locks, selectors
from analysis.agent.models import model_choices
from analysis.models import AnalysisSession, Artifact, Run, Step
from analysis.sandbox.result import group_sizes_clean
from analysis.streaming import push
from projects.models import Project

logger = logging.getLogger(__name__)

QUESTION_MAX_CHARS = 10_000
STALE_RUN_ERROR = (
    "The worker running this question stopped responding (it may have crashed or been restarted). "
    "The run was stopped; you can ask again."
)


class SessionBusy(Exception):
    """A run is already queued or running in this session."""

    def __init__(self, run: Run | None = None):
        self.run = run
        super().__init__("A question is already being answered in this session. Wait for it to finish or stop it.")


# --- sessions --------------------------------------------------------------------------------------


def _model_validate(model: str) -> str:
    model = (model or "").strip()
    if model and model not in {c.key for c in model_choices()}:
        raise ValidationError({"model": f"Unknown model {model!r}. Choose one of the available models."})
    return model


def session_create(*, project: Project, user, title: str, model: str = "") -> AnalysisSession:
    if not Project.objects.editable_by(user).filter(pk=project.pk).exists():
        raise PermissionDenied("Only owners and editors can start sessions in this project.")
    session = AnalysisSession(project=project, user=user, title=(title or "").strip() or "Untitled session")
    session.model = _model_validate(model)
    session.full_clean()
    session.save()
    return session


def session_update(*, session: AnalysisSession, user, title: str | None = None, model: str | None = None):
    if not AnalysisSession.objects.editable_by(user).filter(pk=session.pk).exists():
        raise PermissionDenied("Only owners and editors can change this session.")
    if title is not None:
        session.title = title.strip() or session.title
    if model is not None:
        session.model = _model_validate(model)
    session.full_clean()
    session.save()
    return session


def session_delete(*, session: AnalysisSession, user) -> None:
    if not AnalysisSession.objects.editable_by(user).filter(pk=session.pk).exists():
        raise PermissionDenied("Only owners and editors can delete this session.")
    active = Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()
    if active is not None:
        run_cancel(run=active, user=user)
    session.delete()


# --- runs --------------------------------------------------------------------------------------


def run_start(*, session: AnalysisSession, user, question: str) -> Run:
    """Queue a question. Raises ``SessionBusy`` while another run of the session is queued or running.

    The lock is the database's partial unique constraint ``one_active_run_per_session``. A run whose worker
    died is reaped here first, so a crashed worker never blocks a session longer than ``RUN_STALE_SECONDS``.
    """
    question = (question or "").strip()
    if not question:
        raise ValidationError({"question": "Type a question first."})
    if len(question) > QUESTION_MAX_CHARS:
        raise ValidationError({"question": f"Questions are limited to {QUESTION_MAX_CHARS} characters."})
    if not AnalysisSession.objects.editable_by(user).filter(pk=session.pk).exists():
        raise PermissionDenied("Viewers can read this session but not ask questions.")
    runs_reap_stale(session_id=session.pk)
    active = Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()
    if active is not None:
        raise SessionBusy(active)
    try:
        with transaction.atomic():
            run = Run.objects.create(session=session, user=user, question=question, model=session.model)
            AnalysisSession.objects.filter(pk=session.pk).update(updated_at=timezone.now())
    except IntegrityError:  # a concurrent request won the race: the constraint is the lock
        raise SessionBusy(Run.objects.filter(session=session, status__in=Run.ACTIVE_STATUSES).first()) from None
    transaction.on_commit(lambda: (locks.queue_wake(run_id=run.pk), push.run_push(run_id=run.pk)))
    return run


def run_cancel(*, run: Run, user) -> Run:
    """Ask for a run to stop. A queued run is cancelled at once; a running one by its worker within seconds."""
    if not AnalysisSession.objects.editable_by(user).filter(pk=run.session_id).exists():
        raise PermissionDenied("Only owners and editors can stop runs.")
    now = timezone.now()
    cancelled_queued = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.CANCELLED, cancel_requested=True, finished_at=now, error="Stopped before it started."
    )
    if cancelled_queued:
        transaction.on_commit(lambda: push.run_push(run_id=run.pk))
    else:
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(cancel_requested=True)
        transaction.on_commit(lambda: locks.cancel_publish(run_id=run.pk))
    run.refresh_from_db()
    return run


def run_claim(*, worker_id: str) -> Run | None:
    """Atomically take the oldest queued run for this worker, or return None.

    PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on each other. Elsewhere
    (SQLite): a conditional ``UPDATE … WHERE status='queued'``; only one worker's update can match.
    """
    now = timezone.now()
    fields = {"status": Run.Status.RUNNING, "worker_id": worker_id, "started_at": now, "heartbeat_at": now}
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            run = (
                Run.objects.select_for_update(skip_locked=True)
                .filter(status=Run.Status.QUEUED)
                .order_by("created_at", "pk")
                .first()
            )
            if run is None:
                return None
            Run.objects.filter(pk=run.pk).update(**fields)
    else:
        candidates = Run.objects.filter(status=Run.Status.QUEUED).order_by("created_at", "pk")
        for run_id in candidates.values_list("pk", flat=True)[:5]:
            if Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(**fields):
                break
        else:
            return None
        run = Run(pk=run_id)
    run.refresh_from_db()
    transaction.on_commit(lambda: push.run_push(run_id=run.pk))
    return run


def run_heartbeat(*, run_id: int, worker_id: str) -> bool:
    """Record that the worker is alive; returns True when the user asked to cancel the run."""
    Run.objects.filter(pk=run_id, worker_id=worker_id, status=Run.Status.RUNNING).update(heartbeat_at=timezone.now())
    # A row that is gone (deleted with its session, which requested a cancel first) or not visible yet: no cancel.
    return Run.objects.filter(pk=run_id, cancel_requested=True).exists()


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
    transaction.on_commit(lambda: push.run_push(run_id=run.pk))
    return bool(updated)


def runs_reap_stale(*, session_id: int | None = None) -> list[int]:
    """Fail running runs whose worker stopped heartbeating (killed, OOM, machine lost). Idempotent."""
    cutoff = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    stale = Run.objects.filter(status=Run.Status.RUNNING, heartbeat_at__lt=cutoff)
    if session_id is not None:
        stale = stale.filter(session_id=session_id)
    reaped = []
    for run in stale.only("pk", "session_id"):
        if Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, heartbeat_at__lt=cutoff).update(
            status=Run.Status.FAILED, error=STALE_RUN_ERROR, finished_at=timezone.now()
        ):
            reaped.append(run.pk)
            transaction.on_commit(lambda pk=run.pk: push.run_push(run_id=pk))
    if reaped:
        logger.warning("Reaped stale runs %s", reaped)
    return reaped


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
    transaction.on_commit(lambda: push.step_push(step=step))
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


def _artifact_file(payload: dict[str, Any], workspace: str | None) -> tuple[str, str, bytes, dict, str]:
    """(kind, mime, bytes, meta, filename) for one sandbox artifact payload."""
    kind = payload.get("kind")
    if kind == "image":
        data = base64.b64decode(payload.get("data") or "")
        name = payload.get("name") or "figure.png"
        return "image", payload.get("mime") or "image/png", data, {"name": name}, name
    if kind == "plotly":
        fig = payload.get("json")
        raw = fig if isinstance(fig, str) else json.dumps(fig)
        try:
            title = (json.loads(raw).get("layout") or {}).get("title") or {}
            title = title.get("text", "") if isinstance(title, dict) else str(title)
        except (ValueError, AttributeError):
            title = ""
        return "plotly", "application/vnd.plotly.v1+json", raw.encode(), {"title": title}, "figure.json"
    if kind == "table":
        columns = payload.get("columns") or []
        rows = payload.get("rows") or []
        shape = payload.get("shape") or [len(rows), len(columns)]
        body = {
            "columns": columns,
            "rows": rows,
            "shape": shape,
            "dtypes": payload.get("dtypes") or {},
            "index_columns": int(payload.get("index_columns") or 0),  # leading columns that are row labels
            "group_sizes": group_sizes_clean(payload.get("group_sizes")),  # rows per group of a groupby result
            "truncated": bool(payload.get("truncated", len(rows) < (shape[0] if shape else 0))),
        }
        meta = {"shape": shape, "columns": columns}
        return "table", "application/json", json.dumps(body, default=str).encode(), meta, "table.json"
    if kind == "file":
        name = os.path.basename(payload.get("name") or "file")
        data = b""
        if payload.get("data"):
            data = base64.b64decode(payload["data"])
        elif workspace:
            path = os.path.join(workspace, name)
            if os.path.isfile(path) and os.path.realpath(path).startswith(os.path.realpath(workspace)):
                with open(path, "rb") as fh:
                    data = fh.read()
        mime = payload.get("mime") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return "file", mime, data, {"name": name}, name
    raise ValueError(f"unknown artifact kind {kind!r}")


def artifact_create_from_sandbox(*, run: Run, step: Step, payload: dict, workspace: str | None = None) -> Artifact:
    """Store one sandbox artifact (format: see contracts.md) and link it to the run's step."""
    kind, mime, data, meta, filename = _artifact_file(payload, workspace)
    title = payload.get("title") or meta.get("title") or meta.get("name") or ""
    if kind == "table" and not title:
        title = "Table {}×{}".format(*(meta.get("shape") or [0, 0])[:2])
    artifact = Artifact(
        project_id=run.session.project_id,
        session_id=run.session_id,
        run=run,
        step=step,
        kind=kind,
        title=str(title)[:255],
        mime=mime,
        size=len(data),
        meta=meta,
    )
    artifact.file.save(f"run{run.pk}-step{step.ordinal}-{filename}", ContentFile(data), save=False)
    artifact.save()
    return artifact


def run_usage_add(*, run_id: int, tokens_in: int, tokens_out: int, cost: Decimal) -> None:
    Run.objects.filter(pk=run_id).update(
        tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out, cost=F("cost") + cost
    )
