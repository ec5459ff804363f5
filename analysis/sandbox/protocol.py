"""Length-prefixed JSON messages over a socket, bounded in size, depth and number of values.

The host never unpickles or evaluates anything that comes from a kernel: every message is a 4-byte
big-endian length followed by that many bytes of UTF-8 JSON. A message whose announced length exceeds the
reader's cap is refused before any of it is read; one that would nest deeper than `MAX_DEPTH` or build more
than `MAX_VALUES` values is refused before (or instead of) being turned into objects, so a hostile kernel
can neither crash the host with a RecursionError nor make it allocate twenty times the message size.
Every refusal is a `ProtocolError` with a readable reason.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from typing import Any

_HEADER = struct.Struct("!I")
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64  # results nest about 6 deep (final_result is capped at 20 levels by the kernel)
MAX_VALUES = 1_000_000  # a 32 MB result of `[],` would otherwise become ~700 MB of lists
_NOT_STRUCTURE = bytes(range(256)).translate(None, b"[]{},")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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


def _values_outside_strings(data: bytes) -> int:
    """Commas and brackets outside JSON strings: an upper bound on the values `json.loads` would build."""
    # In valid JSON a backslash only occurs inside strings, as the start of an escape; removing escaped
    # backslashes first, then escaped quotes, leaves only the quotes that open and close strings.
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return len(b"".join(plain.split(b'"')[::2]).translate(None, _NOT_STRUCTURE))


recv_exact = _recv_exact  # for other length-prefixed channels (exports.drawing)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _null(name: str) -> None:
    return None


def _depth_exceeds(obj: Any, max_depth: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads_bounded(
    data: bytes | str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES, nan_as_null: bool = False
) -> Any:
    """`json.loads` for untrusted bytes: at most `max_depth` levels and about `max_values` values, no NaN
    or Infinity (or, with `nan_as_null`, read as null). Raises ProtocolError (never RecursionError or
    MemoryError) with the reason."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    # Counting every comma and bracket is cheap and over-counts only what sits inside strings; only when
    # that crude bound is over the limit is the exact count (strings skipped) worth its cost.
    brackets = data.count(b"[") + data.count(b"{")
    if brackets + data.count(b",") > max_values and _values_outside_strings(data) > max_values:
        raise ProtocolError(f"message has more than {max_values:,} values")
    try:
        obj = json.loads(data, parse_constant=_null if nan_as_null else _reject_constant)
    except RecursionError:
        raise ProtocolError(f"message nests deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, NaN, a 5,000-digit integer
        raise ProtocolError(f"malformed message: {str(exc)[:200]}") from None
    if brackets > max_depth and isinstance(obj, dict | list) and _depth_exceeds(obj, max_depth):
        raise ProtocolError(f"message nests deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(data):
        obj = _without_lone_surrogates(obj)
    return obj


def _clean(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _without_lone_surrogates(obj: Any) -> Any:
    """JSON may escape half a surrogate pair (`print("\\ud800")` in a cell does); such a string cannot be
    encoded as UTF-8, so it would fail later when saved. Each lone half becomes "?"."""
    if isinstance(obj, str):
        return _clean(obj)
    if not isinstance(obj, dict | list):
        return obj
    root = [obj]
    stack: list[dict | list] = [root]
    while stack:
        container = stack.pop()
        if isinstance(container, list):
            for i, value in enumerate(container):
                if isinstance(value, str):
                    container[i] = _clean(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        else:
            for key in list(container):
                value = container.pop(key)
                if isinstance(value, str):
                    value = _clean(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
                container[_clean(key)] = value
    return root[0]


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
    return loads_bounded(payload)
