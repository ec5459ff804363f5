"""Embedded mode only: one task per web process tails new steps and run changes from the database.

With the in-memory channel layer the worker (another process) cannot reach this process's websocket
consumers, so this tailer publishes on its behalf into the local layer, as the worker does through Redis in
production. One cheap query per tick for the whole process (``MAX(pk)`` on steps, then active runs), not
one poll per open socket: 50 open sessions cost the same as one, and the tick can be short (~20 ms while a
run is active, ~250 ms when idle).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.models import Max

from analysis import push
from analysis.models import Run, Step

logger = logging.getLogger(__name__)

ACTIVE_TICK = 0.02
IDLE_TICK = 0.25
BATCH = 200


class DbTailer:
    def __init__(self) -> None:
        self.sessions: Counter[int] = Counter()
        self.task: asyncio.Task | None = None
        self.last_step_pk: int | None = None
        self.runs: dict[int, tuple[str, int]] = {}  # active (or just seen) run pk → (status, session id)

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
        while self.sessions:
            try:
                events = await database_sync_to_async(self._tick)(set(self.sessions))
                for session_id, event in events:
                    await layer.group_send(push.session_group(session_id), event)
            except Exception:
                logger.exception("Step tailer tick failed")
                await asyncio.sleep(1)
            await asyncio.sleep(ACTIVE_TICK if self.runs else IDLE_TICK)
        self.task = None

    def _tick(self, sessions: set[int]) -> list[tuple[int, dict]]:
        events: list[tuple[int, dict]] = []
        if self.last_step_pk is None:
            self.last_step_pk = Step.objects.aggregate(m=Max("pk"))["m"] or 0
        newest = Step.objects.aggregate(m=Max("pk"))["m"] or 0
        if newest > self.last_step_pk:
            steps = (
                Step.objects.filter(pk__gt=self.last_step_pk, pk__lte=newest, run__session_id__in=sessions)
                .select_related("run")
                .prefetch_related("artifacts")
                .order_by("pk")[:BATCH]
            )
            steps = list(steps)
            self.last_step_pk = steps[-1].pk if len(steps) == BATCH else newest
            events += [(s.run.session_id, push.step_event(step=s)) for s in steps]
        current = {
            pk: (status, session_id)
            for pk, status, session_id in Run.objects.filter(status__in=Run.ACTIVE_STATUSES).values_list(
                "pk", "status", "session_id"
            )
        }
        ended = set(self.runs) - set(current)
        for pk, status, session_id in Run.objects.filter(pk__in=ended).values_list("pk", "status", "session_id"):
            current_state = (status, session_id)
            if session_id in sessions and current_state != self.runs.get(pk):
                events.append((session_id, {"type": "run.update", "run_pk": pk}))
        for pk, state in current.items():
            if self.runs.get(pk) != state and state[1] in sessions:
                events.append((state[1], {"type": "run.update", "run_pk": pk}))
        self.runs = current
        return events


tailer = DbTailer()
