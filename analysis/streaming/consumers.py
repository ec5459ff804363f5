"""The session websocket: streams steps and run changes of one analysis session to the browser.

Protocol: the client connects to ``/ws/sessions/<id>/?after=<last step pk it has>``. ``connect()`` checks access
(the permission selector, via ``database_sync_to_async``), joins the session group, accepts, then sends a
snapshot of everything after the cursor. Afterwards each ``step.push`` is forwarded when it is the next step
of its run, and anything else (a gap, an unknown run) is repaired from the database, so the client never sees
a gap or a duplicate. A ``run.update`` arrives rendered by its publisher and is forwarded as is when the client
has every step up to the run's newest; otherwise the database repairs first. Every message is a set of
top-level out-of-band elements with stable ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db.models import Q

from analysis import selectors
from analysis.models import AnalysisSession, Run, Step
from analysis.streaming import push
from analysis.streaming.tailer import tailer
from projects.selectors import project_role_for

logger = logging.getLogger(__name__)
GROUP_LEAVE_TIMEOUT = 2.0  # seconds to remove a closing socket from its group; past it, group expiry does


def _db(func):
    """ORM access from the consumer in a worker thread pool (not the single shared "sync" thread).

    Each consumer still handles its messages one at a time; running them on the shared thread would queue
    every socket of the process behind each other (e.g. 50 sessions refreshing their status at once).
    """
    return database_sync_to_async(func, thread_sensitive=False)


def _render_run(*, run: Run, with_shell: bool, can_edit: bool, session: AnalysisSession | None = None) -> str:
    html = push.render_run_message(run=run, with_shell=with_shell, session=session)
    return html if (can_edit or session is None) else push.readonly(html)


class SessionConsumer(AsyncWebsocketConsumer):
    session: AnalysisSession | None = None
    group: str | None = None
    tailing = False
    _renewal: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Leave the group however the consumer ends: a clean close, a crash, or a cancelled task.

        ``disconnect()`` only runs on a clean close. Membership is also renewed while connected (a third of the
        layer's ``group_expiry``), so the entry of a consumer whose process died lapses on its own.
        """
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._leave_group()

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch, without its hop to the process's single sync thread before every message.

        That hop (``aclose_old_connections``) queues every push of every socket behind whatever holds the sync
        thread (a sync view, a slow query), and its thread handoffs add latency under load. It is not needed
        here: every ORM call of this consumer goes through ``database_sync_to_async``, which closes stale
        connections in the thread that owns them.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_pk"])
        self.session, self.can_edit = await self._access()
        if self.session is None:
            await self.close(code=4404)
            return
        self.cursor = _int(parse_qs(self.scope.get("query_string", b"").decode()).get("after", ["0"])[0])
        self.ordinals: dict[int, int] = {}
        await self.channel_layer.group_add(push.session_group(self.session_id), self.channel_name)
        self.group = push.session_group(self.session_id)
        self._renewal = asyncio.get_running_loop().create_task(self._renew_membership())
        self.tailing = not push.layer_is_shared()
        if self.tailing:
            tailer.subscribe(self.session_id)
        await self.accept()
        await self._send_repair(snapshot=True)

    async def disconnect(self, code: int) -> None:
        await self._leave_group()

    async def _renew_membership(self) -> None:
        interval = max(1.0, getattr(self.channel_layer, "group_expiry", 86400) / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.channel_layer.group_add(self.group, self.channel_name)
            except Exception as exc:  # Redis away: the receive loop fails too and ends this consumer
                logger.warning("Renewing websocket group %s failed: %s", self.group, exc)

    async def _leave_group(self) -> None:
        """Idempotent: the first call (disconnect, or the end of ``__call__``) does the work."""
        group, self.group = self.group, None
        if group is None:
            return
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.wait([self._renewal], timeout=1)  # a group_add in flight must not land after the discard
        if self.tailing:
            tailer.unsubscribe(self.session_id)
        with contextlib.suppress(Exception):  # e.g. Redis down: the entry lapses after group_expiry instead
            await asyncio.wait_for(self.channel_layer.group_discard(group, self.channel_name), GROUP_LEAVE_TIMEOUT)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A client may also send ``{"after": <pk>}`` (e.g. from the question form); it gets the missing steps."""
        if text_data and '"after"' in text_data:
            await self._send_repair(snapshot=False)

    # --- channel layer handlers (method name = event type) ---

    async def step_push(self, event: dict) -> None:
        html = await self._step_html(event)
        if html:
            await self.send(text_data=html)

    async def steps_batch(self, event: dict) -> None:
        """Embedded mode: the tailer's messages (steps in order, then changed runs)."""
        parts = [await self._step_html(step_event) for step_event in event["steps"]]
        parts += [await self._run_html(run_event) for run_event in event["runs"]]
        html = "".join(parts)
        if html:
            await self.send(text_data=html)

    async def run_update(self, event: dict) -> None:
        html = await self._run_html(event)
        if html:
            await self.send(text_data=html)

    async def _run_html(self, event: dict) -> str:
        """The run state as rendered by the publisher, unless it is final and this client lacks some steps.

        Rendering once per change (not once per socket) keeps the web process free while many sessions change
        at once: per-socket queries and renders in threads starve the event loop of the GIL, which delays every
        live step of the process. A final status must not overtake steps: those the client lacks are read from
        the database first. An active run's missing steps are still on their way, and a gap repairs itself.
        """
        if event["status"] not in Run.ACTIVE_STATUSES and event["last_step_pk"] > self.cursor:
            return await self._run_state(event["run_pk"])
        run_pk = event["run_pk"]
        html = event["html"] if run_pk in self.ordinals else event["shell_html"]
        self.ordinals.setdefault(run_pk, 0)
        return html if self.can_edit else push.readonly(html)

    async def _step_html(self, event: dict) -> str:
        step_pk, run_pk, ordinal = event["step_pk"], event["run_pk"], event["ordinal"]
        if step_pk <= self.cursor:
            return ""  # already sent (snapshot or repair)
        if self.ordinals.get(run_pk, 0) + 1 == ordinal and (run_pk in self.ordinals or ordinal == 1):
            prefix = "" if run_pk in self.ordinals else await self._run_shell(run_pk)
            self.cursor, self.ordinals[run_pk] = step_pk, ordinal
            return prefix + event["html"]
        return await self._repair_html(snapshot=False)  # a gap: the database has what was missed

    # --- database access ---

    @_db
    def _access(self) -> tuple[AnalysisSession | None, bool]:
        user = self.scope.get("user")
        session = selectors.session_qs_for(user=user).filter(pk=self.session_id).first()
        if session is None:
            return None, False
        return session, project_role_for(user, session.project).can_edit

    @_db
    def _run_shell(self, run_pk: int) -> str:
        run = Run.objects.filter(pk=run_pk, session_id=self.session_id).first()
        if run is None:
            return ""
        self.ordinals.setdefault(run_pk, 0)
        return _render_run(run=run, with_shell=True, can_edit=self.can_edit)

    @_db
    def _run_state(self, run_pk: int) -> str:
        """A run's status, composer and usage; preceded by any steps not sent yet.

        The run is read before the steps: once it reads as finished, all of its steps are committed, so the
        client never sees a final status ahead of steps it will not get.
        """
        run = Run.objects.filter(pk=run_pk, session_id=self.session_id).first()
        if run is None:
            return ""
        missed = self._repair_sync(snapshot=False)
        with_shell = run_pk not in self.ordinals
        self.ordinals.setdefault(run_pk, 0)
        return missed + _render_run(run=run, with_shell=with_shell, can_edit=self.can_edit, session=self.session)

    @_db
    def _repair_html(self, *, snapshot: bool) -> str:
        return self._repair_sync(snapshot=snapshot)

    def _repair_sync(self, *, snapshot: bool) -> str:
        """Everything after the cursor: new runs' shells, their steps in order, and (snapshot) run states."""
        steps = list(selectors.steps_for_session_id(session_id=self.session_id, after_pk=self.cursor))
        if not steps and not snapshot:
            return ""
        runs_q = Q(pk__in={s.run_id for s in steps}) | Q(status__in=Run.ACTIVE_STATUSES)
        if snapshot and self.cursor:
            cursor_run = Step.objects.filter(pk=self.cursor).values_list("run_id", flat=True).first() or 0
            runs_q |= Q(pk__gte=cursor_run)
        runs = list(reversed(Run.objects.filter(runs_q, session_id=self.session_id).order_by("-pk")[:50]))
        parts: list[str] = []
        for run in runs:
            if run.pk not in self.ordinals:
                parts.append(_render_run(run=run, with_shell=True, can_edit=self.can_edit))
                self.ordinals[run.pk] = 0
            for step in (s for s in steps if s.run_id == run.pk):
                parts.append(push.render_step_message(step=step))
                self.ordinals[run.pk] = max(self.ordinals[run.pk], step.ordinal)
        if steps:
            self.cursor = steps[-1].pk
        if snapshot and runs:
            parts.append(_render_run(run=runs[-1], with_shell=False, can_edit=self.can_edit, session=self.session))
        return "".join(parts)

    async def _send_repair(self, *, snapshot: bool) -> None:
        html = await self._repair_html(snapshot=snapshot)
        if html:
            await self.send(text_data=html)


def _int(value: str) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
