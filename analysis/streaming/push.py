"""Publishing steps and run changes to the session's channel-layer group.

The database is the source of truth; pushes are a best-effort fast path. Each step and run change is rendered
once, by whoever saved it, never per client. With a shared channel layer (Redis) the worker publishes it
directly. With the in-memory layer (embedded mode) the worker is another process and cannot reach the web
process's layer: it sends the event in a datagram, and ``analysis.streaming.tailer`` (inside the web process) forwards
it, or reads it from the database when no datagram came.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.template import Engine, engines

from analysis import selectors
from analysis.models import AnalysisSession, Run, Step
from analysis.streaming import wakeup

logger = logging.getLogger(__name__)


def session_group(session_id: int) -> str:
    """The only place a session's group name is built."""
    return f"session.{session_id}"


def layer_is_shared() -> bool:
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


_push_engine: Engine | None = None


def push_engine() -> Engine:
    """The site's template engine with a cached loader, even under DEBUG.

    Pushed fragments are rendered for every step (by the worker, or by the web process's tailer); with DEBUG's
    uncached loader each render re-parses the session page and its includes (~90 ms instead of ~0.6 ms).
    They render from explicit context only, so no context processors are needed. Template edits reach pushes
    after a restart.
    """
    global _push_engine
    if _push_engine is None:
        site = engines["django"].engine
        inner = list(site.loaders[0][1]) if site.loaders and isinstance(site.loaders[0], tuple) else []
        flat = inner[0][1] if inner and isinstance(inner[0], tuple) and inner[0][0].endswith("cached.Loader") else inner
        _push_engine = Engine(
            dirs=site.dirs,
            app_dirs=False,
            loaders=[("template_partials.loader.Loader", [("django.template.loaders.cached.Loader", flat)])],
            libraries=site.libraries,
            builtins=site.builtins[len(Engine.default_builtins) :],
            autoescape=site.autoescape,
            string_if_invalid=site.string_if_invalid,
            file_charset=site.file_charset,
        )
    return _push_engine


def render_fragment(template_name: str, context: dict) -> str:
    return push_engine().render_to_string(template_name, context)


def render_step_message(*, step: Step) -> str:
    """The websocket message for one step: top-level out-of-band elements only (with the running indicator
    of its run, read from this step, while the run is live)."""
    run = selectors.run_live_prepare(step.run, last_step=step)
    return render_fragment("analysis/_push_step.html", {"step": step, "run": run})


def render_run_message(
    *, run: Run, with_shell: bool, session: AnalysisSession | None = None, with_composer: bool = True
) -> str:
    """A run's shell (optional), its status and, given the session, the composer (unless ``with_composer`` is
    False: a response that is the composer itself) and usage, as an editor sees them (``readonly`` adapts it for
    viewers). Nothing in it depends on the client, so it can be rendered once.
    """
    context = _run_context(run=run, session=session)
    context.update(with_shell=with_shell, with_composer=context["with_composer"] and with_composer)
    return render_fragment("analysis/_push_run.html", context)


def _run_context(*, run: Run, session: AnalysisSession | None, last_step: Step | None = None) -> dict:
    """The page's own context builder (``selectors.session_live_context``) for this one run, so a pushed
    status, composer and usage say what a reload would."""
    if session is None:
        return {
            "run": selectors.run_live_prepare(run, last_step=last_step),
            "with_composer": False,
            "with_usage": False,
        }
    context = selectors.session_live_context(session=session, runs=[run], last_step=last_step)
    return {**context, "run": run, "with_composer": True, "with_usage": True}


COMPOSER_PART = re.compile(r"<!--composer-->.*?<!--/composer-->", re.S)


def readonly(html: str) -> str:
    """A run message for a viewer: without the composer (a viewer's page has none, and an out-of-band element
    with no target is an htmx error in the console on every run change)."""
    return COMPOSER_PART.sub("", html)


def run_event(*, run_id: int) -> dict | None:
    """The event for a run change, rendered once for every client of its session (None: the run is gone).

    The run is read before its newest step: once the run reads as finished all of its steps are committed, so
    a client holding every step up to ``last_step_pk`` can show this state as is, and any other client repairs
    from the database first (see ``SessionConsumer``).
    """
    run = Run.objects.select_related("session").filter(pk=run_id).first()
    if run is None:
        return None
    selectors.run_queue_attach([run])
    last_step = run.steps.order_by("-pk").first()
    last_step_pk = last_step.pk if last_step is not None else 0
    context = _run_context(run=run, session=run.session, last_step=last_step)
    html = render_fragment("analysis/_push_run.html", {**context, "with_shell": False})
    shell = render_fragment("analysis/_push_run.html", {**context, "with_shell": True, "shell_only": True})
    return {
        "type": "run.update",
        "run_pk": run.pk,
        "session_id": run.session_id,
        "status": run.status,
        "last_step_pk": last_step_pk,
        "html": html,
        "shell_html": shell + html,  # for a client that has not seen the run yet
    }


def step_event(*, step: Step) -> dict:
    return {
        "type": "step.push",
        "step_pk": step.pk,
        "run_pk": step.run_id,
        "ordinal": step.ordinal,
        "html": render_step_message(step=step),
    }


