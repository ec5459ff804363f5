"""Worker wake-ups and run cancels over Redis, namespaced by ``REDIS_PREFIX``.

With ``REDIS_URL`` a new run wakes a worker through a Redis list (``<prefix>:runs:wake``, BRPOP) and a cancel
reaches the run's worker through pub/sub (``<prefix>:runs:cancel``); without Redis workers poll the Run table
and the heartbeat reads ``cancel_requested``. Both are only signals: the database is the truth either way, so a
lost wake-up costs one poll interval and a lost cancel one heartbeat.

Every key and channel name is built here (and the channel layer and cache prefixes in settings), so two
deployments sharing one Redis never wake or cancel each other's runs.

There is no Redis session lock: the partial unique constraint ``one_active_run_per_session`` is the lock, and
``run_start`` checks it before inserting. (An earlier Redis key was written and refreshed but never refused a
run, and every refresh was one more way for a Redis blip to break a heartbeat.)
"""

from __future__ import annotations

import functools
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)


def _key(name: str) -> str:
    return f"{settings.REDIS_PREFIX}:{name}"


def wake_key() -> str:
    return _key("runs:wake")


def cancel_channel() -> str:
    return _key("runs:cancel")


@functools.cache
def _redis_for(url: str):
    import redis

    # Above the longest BRPOP (queue_wait) so a quiet queue never reads as a timeout.
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def redis_client():
    return _redis_for(settings.REDIS_URL) if settings.REDIS_URL else None


def _best_effort(what: str, fn) -> None:
    """A signal that cannot be sent is only late (workers poll, heartbeats read the table): never an error."""
    import redis

    try:
        fn()
    except redis.RedisError as exc:
        logger.warning("Redis unavailable, %s not sent (workers will find it by polling): %s", what, exc)


def queue_wake(*, run_id: int = 0) -> None:
    """Wake one waiting worker (``run_id`` 0: the queue changed, e.g. a slot or a user's share is free)."""
    client = redis_client()
    if client is not None:
        _best_effort(f"wake-up for run {run_id}", lambda: client.lpush(wake_key(), run_id))


_redis_down_since: float | None = None


def queue_wait(*, timeout: float) -> None:
    """Block until a run may be waiting (Redis wake-up) or the poll interval passed.

    Redis unreachable: the worker falls back to polling the Run table (it loses nothing, wake-ups are hints),
    logging once when the outage starts and once when it ends.
    """
    global _redis_down_since
    import redis

    client = redis_client()
    if client is None:
        time.sleep(timeout)
        return
    try:
        client.brpop([wake_key()], timeout=max(1, int(round(timeout))))
    except redis.RedisError as exc:
        if _redis_down_since is None:
            _redis_down_since = time.monotonic()
            logger.warning("Redis unavailable, polling the run queue until it is back: %s", exc)
        time.sleep(max(timeout, 1.0))
        return
    if _redis_down_since is not None:
        logger.warning("Redis is back after %.0f s", time.monotonic() - _redis_down_since)
        _redis_down_since = None


def cancel_publish(*, run_id: int) -> None:
    client = redis_client()
    if client is not None:
        _best_effort(f"cancel of run {run_id}", lambda: client.publish(cancel_channel(), str(run_id)))
