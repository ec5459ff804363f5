"""The fork server lives exactly as long as the process that started it, whichever thread started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from analysis.sandbox import Limits, Sandbox
from analysis.sandbox.host import ForkServer

ROOT = Path(__file__).resolve().parents[3]
FAST = Limits(timeout=20, memory_mb=1024)


def _gone(pid: int) -> bool:
    """Ended (a zombie waiting for a parent that may never reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_fork_server_started_from_a_short_lived_thread_keeps_serving_kernels_after_it(workspace):
    started: list[ForkServer] = []
    thread = threading.Thread(target=lambda: started.append(ForkServer()))
    thread.start()
    thread.join()
    server = started[0]
    try:
        time.sleep(0.5)  # a parent-death signal tied to that thread would have killed it by now
        assert server.alive()
        with Sandbox(workspace, FAST, server=server) as sandbox:
            assert sandbox.run("x = 20\nfinal_result = x + 22").final_result == 42
    finally:
        server.close()


HOST = textwrap.dedent(
    """
    import json, sys, tempfile
    sys.path.insert(0, sys.argv[1])
    from analysis.sandbox import Limits, Sandbox
    from analysis.sandbox.host import ForkServer

    server = ForkServer()
    sandbox = Sandbox(tempfile.mkdtemp(), Limits(timeout=20, memory_mb=1024), server=server)
    assert sandbox.run("final_result = 1").final_result == 1
    print(json.dumps({"server": server.proc.pid, "kernel": sandbox._kernel.pid}), flush=True)
    sys.stdin.read()  # until killed
    """
)


def test_the_fork_server_and_its_kernels_end_when_the_host_process_is_killed():
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(ROOT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        pids = json.loads(host.stdout.readline())
        assert not _gone(pids["server"]) and not _gone(pids["kernel"])
        os.kill(host.pid, signal.SIGKILL)
        host.wait(10)
        deadline = time.monotonic() + 10
        while not (_gone(pids["server"]) and _gone(pids["kernel"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pids["server"]), "the fork server outlived its host"
        assert _gone(pids["kernel"]), "a kernel outlived its host"
    finally:
        if host.poll() is None:
            host.kill()
