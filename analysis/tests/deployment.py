"""Real run-worker processes for tests: a database file, ``manage.py run_worker`` subprocesses, a control process.

The control process is one ``manage.py shell`` that stays up and answers JSON requests on stdin (create users and
sessions, ask questions, read runs and steps), so a test does not pay a Django start per question. Workers and the
control process share a SQLite file (WAL), and Redis too when the suite runs with ``REDIS_URL``. The model is a
loopback OpenAI-compatible server (``llm_server.LoopbackLLM``) whose responder the test scripts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPLY_MARK = "@@reply "

CONTROL = r"""
import json, sys
from accounts.models import User
from projects.models import Project, ProjectMember
from analysis.models import AnalysisSession, Run, Step, WorkerProcess
from analysis import selectors, services
from django.db import close_old_connections


def op_user(email):
    user = User.objects.create_user(email, "pw-for-tests-1")
    return {"id": user.pk}


def op_session(user_id, title="S", model="local:loopback"):
    user = User.objects.get(pk=user_id)
    project = Project.objects.create(owner=user, name=f"P {title}")
    ProjectMember.objects.create(project=project, user=user, role="owner")
    session = AnalysisSession.objects.create(project=project, user=user, title=title, model=model)
    return {"id": session.pk}


def op_ask(session_id, question):
    session = AnalysisSession.objects.get(pk=session_id)
    try:
        run = services.run_start(session=session, user=session.user, question=question)
    except services.SessionBusy as exc:
        return {"busy": True, "active": exc.run.pk if exc.run else None}
    return {"id": run.pk}


def op_run(run_id):
    run = Run.objects.get(pk=run_id)
    queue = selectors.run_queue_info(run=run)
    steps = list(run.steps.order_by("ordinal").values("kind", "content"))
    return {
        "id": run.pk, "status": run.status, "answer": run.answer, "error": run.error, "worker": run.worker_id,
        "steps": steps, "queue": queue.text if queue else None,
        "started_at": run.started_at.timestamp() if run.started_at else None,
        "finished_at": run.finished_at.timestamp() if run.finished_at else None,
    }


def op_workers():
    alive = set(selectors.workers_alive_qs().values_list("pk", flat=True))
    return [
        {"id": w.id, "alive": w.id in alive, "kernels": w.kernels, "runs_active": w.runs_active,
         "kernel_pss_mb": w.kernel_pss_mb, "worker_pss_mb": w.worker_pss_mb}
        for w in WorkerProcess.objects.all()
    ]


OPS = {name[3:]: fn for name, fn in list(globals().items()) if name.startswith("op_")}
print("@@ready", flush=True)
for line in sys.stdin:
    close_old_connections()
    request = json.loads(line)
    try:
        reply = OPS[request.pop("op")](**request)
    except Exception as exc:
        reply = {"exception": repr(exc)}
    print("@@reply " + json.dumps(reply, default=str), flush=True)
"""


class Deployment:
    def __init__(self, tmp_path: Path, llm_base_url: str, **settings: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "codingagent.settings_test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DATA_DIR": str(tmp_path / "data"),
            "LLM_BASE_URL": llm_base_url,
            "LLM_MODEL": "loopback",
            "OPENROUTER_API_KEY": "",
            "AGENT_RETRY_DELAY_MS": "50",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        self.workers: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        self.control = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", CONTROL],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read_until("@@ready")

    def _read_until(self, mark: str) -> str:
        while True:
            line = self.control.stdout.readline()
            if not line:
                raise RuntimeError("the control process exited")
            if line.startswith(mark):
                return line[len(mark) :].strip()

    def call(self, op: str, **kwargs):
        self.control.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.control.stdin.flush()
        reply = json.loads(self._read_until(REPLY_MARK))
        if isinstance(reply, dict) and "exception" in reply:
            raise RuntimeError(reply["exception"])
        return reply

    def worker_start(self, name: str, *args: str, **env: str) -> subprocess.Popen:
        log = self.tmp_path / f"worker-{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", *args],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.workers[name] = proc
        return proc

    def worker_ready(self, name: str, timeout: float = 120) -> None:
        """Until the worker has warmed up and claims (its log says started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "started (concurrency" in self.logs[name].read_text():
                return
            assert self.workers[name].poll() is None, self.log(name)
            time.sleep(0.2)
        raise AssertionError(f"worker {name} did not start:\n{self.log(name)}")

    def log(self, name: str) -> str:
        return self.logs[name].read_text()[-4000:]

    def worker_stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        proc = self.workers[name]
        proc.send_signal(sig)
        proc.wait(timeout)

    def wait_run(self, run_id: int, *, timeout: float = 120, until=None) -> dict:
        """Poll a run until it ended (or ``until(run)`` holds)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.call("run", run_id=run_id)
            if (until(run) if until else run["status"] not in ("queued", "running")) or time.monotonic() > deadline:
                return run
            time.sleep(0.1)

    def close(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.control.poll() is None:
            self.control.stdin.close()
            self.control.kill()
            self.control.wait(10)
