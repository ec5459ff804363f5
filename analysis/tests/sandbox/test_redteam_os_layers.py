"""Red team with the language policy switched off: plain exec in the kernel, so only the
process and OS layers (uid, Landlock, seccomp, network namespace, rlimits) stand in the way.
The attacks may run without error here; they must still not reach anything outside."""

from __future__ import annotations

import os

import pytest

from analysis.sandbox import ForkServer
from analysis.tests.sandbox import test_redteam_files as files
from analysis.tests.sandbox import test_redteam_processes as processes
from analysis.tests.sandbox.redteam import TOKEN, assert_still_serves, leaked


@pytest.fixture(scope="module")
def forkserver():
    server = ForkServer(policy_module="analysis.tests.sandbox.no_policy")
    yield server
    server.close()


@pytest.mark.parametrize("code", files.READS.values(), ids=files.READS.keys())
def test_os_layers_alone_keep_the_canary_unread(sandbox, forkserver, workspace, outside, code):
    files._setup(workspace, outside)

    result = sandbox.run(files._fill(code, workspace, outside, os.path.join(outside, "unused")))

    assert not leaked(result, TOKEN)
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("code", files.WRITES.values(), ids=files.WRITES.keys())
def test_os_layers_alone_keep_writes_in_the_workspace(sandbox, forkserver, workspace, outside, code):
    files._setup(workspace, outside)
    target = os.path.join(outside, "os-only-target.txt")

    sandbox.run(files._fill(code, workspace, outside, target))

    written = [n for n in os.listdir(outside) if n != "secret.txt"]
    assert written == []
    assert not os.path.exists("/dev/shm/os-only-target.txt")
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("code", processes.NETWORK.values(), ids=processes.NETWORK.keys())
def test_os_layers_alone_keep_the_network_unreachable(sandbox, forkserver, listener, code):
    port, received = listener
    before = len(received)

    sandbox.run(code.replace("URL", repr(f"http://127.0.0.1:{port}/data.csv")).replace("PORT", str(port)))

    assert len(received) == before
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("code", processes.PROCESSES.values(), ids=processes.PROCESSES.keys())
def test_os_layers_alone_stop_programs_and_processes(sandbox, forkserver, marker_dir, listener, code):
    marker = os.path.join(marker_dir, "ran")
    filled = code.replace("MARKER", repr(marker)).replace("SCRIPT", repr(os.path.join(marker_dir, "evil.sh")))

    sandbox.run(filled.replace("PORT", str(listener[0])))

    assert not os.path.exists(marker)
    assert_still_serves(sandbox, forkserver)


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop needs root")
def test_os_layers_alone_run_user_code_as_nobody_without_a_view_of_the_filesystem(sandbox):
    uid = sandbox.run("import os\nos.getuid()")
    listing = sandbox.run("import os\nos.listdir('/')")

    assert uid.display == "65534"
    assert listing.error["type"] == "PermissionError"
