"""Fault scenarios on a production-shaped deployment: PostgreSQL and Redis started by the tests, daphne web
processes and run workers as real subprocesses, a scripted model on loopback held at a chosen point so the
fault lands mid-run. Each test asserts what a user and an operator observe afterwards: the run finished (or
failed with a readable reason), the worker process is still alive, the session takes questions again, and
/healthz tells the truth."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

from analysis.tests.faults.conftest import postgres_stack, unique_prefix
from analysis.tests.faults.model import GatedModel
from analysis.tests.faults.servers import wait_until
from analysis.tests.faults.stack import SseClient, Stack, Web, WsClient, WsClosed

FINAL = re.compile(r'data-status="(succeeded|failed|cancelled)"')


@pytest.fixture
def make_stack(tmp_path, postgres_server, postgres_template, redis_server):
    stacks: list[Stack] = []

    def make(model: GatedModel, **extra_env) -> Stack:
        llm = model.server().__enter__()
        stack = postgres_stack(
            tmp_path,
            postgres_server,
            postgres_template,
            redis_url=redis_server.url,
            redis_prefix=unique_prefix("outage"),
            llm_url=llm.base_url,
            extra_env={"RUN_HEARTBEAT_SECONDS": "1", **extra_env},
        )
        stack.llm = llm
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
        stack.llm.__exit__(None, None, None)
    if redis_server.process is None:  # a test failed mid-outage: the next one needs the services
        redis_server.start()
    if not postgres_server.is_up():
        postgres_server.start()


def _ask(web: Web, stack: Stack, question: str = "what is x?", session: int | None = None) -> tuple[int, dict]:
    session = session if session is not None else stack.seeded.sessions[0]
    return web.json("POST", f"/api/v1/sessions/{session}/query", token=stack.seeded.token, body={"question": question})


def _run(web: Web, stack: Stack, run_id: int) -> dict:
    status, body = web.json("GET", f"/api/v1/runs/{run_id}/", token=stack.seeded.token)
    assert status == 200, body
    return body


def _finished(web: Web, stack: Stack, run_id: int, *, timeout: float) -> dict:
    return wait_until(
        lambda: (run := _run(web, stack, run_id))["status"] not in ("queued", "running") and run,
        timeout=timeout,
        what=f"run {run_id} to end",
    )


class WsFollower:
    """The page's websocket: step pks in arrival order, reconnecting with ``?after=<last pk>`` like the page."""

    def __init__(self, stack: Stack, session: int) -> None:
        self.stack, self.session, self.pks, self.final = stack, session, [], None
        self.ws: WsClient | None = None

    def connect(self, web: Web) -> None:
        after = max(self.pks, default=0)
        self.ws = WsClient(web.port, f"/ws/sessions/{self.session}/?after={after}", cookie=self.stack.seeded.cookie)

    def read_until(self, predicate, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            message = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            self.pks += [int(pk) for pk in re.findall(r'data-step-pk="(\d+)"', message)]
            if match := FINAL.search(message):
                self.final = match.group(1)


class SseFollower:
    """An API client on the run's event stream, resuming with ``Last-Event-ID`` (the last ordinal it got)."""

    def __init__(self, stack: Stack, run_id: int) -> None:
        self.stack, self.run_id, self.ordinals, self.done = stack, run_id, [], None

    def follow(self, web: Web, *, until_ordinal: int | None = None) -> None:
        client = SseClient(
            web.port,
            self.run_id,
            token=self.stack.seeded.token,
            last_event_id=self.ordinals[-1] if self.ordinals else None,
        )
        try:
            for event_id, event, data in client.events():
                if event == "step":
                    self.ordinals.append(event_id)
                    if until_ordinal is not None and event_id >= until_ordinal:
                        return
                elif event == "done":
                    self.done = data
                    return
        finally:
            client.close()


def test_a_killed_web_process_loses_its_followers_who_resume_elsewhere_with_exactly_the_missing_steps(make_stack):
    model = GatedModel(tools=4, hold_at=2)
    stack = make_stack(model)
    doomed, spare = stack.start_web("doomed"), stack.start_web("spare")
    worker = stack.start_worker()
    session = stack.seeded.sessions[0]
    ws = WsFollower(stack, session)
    ws.connect(doomed)
    status, started = _ask(doomed, stack)
    assert status == 202, started
    run_id = started["run_id"]
    assert model.held.wait(180), "the run never reached its third model call"
    sse = SseFollower(stack, run_id)
    sse.follow(doomed, until_ordinal=_run(doomed, stack, run_id)["steps"][-1]["ordinal"])
    ws.read_until(lambda: len(ws.pks) >= len(sse.ordinals), timeout=30)
    seen_before_kill = (len(ws.pks), len(sse.ordinals))

    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(10)
    with pytest.raises(WsClosed):
        ws.read_until(lambda: False, timeout=10)
    model.release.set()  # the run goes on while nobody follows it
    wait_until(lambda: len(_run(spare, stack, run_id)["steps"]) > seen_before_kill[1], timeout=60, what="new steps")
    ws.connect(spare)
    sse.follow(spare)
    ws.read_until(lambda: ws.final is not None, timeout=120)
    final = _run(spare, stack, run_id)
    expected_pks = [step["id"] for step in final["steps"]]
    expected_ordinals = [step["ordinal"] for step in final["steps"]]

    assert final["status"] == "succeeded", final
    assert seen_before_kill[0] >= 1 and seen_before_kill[1] >= 1
    assert len(expected_pks) > seen_before_kill[1]  # steps were saved while the followers were away
    assert ws.pks == expected_pks  # every step once, in order, across the reconnect
    assert sse.ordinals == expected_ordinals
    assert sse.done["status"] == "succeeded"
    assert worker.poll() is None


def _health(web: Web) -> tuple[int, dict]:
    return web.json("GET", "/healthz")


def _redis_outage_mid_run(stack: Stack, web: Web, redis_server, *, seconds: float, session: int) -> dict:
    """Ask, stop Redis while the run is mid-way, let the run go on, ask again during the outage, bring Redis
    back after ``seconds``; returns what was observed."""
    model = stack.model
    model.release.clear()
    model.held.clear()
    status, started = _ask(web, stack, session=session)
    assert status == 202, started
    assert model.held.wait(180), "the run never reached its held model call"
    redis_server.stop()
    down_at = time.monotonic()
    model.release.set()
    health_during = _health(web)
    first = _finished(web, stack, started["run_id"], timeout=max(seconds, 5) + 60)
    finished_during_outage = time.monotonic() - down_at < seconds
    time.sleep(max(0.0, seconds - (time.monotonic() - down_at)))
    redis_server.start()
    health_after = wait_until(lambda: (h := _health(web))[0] == 200 and h, timeout=30, what="/healthz 200")
    return {
        "run": first,
        "health_during": health_during,
        "health_after": health_after,
        "finished_during_outage": finished_during_outage,
    }


def test_runs_and_the_worker_survive_redis_down_3_s_and_20_s_mid_run(make_stack, redis_server):
    model = GatedModel(tools=2, hold_at=1)
    stack = make_stack(model)
    stack.model = model
    web = stack.start_web()
    worker = stack.start_worker()
    short_session, long_session, spare_session = stack.seeded.sessions[:3]

    blip = _redis_outage_mid_run(stack, web, redis_server, seconds=3, session=short_session)
    long = _redis_outage_mid_run(stack, web, redis_server, seconds=20, session=long_session)
    model.hold_at = None
    status, again = _ask(web, stack, session=short_session)
    after = _finished(web, stack, again["run_id"], timeout=120) if status == 202 else again
    spare_status, spare = _ask(web, stack, session=spare_session)
    spare_run = _finished(web, stack, spare["run_id"], timeout=120) if spare_status == 202 else spare

    assert blip["run"]["status"] == "succeeded", blip["run"]
    assert long["run"]["status"] == "succeeded", long["run"]
    assert long["finished_during_outage"]  # the run did not wait for Redis: it is only a signal path
    assert blip["health_during"][0] == 503 and "channel_layer" in blip["health_during"][1]["failing"]
    assert long["health_during"][0] == 503 and "database" not in long["health_during"][1]["failing"]
    assert status == 202 and after["status"] == "succeeded"
    assert spare_status == 202 and spare_run["status"] == "succeeded"
    assert worker.poll() is None, stack.log("worker")[-3000:]


def test_the_worker_survives_postgresql_down_20_s_mid_run_and_the_site_recovers(make_stack, postgres_server):
    model = GatedModel(tools=2, hold_at=1)
    stack = make_stack(model)
    web = stack.start_web()
    worker = stack.start_worker()
    session, spare_session = stack.seeded.sessions[:2]
    status, started = _ask(web, stack, session=session)
    assert status == 202, started
    assert model.held.wait(180), "the run never reached its held model call"
    sse = SseFollower(stack, started["run_id"])
    follower = threading.Thread(target=sse.follow, args=(web,), daemon=True)
    follower.start()
    time.sleep(1)  # the follower has the steps so far

    postgres_server.stop()
    down_at = time.monotonic()
    model.release.set()  # the worker saves the next steps and the answer while the database is down
    page_during = web.request("GET", f"/sessions/{session}/", cookie=stack.seeded.cookie)
    api_during = _ask(web, stack, session=spare_session)
    health_during = _health(web)
    time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
    alive_during = worker.poll() is None
    postgres_server.start()
    run = _finished(web, stack, started["run_id"], timeout=120)
    follower.join(60)
    status_again, again = _ask(web, stack, session=session)
    after = _finished(web, stack, again["run_id"], timeout=120) if status_again == 202 else again
    health_after = _health(web)

    assert page_during[0] == 503 and "database is unavailable" in page_during[2]
    assert api_during[0] == 503 and "database is unavailable" in api_during[1]["detail"]
    assert health_during[0] == 503 and health_during[1]["failing"][0] == "database"
    assert alive_during and worker.poll() is None, stack.log("worker")[-3000:]
    assert run["status"] == "succeeded" or (run["status"] == "failed" and run["error"]), run
    assert sse.ordinals == [step["ordinal"] for step in run["steps"]]  # one stream, through the outage
    assert sse.done is not None and sse.done["status"] == run["status"]
    assert status_again == 202 and after["status"] == "succeeded", after
    assert health_after[0] == 200, health_after


def test_a_sigkilled_worker_shows_in_healthz_its_runs_are_reaped_by_the_next_worker_and_sessions_work_again(
    make_stack,
):
    model = GatedModel(tools=1, hold_at=1)
    stack = make_stack(model, RUN_STALE_SECONDS="6", RUN_MAX_ACTIVE_PER_USER="2")
    web = stack.start_web()
    doomed = stack.start_worker("doomed")
    first, second, third, fourth = stack.seeded.sessions
    runs = [_ask(web, stack, session=s)[1]["run_id"] for s in (first, second, third)]
    wait_until(lambda: _health(web)[1]["workers"]["alive"] == 1, timeout=120, what="the worker to register")
    wait_until(
        lambda: [_run(web, stack, r)["status"] for r in runs] == ["running", "running", "queued"],
        timeout=180,
        what="two runs running (the user's cap), one queued",
    )
    health_busy = _health(web)

    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    health_dead = wait_until(lambda: (h := _health(web))[0] == 503 and h, timeout=30, what="/healthz 503")
    refused = _ask(web, stack, session=fourth)
    heir = stack.start_worker("heir")
    killed_at = time.monotonic()
    reaped = [_finished(web, stack, r, timeout=120) for r in runs[:2]]
    reaped_within = time.monotonic() - killed_at
    model.release.set()
    queued = _finished(web, stack, runs[2], timeout=120)
    status_again, again = _ask(web, stack, session=first)
    answered = _finished(web, stack, again["run_id"], timeout=120) if status_again == 202 else again
    health_after = _health(web)

    assert health_busy[0] == 200 and health_busy[1]["workers"]["runs_queued"] == 1
    assert health_dead[1]["workers"]["alive"] == 0 and health_dead[1]["failing"] == ["workers"]
    assert health_dead[1]["workers"]["oldest_queued_seconds"] > 0
    assert "no run worker is alive" in health_dead[1]["checks"]["workers"]
    assert refused[0] == 503 and "No run worker is running" in refused[1]["detail"]
    assert [r["status"] for r in reaped] == ["failed", "failed"]
    assert all("stopped responding" in r["error"] for r in reaped)
    assert reaped_within < 6 + 5 + 60  # the heir's timer reaper (plus its start-up on this machine)
    assert queued["status"] == "succeeded"
    assert status_again == 202 and answered["status"] == "succeeded"
    assert health_after[0] == 200 and health_after[1]["workers"]["alive"] == 1
    assert heir.poll() is None
