"""Run code from stdin in a fresh sandbox kernel and print the result as one JSON object."""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analysis.sandbox import Limits, Sandbox, SandboxError


class Command(BaseCommand):
    help = "Execute Python code read from stdin inside the sandbox; print the result as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="directory the code runs in (its datasets, its outputs)")
        parser.add_argument("--timeout", type=float, default=getattr(settings, "SANDBOX_TIMEOUT", 30))
        parser.add_argument("--memory-mb", type=int, default=getattr(settings, "SANDBOX_MEMORY_MB", 2048))

    def handle(self, *args, workspace: str, timeout: float, memory_mb: int, **options):
        code = sys.stdin.read()
        limits = Limits(timeout=timeout, memory_mb=memory_mb)
        require = getattr(settings, "SANDBOX_REQUIRE_ISOLATION", False)
        try:
            with Sandbox(workspace, limits, require_isolation=require) as sandbox:
                result = sandbox.run(code)
        except SandboxError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result.to_dict()))
