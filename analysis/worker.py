"""The run worker: claims queued runs from the Run table and drives many of them at once.

One process runs an asyncio loop with up to ``RUN_WORKER_CONCURRENCY`` runs in flight. Model calls are async;
ORM calls go to a thread pool (a connection per thread); kernel executions go to threads of their own, so a
slow model, an endless loop or a big result in one run never holds up another.

Around the runs:
- a **heartbeat thread** refreshes the worker's registry row (``WorkerProcess``: runs, kernels, PSS) and every
  run it holds, watches cancels and time budgets, and survives any error (it logs once per outage);
- the **housekeeping task** reaps runs of dead workers on a timer, closes idle kernels, keeps kernel memory under
  its budget and publishes queue positions;
- the **kernel pool** keeps each session's kernel (its variables) between questions; the session row names this
  worker while it holds the kernel, so other workers leave that session's runs to it (``run_claim``).

Database and Redis outages of any length never end the process: every call that must happen (claim, step
saves, the end of a run, the heartbeat) waits and retries with backoff, and work resumes when they are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections

from analysis import locks, selectors, services, signals
from analysis.agent.runner import AgentOutcome, Executor, RunController, agent_execute_async
from analysis.models import AnalysisSession, Run, Step
from analysis.streaming import push
from codingagent.lib import procmem
from projects.models import Dataset

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[str], Executor]
CANCEL_POLL_SECONDS = 0.5
# PSS of the kernels: the kernel walks every page table of every kernel for it (a fifth of a busy worker's CPU
# when read at each heartbeat with 25 kernels), so it is read less often than the heartbeat beats.
MEMORY_READ_SECONDS = 30.0
CLAIM_BATCH = 8  # runs one claim may take: a burst of questions starts in a few turns of the claim lock
HOUSEKEEPING_SECONDS = 1.0
KERNEL_CHECK_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 5.0
HEARTBEAT_JOIN_SECONDS = 10.0  # a beat stuck in an outage is not waited for longer at a stop
STEP_SAVE_PATIENCE_SECONDS = 300  # a run waits this long for the database to come back before it fails


def _outage_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OperationalError, InterfaceError, ConnectionError, TimeoutError]
    with contextlib.suppress(ImportError):
        import redis

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    return tuple(errors)


OUTAGE_ERRORS = _outage_errors()


def sandbox_factory(workspace: str) -> Executor:
    from analysis.sandbox import Limits, Sandbox

    limits = Limits(
        timeout=float(settings.SANDBOX_TIMEOUT),
        memory_mb=int(settings.SANDBOX_MEMORY_MB),
        disk_mb=int(settings.SANDBOX_DISK_MB),
    )
    return Sandbox(workspace, limits, require_isolation=settings.SANDBOX_REQUIRE_ISOLATION)


def workspace_prepare(*, session_id: int, project_id: int, datasets: list[Dataset] | None = None) -> str:
    """The session's working directory with every project dataset copied in under its ``Dataset.name``
    (``datasets``: the project's, when the caller has read them already)."""
    workspace = Path(settings.WORKSPACES_DIR) / f"session-{session_id}"
    workspace.mkdir(parents=True, exist_ok=True)
    os.chmod(workspace, 0o777)  # the kernel may run as an unprivileged uid and must write its own files
    for dataset in Dataset.objects.filter(project_id=project_id) if datasets is None else datasets:
        target = workspace / dataset.name
        if target.exists() and target.stat().st_size == dataset.size:
            continue
        with dataset.file.open("rb") as src, open(target, "wb") as dst:  # storage API: local or S3 alike
            shutil.copyfileobj(src, dst)
        os.chmod(target, 0o644)
    return str(workspace)


def kernel_lost_text(killed_reason: str) -> str:
    """Why a kernel ended, as the next run's notice says it ("the session's variables were cleared: …")."""
    return {
        "timeout": f"the previous code ran past the {settings.SANDBOX_TIMEOUT} s time limit",
        "cpu": "the previous code used up its CPU time limit",
        "crashed": f"the previous code hit the memory limit ({settings.SANDBOX_MEMORY_MB} MB) or crashed the kernel",
        "cancelled": "the previous question was stopped while its code ran",
        "protocol": "the kernel sent an invalid result and was restarted",
    }.get(killed_reason, f"the kernel was restarted ({killed_reason})")


def fresh_kernel_notice(why: str) -> str:
    return f"The session's variables were cleared: {why}; datasets are loaded again."


class Outage:
    """Logs a failing dependency once when it starts failing and once when it is back (not every retry)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.ok_since = 0.0  # when it last came back (0: never failed)
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
                logger.warning("%s failing, retrying until it is back: %s: %s", self.what, type(exc).__name__, exc)

    def ok(self) -> None:
        with self._lock:
            if self.since is not None:
                logger.warning("%s back after %.1f s", self.what, time.monotonic() - self.since)
                self.since = None
                self.ok_since = time.monotonic()


def _connections_drop() -> None:
    """After an outage error, drop this thread's connections so the next call reconnects."""
    if not connection.in_atomic_block:
        with contextlib.suppress(Exception):
            connections.close_all()


@dataclass
class KernelEntry:
    session_id: int
    workspace: str
    executor: Executor
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False


class KernelPool:
    """Session kernels of this worker, least recently used first. Touched only from the event loop."""

    def __init__(self) -> None:
        self.entries: OrderedDict[int, KernelEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, session_id: int) -> KernelEntry | None:
        entry = self.entries.get(session_id)
        if entry is not None:
            self.entries.move_to_end(session_id)
        return entry

    def add(self, entry: KernelEntry) -> None:
        self.entries[entry.session_id] = entry

    def pop(self, session_id: int) -> KernelEntry | None:
        return self.entries.pop(session_id, None)

    def idle_lru(self) -> list[KernelEntry]:
        return [e for e in self.entries.values() if not e.busy]


class _Heartbeat(threading.Thread):
    """Keeps the worker's registry row and its runs alive; stops runs that are cancelled or out of time."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(daemon=True, name="worker-heartbeat")
        self.worker = worker
        self.done = threading.Event()
        self.outage = Outage("Heartbeat (database)")
        self.memory = procmem.TreeMemory(0.0, 0.0, 0)
        self.memory_read_at = float("-inf")

    def run(self) -> None:
        last_beat = 0.0
        while not self.done.wait(CANCEL_POLL_SECONDS):
            try:
                last_beat = self.tick(last_beat)
                self.outage.ok()
            except Exception as exc:  # anything at all: the heartbeat must outlive every outage
                self.outage.failed(exc)
                _connections_drop()
        with contextlib.suppress(Exception):
            connection.close()

    def tick(self, last_beat: float) -> float:
        worker, now = self.worker, time.monotonic()
        active = dict(worker.active)
        for controller in active.values():
            if now > controller.deadline:
                controller.stop("timeout")
        if now - last_beat >= settings.RUN_HEARTBEAT_SECONDS:
            if now - self.memory_read_at >= MEMORY_READ_SECONDS:
                with contextlib.suppress(Exception):
                    self.memory = procmem.tree_memory()
                self.memory_read_at = now
            cancels = services.runs_heartbeat(worker_id=worker.worker_id, run_ids=list(active))
            services.worker_heartbeat(
                worker_id=worker.worker_id,
                runs_active=len(active),
                kernels=len(worker.kernels),
                kernel_pss_mb=self.memory.descendants_mb,
                worker_pss_mb=self.memory.self_mb,
                # Registered inside the caller's transaction (tests), the row is invisible on this thread's
                # connection: writing it again here would commit a copy that outlives that transaction.
                recreate=not (self.done.is_set() or worker._inline_db),
            )
            last_beat = now
        else:
            cancels = services.runs_cancel_requested(run_ids=list(active))
        for run_id in cancels:
            if run_id in active:
                active[run_id].stop("cancelled")
        return last_beat


class _CancelListener(threading.Thread):
    """With Redis, a cancel arrives as a pub/sub message and stops the run at once (reconnects after outages)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(daemon=True, name="worker-cancels")
        self.worker = worker
        self.done = threading.Event()
        self.outage = Outage("Cancel listener (Redis)")

    def run(self) -> None:
        delay = 0.1
        while not self.done.is_set():
            try:
                self.listen()
            except Exception as exc:
                self.outage.failed(exc)
                self.done.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    def listen(self) -> None:
        client = locks.redis_client()
        if client is None:
            self.done.set()
            return
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(locks.cancel_channel())
            self.outage.ok()
            while not self.done.is_set():
                message = pubsub.get_message(timeout=0.2)
                if not message:
                    continue
                data = message.get("data")
                with contextlib.suppress(TypeError, ValueError):
                    controller = self.worker.active.get(int(data.decode() if isinstance(data, bytes) else data))
                    if controller is not None:
                        controller.stop("cancelled")
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()


class Worker:
    def __init__(
        self,
        *,
        worker_id: str | None = None,
        executor_factory: ExecutorFactory | None = None,
        model=None,
        poll_interval: float = 0.25,
        concurrency: int | None = None,
    ):
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.executor_factory = executor_factory or sandbox_factory
        self.model = model  # tests inject a scripted pydantic-ai model; None = the session's configured model
        self.poll_interval = poll_interval
        self.concurrency = max(1, concurrency or settings.RUN_WORKER_CONCURRENCY)
        self.kernels = KernelPool()
        self.active: dict[int, RunController] = {}  # run id -> controller (read by the heartbeat thread)
        self.tasks: set[asyncio.Task] = set()
        self.stopping = False
        self.last_outcome: AgentOutcome | None = None
        self.outage = Outage("Database")
        self._inline_db = False
        self._db_pool: ThreadPoolExecutor | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_reap = 0.0
        self._last_kernel_check = 0.0
        self._heartbeat: _Heartbeat | None = None
        if push.publisher is None:
            push.publisher = push.BackgroundPublisher()

    # --- database calls ----------------------------------------------------------------------------

    def _call(self, fn, args, kwargs):
        try:
            return services.db_retry(lambda: fn(*args, **kwargs))
        except OUTAGE_ERRORS:
            _connections_drop()
            raise

    async def db(self, fn, *args, **kwargs) -> Any:
        """Run an ORM call off the loop: a pool thread with its own connection (or, when the caller runs the
        worker inside a transaction, as tests do, that caller's thread, which alone can see its rows)."""
        if self._inline_db or self._db_pool is None:
            return await sync_to_async(self._call)(fn, args, kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, self._call, fn, args, kwargs)

    async def db_patient(self, fn, *args, patience: float | None = None, **kwargs) -> Any:
        """``db`` retried through outages (database or Redis) with backoff; ``patience`` None = until it works."""
        delay, started = 0.1, time.monotonic()
        while True:
            try:
                result = await self.db(fn, *args, **kwargs)
            except OUTAGE_ERRORS as exc:
                self.outage.failed(exc)
                if patience is not None and time.monotonic() - started > patience:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            self.outage.ok()
            return result

    async def db_steps(self, fn, *args, **kwargs) -> Any:
        return await self.db_patient(fn, *args, patience=STEP_SAVE_PATIENCE_SECONDS, **kwargs)

    # --- entry points --------------------------------------------------------------------------------

    def run_forever(self, *, once: bool = False) -> int:
        """Process runs until stopped (or, with ``once``, until nothing claimable is left). Returns runs done."""
        self._inline_db = connection.in_atomic_block
        self.fork_server_ensure()
        return async_to_sync(self.serve)(once=once)

    def process(self, run: Run) -> AgentOutcome:
        """Drive one already-claimed run to its end (tests and benchmarks)."""
        self._inline_db = connection.in_atomic_block
        self.fork_server_ensure()
        return async_to_sync(self.drive)(run)

    def fork_server_ensure(self) -> None:
        """Start the sandbox's fork server now (its library imports take seconds), not on the first run."""
        if self.executor_factory is sandbox_factory:
            from analysis.sandbox import default_server

            try:
                default_server()
            except Exception as exc:  # the first run reports it readably
                logger.warning("The sandbox fork server did not start: %s", exc)

    def warm_up(self) -> None:
        """Pay the first question's one-time costs at start: the fork server (library imports, a spare kernel),
        one kernel execution, and the templates that prompts and pushes render."""
        started = time.monotonic()
        with contextlib.suppress(Exception):  # the model client (its SDK import is seconds) and the prompt
            from analysis.agent.models import model_build, model_default_key
            from analysis.agent.runner import _ENGINE

            model_build(model_default_key(), datasets=[])
            _ENGINE.get_template("system.txt")
        with contextlib.suppress(Exception):
            push.push_engine().get_template("analysis/session_detail.html")
            push.push_engine().get_template("analysis/_push_run.html")
            push.push_engine().get_template("analysis/_push_step.html")
        if self.executor_factory is sandbox_factory:
            workspace = tempfile.mkdtemp(prefix="warm-")
            try:
                os.chmod(workspace, 0o777)
                executor = sandbox_factory(workspace)
                try:
                    executor.run("import pandas as pd\nfinal_result = int(pd.Series([1, 2]).sum())")
                finally:
                    executor.close()
            except Exception as exc:  # a broken sandbox shows up on the first run with a readable error
                logger.warning("Warm-up of the sandbox failed: %s", exc)
            finally:
                shutil.rmtree(workspace, ignore_errors=True)
        logger.info("Worker %s warmed up in %.1f s", self.worker_id, time.monotonic() - started)

    async def serve(self, *, once: bool = False) -> int:
        self._loop = asyncio.get_running_loop()
        self._loop.set_default_executor(ThreadPoolExecutor(self.concurrency + 4, thread_name_prefix="kernel-call"))
        if not self._inline_db:
            self._db_pool = ThreadPoolExecutor(min(self.concurrency, 8) + 2, thread_name_prefix="worker-db")
        self._wake = asyncio.Event()
        await self.db_patient(
            services.worker_register,
            worker_id=self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
        )
        threads = [_Heartbeat(self), _CancelListener(self)]
        self._heartbeat = threads[0]
        for thread in threads:
            thread.start()
        waker = (
            None if once or locks.redis_client() is None else threading.Thread(target=self._wake_listen, daemon=True)
        )
        if waker is not None:
            waker.start()
        processed = 0
        housekeeping = asyncio.create_task(self._housekeeping_loop())
        try:
            processed = await self._claim_loop(once=once)
        finally:
            self.stopping = True
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await housekeeping
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            for thread in threads:
                thread.done.set()
            # The registry row goes only once the heartbeat has finished its beat in flight (which could write
            # the row again); kernels stay until ``close`` (a test may serve again).
            await asyncio.to_thread(self._heartbeat.join, HEARTBEAT_JOIN_SECONDS)
            with contextlib.suppress(*OUTAGE_ERRORS):
                await self.db(services.worker_unregister, worker_id=self.worker_id)
            with contextlib.suppress(*OUTAGE_ERRORS):
                await self.db(push.queue_flush)
        return processed

    async def _claim_loop(self, *, once: bool) -> int:
        processed = 0
        while not self.stopping:
            free = self.concurrency - len(self.tasks)
            if free > 0:
                limit = min(free, CLAIM_BATCH)
                try:
                    runs = await self.db(services.runs_claim, worker_id=self.worker_id, limit=limit, publish=False)
                    self.outage.ok()
                except OUTAGE_ERRORS as exc:
                    self.outage.failed(exc)
                    runs = []
                    await asyncio.sleep(min(BACKOFF_MAX_SECONDS, self.poll_interval * 4))
                for run in runs:
                    processed += 1
                    self._spawn(run)
                if len(runs) == limit:  # a full batch: more may be waiting (a smaller one took what it could)
                    continue
            if once and not self.tasks:
                break
            await self._wait()
        return processed

    def _spawn(self, run: Run) -> None:
        self.active[run.pk] = RunController(deadline=time.monotonic() + settings.AGENT_RUN_TIMEOUT)
        task = asyncio.create_task(self.drive(run), name=f"run-{run.pk}")
        self.tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self.tasks.discard(t)
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    async def _wait(self) -> None:
        timeout = 1.0 if locks.redis_client() is not None else self.poll_interval
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def _wake_listen(self) -> None:
        """Redis wake-ups (BRPOP) while this worker has a free slot; a thread, since BRPOP blocks."""
        outage, delay = Outage("Queue wake-ups (Redis)"), 0.1
        while not self.stopping:
            if len(self.tasks) >= self.concurrency:  # leave the wake-up to a worker that can take the run
                time.sleep(0.1)
                continue
            try:
                locks.queue_wait(timeout=1.0)
                outage.ok()
                delay = 0.1
            except Exception as exc:
                outage.failed(exc)
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            if self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    # --- housekeeping ------------------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        """Its own task: re-publishing 50 queued runs' positions must not stall claims."""
        while not self.stopping:
            try:
                await self._housekeeping()
            except Exception:
                logger.exception("Housekeeping failed; trying again")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def _housekeeping(self) -> None:
        """Reap dead workers' runs, publish queue positions, and look after the kernels, each on its own timer."""
        now = time.monotonic()
        reap_every = min(2.0, float(settings.RUN_HEARTBEAT_SECONDS))
        # Right after an outage, give live peers a heartbeat or two to refresh their runs before judging them.
        settled = now - self.outage.ok_since >= 2 * settings.RUN_HEARTBEAT_SECONDS
        if self.outage.since is None and settled and now - self._last_reap >= reap_every:
            self._last_reap = now
            with contextlib.suppress(*OUTAGE_ERRORS):
                await self.db(services.runs_reap_stale)
                await self.db(services.workers_forget_stale)  # peers killed long ago (an hour of silence)
                await self.db(push.queue_flush)
        if now - self._last_kernel_check >= KERNEL_CHECK_SECONDS:
            self._last_kernel_check = now
            await self._kernels_reap()

    async def _kernels_reap(self) -> None:
        now = time.monotonic()
        idle_for = settings.SANDBOX_IDLE_SECONDS
        for entry in self.kernels.idle_lru():
            if now - entry.last_used >= idle_for:
                await self._kernel_close(entry, reason=f"the kernel was idle for {_duration_text(idle_for)}")
        memory = self._heartbeat.memory if self._heartbeat else None
        budget = settings.SANDBOX_KERNELS_MEMORY_MB
        if memory is not None and memory.descendants_mb > budget and len(self.kernels):
            per_kernel = memory.descendants_mb / max(1, len(self.kernels))
            excess = math.ceil((memory.descendants_mb - budget) / max(per_kernel, 1.0))
            for entry in self.kernels.idle_lru()[:excess]:
                await self._kernel_close(
                    entry,
                    reason=f"this worker's kernels used more than their memory budget ({budget} MB) "
                    "and this session's was the least recently used",
                )

    async def _kernel_close(self, entry: KernelEntry, *, reason: str) -> None:
        # The reason is recorded before the (slow: the workspace is written back) close, so a question asked as
        # soon as the kernel is gone from the count is told why its variables were cleared.
        self.kernels.pop(entry.session_id)
        with contextlib.suppress(*OUTAGE_ERRORS):
            await self.db(
                services.session_kernel_release, session_id=entry.session_id, worker_id=self.worker_id, reason=reason
            )
        if hasattr(entry.executor, "close"):
            await asyncio.to_thread(entry.executor.close)

    # --- one run ---------------------------------------------------------------------------------------

    async def _kernel_acquire(self, *, run: Run, start: RunStart) -> tuple[KernelEntry, str | None]:
        """The session's kernel on this worker, or a fresh one with the notice of why variables are gone."""
        workspace = start.workspace
        entry = self.kernels.get(run.session_id)
        if entry is not None and entry.workspace != workspace:  # WORKSPACES_DIR moved (tests give each its own)
            await self._kernel_close(entry, reason="the session's workspace moved")
            entry = None
        if entry is not None:
            entry.busy, entry.last_used = True, time.monotonic()
            return entry, None
        while len(self.kernels) >= settings.SANDBOX_MAX_KERNELS and self.kernels.idle_lru():
            await self._kernel_close(
                self.kernels.idle_lru()[0],
                reason=f"this worker keeps at most {settings.SANDBOX_MAX_KERNELS} kernels "
                "and this session's was the least recently used",
            )
        entry = KernelEntry(session_id=run.session_id, workspace=workspace, executor=self.executor_factory(workspace))
        entry.busy = True
        self.kernels.add(entry)
        ran_code_before = start.ran_code_before
        if ran_code_before is None:  # not read: the session's kernel was here when the run started
            ran_code_before = await self.db_steps(_ran_code_before, run=run)
        if not ran_code_before:
            return entry, None
        if start.lost_reason:
            why = start.lost_reason
        elif start.previous_holder and start.previous_holder != self.worker_id:
            why = "the worker holding them stopped (restarted or crashed)"
        else:
            why = "the kernel was restarted"
        return entry, fresh_kernel_notice(why)

    async def _kernel_release(self, entry: KernelEntry | None, outcome: AgentOutcome) -> None:
        if entry is None:
            return
        entry.busy, entry.last_used = False, time.monotonic()
        if outcome.kernel_lost:  # the last execution ended the kernel: the next question starts afresh
            await self._kernel_close(entry, reason=kernel_lost_text(outcome.kernel_lost))

    async def drive(self, run: Run) -> AgentOutcome:
        controller = self.active.setdefault(
            run.pk, RunController(deadline=time.monotonic() + settings.AGENT_RUN_TIMEOUT)
        )
        entry: KernelEntry | None = None
        try:
            self.fork_server_ensure()  # again, if it died (default_server starts a new one)
            kernel_here = run.session_id in self.kernels.entries
            start = await self.db_steps(_run_start, run=run, worker_id=self.worker_id, kernel_here=kernel_here)
            workspace = start.workspace
            entry, notice = await self._kernel_acquire(run=run, start=start)
            agent = asyncio.create_task(  # a task of its own: a stop cancels the agent, not this function
                agent_execute_async(
                    run=run,
                    executor=entry.executor,
                    controller=controller,
                    model=self.model,
                    workspace=workspace,
                    db=self.db_steps,
                    notice=notice,
                    session=start.session,
                    datasets=start.datasets,
                )
            )
            outcome = await agent
        except Exception as exc:  # never leave a run "running": the user gets a readable error
            logger.exception("Run %s crashed", run.pk)
            outcome = AgentOutcome(status=Run.Status.FAILED, error=_crash_text(exc))
            if entry is not None:
                await self._kernel_close(entry, reason=f"the kernel failed ({type(exc).__name__})")
                entry = None
        try:
            await self._kernel_release(entry, outcome)
        except Exception:
            logger.exception("Releasing the kernel of run %s failed", run.pk)
        await self.db_patient(functools.partial(_finish, run=run, outcome=outcome))
        self.active.pop(run.pk, None)
        with contextlib.suppress(Exception):
            await self.db(signals.run_finished.send, sender=Run, run=run)
        self.last_outcome = outcome
        return outcome

    def close(self) -> None:
        """Stop every kernel (synchronously; ``serve`` already did it for a served worker)."""
        if push.publisher is not None:
            push.publisher.flush()
        for entry in list(self.kernels.entries.values()):
            if hasattr(entry.executor, "close"):
                with contextlib.suppress(Exception):
                    entry.executor.close()
        self.kernels.entries.clear()


def _duration_text(seconds: float) -> str:
    return f"{round(seconds)} s" if seconds < 120 else f"{round(seconds / 60)} min"


def _crash_text(exc: BaseException) -> str:
    if isinstance(exc, OUTAGE_ERRORS):
        return (
            f"The run was stopped: the database or Redis stayed unreachable for over {STEP_SAVE_PATIENCE_SECONDS} s "
            f"({type(exc).__name__}: {exc}). You can ask again."
        )
    return f"Internal error while running: {exc}"


@dataclass(frozen=True)
class RunStart:
    workspace: str
    previous_holder: str  # the worker that held the session's kernel before ("" = none)
    lost_reason: str  # why that kernel was closed, when it was
    # An earlier run of the session ran code (so a fresh kernel lost variables); None: not read, since the
    # session's kernel was on this worker (read later only if it is gone by the time the run takes it).
    ran_code_before: bool | None
    session: AnalysisSession  # with its project: the prompt's too
    datasets: list[Dataset]


def _run_start(*, run: Run, worker_id: str, kernel_here: bool = False) -> RunStart:
    """What a claimed run needs from the database before its kernel and its prompt, in one trip to a database
    thread (each trip waits for a free thread, which with many runs starting together was most of their start)."""
    push.run_push(run_id=run.pk)  # "running": the claim left it to the run
    session = AnalysisSession.objects.select_related("project").get(pk=run.session_id)
    datasets = selectors.datasets_for_session(session=session)
    workspace = workspace_prepare(session_id=run.session_id, project_id=session.project_id, datasets=datasets)
    previous_holder, lost_reason = services.session_kernel_take(session=session, worker_id=worker_id)
    ran_code_before = None if kernel_here else _ran_code_before(run=run)
    return RunStart(workspace, previous_holder, lost_reason, ran_code_before, session, datasets)


def _ran_code_before(*, run: Run) -> bool:
    return Step.objects.filter(run__session_id=run.session_id, kind=Step.Kind.CODE).exclude(run_id=run.pk).exists()


def _finish(*, run: Run, outcome: AgentOutcome) -> bool:
    return services.run_finish(
        run=run,
        status=outcome.status,
        answer=outcome.answer,
        error=outcome.error,
        model=outcome.model,
        tokens_in=outcome.tokens_in,
        tokens_out=outcome.tokens_out,
        cost=outcome.cost,
    )
