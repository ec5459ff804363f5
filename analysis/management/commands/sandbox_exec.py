"""Run code from stdin in a fresh sandbox kernel and print the result as one JSON object."""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analysis.sandbox import ForkServer, Limits, Sandbox, SandboxError
from analysis.sandbox.host import NO_POLICY_MODULE

NO_POLICY_REFUSED = (
    "--no-policy runs code as plain Python with only the OS isolation layers in its way; it is for red-team "
    "testing and is refused unless DEBUG=1 or SANDBOX_ALLOW_NO_POLICY=1."
)


class Command(BaseCommand):
    help = "Execute Python code read from stdin inside the sandbox; print the result as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="directory the code runs in (its datasets, its outputs)")
        parser.add_argument("--timeout", type=float, default=settings.SANDBOX_TIMEOUT)
        parser.add_argument("--memory-mb", type=int, default=settings.SANDBOX_MEMORY_MB)
        parser.add_argument("--disk-mb", type=int, default=settings.SANDBOX_DISK_MB, help="workspace disk quota")
        parser.add_argument(
            "--no-policy",
            action="store_true",
            help="red team only: no language policy (any import, os, ctypes, subprocess); every OS layer stays on "
            "and must be active. Needs DEBUG=1 or SANDBOX_ALLOW_NO_POLICY=1.",
        )

    def handle(self, *args, workspace: str, timeout: float, memory_mb: int, disk_mb: int, no_policy: bool, **options):
        if no_policy and not (settings.DEBUG or settings.SANDBOX_ALLOW_NO_POLICY):
            raise CommandError(NO_POLICY_REFUSED)
        code = sys.stdin.read()
        limits = Limits(timeout=timeout, memory_mb=memory_mb, disk_mb=disk_mb)
        # Without the policy the OS layers are all that stands, so a red-team run never goes ahead without them.
        require = settings.SANDBOX_REQUIRE_ISOLATION or (no_policy and not settings.SANDBOX_ALLOW_WEAK)
        server = None
        try:
            server = ForkServer(policy_module=NO_POLICY_MODULE) if no_policy else None
            with Sandbox(workspace, limits, require_isolation=require, server=server) as sandbox:
                result = sandbox.run(code)
        except SandboxError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if server is not None:
                server.close()
        self.stdout.write(json.dumps(result.to_dict()))
