"""Publishing steps and run changes to the session's channel-layer group.

The database is the source of truth; pushes are a best-effort fast path. With a shared channel layer (Redis)
the worker publishes each saved step directly. With the in-memory layer (embedded mode) the worker is another
process, so its publishes could never reach the web process: there ``analysis.tailer`` (inside the web
process) reads new steps from the database and publishes them locally instead.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.template.loader import render_to_string

from analysis.models import Run, Step

logger = logging.getLogger(__name__)


def session_group(session_id: int) -> str:
    """The only place a session's group name is built."""
    return f"session.{session_id}"


def layer_is_shared() -> bool:
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


def render_step_message(*, step: Step) -> str:
    """The websocket message for one step: top-level out-of-band elements only."""
    return render_to_string("analysis/_push_step.html", {"step": step, "run": step.run})


def step_event(*, step: Step) -> dict:
    return {
        "type": "step.push",
        "step_pk": step.pk,
        "run_pk": step.run_id,
        "ordinal": step.ordinal,
        "html": render_step_message(step=step),
    }


def _group_send(session_id: int, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(session_id), event)
    except Exception:  # a push is best-effort: the DB has the step and reconnects repair
        logger.exception("Publishing to session %s failed", session_id)


def step_push(*, step: Step) -> None:
    if not layer_is_shared():
        return
    _group_send(step.run.session_id, step_event(step=step))


def run_push(*, run_id: int) -> None:
    session_id = Run.objects.filter(pk=run_id).values_list("session_id", flat=True).first()
    if session_id is not None:
        _group_send(session_id, {"type": "run.update", "run_pk": run_id})
