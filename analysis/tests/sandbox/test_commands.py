"""The sandbox management commands: sandbox_exec (with and without the language policy) and sandbox_check."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile

import pytest
from django.core.management import CommandError, call_command

from analysis.sandbox.host import REQUIRED_LAYERS

PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"


@pytest.fixture
def workspace():
    path = tempfile.mkdtemp(prefix="sandbox-cmd-ws-")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _exec(monkeypatch, code: str, *args: str) -> dict:
    monkeypatch.setattr("sys.stdin", io.StringIO(code))
    out = io.StringIO()
    call_command("sandbox_exec", *args, stdout=out)
    return json.loads(out.getvalue())


def test_no_policy_is_refused_without_debug_or_the_opt_in(settings, monkeypatch, workspace):
    settings.DEBUG = False
    settings.SANDBOX_ALLOW_NO_POLICY = False

    with pytest.raises(CommandError, match="SANDBOX_ALLOW_NO_POLICY=1"):
        _exec(monkeypatch, "open('ran', 'w')", "--workspace", workspace, "--no-policy")

    assert os.listdir(workspace) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="every OS layer is required with --no-policy, and they need root")
def test_no_policy_runs_plain_python_behind_every_os_layer(settings, monkeypatch, workspace):
    settings.DEBUG = False
    settings.SANDBOX_ALLOW_NO_POLICY = True
    code = (
        "import ctypes, os, socket, subprocess\n"
        "try:\n"
        f"    socket.socket(socket.AF_UNIX).connect({PG_SOCKET!r})\n"
        "    reached = True\n"
        "except OSError:\n"
        "    reached = False\n"
        "(os.getuid(), type(ctypes.CDLL(None)).__name__, reached, os.path.exists('/proc/1'))"
    )

    result = _exec(monkeypatch, code, "--workspace", workspace, "--no-policy")

    assert result["ok"], result["error"]
    assert result["display"] == "(65534, 'CDLL', False, False)"


def test_the_policy_is_on_without_no_policy(settings, monkeypatch, workspace):
    settings.DEBUG = True

    result = _exec(monkeypatch, "import ctypes", "--workspace", workspace)

    assert not result["ok"]
    assert "ctypes" in result["error"]["message"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the workspace quota is a mount, which needs root")
def test_sandbox_exec_takes_the_disk_quota_from_settings(settings, monkeypatch, workspace):
    settings.DEBUG = True
    settings.SANDBOX_DISK_MB = 8

    result = _exec(monkeypatch, "open('big.bin', 'wb').write(b'x' * (20 << 20))", "--workspace", workspace)

    assert not result["ok"]
    assert "No space left on device" in result["error"]["message"]
    assert os.path.getsize(os.path.join(workspace, "big.bin")) <= 8 << 20


@pytest.mark.skipif(os.geteuid() != 0, reason="the full set of layers needs root")
def test_sandbox_check_reports_every_layer_with_its_reason():
    out = io.StringIO()

    call_command("sandbox_check", "--json", stdout=out)

    report = json.loads(out.getvalue())
    by_name = {layer["name"]: layer for layer in report["layers"]}
    assert set(REQUIRED_LAYERS) <= set(by_name)
    assert {"mount_namespace", "capabilities", "disk_quota", "socket_policy"} <= set(REQUIRED_LAYERS)
    assert all(layer["active"] and layer["detail"] for layer in report["layers"]), report
    assert report["complete"] is True
    assert "only the kernel's own pid" in by_name["mount_namespace"]["detail"]
