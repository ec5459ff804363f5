"""Host side of the sandbox: the fork server client, one kernel process per Sandbox, and the
public `Sandbox` API. Nothing here imports the analysis libraries or Django."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

from analysis.sandbox import diskquota, protocol
from analysis.sandbox.result import Limits, Result

POLICY_MODULE = "analysis.sandbox.policy"
NO_POLICY_MODULE = "analysis.sandbox.no_policy"  # red-team only: plain Python behind the OS layers alone
PRIVATE_TMP = ".sandbox-tmp"  # the kernel's temp dir inside the workspace, see kernel.PRIVATE_TMP
REQUIRED_LAYERS = (
    "rlimits",
    "network_namespace",
    "mount_namespace",
    "capabilities",
    "disk_quota",
    "landlock",
    "seccomp",
    "socket_policy",
    "no_new_privs",
)
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from analysis.sandbox.forkserver import main; main(int(sys.argv[2]), sys.argv[3])"


class SandboxError(Exception):
    """The sandbox could not start a kernel."""


class SandboxIsolationError(SandboxError):
    """require_isolation was set and some isolation layer is not active on this machine."""


def clean_environment(home: str) -> dict[str, str]:
    """The fork server's whole environment, built from scratch so no host secret leaks in."""
    one = "1"
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": os.path.join(home, "matplotlib"),
        "OMP_NUM_THREADS": one,
        "OPENBLAS_NUM_THREADS": one,
        "MKL_NUM_THREADS": one,
        "NUMEXPR_NUM_THREADS": one,
        "VECLIB_MAXIMUM_THREADS": one,
        "PYTHONDONTWRITEBYTECODE": one,
        "PYTHONNOUSERSITE": one,
        "PYTHONHASHSEED": "0",
        "ARROW_DEFAULT_MEMORY_POOL": "system",  # jemalloc/mimalloc reserve 1 GiB of address space up front
        "JE_ARROW_MALLOC_CONF": "background_thread:false",
        "JOBLIB_MULTIPROCESSING": "0",  # n_jobs>1 runs sequentially instead of failing to fork
    }


class ForkServer:
    """A running fork server process. Thread-safe; one per host process is enough."""

    def __init__(self, *, policy_module: str = POLICY_MODULE, startup_timeout: float = 120.0) -> None:
        self.home = tempfile.mkdtemp(prefix="sandbox-forkserver-")
        os.makedirs(os.path.join(self.home, "matplotlib"))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _BOOT, PROJECT_ROOT, str(theirs.fileno()), policy_module],
            env=clean_environment(self.home),
            cwd=self.home,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self.ctrl = ours
        ready, _ = self._recv(startup_timeout)
        if not ready.get("ready"):
            self.close()
            raise SandboxError(f"fork server failed to start: {ready}")
        self.layers: list[dict[str, Any]] = ready["layers"]
        self.import_failures: list[str] = ready["import_failures"]
        self.startup_seconds: float = ready["startup_seconds"]

    def _recv(self, timeout: float) -> tuple[dict[str, Any], list[int]]:
        readable, _, _ = select.select([self.ctrl], [], [], timeout)
        if not readable:
            raise SandboxError("fork server did not answer in time")
        data, fds, _, _ = socket.recv_fds(self.ctrl, 1 << 16, 4)
        if not data:
            raise SandboxError("fork server exited")
        return json.loads(data), fds

    def _call(
        self, request: dict[str, Any], fds: list[int] = (), timeout: float = 10.0
    ) -> tuple[dict[str, Any], list[int]]:
        with self._lock:
            socket.send_fds(self.ctrl, [json.dumps(request).encode()], list(fds))
            return self._recv(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, kernel_end: socket.socket, workspace: str, limits: Limits) -> tuple[int, int | None]:
        request = {"op": "spawn", "workspace": workspace, "limits": limits.to_dict()}
        reply, fds = self._call(request, [kernel_end.fileno()])
        if not reply.get("ok"):
            raise SandboxError(f"fork server refused to spawn: {reply.get('error')}")
        return int(reply["pid"]), (fds[0] if fds else None)

    def exit_status(self, pid: int, wait: float = 1.0) -> dict[str, int] | None:
        reply, _ = self._call({"op": "status", "pid": pid, "wait": wait}, timeout=wait + 5)
        return reply.get("status")

    def kill(self, pid: int) -> None:
        self._call({"op": "kill", "pid": pid})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.ctrl.close()
        subprocess.run(["rm", "-rf", "--one-file-system", self.home], check=False)


_default_server: ForkServer | None = None
_default_lock = threading.Lock()


def default_server() -> ForkServer:
    """The process-wide fork server, started on first use (and again if it died)."""
    global _default_server
    with _default_lock:
        if _default_server is None or not _default_server.alive():
            _default_server = ForkServer()
            atexit.register(_default_server.close)
        return _default_server


