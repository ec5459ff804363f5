"""The fork server: a template process that imports the analysis libraries once, then forks
a warm kernel for each session on request.

Started by the host (see `host.ForkServer`) with an environment built from scratch and a
SOCK_SEQPACKET control socket. Requests are JSON records; a spawn request carries the
kernel's end of a socketpair as SCM_RIGHTS, and the reply carries a pidfd for the new kernel
so the host can kill it without a pid-reuse race.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from analysis.sandbox import capture, isolation, kernel, provenance

# fmt: off
PREIMPORTS = [
    "json", "csv", "math", "statistics", "datetime", "decimal", "fractions", "random", "re", "collections",
    "itertools", "functools", "operator", "string", "textwrap", "io", "base64", "mimetypes", "traceback",
    "numpy", "pandas", "matplotlib", "matplotlib.pyplot", "plotly", "plotly.graph_objects", "plotly.express",
    "plotly.io", "seaborn", "scipy", "scipy.stats", "sklearn", "sklearn.linear_model", "sklearn.model_selection",
    "sklearn.preprocessing", "sklearn.cluster", "sklearn.metrics",
]
# fmt: on
MAX_EXIT_STATUSES = 4096
SPARES = 1  # pre-forked kernels waiting for a session


def _warm_up() -> None:
    """Exercise lazily-imported code paths once, so kernels do not pay for them (or need
    file access to them) later: PNG writing, plotly JSON, pandas JSON and groupby."""
    import io
    import mimetypes

    mimetypes.guess_type("x.csv")  # reads /etc/mime.types, out of a kernel's reach
    import matplotlib.pyplot as plt
    import pandas as pd
    import plotly.express as px
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    ax.set_title("warm")
    fig.savefig(io.BytesIO(), format="png")
    plt.close("all")
    go.Figure(go.Scatter(x=[1], y=[2])).to_json()
    px.line(x=[1, 2], y=[3, 4]).to_json()
    frame = pd.DataFrame({"a": [1, 2], "b": [1.5, None], "t": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    frame.groupby("a")["b"].mean()
    frame.to_json(orient="split", date_format="iso", default_handler=str)
    repr(frame)


def _preimport(policy_module: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    failed = []
    for name in [*PREIMPORTS, policy_module]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    capture.PLOTLY_SHOWS.install()
    try:
        _warm_up()
    except Exception as exc:
        failed.append(f"warm-up: {type(exc).__name__}: {exc}")
    try:
        provenance.install()  # before hardening, which may wrap the same methods again
    except Exception as exc:
        failed.append(f"provenance: {type(exc).__name__}: {exc}")
    try:
        # The first call wraps the libraries (slow); each kernel's own call only re-targets them.
        importlib.import_module(policy_module).harden_libraries(os.getcwd())
    except Exception as exc:
        failed.append(f"harden_libraries: {type(exc).__name__}: {exc}")
    return failed


class Server:
    def __init__(self, ctrl: socket.socket, policy_module: str) -> None:
        self.ctrl = ctrl
        self.policy_module = policy_module
        self.statuses: dict[int, dict[str, int]] = {}
        self.children: set[int] = set()
        self.spares: list[tuple[int, socket.socket]] = []
        package_dir = os.path.dirname(os.path.abspath(__file__))
        project_root = os.path.dirname(os.path.dirname(package_dir))
        self.read_paths = isolation.python_read_paths(exclude=project_root) + [package_dir]
        mpl_dir = os.environ.get("MPLCONFIGDIR")
        if mpl_dir:
            self.read_paths.append(mpl_dir)
        # Each kernel mounts its private root here, in its own mount namespace; on the host it stays empty.
        self.root_dir = os.path.join(os.getcwd(), "kernel-root")
        os.makedirs(self.root_dir, exist_ok=True)

    def reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.children.discard(pid)
                continue
            if done:
                self.children.discard(pid)
                self.statuses[pid] = (
                    {"signal": os.WTERMSIG(status)}
                    if os.WIFSIGNALED(status)
                    else {"exit": os.waitstatus_to_exitcode(status)}
                )
        while len(self.statuses) > MAX_EXIT_STATUSES:
            self.statuses.pop(next(iter(self.statuses)))

    def fork_spare(self) -> None:
        """Fork a kernel-to-be that waits for its workspace, so a spawn does not wait for fork()
        (30-50 ms for a template this size on a busy machine)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                isolation.set_parent_death_signal()
                self.ctrl.close()
                ours.close()
                for _, channel in self.spares:
                    channel.close()
                data, fds, _, _ = socket.recv_fds(theirs, 1 << 20, 1)
                theirs.close()
                if data and len(fds) == 1:
                    kernel.kernel_main(fds[0], json.loads(data), self.read_paths, self.policy_module, self.root_dir)
            finally:
                os._exit(0)
        theirs.close()
        self.children.add(pid)
        self.spares.append((pid, ours))

    def _take_spare(self, request: dict[str, Any], sock_fd: int) -> int | None:
        while self.spares:
            pid, channel = self.spares.pop(0)
            try:
                socket.send_fds(channel, [json.dumps(request).encode()], [sock_fd])
                return pid
            except OSError:
                continue  # that spare died; try the next, or fork
            finally:
                channel.close()
        return None

    def spawn(self, request: dict[str, Any], fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return {"ok": False, "error": "spawn needs exactly one socket"}, []
        sock_fd = fds[0]
        pid = self._take_spare(request, sock_fd)
        if pid is None:
            pid = os.fork()
            if pid == 0:  # the kernel
                try:
                    self.ctrl.close()
                    kernel.kernel_main(sock_fd, request, self.read_paths, self.policy_module, self.root_dir)
                finally:
                    os._exit(0)
            self.children.add(pid)
        os.close(sock_fd)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return {"ok": True, "pid": pid}, []
        return {"ok": True, "pid": pid}, [pidfd]

    def status(self, pid: int, wait: float) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            self.reap()
            if pid in self.statuses or pid not in self.children or time.monotonic() >= deadline:
                return {"ok": True, "status": self.statuses.get(pid)}
            time.sleep(0.005)

    def handle(self, request: dict[str, Any], fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        op = request.get("op")
        if op == "spawn":
            return self.spawn(request, fds)
        if op == "status":
            return self.status(int(request["pid"]), float(request.get("wait", 1.0))), []
        if op == "kill" and int(request["pid"]) in self.children:
            os.kill(int(request["pid"]), signal.SIGKILL)
            return {"ok": True}, []
        return {"ok": False, "error": f"unknown op {op!r}"}, []

    def serve(self) -> None:
        while True:
            readable, _, _ = select.select([self.ctrl], [], [], 1.0)
            self.reap()
            if not readable:
                continue
            data, fds, _, _ = socket.recv_fds(self.ctrl, 1 << 20, 4)
            if not data:
                return  # the host went away; kernels follow through their parent-death signal
            reply, out_fds = self.handle(json.loads(data), fds)
            socket.send_fds(self.ctrl, [json.dumps(reply).encode()], out_fds)
            for fd in out_fds:
                os.close(fd)
            while len(self.spares) < SPARES:
                self.fork_spare()  # after the reply, so the host does not wait for it


def main(ctrl_fd: int, policy_module: str) -> None:
    # No parent-death signal here: Linux sends it when the *thread* that started this process exits, so a host
    # that started its fork server from a short-lived thread would lose every kernel with that thread. The host
    # going away is seen instead as the end of the control socket (``serve``), which the kernel closes when the
    # host process ends, however it ends; kernels and spares, forked from this single thread, keep theirs.
    ctrl = socket.socket(fileno=ctrl_fd)
    started = time.monotonic()
    netns = isolation.apply_netns()
    failed = _preimport(policy_module)
    gc.collect()
    gc.freeze()  # keep the template's objects out of kernels' collections: their pages stay shared
    ready = {"ready": True, "layers": [netns.to_dict()], "import_failures": failed, "pid": os.getpid()}
    ready["startup_seconds"] = round(time.monotonic() - started, 3)
    socket.send_fds(ctrl, [json.dumps(ready).encode()], [])
    server = Server(ctrl, policy_module)
    server.fork_spare()
    server.serve()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
