"""Re-render the stored HTML of steps (after STEP_HTML_VERSION is bumped, or SECRET_KEY rotated)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from analysis.models import Step
from analysis.step_html import step_html_refresh


class Command(BaseCommand):
    help = "Store the HTML of every thought, code and answer step whose stored HTML is missing, stale or unsigned."

    def handle(self, *args, **options):
        count = step_html_refresh(Step.objects.all())
        self.stdout.write(f"{count} step{'s' if count != 1 else ''} re-rendered.")
