"""Run workers as real processes: concurrency, kernels that keep their variables, notices, reaping.

Each test starts ``manage.py run_worker`` subprocesses on a SQLite file (and Redis when the suite has REDIS_URL)
with the real sandbox and a loopback model. The model runs the code written after ``run:`` in the question and
answers with what the tool returned, so the answer shows exactly what the kernel said (and what the model was
told). Slow on a busy machine (each worker starts the sandbox), so these are few and cover several things each.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from analysis.tests.deployment import Deployment
from analysis.tests.llm_server import LoopbackLLM, text_reply, tool_reply

HANG = "#hang-after-code"


def _content(message: dict) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def responder(body: dict) -> dict:
    messages = body["messages"]
    question = _content([m for m in messages if m["role"] == "user"][-1])
    if messages[-1]["role"] == "tool":
        if HANG in question:
            time.sleep(300)  # the worker is killed meanwhile
        return text_reply("RESULT " + _content(messages[-1]))
    return tool_reply(question.split("run:", 1)[1].strip())


@pytest.fixture
def llm():
    with LoopbackLLM(responder=responder) as server:
        yield server


@pytest.fixture
def deployment(tmp_path, llm):
    made = []

    def make(**settings: str) -> Deployment:
        deployment = Deployment(tmp_path, llm.base_url, **settings)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


def _ask(dep: Deployment, session_id: int, code: str) -> int:
    reply = dep.call("ask", session_id=session_id, question=f"run: {code}")
    assert "id" in reply, reply
    return reply["id"]


def _people(dep: Deployment, n: int) -> list[int]:
    return [dep.call("session", user_id=dep.call("user", email=f"user{i}@example.com")["id"])["id"] for i in range(n)]


def _eventually(read, ok, timeout: float = 15.0):
    """``read()`` until ``ok`` holds (the registry is refreshed by each heartbeat), then its last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def _notices(run: dict) -> list[str]:
    return [s["content"] for s in run["steps"] if s["kind"] == "notice"]


def test_a_fast_run_finishes_first_while_a_slow_and_a_looping_run_share_its_worker(deployment):
    dep = deployment(SANDBOX_TIMEOUT="15")
    looping, slow, fast = _people(dep, 3)
    dep.worker_start("w")
    dep.worker_ready("w")

    loop_run = _ask(dep, looping, "while True:\n    pass")
    slow_run = _ask(dep, slow, "import time\ntime.sleep(6)\nfinal_result = 'slow'")
    dep.wait_run(slow_run, until=lambda r: any(s["kind"] == "code" for s in r["steps"]))
    asked = time.time()
    fast_run = _ask(dep, fast, "final_result = 'fast'")
    fast_done = dep.wait_run(fast_run)
    slow_done, loop_done = dep.wait_run(slow_run), dep.wait_run(loop_run, timeout=60)

    assert fast_done["status"] == "succeeded" and '"fast"' in fast_done["answer"]
    assert fast_done["finished_at"] - asked < 5, "the fast run waited for the others"
    assert fast_done["finished_at"] < slow_done["finished_at"] < loop_done["finished_at"]
    assert '"slow"' in slow_done["answer"]
    assert "time limit" in loop_done["answer"]  # the endless loop was stopped and the model told why
    assert {fast_done["worker"], slow_done["worker"], loop_done["worker"]} == {fast_done["worker"]}


def test_a_memory_hog_in_one_session_does_not_hold_up_another_on_the_same_worker(deployment):
    dep = deployment(SANDBOX_MEMORY_MB="600")
    hog, other = _people(dep, 2)
    dep.worker_start("w")
    dep.worker_ready("w")

    hog_run = _ask(dep, hog, "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 2**20))")
    dep.wait_run(hog_run, until=lambda r: any(s["kind"] == "code" for s in r["steps"]))
    other_run = dep.wait_run(_ask(dep, other, "final_result = 6 * 7"), timeout=30)
    hog_done = dep.wait_run(hog_run, timeout=60)

    assert other_run["status"] == "succeeded" and "final_result (json): 42" in other_run["answer"]
    assert hog_done["status"] == "succeeded"  # the model got the error and answered
    assert "MemoryError" in hog_done["answer"] or "memory" in hog_done["answer"].lower()


