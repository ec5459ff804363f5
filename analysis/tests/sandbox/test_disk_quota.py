"""The workspace quota mount outlives no process: written back at exit, adopted after a kill."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from analysis.sandbox import Limits, Sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the workspace quota is a mount, which needs root")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CHILD = """
import os, sys
from analysis.sandbox import ForkServer, Limits, Sandbox
sb = Sandbox(sys.argv[1], Limits(timeout=10, disk_mb=16), server=ForkServer(policy_module="analysis.sandbox.no_policy"))
result = sb.run("open('out.csv', 'w').write('a\\\\n1\\\\n')")
assert result.ok, result.error
assert os.path.ismount(sys.argv[1])
if sys.argv[2] == "killed":
    os._exit(0)  # like SIGKILL: no close(), no atexit
"""


def _child(workspace: str, how: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, workspace, how], cwd=ROOT, check=True, timeout=300, capture_output=True, text=True
    )
    return done.stderr


def test_a_process_that_exits_with_a_sandbox_open_leaves_no_mount_and_keeps_the_files(workspace):
    stderr = _child(workspace, "exits")

    assert "Exception ignored" not in stderr and "Error" not in stderr, stderr  # closed at exit, not in __del__
    assert not os.path.ismount(workspace)
    with open(os.path.join(workspace, "out.csv")) as f:
        assert f.read() == "a\n1\n"


def test_a_mount_left_by_a_killed_process_is_written_back_by_the_next_sandbox_anywhere(forkserver, workspace):
    _child(workspace, "killed")
    assert os.path.ismount(workspace)
    elsewhere = tempfile.mkdtemp(prefix="sandbox-quota-other-")

    with Sandbox(elsewhere, Limits(timeout=10, disk_mb=16), server=forkserver) as sb:
        assert sb.run("1").ok
    shutil.rmtree(elsewhere)

    assert not os.path.ismount(workspace)
    with open(os.path.join(workspace, "out.csv")) as f:
        assert f.read() == "a\n1\n"


def test_a_sandbox_on_a_killed_process_workspace_sees_its_files(forkserver, workspace):
    _child(workspace, "killed")

    with Sandbox(workspace, Limits(timeout=10, disk_mb=16), server=forkserver) as sb:
        result = sb.run("open('out.csv').read()")

    assert result.display == repr("a\n1\n")
    assert not os.path.ismount(workspace)
