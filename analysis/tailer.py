"""Embedded mode only: one task per web process tails new steps and run changes from the database.

With the in-memory channel layer the worker (another process) cannot reach this process's websocket
consumers, so this tailer publishes on its behalf into the local layer, as the worker does through Redis in
production. One cheap query per tick for the whole process (``MAX(pk)`` on steps, then active runs), not
one poll per open socket: 50 open sessions cost the same as one, and the tick can be short (~20 ms while a
run is active, ~250 ms when idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.models import Max

from analysis import push, wakeup
from analysis.models import Run, Step

logger = logging.getLogger(__name__)

ACTIVE_TICK = 0.05  # polling is the fallback; a worker's wake-up datagram triggers a tick at once
IDLE_TICK = 0.25
BATCH = 200


class DbTailer:
    def __init__(self) -> None:
        self.sessions: Counter[int] = Counter()
        self.task: asyncio.Task | None = None
        self.last_step_pk: int | None = None
        self.runs: dict[int, tuple[str, int]] = {}  # active (or just seen) run pk → (status, session id)
        self.seen: set[int] = set()  # step pks already forwarded from datagrams (the DB tick skips them)

    def subscribe(self, session_id: int) -> None:
        self.sessions[session_id] += 1
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._loop())

    def unsubscribe(self, session_id: int) -> None:
        self.sessions[session_id] -= 1
        if self.sessions[session_id] <= 0:
            del self.sessions[session_id]

    async def _loop(self) -> None:
        layer = get_channel_layer()
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        pushed: asyncio.Queue[dict] = asyncio.Queue()
        forwarder = loop.create_task(self._forward(layer, pushed))
        listener = wakeup.wake_listener()
        if listener is not None:
            loop.add_reader(listener.fileno(), self._drain, listener, woken, pushed)
        try:
            while self.sessions:
                woken.clear()
                try:
                    events = await database_sync_to_async(self._tick)(set(self.sessions), set(self.seen))
                    for session_id, event in events:
                        await layer.group_send(push.session_group(session_id), event)
                except Exception:
                    logger.exception("Step tailer tick failed")
                    await asyncio.sleep(1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), ACTIVE_TICK if self.runs else IDLE_TICK)
        finally:
            forwarder.cancel()
            if listener is not None:
                loop.remove_reader(listener.fileno())
                listener.close()
            self.task = None

    async def _forward(self, layer, pushed: asyncio.Queue) -> None:
        """Forward step events that arrived in datagrams at once, in arrival order, without touching the DB."""
        while True:
            event = await pushed.get()
            session_id = event.pop("session_id", None)
            if session_id in self.sessions:
                self.seen.add(event["step_pk"])
                with contextlib.suppress(Exception):
                    await layer.group_send(
                        push.session_group(session_id), {"type": "steps.batch", "steps": [event], "runs": []}
                    )

    def _drain(self, listener, woken: asyncio.Event, pushed: asyncio.Queue) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = listener.recv(wakeup.MAX_PAYLOAD + 1024)
                if data.startswith(b"{"):
                    with contextlib.suppress(ValueError):
                        pushed.put_nowait(json.loads(data))
                else:
                    woken.set()  # a run changed, or a step too large for a datagram: read the database now

    def _tick(self, sessions: set[int], seen: set[int]) -> list[tuple[int, dict]]:
        """One batch event per session with new steps and/or run changes (steps first, in pk order).

        Batching keeps each consumer's channel queue short under load (the in-memory layer drops messages
        past its capacity), and one message per tick per session is all a browser needs.
        """
        batches: dict[int, dict] = {}

        def batch(session_id: int) -> dict:
            return batches.setdefault(session_id, {"type": "steps.batch", "steps": [], "runs": []})

        if self.last_step_pk is None:
            self.last_step_pk = Step.objects.aggregate(m=Max("pk"))["m"] or 0
        # Runs first: a run seen finished here has all its steps committed, so the step read below gets them.
        current = {
            pk: (status, session_id)
            for pk, status, session_id in Run.objects.filter(status__in=Run.ACTIVE_STATUSES).values_list(
                "pk", "status", "session_id"
            )
        }
        ended = set(self.runs) - set(current)
        changed = [
            (pk, session_id)
            for pk, _status, session_id in Run.objects.filter(pk__in=ended).values_list("pk", "status", "session_id")
        ] + [(pk, state[1]) for pk, state in current.items() if self.runs.get(pk) != state]
        self.runs = current
        newest = Step.objects.aggregate(m=Max("pk"))["m"] or 0
        if newest > self.last_step_pk:
            steps = list(
                Step.objects.filter(pk__gt=self.last_step_pk, pk__lte=newest, run__session_id__in=sessions)
                .select_related("run")
                .prefetch_related("artifacts")
                .order_by("pk")[:BATCH]
            )
            self.last_step_pk = steps[-1].pk if len(steps) == BATCH else newest
            for step in steps:
                if step.pk not in seen:  # forwarded from a datagram already
                    batch(step.run.session_id)["steps"].append(push.step_event(step=step))
            self.seen -= {pk for pk in seen if pk <= self.last_step_pk}
        for pk, session_id in changed:
            if session_id in sessions:
                batch(session_id)["runs"].append(pk)
        return list(batches.items())


tailer = DbTailer()
