"""Sandboxed execution of analysis code (ARCHITECTURE.md §4). No Django imports here.

with Sandbox(workspace=dir, limits=Limits(timeout=30)) as sb:
    result = sb.run("df = pd.read_csv('sales.csv')\\ndf.describe()")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from analysis.sandbox.host import (
    REQUIRED_LAYERS,
    ForkServer,
    Sandbox,
    SandboxError,
    SandboxIsolationError,
    default_server,
)
from analysis.sandbox.result import Limits, Result

_POLICY_NAMES = {"restricted_exec", "restricted_run", "PolicyError", "NOTHING", "harden_libraries"}


def __getattr__(name: str) -> Any:
    # The language policy is re-exported lazily so the host can use Sandbox without loading RestrictedPython.
    if name in _POLICY_NAMES:
        from analysis.sandbox import policy

        return getattr(policy, name)
    raise AttributeError(name)


def isolation_report(server: ForkServer | None = None) -> dict[str, Any]:
    """Start a throwaway kernel and return the isolation layers it really got on this machine."""
    workspace = tempfile.mkdtemp(prefix="sandbox-check-")
    try:
        with Sandbox(workspace, server=server) as sandbox:
            layers = sandbox.layers
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    missing = [
        layer["name"]
        for layer in layers
        if not layer["active"]
        and (layer["name"] in REQUIRED_LAYERS or layer["name"] == "unprivileged_uid" and os.geteuid() == 0)
    ]
    return {"layers": layers, "missing": missing, "complete": not missing}


__all__ = [
    "ForkServer",
    "Limits",
    "NOTHING",
    "PolicyError",
    "Result",
    "Sandbox",
    "SandboxError",
    "SandboxIsolationError",
    "default_server",
    "isolation_report",
    "restricted_exec",
    "restricted_run",
]
