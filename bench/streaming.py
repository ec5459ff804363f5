"""Streaming latency: from a step being saved (by a worker) to its arrival at a websocket client.

Real processes on loopback: a daphne server and run workers (``manage.py run_worker``) as subprocesses,
a scripted OpenAI-compatible model server (no model time worth mentioning), trivial code per step, and N
websocket clients (a minimal stdlib client: the ``websockets`` package is not installed here). Prints p50/p99
latency at 1 and at 50 concurrent sessions, and the worker's own overhead per step (saving, rendering,
publishing; excluding model and code time), each with its ratio to the target.

    .venv/bin/python bench/streaming.py [--sessions 1 50] [--steps 10] [--workers 2]

Embedded by default (SQLite + in-memory layer: the web process tails the DB); set REDIS_URL to measure the
Redis channel-layer path instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_P50_MS, TARGET_P99_MS, TARGET_OVERHEAD_MS = 20.0, 100.0, 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a minimal websocket client (RFC 6455, receive-only) ------------------------------------------


async def ws_connect(host: str, port: int, path: str, cookie: str):
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n"
            f"Cookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in status.split(b"\r\n")[0]:
        raise RuntimeError(f"websocket refused: {status[:200]!r}")
    return reader, writer


async def ws_recv(reader) -> str | None:
    chunks: list[bytes] = []
    while True:
        b0, b1 = await reader.readexactly(2)
        opcode, length = b0 & 0x0F, b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        mask = await reader.readexactly(4) if b1 & 0x80 else None
        payload = await reader.readexactly(length)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        if opcode == 8:
            return None
        if opcode in (0, 1, 2):
            chunks.append(payload)
            if b0 & 0x80:
                return b"".join(chunks).decode()


# --- the scripted model ----------------------------------------------------------------------------


def make_responder(steps: int):
    from analysis.tests.llm_server import text_reply, tool_reply

    def responder(body: dict) -> dict:
        done = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        if done < steps:
            return tool_reply(f"x = {done}\nprint(x)", f"Step {done + 1}.")
        return text_reply("Done.")

    return responder


# --- one measurement -------------------------------------------------------------------------------


async def client(
    port: int, session_id: int, cookie: str, arrivals: dict[int, float], ready: asyncio.Event, late: list[int]
):
    """Records each step's first arrival until the run's final status (BENCH_DEBUG: and 1 s after, to catch
    steps arriving late, which the page would show after the run had ended)."""
    reader, writer = await ws_connect("127.0.0.1", port, f"/ws/sessions/{session_id}/?after=0", cookie)
    ready.set()
    deadline = None
    try:
        while True:
            timeout = 300 if deadline is None else max(0.01, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(ws_recv(reader), timeout=timeout)
            except TimeoutError:
                return
            now = time.time()
            if message is None:
                return
            for pk in re.findall(r'data-step-pk="(\d+)"', message):
                if int(pk) in arrivals and os.environ.get("BENCH_DEBUG"):
                    print("duplicate", pk)
                if deadline is not None:
                    late.append(int(pk))
                arrivals.setdefault(int(pk), now)
            if deadline is None and re.search(r'data-status="(succeeded|failed|cancelled)"', message):
                deadline = time.monotonic() + (1.0 if os.environ.get("BENCH_DEBUG") else 0.0)
    finally:
        writer.close()


async def measure(*, n_sessions: int, port: int, users, steps: int) -> list[float]:
    from asgiref.sync import sync_to_async

    from analysis.models import Step
    from analysis.services import run_start
    from analysis.tests.factories import AnalysisSessionFactory

    alice, project, cookie = users
    sessions = await sync_to_async(
        lambda: [AnalysisSessionFactory(project=project, user=alice) for _ in range(n_sessions)]
    )()
    arrivals: dict[int, float] = {}
    late: list[int] = []
    readies = [asyncio.Event() for _ in sessions]
    tasks = [
        asyncio.create_task(client(port, s.pk, cookie, arrivals, r, late))
        for s, r in zip(sessions, readies, strict=True)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(0.5)
    await sync_to_async(lambda: [run_start(session=s, user=alice, question="bench") for s in sessions])()
    await asyncio.gather(*tasks)
    created = await sync_to_async(
        lambda: dict(Step.objects.filter(run__session__in=sessions).values_list("pk", "created_at"))
    )()
    missing = set(created) - set(arrivals)
    if missing:
        info = await sync_to_async(
            lambda: list(
                Step.objects.filter(pk__in=missing).values_list("pk", "run_id", "ordinal", "kind", "run__status")
            )
        )()
        print(f"  WARNING: {len(missing)} step(s) never arrived: {info[:10]}")
    if late:
        print(f"  WARNING: {len(late)} step(s) arrived after their run's final status: {late[:10]}")
    if os.environ.get("BENCH_DEBUG"):
        kinds = await sync_to_async(lambda: dict(Step.objects.filter(pk__in=created).values_list("pk", "ordinal")))()
        slow = sorted(
            ((arrivals[pk] - created[pk].timestamp()) * 1000, kinds[pk], pk) for pk in created if pk in arrivals
        )[-25:]
        print("slowest (ms, ordinal, pk):", [(round(a), o, p) for a, o, p in slow])
    return [(arrivals[pk] - created[pk].timestamp()) * 1000 for pk in created if pk in arrivals]


def worker_overhead(*, steps: int) -> float:
    """Per step, in-process: run wall time minus code execution and model time (a zero-cost scripted model)."""
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import FunctionModel

    from accounts.models import User
    from analysis.models import Run
    from analysis.services import run_claim, run_start
    from analysis.tests.factories import AnalysisSessionFactory
    from analysis.worker import Worker

    def scripted(messages, info):
        done = sum(1 for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart))
        if done < steps:
            return ModelResponse(
                parts=[TextPart(f"Step {done + 1}."), ToolCallPart("run_python", {"code": f"x = {done}"})]
            )
        return ModelResponse(parts=[TextPart("Done.")])

    alice = User.objects.get(email="bench@example.com")
    session = AnalysisSessionFactory(project=alice.owned_projects.first(), user=alice)
    worker = Worker(worker_id="bench-overhead", model=FunctionModel(scripted, model_name="scripted"))
    try:
        for _warm in range(2):  # the first run starts the kernel
            run = run_start(session=session, user=alice, question="warm")
            claimed = run_claim(worker_id=worker.worker_id)
            outcome = worker.process(claimed)
        n_steps = Run.objects.get(pk=run.pk).steps.count()
        execute = sum(t["execute"] for t in outcome.timings)
        # The agent's wall time covers prompt building, every model call (a zero-cost scripted model here),
        # every step save + render + publish, and the code executions, which are subtracted.
        return (outcome.wall_seconds - execute) / n_steps * 1000
    finally:
        worker.close()


def setup_django(tmp: Path) -> dict:
    env = {
        **os.environ,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "codingagent.settings",
        "DATA_DIR": str(tmp),
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}"),
        "OPENROUTER_API_KEY": "",
        "LLM_MODEL": "bench-model",
        "SANDBOX_ALLOW_WEAK": os.environ.get("SANDBOX_ALLOW_WEAK", "0"),
        "LOG_LEVEL": "WARNING",
        "AGENT_MAX_TOOL_CALLS": "50",
        "RUN_MAX_ACTIVE_PER_USER": "1000",  # one user asks in every session here; the cap would queue them
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--steps", type=int, default=10, help="tool calls per run (each makes thought+code+output)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-streaming-"))

    from analysis.tests.llm_server import LoopbackLLM

    with LoopbackLLM(responder=make_responder(args.steps)) as llm:
        os.environ["LLM_BASE_URL"] = llm.base_url
        env = setup_django(tmp)
        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.contrib.sessions.backends.db import SessionStore

        from accounts.models import User
        from projects.services import project_create

        alice = User.objects.create_user("bench@example.com", "bench-password-1")
        project = project_create(owner=alice, name="Bench")
        store = SessionStore()
        store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(alice.pk), settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = alice.get_session_auth_hash()
        store.create()
        port = free_port()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--websocket_connect_timeout", "30",
                 "codingagent.asgi:application"],  # as the Dockerfile runs it
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        ] + [
            subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--poll", "0.05"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for _ in range(args.workers)
        ]  # fmt: skip
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory (DB tailer)"
            print(f"streaming bench: {args.steps} tool calls/run, {args.workers} workers, layer {layer}")
            # Warm up: the first runs start sandbox kernels in each worker.
            asyncio.run(measure(n_sessions=args.workers, port=port, users=(alice, project, store.session_key), steps=2))
            for n in args.sessions:
                lat = asyncio.run(
                    measure(n_sessions=n, port=port, users=(alice, project, store.session_key), steps=args.steps)
                )
                p50 = statistics.median(lat)
                p99 = statistics.quantiles(lat, n=100)[98] if len(lat) >= 2 else lat[0]
                print(
                    f"  {n:>3} session(s), {len(lat)} steps: p50 {p50:6.1f} ms (target {TARGET_P50_MS:.0f}, "
                    f"ratio {p50 / TARGET_P50_MS:.2f})   p99 {p99:6.1f} ms (target {TARGET_P99_MS:.0f}, "
                    f"ratio {p99 / TARGET_P99_MS:.2f})"
                )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        overhead = worker_overhead(steps=args.steps)
        print(
            f"  worker overhead per step (excl. model and code): {overhead:.2f} ms "
            f"(target {TARGET_OVERHEAD_MS:.0f}, ratio {overhead / TARGET_OVERHEAD_MS:.2f})"
        )


if __name__ == "__main__":
    main()
