"""Fixtures for the sandbox tests: one fork server per test module, a fresh workspace per test."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from analysis.sandbox import ForkServer, Limits, Sandbox

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
