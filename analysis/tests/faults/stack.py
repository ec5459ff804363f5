"""A real deployment for fault tests: daphne web processes and run workers (``manage.py run_worker``) as
subprocesses sharing a database and a Redis, plus minimal websocket and SSE clients.

Everything runs with the production settings (``settings_test`` only adds the fast hasher and a test secret),
so what the tests observe is what a deployment does.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from codingagent.tests.support import REPO_ROOT, VENV_BIN, free_port, stop_process, wait_for_port

SEED = """
import json
from django.core.management import call_command
call_command("migrate", "--noinput", verbosity=0)
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from rest_framework_simplejwt.tokens import RefreshToken
from accounts.models import User
from analysis.models import AnalysisSession
from projects.services import project_create
user = User.objects.create_user("faults@example.com", "faults-password-1")
project = project_create(owner=user, name="Faults")
sessions = [AnalysisSession.objects.create(project=project, user=user, title=f"S{{i}}", model="local:fault-model").pk
            for i in range({n_sessions})]
store = SessionStore()
store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(user.pk), settings.AUTHENTICATION_BACKENDS[0]
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(json.dumps({{"cookie": store.session_key, "token": str(RefreshToken.for_user(user).access_token),
                  "sessions": sessions, "project": project.pk}}))
"""


@dataclass
class Seeded:
    cookie: str
    token: str
    sessions: list[int]
    project: int


@dataclass
class Web:
    port: int
    process: subprocess.Popen

    def request(self, method: str, path: str, *, token: str = "", cookie: str = "", body: dict | None = None):
        """(status, headers, body text) of one HTTP request; never raises on an HTTP error status."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Accept": "text/html" if not path.startswith("/api/") else "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if cookie:
            headers["Cookie"] = f"sessionid={cookie}"
        payload = None
        if body is not None:
            payload, headers["Content-Type"] = json.dumps(body), "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode(errors="replace")
        finally:
            conn.close()

    def json(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        status, _headers, text = self.request(method, path, **kwargs)
        return status, json.loads(text) if text.strip().startswith("{") else {"raw": text[:500]}


@dataclass
class Stack:
    """One deployment: its environment, and the processes started for it (stopped by ``close``)."""

    root: Path
    database_url: str
    redis_url: str = ""
    redis_prefix: str = "codingagent"
    llm_url: str = ""
    extra_env: dict = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_", "S3_", "PYTEST"))}
        env.update(
            DJANGO_SETTINGS_MODULE="codingagent.settings_test",
            DATA_DIR=str(self.root / "data"),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            REDIS_PREFIX=self.redis_prefix,
            LLM_BASE_URL=self.llm_url,
            LLM_MODEL="fault-model",
            OPENROUTER_API_KEY="",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SANDBOX_ALLOW_WEAK="1",  # these tests are about services failing, not the sandbox's OS layers
            AGENT_MODEL_ATTEMPTS="1",
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="INFO",
            DEBUG="0",
        )
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def manage(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)[:80]} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def shell(self, code: str, *, timeout: float = 180) -> str:
        """Run Python in the deployment's Django; returns its last printed line."""
        lines = self.manage("shell", "-c", code, timeout=timeout).strip().splitlines()
        return lines[-1] if lines else ""

    def migrate_and_seed(self, *, n_sessions: int = 4) -> Seeded:
        """Migrate the database and add a user with ``n_sessions`` sessions, a login cookie and an API token."""
        return Seeded(**json.loads(self.shell(SEED.format(n_sessions=n_sessions))))

    def _log(self, name: str):
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        return (self.root / "logs" / f"{name}.log").open("ab")

    def start_web(self, name: str = "web") -> Web:
        port = free_port()
        process = subprocess.Popen(
            [
                str(VENV_BIN / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--websocket_connect_timeout",
                "30",
                "codingagent.asgi:application",
            ],  # as the Dockerfile runs it
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        wait_for_port(port, process=process, timeout=120)
        return Web(port=port, process=process)

    def start_worker(self, name: str = "worker") -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--poll", "0.1"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for process in self.processes:
            stop_process(process, timeout=5)
        self.processes.clear()


# --- a minimal websocket client (RFC 6455; the ``websockets`` package is not installed here) --------------


class WsClosed(Exception):
    def __init__(self, code: int | None):
        self.code = code
        super().__init__(f"websocket closed (code {code})")


class WsClient:
    def __init__(self, port: int, path: str, *, cookie: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: sessionid={cookie}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WsClosed(None)
            head += chunk
        status, self._buffer = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket refused: {status[:200]!r}")

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no websocket message in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no websocket message in time") from None
            except OSError:  # reset by a killed server
                raise WsClosed(None) from None
            if not chunk:
                raise WsClosed(None)
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def recv(self, timeout: float) -> str:
        """The next text message; ``TimeoutError`` when none came in time, ``WsClosed`` when the server closed."""
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        while True:
            b0, b1 = self._read(2, deadline)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2, deadline), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8, deadline), "big")
            payload = self._read(length, deadline)
            if opcode == 8:
                raise WsClosed(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None)
            if opcode == 9:  # ping: answer, keep reading
                self._send(0xA, payload)
                continue
            if opcode in (0, 1):
                chunks.append(payload)
                if b0 & 0x80:
                    return b"".join(chunks).decode()

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode, 0x80 | len(payload)]) if len(payload) < 126 else None
        if header is None:
            header = bytes([0x80 | opcode, 0x80 | 126]) + len(payload).to_bytes(2, "big")
        self.sock.sendall(header + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send(0x8, (1000).to_bytes(2, "big"))
        self.sock.close()


# --- a minimal Server-Sent Events client -------------------------------------------------------------------


class SseClient:
    """Follows ``GET /api/v1/runs/<id>/events`` (optionally from a Last-Event-ID) and yields (id, event, data)."""

    def __init__(self, port: int, run_id: int, *, token: str, last_event_id: int | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", f"/api/v1/runs/{run_id}/events", headers=headers)
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise RuntimeError(f"events answered {self.response.status}: {self.response.read()[:300]!r}")

    def events(self):
        event_id, event, data = None, None, []
        while True:
            try:
                line = self.response.readline()
            except (OSError, http.client.HTTPException):
                return  # the server went away mid-stream
            if not line:
                return
            line = line.decode().rstrip("\n")
            if not line:
                if event is not None:
                    yield (int(event_id) if event_id else None), event, json.loads("\n".join(data))
                event_id, event, data = None, None, []
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])

    def close(self) -> None:
        self.conn.close()
