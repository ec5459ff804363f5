"""Wake-ups for a follower that reads its events from the database (the SSE stream).

A follower joins its session's group, as a websocket does, and waits for anything published there; each
message only says "look again" (the database stays the record). Without it every SSE follower polled the
database ten times a second, which with 50 followers was most of a web process's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from channels.layers import get_channel_layer

from analysis.streaming import push
from analysis.streaming.tailer import tailer

logger = logging.getLogger(__name__)

LEAVE_TIMEOUT = 2.0  # seconds to leave the group at the end; past it, the layer's group expiry does


@contextlib.asynccontextmanager
async def session_wakeups(session_id: int) -> AsyncIterator[Callable[[float], Awaitable[bool]]]:
    """Yields ``wait(timeout)``: returns True when something was published for the session within ``timeout``
    seconds, False when the time passed (or no channel layer could be joined: the caller then just polls)."""
    layer = get_channel_layer()
    group = push.session_group(session_id)
    channel = None
    with contextlib.suppress(Exception):  # e.g. Redis away: polling still works
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
    tailing = channel is not None and not push.layer_is_shared()
    if tailing:
        tailer.subscribe(session_id)  # embedded mode: someone must relay the worker's events into this process
    renew_every = max(1.0, getattr(layer, "group_expiry", 86400) / 3)
    joined = time.monotonic()

    async def wait(timeout: float) -> bool:
        nonlocal joined
        if channel is None:
            await asyncio.sleep(timeout)
            return False
        if time.monotonic() - joined > renew_every:  # a long run outlives the group entry otherwise
            with contextlib.suppress(Exception):
                await layer.group_add(group, channel)
                joined = time.monotonic()
        try:
            await asyncio.wait_for(layer.receive(channel), timeout)
        except TimeoutError:
            return False
        except Exception as exc:  # the layer failed: behave as a timeout, the database is still read
            logger.warning("Waiting for events of session %s failed: %s", session_id, exc)
            await asyncio.sleep(timeout)
            return False
        return True

    try:
        yield wait
    finally:
        if tailing:
            tailer.unsubscribe(session_id)
        if channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(layer.group_discard(group, channel), LEAVE_TIMEOUT)
