"""Embedded mode only: one task per web process relays steps and run changes to its websocket consumers.

With the in-memory channel layer the worker (another process) cannot reach this process's consumers, so
this tailer publishes on its behalf into the local layer, as the worker does through Redis in production.
Events rendered by the worker arrive in datagrams (``analysis.streaming.wakeup``) and are forwarded at once. A DB tick
for the whole process (active runs, ``MAX(pk)`` on steps) publishes whatever no datagram brought (lost, too
large, or sent before this process listened): one tick per process, not one poll per open socket, so 50 open
sessions cost the same as one.

The tick publishes a change only when it is still missing one tick after the tick first saw it: a datagram
normally arrives within milliseconds of the commit, and re-rendering it here would only duplicate it. That
matters beyond the wasted work: rendering in a thread holds the GIL and delays every live event in this
process (each await on a socket then waits out a GIL switch interval). A bare wake-up (an event too large for
a datagram) publishes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.models import Max

from analysis.models import Run, Step
from analysis.streaming import push, wakeup

logger = logging.getLogger(__name__)

ACTIVE_TICK = 0.05  # polling is the fallback: datagrams carry the events
IDLE_TICK = 0.25
BATCH = 200
FORWARDED_TTL = 60.0  # seconds a forwarded run state is remembered for the tick to skip
RUN_STATE_ORDER = {Run.Status.QUEUED: 0, Run.Status.RUNNING: 1, "ended": 2}


class DbTailer:
    def __init__(self) -> None:
        self.sessions: Counter[int] = Counter()
        self.task: asyncio.Task | None = None
        # Read and written by the tick only (one at a time):
        self.last_step_pk: int | None = None
        self.runs: dict[int, tuple[str, int]] = {}  # active runs as last read: pk → (status, session id)
        # Written by the event loop only (the tick reads single items): what datagrams already delivered.
        self.seen: set[int] = set()  # step pks
        self.forwarded: dict[int, tuple[str, float]] = {}  # run pk → (status or "ended", when)

    def subscribe(self, session_id: int) -> None:
        self.sessions[session_id] += 1
        loop = asyncio.get_running_loop()
        # (A task left on another, closed loop, as between test cases, is as good as finished.)
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._loop())

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
        pending_steps: set[int] = set()
        pending_runs: dict[int, tuple[str, int]] = {}
        try:
            while self.sessions:
                urgent = woken.is_set()
                woken.clear()
                due_steps = {pk for pk in pending_steps if pk not in self.seen}
                due_runs = {pk: state for pk, state in pending_runs.items() if not self._was_forwarded(pk, state[0])}
                try:
                    # Off the shared sync thread, which serves sync views and channels' own housekeeping.
                    events, pending_steps, pending_runs = await database_sync_to_async(
                        self._tick, thread_sensitive=False
                    )(set(self.sessions), due_steps, due_runs, urgent)
                    for session_id, event in events:
                        await layer.group_send(push.session_group(session_id), event)
                except Exception:  # what was pending stays pending; the tick's own state did not advance
                    logger.exception("Step tailer tick failed")
                    await asyncio.sleep(1)
                self._prune(pending_steps)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), ACTIVE_TICK if self.runs else IDLE_TICK)
        finally:
            forwarder.cancel()
            if listener is not None:
                loop.remove_reader(listener.fileno())
                listener.close()
            self.task = None

    async def _forward(self, layer, pushed: asyncio.Queue) -> None:
        """Forward events that arrived in datagrams at once, in arrival order, without touching the DB."""
        while True:
            event = await pushed.get()
            session_id = event.pop("session_id", None)
            if session_id not in self.sessions:
                continue
            if event["type"] == "run.update":
                state = event["status"] if event["status"] in Run.ACTIVE_STATUSES else "ended"
                self.forwarded[event["run_pk"]] = (state, time.monotonic())
                batch = {"type": "steps.batch", "steps": [], "runs": [event]}
            else:
                self.seen.add(event["step_pk"])
                batch = {"type": "steps.batch", "steps": [event], "runs": []}
            with contextlib.suppress(Exception):
                await layer.group_send(push.session_group(session_id), batch)

    def _drain(self, listener, woken: asyncio.Event, pushed: asyncio.Queue) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = listener.recv(wakeup.MAX_PAYLOAD + 1024)
                if data.startswith(b"{"):
                    with contextlib.suppress(ValueError):
                        pushed.put_nowait(json.loads(data))
                else:
                    woken.set()  # an event too large for a datagram: read the database now

    def _was_forwarded(self, run_pk: int, state: str) -> bool:
        """Whether a datagram brought this run state or a later one (runs only move forward)."""
        forwarded = self.forwarded.get(run_pk)
        return forwarded is not None and RUN_STATE_ORDER[forwarded[0]] >= RUN_STATE_ORDER[state]

    def _prune(self, pending_steps: set[int]) -> None:
        """Forget what the tick no longer needs to check against."""
        done = [pk for pk in self.seen if pk <= (self.last_step_pk or 0) and pk not in pending_steps]
        self.seen.difference_update(done)
        cutoff = time.monotonic() - FORWARDED_TTL
        for run_pk in [pk for pk, (_state, at) in self.forwarded.items() if at < cutoff]:
            del self.forwarded[run_pk]

    def _tick(
        self, sessions: set[int], due_steps: set[int], due_runs: dict[int, tuple[str, int]], urgent: bool
    ) -> tuple[list[tuple[int, dict]], set[int], dict[int, tuple[str, int]]]:
        """Publish what is due (still missing a tick after it was first seen); return what is new since the
        last tick, which becomes due at the next one (or now, when ``urgent``). The tick's own state advances
        only when all of it succeeded, so a failed tick (e.g. a locked database) is simply repeated."""
        if self.last_step_pk is None:
            self.last_step_pk = Step.objects.aggregate(m=Max("pk"))["m"] or 0
        # Runs first: a run seen ended here has all its steps committed, so the step read below gets them.
        current = {
            pk: (status, session_id)
            for pk, status, session_id in Run.objects.filter(status__in=Run.ACTIVE_STATUSES).values_list(
                "pk", "status", "session_id"
            )
        }
        changed = {pk: ("ended", session_id) for pk, (_status, session_id) in self.runs.items() if pk not in current}
        changed.update((pk, state) for pk, state in current.items() if self.runs.get(pk) != state)
        new_runs = {pk: state for pk, state in changed.items() if state[1] in sessions}
        new_steps, last_step_pk = self._new_steps(sessions)
        if urgent:
            due_steps |= {pk for pk in new_steps if pk not in self.seen}
            due_runs |= {pk: state for pk, state in new_runs.items() if not self._was_forwarded(pk, state[0])}
            new_steps, new_runs = set(), {}
        events = self._events(due_steps, due_runs)
        self.runs, self.last_step_pk = current, last_step_pk
        return events, new_steps, new_runs

    def _new_steps(self, sessions: set[int]) -> tuple[set[int], int]:
        """Steps of the subscribed sessions saved since the last tick, and the pk the next tick starts after."""
        newest = Step.objects.aggregate(m=Max("pk"))["m"] or 0
        if newest <= self.last_step_pk:
            return set(), self.last_step_pk
        pks = list(
            Step.objects.filter(pk__gt=self.last_step_pk, pk__lte=newest, run__session_id__in=sessions)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        return set(pks), pks[-1] if len(pks) == BATCH else newest

    def _events(self, step_pks: set[int], runs: dict[int, tuple[str, int]]) -> list[tuple[int, dict]]:
        """One batch event per session (steps in pk order, then runs): one channel message per tick."""
        batches: dict[int, dict] = {}

        def batch(session_id: int) -> dict:
            return batches.setdefault(session_id, {"type": "steps.batch", "steps": [], "runs": []})

        if step_pks:
            steps = Step.objects.filter(pk__in=step_pks).select_related("run").prefetch_related("artifacts")
            for step in steps.order_by("pk"):
                batch(step.run.session_id)["steps"].append(push.step_event(step=step))
        for run_pk, (_state, session_id) in runs.items():
            event = push.run_event(run_id=run_pk)
            if event is not None:
                batch(session_id)["runs"].append(event)
        return list(batches.items())


tailer = DbTailer()
