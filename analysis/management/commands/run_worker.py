"""``manage.py run_worker``: process queued runs until stopped (``--once``/``--burst``: drain, then exit)."""

from __future__ import annotations

import gc
import signal
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from analysis import services
from analysis.worker import Worker


class Command(BaseCommand):
    help = "Run the analysis worker: claims queued runs and drives the agent for many of them at once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Process what is queued, then exit.")
        parser.add_argument("--burst", action="store_true", help="Same as --once.")
        parser.add_argument(
            "--reap", action="store_true", help="Only fail stale runs and forget dead workers, then exit."
        )
        parser.add_argument("--poll", type=float, default=0.25, help="Seconds between queue polls without Redis.")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help=f"Runs driven at once (default RUN_WORKER_CONCURRENCY={settings.RUN_WORKER_CONCURRENCY}).",
        )
        parser.add_argument("--no-warm-up", action="store_true", help="Skip starting the sandbox before claiming.")

    def handle(
        self, *args, once: bool, burst: bool, reap: bool, poll: float, concurrency, no_warm_up: bool, **options
    ) -> None:
        if reap:
            reaped = services.runs_reap_stale()
            # Their runs are failed: the dead workers' registry rows go too, so questions queue again for the next
            # worker instead of being refused as if workers were registered but dead.
            forgotten = services.workers_forget_stale(older_than=timedelta(seconds=settings.RUN_STALE_SECONDS))
            self.stdout.write(f"reaped {len(reaped)} run(s): {reaped}; forgot {forgotten} dead worker(s)")
            return
        worker = Worker(poll_interval=poll, concurrency=concurrency)

        def _stop(signum, frame) -> None:  # finish the runs in flight, then exit
            worker.stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if not no_warm_up:
            worker.warm_up()
        # What import and warm-up made lives as long as the process: out of the collector's sight, a full
        # collection walks only what runs made (300,000 objects otherwise; 0.2-0.7 s of CPU per collection).
        gc.freeze()
        self.stdout.write(f"worker {worker.worker_id} started (concurrency {worker.concurrency})", ending="\n")
        self.stdout.flush()
        try:
            processed = worker.run_forever(once=once or burst)
        finally:
            worker.close()
        self.stdout.write(f"worker {worker.worker_id} stopped after {processed} run(s)")