class BackgroundPublisher:
    """Publishes from a long-lived event loop thread, in order.

    The worker is sync code; ``async_to_sync(group_send)`` per step would build a fresh loop (and, with
    channels-redis, a fresh connection) each time. One loop and one queue keep Redis connections pooled and
    keep events in the order they were saved.

    ``publish`` waits briefly for its event to be sent. Without the wait the caller's thread goes straight back
    to CPU-bound agent work and keeps the GIL, so each Redis round trip of ``group_send`` (three per event)
    waits out a GIL switch interval (5 ms): ~7 ms from save to sent instead of ~2 ms. If Redis is slow the
    caller stops waiting after ``wait`` seconds and the event follows in order; the wait is short because the
    caller is one of the worker's few database threads, which every run of the worker needs (waiting up to
    50 ms per event, 25 runs starting together queued behind each other's pushes).
    """

    def __init__(self, *, wait: float = 0.01) -> None:
        self.wait = wait
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._thread: threading.Thread | None = None

    def _ensure(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            ready = threading.Event()
            self._loop = asyncio.new_event_loop()

            def run() -> None:
                asyncio.set_event_loop(self._loop)
                self._queue = asyncio.Queue()
                self._loop.create_task(self._drain())
                ready.set()
                self._loop.run_forever()

            self._thread = threading.Thread(target=run, daemon=True, name="channel-publisher")
            self._thread.start()
            ready.wait(5)

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            group, event, sent = await self._queue.get()
            try:
                await layer.group_send(group, event)
                _publish_succeeded()
            except Exception as exc:  # best-effort: the DB has the data and reconnects repair
                _publish_failed(group, exc)
            finally:
                sent.set()
                self._queue.task_done()

    def publish(self, group: str, event: dict) -> None:
        self._ensure()
        sent = threading.Event()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (group, event, sent))
        sent.wait(self.wait)

    def flush(self, timeout: float = 5.0) -> None:
        if self._loop is None or self._queue is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop).result(timeout)


_failing_since: float | None = None  # while the channel layer (Redis) fails: log once, not once per event


def _publish_failed(group: str, exc: Exception) -> None:
    global _failing_since
    if _failing_since is None:
        _failing_since = time.monotonic()
        logger.warning("Publishing to %s failed; pushes are skipped until the channel layer is back: %r", group, exc)


def _publish_succeeded() -> None:
    global _failing_since
    if _failing_since is not None:
        logger.warning(
            "Channel layer back after %.0f s; pages repair what they missed", time.monotonic() - _failing_since
        )
        _failing_since = None


publisher: BackgroundPublisher | None = None  # one per process, made at its first publish
_publisher_made = threading.Lock()


def _group_send(session_id: int, event: dict) -> None:
    """Publish through the shared layer (Redis) from the process's publisher thread.

    Not ``async_to_sync(layer.group_send)``: in a web process that hands the send to the server's event loop
    and holds the one thread that runs every sync view until Redis answered (three round trips), so under load
    each question asked waited for the pushes of all the questions before it.
    """
    global publisher
    if get_channel_layer() is None:
        return
    with _publisher_made:
        if publisher is None:
            publisher = BackgroundPublisher()
    publisher.publish(session_group(session_id), event)


def step_push(*, step: Step) -> None:
    if not layer_is_shared():
        # Embedded: hand the event to the web process's tailer directly (the DB remains the source of truth).
        event = {**step_event(step=step), "session_id": step.run.session_id}
        wakeup.wake_send(json.dumps(event).encode())
        return
    _group_send(step.run.session_id, step_event(step=step))


def run_push(*, run_id: int) -> None:
    """Publish a run change, rendered once here rather than by each client's consumer."""
    event = run_event(run_id=run_id)
    if event is None:
        return
    if not layer_is_shared():
        wakeup.wake_send(json.dumps(event).encode())  # the web process's tailer forwards it (see step_push)
        return
    _group_send(event["session_id"], event)


_queue_dirty = threading.Event()


def queue_push() -> None:
    """The queue moved (a claim, an end, a cancel): queued runs' positions are re-published soon.

    Only marks it; the run worker publishes at most about once a second (``queue_flush``), so a burst of
    claims costs one round of pushes, not one per claim and queued run.
    """
    _queue_dirty.set()


_queued_published: set[int] = set()  # the queued runs this process last published


def queue_flush() -> int:
    """Publish the status (position, what it waits for) of queued runs: all of them if the queue moved, else
    those queued since the last flush.

    A new question is published here, by the run worker, not by the request that asked it: the asker's page has
    its shell from the response, a worker with a free slot claims (and publishes) it within milliseconds, and a
    question that has to wait reaches the session's other viewers at the worker's next flush (its housekeeping,
    every ~2 s). The request stays short: rendering the queued state took half of it (8 of its 18 queries).
    """
    moved = _queue_dirty.is_set()
    _queue_dirty.clear()
    ids = selectors.runs_queued_ids()
    fresh = ids if moved else [run_id for run_id in ids if run_id not in _queued_published]
    _queued_published.clear()
    _queued_published.update(ids)
    for run_id in fresh:
        run_push(run_id=run_id)
    return len(fresh)
