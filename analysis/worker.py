"""The run worker: claims queued runs from the Run table and drives the agent for each.

One worker handles one run at a time (start more processes or containers to scale; they coordinate only
through the database and, when configured, Redis). A heartbeat thread keeps ``Run.heartbeat_at`` fresh,
watches ``cancel_requested`` and the time budget, and stops the sandbox when needed; the reaper (every
worker runs it periodically, and ``run_start`` for its session) fails runs whose worker vanished.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from analysis import locks, services, signals
from analysis.agent.runner import AgentOutcome, Executor, RunController, agent_execute
from analysis.models import Run
from analysis.streaming import push
from projects.models import Dataset

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[str], Executor]
CANCEL_POLL_SECONDS = 0.5
SANDBOX_CACHE_SIZE = 4


def sandbox_factory(workspace: str) -> Executor:
    from analysis.sandbox import Limits, Sandbox

    limits = Limits(
        timeout=float(settings.SANDBOX_TIMEOUT),
        memory_mb=int(settings.SANDBOX_MEMORY_MB),
        disk_mb=int(settings.SANDBOX_DISK_MB),
    )
    return Sandbox(workspace, limits, require_isolation=settings.SANDBOX_REQUIRE_ISOLATION)


def workspace_prepare(*, session_id: int, project_id: int) -> str:
    """The session's working directory with every project dataset copied in under its ``Dataset.name``."""
    workspace = Path(settings.WORKSPACES_DIR) / f"session-{session_id}"
    workspace.mkdir(parents=True, exist_ok=True)
    os.chmod(workspace, 0o777)  # the kernel may run as an unprivileged uid and must write its own files
    for dataset in Dataset.objects.filter(project_id=project_id):
        target = workspace / dataset.name
        if target.exists() and target.stat().st_size == dataset.size:
            continue
        with dataset.file.open("rb") as src, open(target, "wb") as dst:  # storage API: local or S3 alike
            shutil.copyfileobj(src, dst)
        os.chmod(target, 0o644)
    return str(workspace)


class _Heartbeat(threading.Thread):
    def __init__(self, *, run: Run, worker_id: str, controller: RunController):
        super().__init__(daemon=True, name=f"heartbeat-run-{run.pk}")
        self.run_id, self.worker_id, self.controller = run.pk, worker_id, controller
        self.done = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self.done.wait(CANCEL_POLL_SECONDS):
                now = time.monotonic()
                if now > self.controller.deadline:
                    self.controller.stop("timeout")
                try:
                    if now - last_beat >= settings.RUN_HEARTBEAT_SECONDS:
                        cancel = services.run_heartbeat(run_id=self.run_id, worker_id=self.worker_id)
                        last_beat = now
                    else:
                        cancel = services.run_cancel_requested(run_id=self.run_id)
                except DatabaseError as exc:  # a busy database must not kill the heartbeat; try again
                    logger.debug("Heartbeat of run %s: %s", self.run_id, exc)
                    continue
                if cancel:
                    self.controller.stop("cancelled")
        finally:
            connection.close()


class _CancelListener(threading.Thread):
    """With Redis, a cancel arrives as a pub/sub message and stops the run at once."""

    def __init__(self, *, run_id: int, controller: RunController):
        super().__init__(daemon=True, name=f"cancel-run-{run_id}")
        self.run_id, self.controller = run_id, controller
        self.done = threading.Event()

    def run(self) -> None:
        client = locks.redis_client()
        if client is None:
            return
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(locks.cancel_channel())
            while not self.done.is_set():
                message = pubsub.get_message(timeout=0.1)
                if message and message.get("data") in (str(self.run_id).encode(), str(self.run_id)):
                    self.controller.stop("cancelled")
        except Exception:
            logger.exception("Cancel listener of run %s failed", self.run_id)
        finally:
            pubsub.close()


