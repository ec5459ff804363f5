"""Fixtures for the sandbox tests: one fork server per test module, a fresh workspace per test."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading

import pytest

from analysis.sandbox import ForkServer, Limits, Sandbox
from analysis.tests.sandbox.redteam import TOKEN

FAST = Limits(timeout=3, memory_mb=1024)


@pytest.fixture(scope="module")
def forkserver():
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def workspace():
    path = tempfile.mkdtemp(prefix="sandbox-test-ws-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox(forkserver, workspace):
    with Sandbox(workspace, FAST, server=forkserver) as sb:
        yield sb


@pytest.fixture(scope="module")
def outside():
    """A world-writable directory outside every workspace, holding the canary: only the sandbox,
    not file modes, keeps kernels out of it."""
    path = tempfile.mkdtemp(prefix="sandbox-outside-")
    os.chmod(path, 0o777)
    with open(os.path.join(path, "secret.txt"), "w") as f:
        f.write(f"name,value\n{TOKEN},1\n")
    os.chmod(os.path.join(path, "secret.txt"), 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def listener():
    """A TCP server on the host's loopback that records the connections it receives."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    received = []
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            received.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def marker_dir():
    """Where a program that managed to run would leave a file; world-writable on purpose."""
    path = tempfile.mkdtemp(prefix="sandbox-exec-")
    os.chmod(path, 0o777)
    script = os.path.join(path, "evil.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\ntouch {path}/ran\n")
    os.chmod(script, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    yield path
    shutil.rmtree(path, ignore_errors=True)
