"""Static chart images drawn out of process, with time and memory limits (no Django here).

A figure comes from model-written code, so drawing it is untrusted work: `go.Histogram(x=[0, 1, 2],
nbinsx=100000)` alone took 44 s and 1 GB inside the worker. `ChartDrawer` hands each figure, as the raw
JSON bytes it was stored as (the calling process never parses it), to a helper process that imported
matplotlib once and runs niced, under an address-space limit, a CPU limit per chart, no_new_privs and the
parent-death signal. The caller waits at most `timeout` seconds: a helper that overruns, dies or runs out of
memory is killed and replaced, and `draw` raises `DrawFailed` with a sentence saying why, which the caller
turns into `placeholder_png`/`placeholder_svg` (drawn with PIL / plain text here: cheap and bounded).

Up to `processes` helpers draw at once (each caller thread takes an idle one or waits); idle helpers are
kept for the next chart, so a PDF export of 50 undrawn charts pays for one start-up, not 50.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from html import escape
from typing import Any

from analysis.sandbox import protocol
from analysis.sandbox.host import PROJECT_ROOT, clean_environment

MAX_FIGURE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = 64 * 1024 * 1024
STARTUP_TIMEOUT = 60.0
RECYCLE_AFTER = 500  # charts per helper, so a slow leak in the drawing libraries cannot grow without bound
PLACEHOLDER_SIZE = (770, 433)  # exports.charts: 7 x 3.9375 in at 110 dpi
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from exports.drawing import helper_main; helper_main(int(sys.argv[2]), int(sys.argv[3]))"


class DrawFailed(Exception):
    """The chart could not be drawn; str() is a sentence for the user."""


def _send(sock: socket.socket, header: dict[str, Any], body: bytes) -> None:
    sock.sendall(protocol.encode(header) + len(body).to_bytes(4, "big") + body)


def _recv(sock: socket.socket, *, max_bytes: int, deadline: float | None) -> tuple[dict[str, Any], bytes]:
    header = protocol.recv_msg(sock, max_bytes=1 << 20, deadline=deadline)
    size = int.from_bytes(protocol.recv_exact(sock, 4, deadline), "big")
    if size > max_bytes:
        raise protocol.ProtocolError(f"body of {size} bytes exceeds the {max_bytes} byte cap")
    body = protocol.recv_exact(sock, size, deadline)
    if deadline is not None:
        sock.settimeout(None)
    if not isinstance(header, dict):
        raise protocol.ProtocolError("header is not an object")
    return header, body


# --- the helper process ----------------------------------------------------------------------------------


def _limit_self(memory_mb: int) -> None:
    from analysis.sandbox import isolation

    isolation.set_parent_death_signal()
    isolation.apply_no_new_privs()
    os.nice(5)  # drawing yields to the web and run workers; the CPU limit below is what stops a chart
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _cpu_budget(seconds: float) -> None:
    """RLIMIT_CPU for the next chart: CPU, not wall-clock, time decides what is too expensive to draw, so a
    busy machine slows charts down without turning them into placeholders (SIGXCPU ends the helper)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime)
    soft = used + max(1, round(seconds))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    # Only the soft limit moves (SIGXCPU ends the helper): raising a hard limit needs a privilege it may lack.
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _draw(header: dict[str, Any], raw: bytes) -> bytes:
    from analysis.sandbox import artifact_schema
    from exports.charts import figure_image

    figure = protocol.loads_bounded(
        raw,
        max_depth=artifact_schema.MAX_FIGURE_DEPTH,
        max_values=artifact_schema.MAX_FIGURE_VALUES,
        nan_as_null=True,
    )
    if isinstance(figure, str):  # a figure stored as a JSON-encoded string
        figure = protocol.loads_bounded(figure, max_depth=artifact_schema.MAX_FIGURE_DEPTH, nan_as_null=True)
    artifact_schema.figure_check(figure)
    return figure_image(figure, fmt="svg" if header.get("fmt") == "svg" else "png")


def helper_main(fd: int, memory_mb: int) -> None:
    """Entry point of a helper: limit itself, import the drawing code once, then draw on request."""
    _limit_self(memory_mb)
    sock = socket.socket(fileno=fd)
    import exports.charts  # noqa: F401  (matplotlib, numpy, PIL: paid once per helper)

    _send(sock, {"ready": True}, b"")
    while True:
        try:
            header, raw = _recv(sock, max_bytes=MAX_FIGURE_BYTES, deadline=None)
        except protocol.ProtocolError:
            return  # the parent went away
        with contextlib.suppress(ValueError, OSError, TypeError):  # the parent's wall-clock guard still holds
            _cpu_budget(float(header.get("cpu_seconds") or 10))
        try:
            _send(sock, {"ok": True}, _draw(header, raw))
        except MemoryError:
            _send(sock, {"ok": False, "reason": "memory"}, b"")
            return  # the heap may be in pieces; a fresh helper takes over
        except Exception as exc:  # a figure the drawing code cannot handle: say so, keep serving
            _send(sock, {"ok": False, "reason": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}, b"")


# --- the parent side -------------------------------------------------------------------------------------


