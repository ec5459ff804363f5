"""Work the exports app does when the analysis app says something happened."""

from __future__ import annotations

import logging
import queue
import threading
import time

from django.db import close_old_connections, connection
from django.dispatch import receiver

from analysis.models import Artifact, Run
from analysis.signals import run_finished
from exports.services import artifact_rendition_create

logger = logging.getLogger(__name__)


class _RenditionQueue:
    """One background thread per process draws the static PNGs of finished runs' charts, so the run worker
    goes on to the next queued question at once. (The drawing itself happens in helper processes, see
    ``exports.drawing``; this thread only waits for them.) Charts left undrawn at exit are drawn on first view."""

    def __init__(self) -> None:
        self._queue: queue.Queue[int] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, artifact_ids: list[int]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="renditions")
                self._thread.start()
        for pk in artifact_ids:
            self._queue.put(pk)

    def _loop(self) -> None:
        while True:
            pk = self._queue.get()
            try:
                close_old_connections()
                _rendition_ensure(pk)
            except Exception:  # never let one chart stop the thread; the page draws (or explains) it later
                logger.exception("Could not draw the static image of artifact %s", pk)
            finally:
                self._queue.task_done()
                if self._queue.empty():
                    connection.close()

    def wait(self, timeout: float) -> bool:
        """Block until every submitted chart is drawn (benchmarks, tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


renditions = _RenditionQueue()


def _rendition_ensure(pk: int) -> None:
    artifact = Artifact.objects.filter(pk=pk, kind=Artifact.Kind.PLOTLY).first()
    if artifact is not None and not (artifact.meta or {}).get("rendition_png"):
        artifact_rendition_create(artifact=artifact)


@receiver(run_finished, dispatch_uid="exports.renditions_warm")
def renditions_warm(sender, *, run: Run, **kwargs) -> None:
    """Have the static PNG of each plotly chart the run made drawn, so thumbnails and exports never wait for it.
    In the background; inline only inside a transaction (tests run the worker in theirs), where another thread
    could not see the run's artifacts yet."""
    ids = list(Artifact.objects.filter(run=run, kind=Artifact.Kind.PLOTLY).values_list("pk", flat=True))
    if not connection.in_atomic_block:
        renditions.submit(ids)
        return
    for pk in ids:
        try:
            _rendition_ensure(pk)
        except Exception:
            logger.exception("Could not draw the static image of artifact %s", pk)


def renditions_wait(timeout: float = 600.0) -> bool:
    return renditions.wait(timeout)
