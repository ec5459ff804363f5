"""A worker killed with SIGKILL mid-run: the reaper fails the run readably and the session accepts questions again.

Runs for real: ``manage.py run_worker`` as a subprocess against a file SQLite database (whatever database the
rest of the suite uses; Redis too when REDIS_URL is set, so the Redis lock release is covered in that pass),
stuck inside a model call to a loopback server, then ``kill -9``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.tests.llm_server import LoopbackLLM

ROOT = Path(__file__).resolve().parents[2]

SEED = """
from accounts.models import User
from projects.models import Project, ProjectMember
from analysis.models import AnalysisSession
from analysis.services import run_start
alice = User.objects.create_user("alice@example.com", "pw-for-tests-1")
project = Project.objects.create(owner=alice, name="P")
ProjectMember.objects.create(project=project, user=alice, role="owner")
session = AnalysisSession.objects.create(project=project, user=alice, title="S", model="local:hang-model")
print(run_start(session=session, user=alice, question="this will hang").pk)
"""

INSPECT = """
import json
from accounts.models import User
from analysis.models import Run, AnalysisSession
from analysis.services import run_start, SessionBusy
run = Run.objects.get(pk={run_id})
try:
    new = run_start(session=run.session, user=User.objects.get(email="alice@example.com"), question="again?").pk
except SessionBusy:
    new = None
print(json.dumps({{"status": run.status, "error": run.error, "new_run": new}}))
"""


def _manage(env: dict, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _status_now(env: dict, run_id: int) -> str:
    """The run's status read straight from the database file (a `manage.py shell` may take longer to start
    than RUN_STALE_SECONDS on a busy machine)."""
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        return db.execute("SELECT status FROM analysis_run WHERE id = ?", [run_id]).fetchone()[0]


@pytest.fixture
def crash_env(tmp_path):
    with LoopbackLLM(hang=True) as llm:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "codingagent.settings_test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'crash.sqlite3'}",
            "DATA_DIR": str(tmp_path / "data"),
            "LLM_BASE_URL": llm.base_url,
            "LLM_MODEL": "hang-model",
            "OPENROUTER_API_KEY": "",
            "RUN_HEARTBEAT_SECONDS": "1",
            "RUN_STALE_SECONDS": "20",  # a busy machine starts a `manage.py shell` in ~10 s
        }
        _manage(env, "migrate", "--noinput")
        yield env, llm


def test_a_worker_killed_mid_run_is_reaped_and_the_session_is_usable_again(crash_env):
    env, llm = crash_env
    run_id = int(_manage(env, "shell", "-c", SEED))
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert llm.received.wait(60), "the worker never called the model"
        time.sleep(1.5)  # a heartbeat or two while the model call hangs
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        killed_at = time.monotonic()
        busy = _status_now(env, run_id)
        time.sleep(max(0.0, 20.5 - (time.monotonic() - killed_at)))  # past RUN_STALE_SECONDS without a heartbeat

        reaped = _manage(env, "run_worker", "--reap")
        reaped_within = time.monotonic() - killed_at
        after = json.loads(_manage(env, "shell", "-c", INSPECT.format(run_id=run_id)))
    finally:
        if worker.poll() is None:
            worker.kill()

    assert busy == "running"  # still held by the dead worker right after the kill
    assert f"[{run_id}]" in reaped and reaped_within < 60
    assert after["status"] == "failed"
    assert "stopped responding" in after["error"]
    assert after["new_run"] is not None
