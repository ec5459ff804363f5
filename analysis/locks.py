"""The per-session "one active run" lock and the worker wake-up/cancel signals.

With ``REDIS_URL`` the lock is a Redis key (``SET NX`` with a TTL the worker's heartbeat refreshes) and
wake-ups/cancels travel as a Redis list/pub-sub. Without Redis the database is both: the partial unique
constraint ``one_active_run_per_session`` is the lock, and workers poll the Run table. In both modes the
database constraint stays the final word, so a lost Redis key can never allow two active runs.
"""

from __future__ import annotations

import functools
import uuid

from django.conf import settings

WAKE_KEY = "codingagent:runs:wake"
CANCEL_CHANNEL = "codingagent:runs:cancel"
LOCK_TTL_SECONDS = 120


@functools.cache
def _redis_for(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def redis_client():
    return _redis_for(settings.REDIS_URL) if settings.REDIS_URL else None


def _lock_key(session_id: int) -> str:
    prefix = getattr(settings, "REDIS_PREFIX", "") or "codingagent"
    return f"{prefix}:session-lock:{session_id}"


_RELEASE_LUA = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def session_lock_acquire(*, session_id: int) -> str | None:
    """Take the session lock; returns a token, or None when another run holds it. No-op token without Redis."""
    client = redis_client()
    token = uuid.uuid4().hex
    if client is None:
        return token
    if client.set(_lock_key(session_id), token, nx=True, ex=LOCK_TTL_SECONDS):
        return token
    return None


def session_lock_force(*, session_id: int) -> str:
    """Take the lock over after the database proved no run is active (a crashed holder left it behind)."""
    client = redis_client()
    token = uuid.uuid4().hex
    if client is not None:
        client.set(_lock_key(session_id), token, ex=LOCK_TTL_SECONDS)
    return token


def session_lock_bind(*, session_id: int, token: str, run_id: int) -> None:
    """Re-label the lock with the run id so workers and the reaper can release it without the token."""
    client = redis_client()
    if client is not None:
        client.set(_lock_key(session_id), f"run:{run_id}", ex=LOCK_TTL_SECONDS)


def session_lock_refresh(*, session_id: int, run_id: int) -> None:
    client = redis_client()
    if client is not None:
        client.set(_lock_key(session_id), f"run:{run_id}", ex=LOCK_TTL_SECONDS, xx=True)


def session_lock_release(*, session_id: int, token: str | None = None, run_id: int | None = None) -> None:
    client = redis_client()
    if client is None:
        return
    value = token if token is not None else f"run:{run_id}"
    client.eval(_RELEASE_LUA, 1, _lock_key(session_id), value)


def session_lock_holder(*, session_id: int) -> str | None:
    client = redis_client()
    if client is None:
        return None
    value = client.get(_lock_key(session_id))
    return value.decode() if value else None


def queue_wake(*, run_id: int) -> None:
    client = redis_client()
    if client is not None:
        client.lpush(WAKE_KEY, run_id)


def queue_wait(*, timeout: float) -> None:
    """Block until a run may be waiting (Redis wake-up) or the poll interval passed."""
    client = redis_client()
    if client is None:
        import time

        time.sleep(timeout)
        return
    client.brpop([WAKE_KEY], timeout=max(1, int(round(timeout))))


def cancel_publish(*, run_id: int) -> None:
    client = redis_client()
    if client is not None:
        client.publish(CANCEL_CHANNEL, str(run_id))
