"""The kernel: a process forked from the fork server that locks itself down, then executes
cells on request, keeping their variables in one namespace until it dies.

Runs as the child of `forkserver`; talks to the host only through `sock` with the
length-prefixed JSON of `protocol`.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import sys
import tempfile
from typing import Any

from analysis.sandbox import capture, isolation, protocol, provenance

PRIVATE_TMP = ".sandbox-tmp"
PRIVATE_TMP_MB = 64  # the kernel's own /tmp (RAM-backed, so small); TMPDIR points into the workspace instead
_DEV_FILES = {
    "/dev/null": isolation.FS_READ_FILE | isolation.FS_WRITE_FILE,
    "/dev/zero": isolation.FS_READ_FILE,
    "/dev/full": isolation.FS_READ_FILE | isolation.FS_WRITE_FILE,
    "/dev/random": isolation.FS_READ_FILE,
    "/dev/urandom": isolation.FS_READ_FILE,
}
# ld.so.cache lets ctypes and dlopen find libraries as they do outside.
_SYSTEM_READ_PATHS = [*isolation.SYSTEM_READ_PATHS, "/etc/ld.so.cache"]


def _detach_from_server(sock_fd: int) -> None:
    """Drop everything inherited from the fork server except the kernel's own socket: above all
    the control socket, through which a kernel could otherwise ask for new kernels."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = sorted({0, 1, 2, sock_fd})
    for low, high in zip(keep, keep[1:] + [2**20], strict=True):
        if high > low + 1:
            os.closerange(low + 1, high)


def _prepare_workspace(workspace: str, as_root: bool) -> str:
    """Enter the workspace, give it a fresh private temp dir, and hand it to the sandbox uid."""
    os.chdir(workspace)
    tmp = os.path.join(workspace, PRIVATE_TMP)
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp, 0o700)
    if as_root:
        for root, dirs, files in os.walk(workspace):
            for name in [*dirs, *files]:
                path = os.path.join(root, name)
                if os.lstat(path).st_uid != isolation.SANDBOX_UID:
                    os.chown(path, isolation.SANDBOX_UID, isolation.SANDBOX_GID, follow_symlinks=False)
        os.chown(workspace, isolation.SANDBOX_UID, isolation.SANDBOX_GID)
    return tmp


def lock_down(
    workspace: str, limits: dict[str, Any], read_paths: list[str], root_dir: str | None = None
) -> list[isolation.Layer]:
    """Apply the per-kernel OS layers, in the only order that works (see `isolation`)."""
    as_root = os.geteuid() == 0
    tmp = _prepare_workspace(workspace, as_root)
    read_only = [*read_paths, *_SYSTEM_READ_PATHS]
    if root_dir:
        mount_ns = isolation.apply_mount_namespace(
            root_dir, read_only=read_only, devices=list(_DEV_FILES), workspace=workspace, tmp_mb=PRIVATE_TMP_MB
        )
    else:
        mount_ns = isolation.Layer("mount_namespace", False, "no directory for the private root")
    os.chdir(workspace)  # again: after pivot_root the old working directory is in a detached tree
    ruleset = isolation.LandlockRuleset()
    for path in read_only:
        ruleset.allow(path, isolation.READ_ONLY | isolation.FS_EXECUTE)
    for path, access in _DEV_FILES.items():
        ruleset.allow(path, access)
    ruleset.allow(workspace, isolation.READ_WRITE)
    if mount_ns.active:  # the private ones: without the mount namespace /tmp and /proc are the host's
        ruleset.allow("/tmp", isolation.READ_WRITE)
        ruleset.allow("/proc", isolation.READ_ONLY)
    layers = [
        isolation.apply_rlimits(
            memory_mb=limits["memory_mb"], file_size_mb=limits["file_size_mb"], open_files=limits["open_files"]
        ),
        mount_ns,
    ]
    # Inside the private root every ancestor is a 0755 tmpfs directory; only without it may the kernel need
    # CAP_DAC_READ_SEARCH to reach a workspace or venv under a root-only directory.
    needs_search = not mount_ns.active and not all(
        isolation.path_searchable_by_other(p) for p in [workspace, *read_paths]
    )
    layers.append(isolation.apply_uid_drop(keep_read_search=needs_search and ruleset.fd >= 0))
    isolation.set_parent_death_signal()  # the uid change cleared it
    layers.append(isolation.capabilities_layer())
    layers.append(isolation.apply_no_new_privs())
    layers.append(ruleset.restrict_self(f"read-only: interpreter and libraries; read-write: workspace {workspace}"))
    seccomp = isolation.apply_seccomp()
    layers.append(seccomp)
    socket_policy = isolation.apply_socket_policy()
    if not seccomp.active:
        socket_policy = isolation.Layer("socket_policy", False, f"needs seccomp: {seccomp.detail}")
    layers.append(socket_policy)
    os.environ.update(HOME=workspace, TMPDIR=tmp)
    tempfile.tempdir = tmp
    return layers