class KernelProcess:
    """One live kernel: its socket, pid and (where the OS has them) pidfd."""

    def __init__(self, server: ForkServer, workspace: str, limits: Limits, hello_timeout: float = 30.0) -> None:
        self.server = server
        self.workspace = workspace
        self.dead = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.pid, self.pidfd = server.spawn(theirs, workspace, limits)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        try:
            hello = protocol.recv_msg(ours, max_bytes=1 << 20, deadline=time.monotonic() + hello_timeout)
        except (protocol.ProtocolError, protocol.Deadline) as exc:
            self.close()
            raise SandboxError(f"kernel failed to start: {type(exc).__name__}: {exc}") from None
        if not isinstance(hello, dict) or hello.get("hello") is not True:
            self.close()
            detail = hello.get("error") if isinstance(hello, dict) else hello
            raise SandboxError(f"kernel failed to start: {str(detail)[:500]}")
        layers = hello.get("layers")
        self.layers: list[dict[str, Any]] = [
            layer for layer in (layers if isinstance(layers, list) else []) if isinstance(layer, dict)
        ]

    def kill(self) -> None:
        """SIGKILL the kernel; safe from any thread and idempotent."""
        if self.dead:
            return
        self.dead = True
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                self.server.kill(self.pid)
        except (OSError, SandboxError):
            pass

    def pending(self) -> bool:
        """True when the kernel wrote something nobody asked for (or closed its socket) between runs."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def __del__(self) -> None:
        pidfd = getattr(self, "pidfd", None)
        if pidfd is not None:  # a Sandbox dropped without close(): never leave a kernel or its pidfd behind
            try:
                self.kill()
                os.close(pidfd)
            except OSError:
                pass
            self.pidfd = None

    def wait_dead(self, timeout: float = 2.0) -> None:
        if self.pidfd is not None:
            select.select([self.pidfd], [], [], timeout)

    def close(self) -> None:
        """Kill the kernel and release its socket and pidfd; idempotent."""
        self.kill()
        self.wait_dead()
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        # rmtree works through directory fds without following symlinks, so a kernel's leftovers cannot
        # redirect it; the kernel is dead by now, so nothing races with it.
        shutil.rmtree(os.path.join(self.workspace, PRIVATE_TMP), ignore_errors=True)


def _killed(reason: str, message: str, error_type: str) -> Result:
    return Result(ok=False, error={"type": error_type, "message": message, "traceback": ""}, killed_reason=reason)


_open_sandboxes: weakref.WeakSet[Sandbox] = weakref.WeakSet()


@atexit.register
def _close_open_sandboxes() -> None:
    """A process that exits with sandboxes open (a test session, a worker stopped by a signal) closes them while
    the interpreter still works: their workspaces are written back to disk and their kernels end. Left to
    ``__del__`` at interpreter teardown, the write-back failed on half-torn-down modules."""
    for sandbox in list(_open_sandboxes):
        with contextlib.suppress(Exception):
            sandbox.close()


class Sandbox:
    """A notebook-like kernel for one analysis session.

    Variables persist between `run` calls until `reset()` or a limit kill; the first result
    after a kill says `state_lost=True` with the reason.
    """

    def __init__(
        self,
        workspace: str | os.PathLike[str],
        limits: Limits | None = None,
        *,
        require_isolation: bool = False,
        server: ForkServer | None = None,
    ) -> None:
        self.workspace = os.path.realpath(workspace)
        if not os.path.isdir(self.workspace):
            raise SandboxError(f"workspace {self.workspace} is not a directory")
        self.limits = limits or Limits()
        self.require_isolation = require_isolation
        self._server = server
        self._kernel: KernelProcess | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._running: KernelProcess | None = None
        self._lost_reason: str | None = None
        self._quota: dict[str, Any] | None = None  # the disk_quota layer while this sandbox holds the mount
        _open_sandboxes.add(self)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def layers(self) -> list[dict[str, Any]]:
        """Isolation layers of the current kernel (starting one if needed), plus the fork server's."""
        with self._lock:
            return self._ensure_kernel().layers

    def _ensure_kernel(self) -> KernelProcess:
        if self._kernel is None or self._kernel.dead:
            server = self._server or default_server()
            if self._quota is None:  # once per sandbox: kernels come and go, the workspace mount stays
                self._quota = diskquota.acquire(self.workspace, self.limits.disk_mb)
            kernel = KernelProcess(server, self.workspace, self.limits)
            kernel.layers = [*server.layers, self._quota, *kernel.layers]
            if self.require_isolation:
                missing = [
                    f"{layer['name']} ({layer['detail']})"
                    for layer in kernel.layers
                    if not layer["active"]
                    and (layer["name"] in REQUIRED_LAYERS or layer["name"] == "unprivileged_uid" and os.geteuid() == 0)
                ]
                if missing:
                    kernel.close()
                    raise SandboxIsolationError(
                        "Refusing to run code: required sandbox isolation is missing on this machine: "
                        + "; ".join(missing)
                        + ". Fix the host, or allow weak isolation explicitly (SANDBOX_ALLOW_WEAK=1)."
                    )
            self._kernel = kernel
        return self._kernel

    def run(self, code: str) -> Result:
        with self._lock:
            kernel = self._ensure_kernel()
            if kernel.pending():
                # Output out of turn: a reply would be read as the answer to the wrong cell. Start afresh.
                self._discard_kernel()
                self._lost_reason = "the kernel wrote to the host between executions; it was restarted"
                kernel = self._ensure_kernel()
            self._cancelled = False
            started = time.monotonic()
            self._running = kernel
            try:
                result = self._execute(kernel, code, started)
            except BaseException:
                self._discard_kernel()  # never leave a kernel (or its pidfd) behind an unexpected error
                raise
            finally:
                self._running = None
            result.duration = round(time.monotonic() - started, 6)
            if result.killed_reason:
                self._discard_kernel()
                result.state_lost = True
                result.state_lost_reason = result.error["message"] if result.error else result.killed_reason
                self._lost_reason, lost_now = result.state_lost_reason, None
            else:
                lost_now, self._lost_reason = self._lost_reason, None
                if lost_now:
                    result.state_lost, result.state_lost_reason = True, f"previous execution: {lost_now}"
            return result

    def _execute(self, kernel: KernelProcess, code: str, started: float) -> Result:
        """Send one cell and read its result. Whatever the kernel sends back ends as a Result: a malformed,
        oversized or too deeply nested message kills the kernel and becomes a readable run error."""
        limits = self.limits
        request_id = secrets.token_hex(8)
        try:
            protocol.send_msg(kernel.sock, {"op": "run", "code": code, "id": request_id})
            message = protocol.recv_msg(
                kernel.sock, max_bytes=limits.result_bytes + 1024, deadline=started + limits.timeout
            )
            if not isinstance(message, dict) or message.get("id") != request_id:
                raise protocol.ProtocolError("it answered out of turn: not the result of this cell")
            return Result.from_worker(message, limits)
        except protocol.Deadline:
            kernel.kill()
            return _killed(
                "timeout",
                f"Execution exceeded the {limits.timeout:g} s time limit; the kernel was restarted and variables were lost",
                "TimeoutError",
            )
        except (protocol.PeerClosed, BrokenPipeError, ConnectionResetError):
            if self._cancelled:
                return _killed(
                    "cancelled",
                    "Execution was cancelled; the kernel was restarted and variables were lost",
                    "CancelledError",
                )
            return self._died(kernel)
        except Exception as exc:  # ProtocolError, ValueError, or anything else a hostile message provokes
            kernel.kill()
            return _killed(
                "protocol",
                f"The kernel sent an invalid result ({str(exc)[:300]}); it was restarted and variables were lost",
                "SandboxProtocolError",
            )

    def _died(self, kernel: KernelProcess) -> Result:
        # The socket closed: usually the kernel is dead, but a kernel that only closed its socket must
        # not live on as an orphan, so it is killed either way (a no-op on a dead one).
        kernel.kill()
        kernel.wait_dead()
        try:
            status = kernel.server.exit_status(kernel.pid) or {}
        except (SandboxError, OSError):  # the fork server itself is gone (its kernels die with it)
            status = {}
        sig = status.get("signal")
        if sig == signal.SIGXCPU:
            cpu = self.limits.cpu_seconds or self.limits.timeout
            return _killed(
                "cpu",
                f"Execution exceeded the {cpu:g} s CPU time limit; the kernel was restarted and variables were lost",
                "TimeoutError",
            )
        what = f"signal {signal.Signals(sig).name}" if sig else f"exit status {status.get('exit')}"
        return _killed(
            "crashed",
            f"The kernel died ({what}), most likely out of memory (limit {self.limits.memory_mb} MB) or stack; "
            "it was restarted and variables were lost",
            "KernelDied",
        )

    def _discard_kernel(self) -> None:
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None

    def cancel(self) -> None:
        """Kill the running execution (from any thread); its result says it was cancelled."""
        kernel = self._running
        if kernel is not None:
            self._cancelled = True
            kernel.kill()

    def reset(self) -> None:
        """Forget all variables: the next run starts in a fresh kernel."""
        with self._lock:
            self._discard_kernel()
            self._lost_reason = None

    def close(self) -> None:
        _open_sandboxes.discard(self)
        self.cancel()
        with self._lock:
            self._discard_kernel()
            quota, self._quota = self._quota, None
            if quota is not None and quota["active"]:
                diskquota.release(self.workspace)

    def __del__(self) -> None:
        kernel = getattr(self, "_kernel", None)
        if kernel is not None:
            kernel.__del__()
        quota = getattr(self, "_quota", None)
        if quota is not None and quota["active"]:  # the workspace goes back to disk, the mount and its fd go
            self._quota = None
            with contextlib.suppress(OSError):
                diskquota.release(self.workspace)
