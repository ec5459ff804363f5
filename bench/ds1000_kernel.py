"""DS-1000 adapter for the OS boundary: each problem's whole program (the benchmark's context, the
solution and its test) runs as plain Python inside a sandbox kernel with every OS layer on (the
no-policy kernel of `sandbox_exec --no-policy`: private mount namespace, no capabilities, no
sockets, seccomp, Landlock, the workspace quota). So the run counts what the OS layers alone break.

    cd /work/shared/corpus/ds1000 && PYTHONPATH=/work/main /work/main/.venv/bin/python run.py \\
        --executor /work/main/bench/ds1000_kernel.py:run --ids-file plain_pass_ids.json --workers 2

The harness starts a fresh subprocess per problem, so one fork server lives in a small daemon
(started by the first problem, gone after IDLE_SECONDS without work) that each problem reaches over
a UNIX socket; every problem still gets a fresh kernel and its own workdir as the workspace.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SOCK = f"/tmp/ds1000-kernel-{os.getuid()}.sock"
IDLE_SECONDS = 120
TIMEOUT = 50.0  # the harness gives each problem 60 s


def _handle(conn: socket.socket, server) -> None:
    from analysis.sandbox import Limits, Sandbox

    with conn, conn.makefile("rwb") as stream:
        request = json.loads(stream.readline())
        try:
            with Sandbox(request["workdir"], Limits(timeout=TIMEOUT), server=server) as sandbox:
                result = sandbox.run(request["code"])
            error = None if result.ok else f"{result.error['type']}: {result.error['message']}"[:500]
            reply = {"ok": result.ok, "seconds": result.duration, "error": error}
        except Exception as exc:
            reply = {"ok": False, "seconds": 0.0, "error": f"sandbox: {type(exc).__name__}: {exc}"}
        stream.write(json.dumps(reply).encode() + b"\n")
        stream.flush()


def serve() -> None:
    from analysis.sandbox import ForkServer
    from analysis.sandbox.host import NO_POLICY_MODULE

    server = ForkServer(policy_module=NO_POLICY_MODULE)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(SOCK):
        os.unlink(SOCK)
    listener.bind(SOCK + ".new")
    listener.listen(16)
    os.rename(SOCK + ".new", SOCK)  # clients connect only once the fork server is ready
    listener.settimeout(5)
    last = time.monotonic()
    try:
        while time.monotonic() - last < IDLE_SECONDS:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            threading.Thread(target=_handle, args=(conn, server), daemon=True).start()
    finally:
        os.unlink(SOCK)
        server.close()


def _connect() -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(SOCK)
    except OSError:
        client.close()
        return None
    return client


def _daemon() -> socket.socket:
    client = _connect()
    if client:
        return client
    with open(SOCK + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter among the harness's parallel workers
        client = _connect()
        if client:
            return client
        with open(SOCK + ".log", "ab") as log:
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            client = _connect()
            if client:
                return client
            time.sleep(0.2)
    raise RuntimeError(f"the kernel daemon did not start; see {SOCK}.log")


def run(code: str, workdir: str):
    with _daemon() as client, client.makefile("rwb") as stream:
        stream.write(json.dumps({"code": code, "workdir": os.path.realpath(workdir)}).encode() + b"\n")
        stream.flush()
        reply = json.loads(stream.readline())
    return reply["ok"], reply["seconds"], reply["error"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        print(__doc__)