class Worker:
    def __init__(
        self,
        *,
        worker_id: str | None = None,
        executor_factory: ExecutorFactory | None = None,
        model=None,
        poll_interval: float = 0.25,
    ):
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.executor_factory = executor_factory or sandbox_factory
        self.model = model  # tests inject a scripted pydantic-ai model; None = the session's configured model
        self.poll_interval = poll_interval
        self._executors: OrderedDict[str, Executor] = OrderedDict()
        self._last_reap = 0.0
        self.stopping = False
        self.last_outcome: AgentOutcome | None = None
        if push.publisher is None:
            push.publisher = push.BackgroundPublisher()

    def executor_for(self, *, session_id: int, workspace: str) -> Executor:
        """A warm kernel per session (variables persist between questions), a few kept per worker."""
        if workspace in self._executors:  # keyed by workspace path: one kernel per session directory
            self._executors.move_to_end(workspace)
            return self._executors[workspace]
        executor = self.executor_factory(workspace)
        self._executors[workspace] = executor
        while len(self._executors) > SANDBOX_CACHE_SIZE:
            _sid, old = self._executors.popitem(last=False)
            if hasattr(old, "close"):
                old.close()
        return executor

    def close(self) -> None:
        if push.publisher is not None:
            push.publisher.flush()
        for executor in self._executors.values():
            if hasattr(executor, "close"):
                executor.close()
        self._executors.clear()

    def reap_if_due(self) -> None:
        if time.monotonic() - self._last_reap >= settings.RUN_HEARTBEAT_SECONDS:
            self._last_reap = time.monotonic()
            services.runs_reap_stale()

    def run_forever(self, *, once: bool = False) -> int:
        """Process runs until stopped (or, with ``once``, until the queue is empty). Returns runs processed."""
        processed = 0
        while not self.stopping:
            if not connection.in_atomic_block:  # (tests run the worker inside their transaction)
                close_old_connections()  # a long-lived worker must not keep a broken/expired connection
            services.db_retry(self.reap_if_due)
            run = services.db_retry(lambda: services.run_claim(worker_id=self.worker_id))
            if run is not None:
                self.process(run)
                processed += 1
                continue
            if once:
                break
            locks.queue_wait(timeout=self.poll_interval)
        return processed

    def process(self, run: Run) -> AgentOutcome:
        controller = RunController(deadline=time.monotonic() + settings.AGENT_RUN_TIMEOUT)
        heartbeat = _Heartbeat(run=run, worker_id=self.worker_id, controller=controller)
        listener = _CancelListener(run_id=run.pk, controller=controller)
        heartbeat.start()
        listener.start()
        try:
            project_id = Run.objects.filter(pk=run.pk).values_list("session__project_id", flat=True).get()
            workspace = workspace_prepare(session_id=run.session_id, project_id=project_id)
            executor = self.executor_for(session_id=run.session_id, workspace=workspace)
            outcome = agent_execute(
                run=run, executor=executor, controller=controller, model=self.model, workspace=workspace
            )
        except Exception as exc:  # never leave a run "running": the user gets a readable error
            logger.exception("Run %s crashed", run.pk)
            outcome = AgentOutcome(status=Run.Status.FAILED, error=f"Internal error while running: {exc}")
            broken = self._executors.pop(str(Path(settings.WORKSPACES_DIR) / f"session-{run.session_id}"), None)
            if hasattr(broken, "close"):
                broken.close()  # dropping it unclosed would leave its kernel running and its pidfd open
        finally:
            heartbeat.done.set()
            listener.done.set()
        services.db_retry(
            lambda: services.run_finish(
                run=run,
                status=outcome.status,
                answer=outcome.answer,
                error=outcome.error,
                model=outcome.model,
                tokens_in=outcome.tokens_in,
                tokens_out=outcome.tokens_out,
                cost=outcome.cost,
            )
        )
        heartbeat.join(timeout=2)
        listener.join(timeout=2)
        signals.run_finished.send(sender=Run, run=run)
        self.last_outcome = outcome
        return outcome
