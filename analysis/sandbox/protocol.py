"""Length-prefixed JSON messages over a socket, with a size cap on both ends.

The host never unpickles or evaluates anything that comes from a worker: every message is
a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, and a message whose
announced length exceeds the reader's cap is refused before any of it is read.
"""

from __future__ import annotations

import json
import socket
import struct
import time

_HEADER = struct.Struct("!I")
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_RESULT_BYTES = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed, small enough message."""


class PeerClosed(ProtocolError):
    """The peer closed the connection (for a worker: it died)."""


class Deadline(Exception):
    """No complete message arrived before the deadline."""


def encode(obj: object) -> bytes:
    payload = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    return _HEADER.pack(len(payload)) + payload


def send_msg(sock: socket.socket, obj: object) -> None:
    sock.sendall(encode(obj))


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline
            sock.settimeout(remaining)
        try:
            k = sock.recv_into(view[got:], n - got)
        except TimeoutError:
            raise Deadline from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise PeerClosed(str(exc)) from None
        if k == 0:
            raise PeerClosed("connection closed")
        got += k
    return bytes(buf)


def recv_msg(sock: socket.socket, *, max_bytes: int, deadline: float | None = None) -> object:
    """Read one message; `deadline` is a time.monotonic() value covering the whole message."""
    try:
        (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline))
        if size > max_bytes:
            raise ProtocolError(f"message of {size} bytes exceeds the {max_bytes} byte cap")
        payload = _recv_exact(sock, size, deadline)
    finally:
        if deadline is not None:
            sock.settimeout(None)
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
