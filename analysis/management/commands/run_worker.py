"""``manage.py run_worker``: process queued runs until stopped (``--once``/``--burst``: drain, then exit)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from analysis import services
from analysis.worker import Worker


class Command(BaseCommand):
    help = "Run the analysis worker: claims queued runs and drives the agent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Process what is queued, then exit.")
        parser.add_argument("--burst", action="store_true", help="Same as --once.")
        parser.add_argument("--reap", action="store_true", help="Only fail stale runs (dead workers), then exit.")
        parser.add_argument("--poll", type=float, default=0.25, help="Seconds between queue polls without Redis.")

    def handle(self, *args, once: bool, burst: bool, reap: bool, poll: float, **options) -> None:
        if reap:
            reaped = services.runs_reap_stale()
            self.stdout.write(f"reaped {len(reaped)} run(s): {reaped}")
            return
        worker = Worker(poll_interval=poll)

        def _stop(signum, frame) -> None:  # finish the current run, then exit
            worker.stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        self.stdout.write(f"worker {worker.worker_id} started")
        try:
            processed = worker.run_forever(once=once or burst)
        finally:
            worker.close()
        self.stdout.write(f"worker {worker.worker_id} stopped after {processed} run(s)")