class Kernel:
    def __init__(self, sock: socket.socket, policy: Any, limits: dict[str, Any]) -> None:
        self.sock = sock
        self.policy = policy
        self.limits = limits
        self.namespace: dict[str, Any] = {}
        # Opened before lock_down, which puts /proc out of reach.
        self._status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._clear_refs_fd = os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            self._clear_refs_fd = -1

    def serve(self) -> None:
        while True:
            try:
                request = protocol.recv_msg(self.sock, max_bytes=protocol.MAX_REQUEST_BYTES)
            except protocol.ProtocolError:
                return
            if not isinstance(request, dict) or request.get("op") != "run":
                protocol.send_msg(
                    self.sock, {"ok": False, "error": {"type": "ProtocolError", "message": "bad request"}}
                )
                continue
            try:
                result = self.run(str(request.get("code", "")))
            except BaseException as exc:  # a bug of ours, reported rather than dying silently
                sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
                result = {"ok": False, "error": capture.internal_error_dict(exc), "killed_reason": "crashed"}
            self._send(result, request.get("id"))
            if result.get("killed_reason"):
                return

    def _send(self, result: dict[str, Any], request_id: Any = None) -> None:
        result["id"] = request_id  # the host matches each result to its request (see host.Sandbox._execute)
        data = protocol.encode(result)
        if len(data) > self.limits["result_bytes"]:
            result = {
                "ok": False,
                "stdout": result.get("stdout", ""),
                "stderr": result.get("stderr", ""),
                "error": {
                    "type": "ResultTooLarge",
                    "message": f"The result ({len(data)} bytes) exceeds the {self.limits['result_bytes']} byte cap; "
                    "artifacts were dropped. Make fewer or smaller figures and tables.",
                    "traceback": "",
                },
                "id": request_id,
            }
            data = protocol.encode(result)
        self.sock.sendall(data)

    def _peak_memory(self) -> int:
        status = os.pread(self._status_fd, 8192, 0).decode()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def run(self, code: str) -> dict[str, Any]:
        if self._clear_refs_fd >= 0:
            os.pwrite(self._clear_refs_fd, b"5", 0)  # reset the peak RSS counter for this run
        isolation.set_cpu_budget(self.limits["cpu_seconds"] or self.limits["timeout"])
        before = capture.workspace_snapshot()
        previous_final = self.namespace.pop("final_result", _MISSING)
        out, err = capture.CappedWriter(self.limits["output_bytes"]), capture.CappedWriter(self.limits["output_bytes"])
        result: dict[str, Any] = {"ok": True, "error": None, "artifacts": [], "final_result": None, "display": None}
        sys.stdout, sys.stderr = out, err
        try:
            value = self.policy.restricted_run(code, self.namespace, filename=capture.CELL)
            self._capture(value, result)
        except MemoryError:
            value = None
            self.namespace.clear()
            result.update(ok=False, killed_reason="memory", artifacts=[])
            result["error"] = {
                "type": "MemoryError",
                "message": f"Execution exceeded the {self.limits['memory_mb']} MB memory limit; "
                "the kernel was restarted and variables were lost",
                "traceback": "",
            }
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: the kernel carries on
            result.update(ok=False, error=capture.error_dict(exc, code))
            self._capture(None, result, value_known=False)  # figures and files made before the error
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        take_refusals = getattr(self.policy, "take_refusals", None)
        result["refusals"] = take_refusals() if take_refusals is not None else []
        if "final_result" not in self.namespace and previous_final is not _MISSING:
            self.namespace["final_result"] = previous_final
        elif "final_result" in self.namespace:
            result["final_result"] = capture.final_result_value(self.namespace["final_result"], 1_000_000)
            result["group_sizes"] = provenance.group_sizes_of(self.namespace["final_result"])
        result["artifacts"].extend(capture.file_artifacts(before, capture.workspace_snapshot()))
        result.update(stdout=out.getvalue(), stderr=err.getvalue(), peak_memory=self._peak_memory())
        return result

    def _capture(self, value: Any, result: dict[str, Any], value_known: bool = True) -> None:
        """Artifacts of a run: shown plotly figures, the last expression, open matplotlib figures."""
        artifacts = result["artifacts"]
        try:
            artifacts.extend(capture.plotly_artifact(fig) for fig in capture.PLOTLY_SHOWS.drain())
            if value_known and value is not self.policy.NOTHING and value is not None:
                if capture.is_plotly_figure(value):
                    artifacts.append(capture.plotly_artifact(value))
                elif capture.is_pandas_table(value):
                    artifacts.append(capture.table_artifact(value))
                    result["display"] = capture.short_repr(value, 2_000)
                else:
                    result["display"] = capture.short_repr(value)
            artifacts.extend(capture.matplotlib_artifacts())
        except MemoryError:
            raise
        except Exception as exc:
            sys.stderr.write(f"[sandbox] could not capture an artifact: {type(exc).__name__}: {exc}\n")


_MISSING = object()


def _target_policy(policy: Any, workspace: str) -> None:
    """Point the policy's library wrappers at this kernel's workspace.

    The fork server already wrapped the libraries (harden_libraries is process-wide); calling it
    again here walks every module and costs 60-120 ms of copy-on-write faults per kernel, so when
    the wrappers exist only their target is changed.
    """
    libraries = sys.modules.get("analysis.sandbox.libraries")
    state = getattr(libraries, "_state", None)
    if isinstance(state, dict) and state.get("workspace") is not None:
        state["workspace"] = workspace
    else:
        policy.harden_libraries(workspace)


def kernel_main(
    sock_fd: int, request: dict[str, Any], read_paths: list[str], policy_module: str, root_dir: str | None = None
) -> None:
    """Entry point in the freshly forked child; never returns normally (the caller _exits)."""
    _detach_from_server(sock_fd)
    sock = socket.socket(fileno=sock_fd)
    workspace = os.path.realpath(request["workspace"])
    limits = request["limits"]
    try:
        policy = importlib.import_module(policy_module)
        _target_policy(policy, workspace)
        kernel = Kernel(sock, policy, limits)
        layers = lock_down(workspace, limits, read_paths, root_dir)
    except Exception as exc:
        protocol.send_msg(sock, {"hello": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    protocol.send_msg(sock, {"hello": True, "pid": os.getpid(), "layers": [layer.to_dict() for layer in layers]})
    kernel.serve()
