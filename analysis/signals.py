"""Signals other apps may listen to (the analysis app does not import them)."""

from django.dispatch import Signal

# Sent by the run worker after a run reached its final status, with ``run`` (the Run). Receivers run in the
# worker process, after the result is saved and published: slow follow-up work belongs here, not in the page.
run_finished = Signal()
