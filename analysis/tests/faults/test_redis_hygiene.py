"""Redis hygiene against a real redis-server started here: prefixes keep deployments apart, quiet websockets
stay open, and group entries do not outlive their sockets."""

from __future__ import annotations

import asyncio
import os
import runpy
import signal
import time

import pytest
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer
from django.core.cache import caches

from analysis import locks
from analysis.tests.faults.conftest import sqlite_stack, unique_prefix
from analysis.tests.faults.servers import wait_until
from analysis.tests.faults.stack import Stack, WsClient
from codingagent.tests.support import REPO_ROOT

STEP_PK = 10_000_000  # far beyond any real step, so the consumer forwards it rather than repairing from the DB


def _push_step(stack: Stack, session_id: int, text: str) -> int:
    """Publish a step event as the worker does (``push.step_event``'s shape) through the deployment's layer."""
    global STEP_PK
    STEP_PK += 1
    names = ("REDIS_URL", "REDIS_PREFIX", "CHANNEL_GROUP_EXPIRY")
    config = _settings_for({name: stack.env[name] for name in names})  # as the deployment's worker has it
    layer = RedisChannelLayer(**config["layers"]["default"]["CONFIG"])
    event = {"type": "step.push", "step_pk": STEP_PK, "run_pk": STEP_PK, "ordinal": 1}
    event["html"] = f'<li id="step-{STEP_PK}" data-step-pk="{STEP_PK}" hx-swap-oob="beforeend">{text}</li>'
    async_to_sync(layer.group_send)(f"session.{session_id}", event)
    return STEP_PK


def _settings_for(env: dict) -> dict:
    """CHANNEL_LAYERS and CACHES as the settings module computes them from this environment (run afresh here;
    Django's own configured settings are left alone)."""
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        computed = runpy.run_path(str(REPO_ROOT / "codingagent" / "settings.py"), run_name="settings_probe")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"layers": computed["CHANNEL_LAYERS"], "caches": computed["CACHES"]}


def _received(layer, channel: str, *, timeout: float) -> dict | None:
    async def receive() -> dict | None:
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout)
        except TimeoutError:
            return None

    return async_to_sync(receive)()


def _group_members(redis_server, prefix: str, session_id: int) -> int:
    keys = redis_server.client().keys(f"{prefix}:*group*session.{session_id}")
    return sum(redis_server.client().zcard(key) for key in keys)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sqlite_template, redis_server):
    """One deployment for the module (a SQLite file + the Redis above), with one web process."""
    stack = sqlite_stack(
        tmp_path_factory.mktemp("hygiene"),
        sqlite_template,
        redis_url=redis_server.url,
        redis_prefix=unique_prefix("hygiene"),
        extra_env={"CHANNEL_GROUP_EXPIRY": "3"},
    )
    stack.web = stack.start_web()
    yield stack
    stack.close()


def test_every_redis_key_of_a_deployment_carries_its_prefix_and_two_prefixes_never_cross(settings, redis_server):
    client = redis_server.client()
    client.flushdb()
    configured = {name: _settings_for({"REDIS_URL": redis_server.url, "REDIS_PREFIX": name}) for name in ("ta", "tb")}
    layers = {name: RedisChannelLayer(**conf["layers"]["default"]["CONFIG"]) for name, conf in configured.items()}
    settings.REDIS_URL = redis_server.url
    settings.CACHES = {"ta": configured["ta"]["caches"]["default"], "tb": configured["tb"]["caches"]["default"]}
    cancel_b = client.pubsub(ignore_subscribe_messages=True)
    cancel_b.subscribe("tb:runs:cancel")

    settings.REDIS_PREFIX = "ta"
    locks.queue_wake(run_id=7)
    locks.cancel_publish(run_id=7)
    caches["ta"].set("login-throttle", 1)
    channel_b = async_to_sync(layers["tb"].new_channel)()
    async_to_sync(layers["tb"].group_add)("session.7", channel_b)
    async_to_sync(layers["ta"].group_send)("session.7", {"type": "step.push", "html": "deployment a"})
    settings.REDIS_PREFIX = "tb"
    started = time.monotonic()
    locks.queue_wait(timeout=1)  # b's worker must not take a's wake-up
    waited = time.monotonic() - started

    keys = sorted(key.decode() for key in client.keys("*"))
    assert keys and all(key.startswith("ta:") or key.startswith("tb:") for key in keys), keys
    assert client.lrange("ta:runs:wake", 0, -1) == [b"7"]
    assert waited >= 0.9
    assert cancel_b.get_message(timeout=0.5) is None
    assert client.zcard("tb:channels::group:session.7") == 1
    assert _received(layers["tb"], channel_b, timeout=1.0) is None  # a's push never reaches b's socket
    assert [k for k in keys if k.startswith("ta:") and "login-throttle" in k]
    cancel_b.close()


def test_a_quiet_websocket_over_redis_stays_open_and_still_gets_the_next_step(stack, redis_server):
    seeded = stack.seeded
    ws = WsClient(stack.web.port, f"/ws/sessions/{seeded.sessions[0]}/?after=0", cookie=seeded.cookie)

    with pytest.raises(TimeoutError):
        ws.recv(timeout=15)  # 15 s of silence: a closed socket raises WsClosed instead
    step_pk = _push_step(stack, seeded.sessions[0], "pushed after a quiet spell")
    message = ws.recv(timeout=20)
    ws.close()

    assert f'data-step-pk="{step_pk}"' in message
    assert "pushed after a quiet spell" in message
    assert "Traceback" not in stack.log("web")


def test_group_entries_leave_with_their_socket_and_lapse_when_the_web_process_dies(stack, redis_server):
    seeded, web = stack.seeded, stack.web
    session = seeded.sessions[1]
    doomed = stack.start_web("doomed")
    leaving = WsClient(web.port, f"/ws/sessions/{session}/?after=0", cookie=seeded.cookie)
    staying = WsClient(web.port, f"/ws/sessions/{session}/?after=0", cookie=seeded.cookie)
    orphan = WsClient(doomed.port, f"/ws/sessions/{session}/?after=0", cookie=seeded.cookie)
    wait_until(lambda: _group_members(redis_server, stack.redis_prefix, session) == 3, timeout=20, what="3 members")

    leaving.close()
    after_close = wait_until(
        lambda: _group_members(redis_server, stack.redis_prefix, session) == 2, timeout=10, what="clean leave"
    )
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(10)
    time.sleep(4.5)  # past CHANNEL_GROUP_EXPIRY=3: the orphan's entry is stale, the live one was renewed
    step_pk = _push_step(stack, session, "after the crash")  # a group_send drops stale entries
    message = staying.recv(timeout=20)
    members_after_send = _group_members(redis_server, stack.redis_prefix, session)
    staying.close()
    orphan.sock.close()
    gone = wait_until(
        lambda: _group_members(redis_server, stack.redis_prefix, session) == 0, timeout=10, what="all gone"
    )

    assert after_close
    assert f'data-step-pk="{step_pk}"' in message
    assert members_after_send == 1
    assert gone
