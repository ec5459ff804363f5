"""Fixtures for the sandbox tests: one fork server per test module, a fresh workspace per test.

A test module that sets `RUN_EACH_TEST_FORKED = True` (the in-process policy tests) runs every
test, fixtures included, in a child forked from pytest: the policy patches libraries, builtins
hooks and sys process-wide, and none of that may leak into the tests that follow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import traceback

import pytest
from _pytest.reports import TestReport
from _pytest.runner import runtestprotocol

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


def pytest_runtest_protocol(item, nextitem):
    if not getattr(item.module, "RUN_EACH_TEST_FORKED", False):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in _run_forked(item):
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _run_forked(item) -> list:
    hook, config = item.config.hook, item.config
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run setup, call and teardown, send the reports, never return
        os.close(read_end)
        try:
            reports = runtestprotocol(item, log=False, nextitem=None)
            payload = [hook.pytest_report_to_serializable(config=config, report=r) for r in reports]
        except BaseException:
            payload = {"crash": traceback.format_exc()}
        with os.fdopen(write_end, "w") as out:
            json.dump(payload, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as src:
        text = src.read()
    _, status = os.waitpid(pid, 0)
    payload = json.loads(text) if text else {"crash": f"the forked test process died (status {status})"}
    if isinstance(payload, dict):
        return [TestReport(item.nodeid, item.location, {}, "failed", payload["crash"], "call")]
    return [hook.pytest_report_from_serializable(config=config, data=d) for d in payload]