def test_variables_survive_three_questions_with_two_worker_processes(deployment):
    dep = deployment()
    sessions = _people(dep, 4)
    dep.worker_start("a")
    dep.worker_start("b")
    dep.worker_ready("a")
    dep.worker_ready("b")

    first = [dep.wait_run(_ask(dep, s, f"v = {s * 10}\nfinal_result = v")) for s in sessions]
    second_ids = [_ask(dep, s, "v = v + 1\nfinal_result = v") for s in sessions]
    second = [dep.wait_run(r) for r in second_ids]
    third_ids = [_ask(dep, s, "final_result = v + 1") for s in sessions]
    third = [dep.wait_run(r) for r in third_ids]

    for session, runs in zip(sessions, zip(first, second, third, strict=True), strict=True):
        assert [r["status"] for r in runs] == ["succeeded"] * 3
        assert f"final_result (json): {session * 10 + 2}" in runs[2]["answer"], runs[2]["answer"]
        assert len({r["worker"] for r in runs}) == 1, "a question ran away from the session's kernel"
        assert not any(_notices(r) for r in runs)
    workers = _eventually(lambda: dep.call("workers"), lambda ws: sum(w["kernels"] for w in ws) >= 4)
    assert len(workers) == 2 and all(w["alive"] for w in workers)
    assert sum(w["kernels"] for w in workers) >= 4  # reported by the next heartbeat


def test_after_a_worker_restart_the_next_question_is_told_its_variables_were_cleared(deployment, llm):
    dep = deployment()
    (session,) = _people(dep, 1)
    dep.worker_start("old")
    dep.worker_ready("old")
    assert dep.wait_run(_ask(dep, session, "v = 5\nfinal_result = v"))["status"] == "succeeded"

    dep.worker_stop("old")
    dep.worker_start("new")
    dep.worker_ready("new")
    run = dep.wait_run(_ask(dep, session, "final_result = v"))

    expected = "The session's variables were cleared: the worker holding them was restarted; datasets are loaded again."
    assert _notices(run) == [expected]
    assert run["steps"][0]["kind"] == "notice"  # shown before the work
    assert f"note: {expected}" in run["answer"]  # the model's observation said it
    assert "NameError" in run["answer"]
    assert f"Important: {expected}" in json.dumps(llm.requests[-1])  # and the system prompt


def test_idle_kernels_are_closed_and_the_next_question_is_told_why(deployment):
    dep = deployment(SANDBOX_IDLE_SECONDS="2", RUN_HEARTBEAT_SECONDS="1")
    (session,) = _people(dep, 1)
    dep.worker_start("w")
    dep.worker_ready("w")
    dep.wait_run(_ask(dep, session, "v = 5\nfinal_result = v"))
    # The registry says 0 kernels until the first heartbeat after the run: wait to see the kernel, then it go.
    assert _eventually(lambda: dep.call("workers")[0]["kernels"], lambda k: k == 1) == 1

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and dep.call("workers")[0]["kernels"]:
        time.sleep(0.5)
    run = dep.wait_run(_ask(dep, session, "final_result = v"))

    assert _eventually(lambda: dep.call("workers")[0]["kernels"], lambda k: k == 1) == 1  # the new one
    assert _notices(run) == [
        "The session's variables were cleared: the kernel was idle for 2 s; datasets are loaded again."
    ]


def test_a_killed_workers_run_is_failed_by_a_live_worker_within_stale_plus_5_s(deployment):
    stale = 6
    dep = deployment(RUN_HEARTBEAT_SECONDS="1", RUN_STALE_SECONDS=str(stale))
    (session,) = _people(dep, 1)
    victim = dep.worker_start("victim")
    dep.worker_ready("victim")
    run_id = _ask(dep, session, f"v = 1\nfinal_result = v  {HANG}")
    dep.wait_run(run_id, until=lambda r: any(s["kind"] == "output" for s in r["steps"]))
    dep.worker_start("survivor")
    dep.worker_ready("survivor")

    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    reaped = dep.wait_run(run_id, timeout=stale + 30)
    reaped_after = time.monotonic() - killed_at
    again = dep.call("ask", session_id=session, question="run: final_result = v")
    next_run = dep.wait_run(again["id"])

    assert reaped["status"] == "failed" and "stopped responding" in reaped["error"]
    assert reaped_after <= stale + 5, f"reaped {reaped_after:.1f} s after the kill"
    assert next_run["status"] == "succeeded" and "NameError" in next_run["answer"]
    assert _notices(next_run) == [
        "The session's variables were cleared: the worker holding them stopped (restarted or crashed); "
        "datasets are loaded again."
    ]


def test_a_graceful_stop_finishes_the_runs_in_flight(deployment):
    dep = deployment()
    sessions = _people(dep, 2)
    worker = dep.worker_start("w")
    dep.worker_ready("w")
    runs = [_ask(dep, s, "import time\ntime.sleep(3)\nfinal_result = 1") for s in sessions]
    for run_id in runs:
        dep.wait_run(run_id, until=lambda r: any(s["kind"] == "code" for s in r["steps"]))

    stopper = threading.Timer(0.2, lambda: worker.send_signal(signal.SIGTERM))
    stopper.start()
    worker.wait(60)

    assert [dep.call("run", run_id=r)["status"] for r in runs] == ["succeeded", "succeeded"]
    assert dep.call("workers") == []  # its registry row went with it
