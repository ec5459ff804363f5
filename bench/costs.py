"""What one question costs in CPU, part by part: each operation repeated N times, one at a time, on idle services.

The same deployment as ``bench/load.py`` (PostgreSQL + Redis with ``BENCH_DATABASE_URL`` and ``REDIS_URL``, else
embedded; production settings; a loopback model), one web process and one worker. Each operation runs N times in a row (never two at once) and the CPU each process used
meanwhile, read from /proc, is divided by N. The baseline is measured in the same run: a static file GET
through the same web process (the least a request can cost there); every web figure is also given as a ratio
to it.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/ca_me_costs REDIS_URL=redis://127.0.0.1:6379/5 \\
        flock /tmp/cpu.lock .venv/bin/python bench/costs.py [-n 40]

Use it with ``bench/load.py``: a burst of N questions asked in the same instant cannot be served faster than
N x (CPU per question) / cores, whatever the scheduling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.streaming import ws_connect  # noqa: E402


async def http_get(port: int, path: str, token: str | None = None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n".encode())
    await reader.read()
    writer.close()


def _runs_active(run_ids: list[int]) -> bool:
    from django.db import connection

    from analysis.models import Run

    try:
        return Run.objects.filter(pk__in=run_ids, status__in=Run.ACTIVE_STATUSES).exists()
    finally:
        connection.close()


class Meter:
    """CPU seconds of the web process, the worker (without its kernels) and PostgreSQL, per operation."""

    def __init__(self, web_pid: int, worker_pid: int, n: int) -> None:
        self.pids, self.n = (web_pid, worker_pid), n
        self.rows: list[tuple[str, float, float, float]] = []
        self.worker_per_run: dict[str, float] = {}  # kernel kind -> worker CPU over a run's two rows

    def read(self) -> tuple[float, float, float]:
        web, worker = (load._cpu_seconds(pid) for pid in self.pids)
        return web, worker, sum(map(load._cpu_seconds, load._named(b"postgres")))

    def record(self, name: str, before: tuple[float, float, float]) -> None:
        after = self.read()
        self.rows.append((name, *((b - a) * 1000 / self.n for a, b in zip(before, after, strict=True))))

    def report(self) -> None:
        baseline = self.rows[0][1]
        print(f"  {'operation':44s} {'web ms':>7s} {'x static':>8s} {'worker ms':>9s} {'postgres ms':>11s}")
        for name, web, worker, postgres in self.rows:
            print(f"  {name:44s} {web:7.1f} {web / max(baseline, 0.1):7.1f}x {worker:9.1f} {postgres:11.1f}")
        runs = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in self.worker_per_run.items())
        print(f"  worker CPU per run (its two rows): {runs}")


async def measure(people: list[dict], port: int, meter: Meter) -> None:
    async def settle() -> None:  # let the last operation's work (and the worker's heartbeat) land in its row
        await asyncio.sleep(1.0)

    before = meter.read()
    for _person in people:
        await http_get(port, "/favicon.ico")
    await settle()
    meter.record("static GET (baseline)", before)

    before = meter.read()
    for person in people:
        await http_get(port, "/api/v1/auth/me", person["token"])
    await settle()
    meter.record("authenticated API GET (/auth/me)", before)

    before = meter.read()
    for person in people:
        _reader, writer = await ws_connect("127.0.0.1", port, f"/ws/sessions/{person['session']}/?after=0",
                                           person["cookie"])  # fmt: skip
        await asyncio.sleep(0.05)  # the consumer's connect and (empty) snapshot
        writer.close()
    await settle()
    meter.record("websocket connect to a session", before)

    for label in ("fresh kernel", "kept kernel"):
        before, runs = meter.read(), []
        for person in people:
            _status, body = await load.http_post_json(
                port, f"/api/v1/sessions/{person['session']}/query", person["token"],
                {"question": f"[s{person['n']} q1] run: final_result = 1"},
            )  # fmt: skip
            runs.append(body["run_id"])
        posted = meter.read()
        meter.record(f"question POST, {label} (its run starts)", before)
        while await asyncio.to_thread(_runs_active, runs):
            await asyncio.sleep(0.2)
        await settle()
        meter.record(f"the rest of its run, {label}", posted)
        meter.worker_per_run[label] = meter.rows[-2][2] + meter.rows[-1][2]

        before = meter.read()
        for person, run_id in zip(people, runs, strict=True):
            done: asyncio.Future = asyncio.get_running_loop().create_future()
            await load.sse_follow(port, run_id, person["token"], [], done)
        await settle()
        meter.record("SSE stream of a finished run", before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=40, help="repetitions of each operation")
    args = parser.parse_args()
    embedded = not (os.environ.get("BENCH_DATABASE_URL") and os.environ.get("REDIS_URL"))
    from analysis.tests.llm_server import LoopbackLLM

    tmp = Path(tempfile.mkdtemp(prefix="bench-costs-"))
    with LoopbackLLM(responder=load.Model(0.0)) as llm:
        os.environ["LLM_BASE_URL"] = llm.base_url
        env = load.setup(tmp, embedded=embedded)
        ports, procs, workers = load.start(env, webs=1, workers=1, log_dir=tmp)
        try:
            people = load.people(args.n)
            meter = Meter(procs[0].pid, workers[0][0].pid, args.n)
            mode = "embedded (SQLite, in-memory layer)" if embedded else "PostgreSQL + Redis"
            print(f"costs bench: {mode}, 1 web + 1 worker, each operation {args.n} times, one at a time")
            asyncio.run(measure(people, ports[0], meter))
            meter.report()
            print(f"  (CPU from /proc: 10 ms ticks, so each figure is within {10 / args.n:.2f} ms; logs in {tmp})")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(20)


if __name__ == "__main__":
    main()
