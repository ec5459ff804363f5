"""Publishing steps and run changes to the session's channel-layer group.

The database is the source of truth; pushes are a best-effort fast path. With a shared channel layer (Redis)
the worker publishes each saved step directly. With the in-memory layer (embedded mode) the worker is another
process, so its publishes could never reach the web process: there ``analysis.tailer`` (inside the web
process) reads new steps from the database and publishes them locally instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.template import Engine, engines

from analysis import wakeup
from analysis.models import Run, Step

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
    """The websocket message for one step: top-level out-of-band elements only."""
    return render_fragment("analysis/_push_step.html", {"step": step, "run": step.run})


def step_event(*, step: Step) -> dict:
    return {
        "type": "step.push",
        "step_pk": step.pk,
        "run_pk": step.run_id,
        "ordinal": step.ordinal,
        "html": render_step_message(step=step),
    }


class BackgroundPublisher:
    """Publishes from a long-lived event loop thread, in order, without blocking the caller.

    The worker is sync code; ``async_to_sync(group_send)`` per step would build a fresh loop (and, with
    channels-redis, a fresh connection) each time. One loop and one queue keep Redis connections pooled, keep
    events in the order they were saved, and keep the worker's overhead per step low.
    """

    def __init__(self) -> None:
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
            group, event = await self._queue.get()
            try:
                await layer.group_send(group, event)
            except Exception:  # best-effort: the DB has the data and reconnects repair
                logger.exception("Publishing to %s failed", group)
            finally:
                self._queue.task_done()

    def publish(self, group: str, event: dict) -> None:
        self._ensure()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (group, event))

    def flush(self, timeout: float = 5.0) -> None:
        if self._loop is None or self._queue is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop).result(timeout)


publisher: BackgroundPublisher | None = None  # set by the worker process (analysis.worker)


def _group_send(session_id: int, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if publisher is not None and layer_is_shared():
        publisher.publish(session_group(session_id), event)
        return
    try:
        async_to_sync(layer.group_send)(session_group(session_id), event)
    except Exception:  # a push is best-effort: the DB has the step and reconnects repair
        logger.exception("Publishing to session %s failed", session_id)


def step_push(*, step: Step) -> None:
    if not layer_is_shared():
        # Embedded: hand the event to the web process's tailer directly (the DB remains the source of truth).
        event = {**step_event(step=step), "session_id": step.run.session_id}
        wakeup.wake_send(json.dumps(event).encode())
        return
    _group_send(step.run.session_id, step_event(step=step))


def run_push(*, run_id: int) -> None:
    session_id = Run.objects.filter(pk=run_id).values_list("session_id", flat=True).first()
    if session_id is not None:
        _group_send(session_id, {"type": "run.update", "run_pk": run_id})
        if not layer_is_shared():
            wakeup.wake_send()
