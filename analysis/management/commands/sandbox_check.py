"""Print which sandbox isolation layers are active on this machine, and why any is not."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from analysis.sandbox import isolation_report
from analysis.sandbox.host import REQUIRED_LAYERS


class Command(BaseCommand):
    help = "Start a throwaway sandbox kernel and report every isolation layer it got (active or not, and why)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the structured report")

    def handle(self, *args, **options):
        report = isolation_report()
        if options.get("json"):
            self.stdout.write(json.dumps(report, indent=2))
            return
        for layer in report["layers"]:
            mark = "active  " if layer["active"] else "INACTIVE"
            need = "required" if layer["name"] in REQUIRED_LAYERS else "        "
            self.stdout.write(f"{mark}  {need}  {layer['name']:<18} {layer['detail']}")
        if report["complete"]:
            self.stdout.write("All required isolation layers are active.")
        else:
            self.stdout.write(
                f"Missing: {', '.join(report['missing'])} (production refuses to run unless SANDBOX_ALLOW_WEAK=1)"
            )