class _Helper:
    def __init__(self, memory_mb: int) -> None:
        self.home = tempfile.mkdtemp(prefix="chart-drawer-")
        os.makedirs(os.path.join(self.home, "matplotlib"))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _BOOT, PROJECT_ROOT, str(theirs.fileno()), str(memory_mb)],
                env=clean_environment(self.home),
                cwd=self.home,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.charts = 0
        try:
            _recv(self.sock, max_bytes=0, deadline=time.monotonic() + STARTUP_TIMEOUT)
        except (protocol.ProtocolError, protocol.Deadline) as exc:
            self.close()
            raise DrawFailed(f"the chart drawing process did not start ({type(exc).__name__})") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.sock.close()
        shutil.rmtree(self.home, ignore_errors=True)


class ChartDrawer:
    """Thread-safe; one per process is enough (see `exports.services.chart_drawer`).

    `cpu_seconds` per chart is the limit that makes a figure too expensive; `wall_seconds` only guards against
    a helper that hangs (a loaded machine may stretch honest drawing well past its CPU time)."""

    def __init__(
        self, *, cpu_seconds: float = 10.0, wall_seconds: float | None = None, memory_mb: int = 1024, processes: int = 2
    ) -> None:
        self.cpu_seconds = cpu_seconds
        self.timeout = wall_seconds or cpu_seconds * 4 + 5
        self.memory_mb = memory_mb
        self._slots = threading.BoundedSemaphore(max(1, processes))
        self._idle: list[_Helper] = []
        self._lock = threading.Lock()

    def draw(self, figure_json: bytes, *, fmt: str = "png") -> bytes:
        """PNG or SVG bytes of the figure, or DrawFailed saying why not (too slow, too big, not a figure)."""
        if len(figure_json) > MAX_FIGURE_BYTES:
            raise DrawFailed(f"the chart's data is larger than {MAX_FIGURE_BYTES // 2**20} MB")
        with self._slots:
            helper = self._take()
            try:
                header, body = self._ask(helper, figure_json, fmt)
            except BaseException:  # overran, died or broke the protocol: never reused
                helper.close()
                raise
            if header.get("reason") == "memory":
                helper.close()  # it exits after saying so
            else:
                self._give_back(helper)
        if header.get("ok") is True:
            return body
        if header.get("reason") == "memory":
            raise DrawFailed(f"drawing it needed more than {self.memory_mb} MB of memory")
        raise DrawFailed(f"its data could not be drawn ({str(header.get('detail') or 'unknown error')[:200]})")

    def _take(self) -> _Helper:
        with self._lock:
            while self._idle:
                helper = self._idle.pop()
                if helper.proc.poll() is None:
                    return helper
                helper.close()
        return _Helper(self.memory_mb)

    def _give_back(self, helper: _Helper) -> None:
        helper.charts += 1
        if helper.charts >= RECYCLE_AFTER or helper.proc.poll() is not None:
            helper.close()
            return
        with self._lock:
            self._idle.append(helper)

    def _ask(self, helper: _Helper, figure_json: bytes, fmt: str) -> tuple[dict[str, Any], bytes]:
        deadline = time.monotonic() + self.timeout
        try:
            _send(helper.sock, {"fmt": fmt, "cpu_seconds": self.cpu_seconds}, figure_json)
            return _recv(helper.sock, max_bytes=MAX_IMAGE_BYTES, deadline=deadline)
        except protocol.Deadline:
            raise DrawFailed(f"drawing it took longer than {self.timeout:g} s") from None
        except (protocol.ProtocolError, OSError):
            raise DrawFailed(self._death_reason(helper)) from None

    def _death_reason(self, helper: _Helper) -> str:
        try:
            code = helper.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the chart drawing process stopped answering"
        if code == -signal.SIGXCPU:
            return f"drawing it took more than {self.cpu_seconds:g} s of CPU time"
        return f"drawing it failed within the limits of {self.memory_mb} MB of memory and {self.cpu_seconds:g} s of CPU"

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for helper in idle:
            helper.close()


# --- placeholders ----------------------------------------------------------------------------------------


def placeholder_text(reason: str) -> str:
    return f"The static image of this chart could not be drawn: {reason}. Open the interactive chart instead."


def placeholder_png(message: str) -> bytes:
    """An opaque PNG the size of a rendition, with the message in it (PIL only: cheap and bounded)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", PLACEHOLDER_SIZE, "#f0f2f5")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=18)
    lines, line = [], ""
    for word in message.split():
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) > PLACEHOLDER_SIZE[0] - 80 and line:
            lines.append(line)
            line = word
        else:
            line = candidate
    lines.append(line)
    text = "\n".join(lines[:8])
    draw.rounded_rectangle((20, 20, PLACEHOLDER_SIZE[0] - 20, PLACEHOLDER_SIZE[1] - 20), 12, outline="#dfe3e8", width=2)
    draw.multiline_text(
        (PLACEHOLDER_SIZE[0] // 2, PLACEHOLDER_SIZE[1] // 2),
        text,
        fill="#5f6b7a",
        font=font,
        anchor="mm",
        align="center",
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def placeholder_svg(message: str) -> bytes:
    width, height = PLACEHOLDER_SIZE
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect x="20" y="20" width="{width - 40}" height="{height - 40}" rx="12" fill="#f0f2f5" stroke="#dfe3e8"/>'
        f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" font-family="sans-serif" font-size="14" '
        f'fill="#5f6b7a">{escape(message)}</text></svg>'
    ).encode()
