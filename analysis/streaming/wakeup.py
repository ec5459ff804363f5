"""Embedded mode: a datagram from the worker wakes the web process's step tailer at once.

Without Redis the worker cannot publish to the web process's in-memory channel layer. The database stays
the source of truth (the tailer reads every step from it); this only removes the polling delay: after each
commit the worker sends one byte to a Linux abstract unix socket named after DATA_DIR, and the tailer ticks
immediately instead of at its next poll. A step's event (small enough) travels in the datagram itself, so the
tailer can forward it without a database round trip; consumers still detect any gap by the run's ordinals and
repair it from the database. Best effort in both directions: no listener, a full buffer or a non-Linux system
simply leave the tailer to its polling.
"""

from __future__ import annotations

import hashlib
import socket
import sys

from django.conf import settings

_sender: socket.socket | None = None


def wake_address() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha1(str(settings.DATA_DIR).encode()).hexdigest()[:16]
    return f"\0codingagent-steps-{digest}"


MAX_PAYLOAD = 60_000  # larger events are announced with a bare wake-up; the tailer reads them from the DB


def wake_send(payload: bytes = b"s") -> None:
    global _sender
    address = wake_address()
    if address is None:
        return
    try:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        _sender.sendto(payload if len(payload) <= MAX_PAYLOAD else b"s", address)
    except OSError:  # nobody listening (no web process, or polling only), or the buffer is full: both fine
        pass


def wake_listener() -> socket.socket | None:
    """A bound, non-blocking socket for the tailer, or None when another process already listens."""
    address = wake_address()
    if address is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock
