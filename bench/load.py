"""Many people at once: N sessions x 3 questions on web processes and run workers (real processes, loopback).

Each session is its own user. Its first question sets variables, the second and third use them (so a question
that ran away from its kernel shows as "state lost"). A scripted OpenAI-compatible model on loopback answers
every call after ``--delay`` seconds (2 s, as a real model would take), so time to answer minus the model's
own time is what the platform adds: queueing, claims, kernels, saving, streaming. Every session has one
websocket follower and every run one SSE follower; neither reconnects, so a dropped or repeated step counts.

    # PostgreSQL + Redis, 2 web + 2 workers, 50 sessions (use your own database and Redis db):
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/ca_me_load REDIS_URL=redis://127.0.0.1:6379/4 \\
        flock /tmp/cpu.lock .venv/bin/python bench/load.py
    # The same 50 sessions arriving over 10 s (one every 0.2 s) instead of all in the same instant:
    BENCH_DATABASE_URL=... REDIS_URL=... flock /tmp/cpu.lock .venv/bin/python bench/load.py --ramp 10
    # Embedded (`make run` defaults: SQLite, in-memory layer, one web + one worker): 10 at once vs one alone
    flock /tmp/cpu.lock .venv/bin/python bench/load.py --embedded

Prints runs per minute, p50/p99 of (time to answer - model time) overall and per question of a session, errors,
state lost, steps lost / duplicated / out of order per follower kind, and the PSS of each worker and of its kernels
(read from /proc at the end), each against its target. The services run with production settings (DEBUG off).
Each worker gets enough run slots for every session to run at once (``--concurrency``, default sessions / workers,
at least 16): with the default 16, 50 questions asked together on 2 workers queue 18 behind a whole run by design.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.streaming import free_port, ws_connect, ws_recv  # noqa: E402

TARGET_P99_OVERHEAD_S = 1.0
TARGET_EMBEDDED_RATIO = 1.5
FOLLOWER_GRACE_S = 10.0  # how long a websocket follower may still bring a session's last steps
TAG = re.compile(r"\[(s\d+ q\d+)\]")


# --- the scripted model --------------------------------------------------------------------------


class Model:
    """Runs the code after ``run:`` in the question, then answers with the tool's output; ``delay`` per call."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.seconds: dict[str, float] = defaultdict(float)  # question tag -> the model's own time
        self.calls: dict[str, list[tuple[float, float]]] = defaultdict(list)  # tag -> (start, end) wall times
        self.lock = threading.Lock()

    def __call__(self, body: dict) -> dict:
        from analysis.tests.llm_server import text_reply, tool_reply

        started, wall = time.monotonic(), time.time()
        messages = body["messages"]
        question = next(_text(m) for m in reversed(messages) if m["role"] == "user")
        time.sleep(self.delay)
        tag = TAG.search(question)
        with self.lock:
            self.seconds[tag.group(1) if tag else "?"] += time.monotonic() - started
            self.calls[tag.group(1) if tag else "?"].append((wall, time.time()))
        if messages[-1]["role"] == "tool":
            return text_reply("RESULT " + _text(messages[-1])[-300:])
        return tool_reply(question.split("run:", 1)[1].strip())


def _text(message: dict) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


QUESTIONS = [
    ("v = {n}\nw = v * 2\nfinal_result = v", "{n}"),
    ("w = w + v\nfinal_result = w", "{w}"),
    ("final_result = v + w", "{t}"),
]


def expected(n: int, q: int) -> str:
    return QUESTIONS[q][1].format(n=n, w=3 * n, t=4 * n)


# --- minimal HTTP (stdlib asyncio) ---------------------------------------------------------------


async def http_post_json(port: int, path: str, token: str, payload: dict) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps(payload).encode()
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )
    raw = await reader.read()
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"chunked" in head.lower():
        rest = _dechunk(rest)
    return status, json.loads(rest or b"{}")


def _dechunk(data: bytes) -> bytes:
    out, i = b"", 0
    while i < len(data):
        end = data.index(b"\r\n", i)
        size = int(data[i:end].split(b";")[0], 16)
        if size == 0:
            break
        out += data[end + 2 : end + 2 + size]
        i = end + 2 + size + 2
    return out


async def sse_follow(port: int, run_id: int, token: str, record: list, done: asyncio.Future) -> None:
    """One SSE connection for a run, never reconnected: records (ordinal) per step event, resolves ``done``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /api/v1/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    chunked = b"chunked" in head.lower()
    buffer = b""
    try:
        while not done.done():
            if chunked:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    break
                buffer += await reader.readexactly(size + 2)
            else:
                piece = await reader.read(65536)
                if not piece:
                    break
                buffer += piece
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                fields = dict(
                    line.split(": ", 1) for line in event.decode().splitlines() if ": " in line and line[0] != ":"
                )
                if fields.get("event") == "step":
                    record.append(int(fields["id"]))
                elif fields.get("event") == "done" and not done.done():
                    done.set_result((time.monotonic(), json.loads(fields["data"])))
    finally:
        writer.close()
        if not done.done():
            done.set_result((time.monotonic(), {"status": "stream-ended", "answer": "", "error": "SSE closed"}))


async def ws_follow(port: int, session_id: int, cookie: str, record: list) -> None:
    """One websocket per session for all its questions, never reconnected: records step pks as they arrive.
    Runs until cancelled (a timeout around a read would cut a frame in half)."""
    try:
        reader, writer = await ws_connect("127.0.0.1", port, f"/ws/sessions/{session_id}/?after=0", cookie)
    except (ConnectionError, asyncio.IncompleteReadError):  # e.g. daphne's handshake budget ran out
        record.append(-2)
        return
    try:
        while True:
            try:
                message = await ws_recv(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                message = None
            if message is None:
                record.append(-1)  # closed by the server
                return
            record.extend(int(pk) for pk in re.findall(r'data-step-pk="(\d+)"', message))
    finally:
        writer.close()


# --- the deployment --------------------------------------------------------------------------------


def setup(tmp: Path, *, embedded: bool) -> dict:
    url = f"sqlite:///{tmp / 'load.sqlite3'}" if embedded else os.environ["BENCH_DATABASE_URL"]
    env = {
        **os.environ,
        # Production settings (cached templates, no query log), on plain HTTP over loopback.
        "DEBUG": "0",
        "SECRET_KEY": "bench-load-not-a-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",
        "DJANGO_SETTINGS_MODULE": "codingagent.settings",
        "DATA_DIR": str(tmp),
        "DATABASE_URL": url,
        "OPENROUTER_API_KEY": "",
        "LLM_MODEL": "load-model",
        "LOG_LEVEL": "WARNING",
        "SANDBOX_ALLOW_WEAK": os.environ.get("SANDBOX_ALLOW_WEAK", "0"),
    }
    if embedded:
        env.pop("REDIS_URL", None)
    elif not env.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL (your own Redis db) and BENCH_DATABASE_URL, or use --embedded")
    if not embedded:
        _database_recreate(url)
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # the bench's own Redis db only
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def _database_recreate(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


_people_made = 0


def people(n: int) -> list[dict]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User
    from accounts.services import auth_tokens_issue
    from analysis.models import AnalysisSession
    from projects.services import project_create

    global _people_made
    out = []
    for i in range(_people_made, _people_made + n):
        user = User.objects.create_user(f"load{i}@example.com", "load-password-1")
        project = project_create(owner=user, name=f"Load {i}")
        session = AnalysisSession.objects.create(project=project, user=user, title=f"S{i}", model="")
        store = SessionStore()
        store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(user.pk), settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        out.append(
            {
                "n": i + 1,
                "session": session.pk,
                "cookie": store.session_key,
                "token": auth_tokens_issue(user=user)["access"],
            }
        )
    _people_made += n
    return out


def start(env: dict, *, webs: int, workers: int, log_dir: Path) -> tuple[list[int], list[subprocess.Popen], list]:
    ports, procs = [], []
    for i in range(webs):
        port = free_port()
        ports.append(port)
        log = (log_dir / f"web{i}.log").open("w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--websocket_connect_timeout", "30",
                 "codingagent.asgi:application"],  # as the Dockerfile runs it
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
    worker_procs = []
    for i in range(workers):
        log = (log_dir / f"worker{i}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        procs.append(proc)
        worker_procs.append((proc, log_dir / f"worker{i}.log"))
    import socket

    for port in ports:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
    for _proc, log in worker_procs:  # warmed up and claiming
        for _ in range(1800):
            if "started (concurrency" in log.read_text():
                break
            time.sleep(0.1)
    return ports, procs, worker_procs


# --- one load ------------------------------------------------------------------------------------


async def session_flow(
    person: dict, ports: list[int], questions: int, model: Model, results: list, start_after: float = 0.0
) -> None:
    await asyncio.sleep(start_after)
    port = ports[person["n"] % len(ports)]
    ws_record: list[int] = []
    follower = asyncio.create_task(
        ws_follow(ports[(person["n"] + 1) % len(ports)], person["session"], person["cookie"], ws_record)
    )
    await asyncio.sleep(0.2)
    for q in range(questions):
        tag = f"s{person['n']} q{q + 1}"
        code = QUESTIONS[q][0].format(n=person["n"])
        asked, asked_wall = time.monotonic(), time.time()
        status, body = await http_post_json(
            port, f"/api/v1/sessions/{person['session']}/query", person["token"], {"question": f"[{tag}] run: {code}"}
        )
        if status != 202:
            results.append({"tag": tag, "error": f"HTTP {status}: {body}", "ws": ws_record, "sse": []})
            continue
        accepted_wall = time.time()
        sse_record: list[int] = []
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        sse = asyncio.create_task(sse_follow(port, body["run_id"], person["token"], sse_record, done))
        answered, final = await asyncio.wait_for(done, timeout=600)
        sse.cancel()
        results.append(
            {
                "tag": tag,
                "n": person["n"],
                "q": q,
                "run": body["run_id"],
                "session": person["session"],
                "seconds": answered - asked,
                "final": final,
                "sse": sse_record,
                "asked": asked,
                "answered": answered,
                "wall": (asked_wall, accepted_wall, asked_wall + (answered - asked)),
            }
        )
    # The last steps' pushes: a step that arrives late is not lost (under load a push can take seconds).
    wanted = await asyncio.to_thread(_session_step_pks, person["session"])
    deadline = time.monotonic() + FOLLOWER_GRACE_S
    while not wanted <= set(ws_record) and time.monotonic() < deadline and not follower.done():
        await asyncio.sleep(0.1)
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower
    results.append({"ws_session": person["session"], "ws": ws_record})


def _session_step_pks(session_id: int) -> set[int]:
    from django.db import connection

    from analysis.models import Step

    try:
        return set(Step.objects.filter(run__session_id=session_id).values_list("pk", flat=True))
    finally:
        connection.close()


def check_streams(results: list) -> dict:
    from analysis.models import Step

    runs = [r for r in results if "run" in r]
    steps = defaultdict(list)
    for run_id, pk, ordinal in (
        Step.objects.filter(run_id__in=[r["run"] for r in runs])
        .values_list("run_id", "pk", "ordinal")
        .order_by("run_id", "ordinal")
    ):
        steps[run_id].append((pk, ordinal))
    report = {"sse": [0, 0, 0], "ws": [0, 0, 0], "ws_closed": 0, "ws_refused": 0}
    for r in runs:
        ordinals = [o for _pk, o in steps[r["run"]]]
        got = r["sse"]
        report["sse"][0] += len(set(ordinals) - set(got))
        report["sse"][1] += len(got) - len(set(got))
        report["sse"][2] += sum(1 for a, b in zip(got, got[1:], strict=False) if b <= a)
    by_session = defaultdict(list)
    for r in runs:
        by_session[r["session"]].extend(pk for pk, _o in steps[r["run"]])
    for r in results:
        if "ws_session" not in r:
            continue
        got = [pk for pk in r["ws"] if pk >= 0]
        report["ws_closed"] += int(-1 in r["ws"])
        report["ws_refused"] += int(-2 in r["ws"])
        wanted = by_session[r["ws_session"]]
        report["ws"][0] += len(set(wanted) - set(got))
        report["ws"][1] += len(got) - len(set(got))
        report["ws"][2] += sum(1 for a, b in zip(got, got[1:], strict=False) if b <= a)
    return report


def memory_report(workers: list) -> list[str]:
    """PSS read now from /proc for each worker process and everything below it (fork server, kernels)."""
    from analysis.models import WorkerProcess
    from codingagent.lib.procmem import tree_memory

    kernels = {w.pid: w.kernels for w in WorkerProcess.objects.all()}
    lines = []
    for proc, _log in workers:
        memory = tree_memory(proc.pid)
        n = kernels.get(proc.pid, 0)
        lines.append(
            f"    worker pid {proc.pid}: worker PSS {memory.self_mb:.0f} MB, {n} kernels + fork server PSS "
            f"{memory.descendants_mb:.0f} MB ({memory.descendants_mb / max(1, n):.0f} MB per kernel)"
        )
    return lines


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _named(name: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", "rb") as fh:
                    if fh.read().strip().startswith(name):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def cpu_parts(web_pids: list[int], workers: list) -> dict[str, float]:
    """CPU seconds so far of each part of the deployment (summed over its processes), read from /proc."""
    from codingagent.lib.procmem import descendants

    worker_pids = [proc.pid for proc, _log in workers]
    return {
        "web": sum(map(_cpu_seconds, web_pids)),
        "worker": sum(map(_cpu_seconds, worker_pids)),
        "kernels": sum(_cpu_seconds(k) for w in worker_pids for k in descendants(w)),
        "postgres": sum(map(_cpu_seconds, _named(b"postgres"))),
        "redis": sum(map(_cpu_seconds, _named(b"redis-server"))),
        "bench clients + model": _cpu_seconds(os.getpid()),
    }


def cpu_report(before: dict[str, float], after: dict[str, float], runs: int) -> str:
    used = {part: after[part] - before[part] for part in after}
    parts = ", ".join(f"{part} {seconds * 1000 / max(1, runs):.0f}" for part, seconds in used.items())
    return f"    CPU per run (ms): {parts}; total {sum(used.values()) * 1000 / max(1, runs):.0f}"


STAGES = ("ask -> 202", "202 -> claimed", "claimed -> 1st model call", "between model calls", "last call -> saved",
          "saved -> SSE done")  # fmt: skip


def stage_report(runs: list, model: Model) -> list[str]:
    """Where a question's time goes, stage by stage (p50 / p99 in seconds), from the bench's clocks, the model's
    and the database's timestamps (one machine, one wall clock)."""
    from analysis.models import Run

    stamps = {r.pk: r for r in Run.objects.filter(pk__in=[r["run"] for r in runs]).only("created_at", "started_at",
                                                                                          "finished_at")}  # fmt: skip
    by_q: dict[int, list[list[float]]] = defaultdict(list)
    for r in runs:
        row, calls = stamps.get(r["run"]), model.calls.get(r["tag"])
        if row is None or row.started_at is None or row.finished_at is None or not calls:
            continue
        asked, accepted, answered = r["wall"]
        model_own = sum(end - start for start, end in calls)
        by_q[r["q"]].append([
            accepted - asked,
            row.started_at.timestamp() - accepted,
            calls[0][0] - row.started_at.timestamp(),
            (calls[-1][1] - calls[0][0]) - model_own,
            row.finished_at.timestamp() - calls[-1][1],
            answered - row.finished_at.timestamp(),
        ])  # fmt: skip
    lines = ["    where the time goes (p50 / p99 s): " + " | ".join(STAGES)]
    for q, rows in sorted(by_q.items()):
        cells = [f"{statistics.median(col):.2f} / {pct(list(col), 99):.2f}" for col in zip(*rows, strict=True)]
        lines.append(f"      question {q + 1}: " + " | ".join(cells))
    return lines


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) >= 2 else (values[0] if values else 0.0)


async def load(
    people_: list[dict], ports: list[int], questions: int, model: Model, ramp: float = 0.0
) -> tuple[list, float]:
    """Every session's flow at once, or (``ramp`` seconds) one session starting every ramp / N seconds."""
    results: list = []
    started = time.monotonic()
    step = ramp / max(1, len(people_))
    await asyncio.gather(*(session_flow(p, ports, questions, model, results, i * step) for i, p in enumerate(people_)))
    return results, time.monotonic() - started


def summarize(label: str, results: list, wall: float, model: Model, workers: list) -> list[float]:
    runs = [r for r in results if "run" in r]
    errors = [r for r in results if "error" in r] + [r for r in runs if r["final"].get("status") != "succeeded"]
    lost_state = [
        r
        for r in runs
        if r["q"] > 0 and f"final_result (json): {expected(r['n'], r['q'])}" not in r["final"].get("answer", "")
    ]
    overheads = [r["seconds"] - model.seconds[r["tag"]] for r in runs]
    streams = check_streams(results)
    print(f"  {label}: {len(runs)} runs in {wall:.1f} s = {len(runs) / wall * 60:.1f} runs/min")
    if overheads:
        p50, p99 = statistics.median(overheads), pct(overheads, 99)
        print(
            f"    time to answer minus model time: p50 {p50:.2f} s, p99 {p99:.2f} s "
            f"(target p99 <= {TARGET_P99_OVERHEAD_S:.1f} s, ratio {p99 / TARGET_P99_OVERHEAD_S:.2f})"
        )
        for q in sorted({r["q"] for r in runs}):
            of_q = [r["seconds"] - model.seconds[r["tag"]] for r in runs if r["q"] == q]
            print(
                f"      question {q + 1} of each session: p50 {statistics.median(of_q):.2f} s, p99 {pct(of_q, 99):.2f} s"
            )
    print(f"    errors {len(errors)}, state lost {len(lost_state)} (target 0)")
    for kind in ("ws", "sse"):
        lost, dup, order = streams[kind]
        print(f"    {kind:>3} followers: steps lost {lost}, duplicated {dup}, out of order {order} (target 0)")
    if streams["ws_closed"]:
        print(f"    websockets closed by the server: {streams['ws_closed']}")
    if streams["ws_refused"]:
        print(f"    websockets that could not connect (their steps count as lost): {streams['ws_refused']}")
    for line in stage_report(runs, model):
        print(line)
    for line in memory_report(workers):
        print(line)
    for r in (errors + lost_state)[:5]:
        print(
            "    e.g.", r.get("tag"), (r.get("error") or r["final"].get("error") or r["final"].get("answer", ""))[:300]
        )
    return [r["seconds"] for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the model takes per call")
    parser.add_argument("--webs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=None, help="RUN_WORKER_CONCURRENCY of each worker")
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="seconds over which sessions start (0: all at the same moment)"
    )
    parser.add_argument("--embedded", action="store_true", help="make run defaults: SQLite, 1 web, 1 worker, 10 people")
    args = parser.parse_args()
    if not args.embedded and not (os.environ.get("BENCH_DATABASE_URL") and os.environ.get("REDIS_URL")):
        print("BENCH_DATABASE_URL and REDIS_URL are not both set: measuring the embedded mode (--embedded)")
        args.embedded = True
    if args.embedded:
        args.webs, args.workers = 1, 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    model = Model(args.delay)
    if args.concurrency is None and not args.embedded:
        # Enough slots for every session to run at once: at the default (16 per worker) 50 questions asked at the
        # same moment on 2 workers queue 18 of them behind a whole run, by design, and that wait is no overhead.
        args.concurrency = max(16, math.ceil(args.sessions / args.workers))
    if args.concurrency:
        os.environ["RUN_WORKER_CONCURRENCY"] = str(args.concurrency)
    from analysis.tests.llm_server import LoopbackLLM

    with LoopbackLLM(responder=model) as llm:
        os.environ["LLM_BASE_URL"] = llm.base_url
        env = setup(tmp, embedded=args.embedded)
        ports, procs, workers = start(env, webs=args.webs, workers=args.workers, log_dir=tmp)
        mode = "embedded (SQLite, in-memory layer)" if args.embedded else "PostgreSQL + Redis"
        slots = f", RUN_WORKER_CONCURRENCY {args.concurrency}" if args.concurrency else ""
        ramp = f", sessions starting over {args.ramp:g} s" if args.ramp else ", every session starting at once"
        print(
            f"load bench: {mode}, {args.webs} web + {args.workers} worker process(es){slots}, "
            f"model {args.delay:g} s/call{ramp}"
        )
        try:
            if args.embedded:
                first, _wall = asyncio.run(load(people(1), ports, 1, model))
                print(f"  the first question after start: {[r['seconds'] for r in first if 'run' in r][0]:.2f} s")
                lone, _wall = asyncio.run(load(people(1), ports, 1, model))
                alone = [r["seconds"] for r in lone if "run" in r][0]
                print(f"  a lone question: {alone:.2f} s")
                crowd_results, wall = asyncio.run(load(people(10), ports, 1, model))
                crowd = summarize("10 people asking at once", crowd_results, wall, model, workers)
                print(
                    f"    slowest of 10 {max(crowd):.2f} s, median {statistics.median(crowd):.2f} s vs alone {alone:.2f} s: "
                    f"ratio {max(crowd) / alone:.2f} (target <= {TARGET_EMBEDDED_RATIO})"
                )
            else:
                crowd = people(args.sessions)
                web_pids = [proc.pid for proc in procs[: args.webs]]
                before = cpu_parts(web_pids, workers)
                results, wall = asyncio.run(load(crowd, ports, args.questions, model, args.ramp))
                after = cpu_parts(web_pids, workers)
                summarize(f"{args.sessions} sessions x {args.questions} questions", results, wall, model, workers)
                print(cpu_report(before, after, sum(1 for r in results if "run" in r)))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"  (logs in {tmp})")


if __name__ == "__main__":
    main()
