"""Real PostgreSQL and Redis instances that a test owns: started on free loopback ports, stopped and started
again on the same port to make an outage, removed afterwards.

PostgreSQL refuses to run as root, so as root ``initdb``/``pg_ctl`` run as the ``postgres`` user (runuser);
the data folder lives in its own /tmp directory that user can reach. Both are tuned for tests (no fsync, no
persistence) since only availability matters here, not durability.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from codingagent.tests.support import free_port, stop_process, wait_for_port


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<N>/bin holding initdb and pg_ctl, or None."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(f"{folder}/initdb", os.X_OK) and os.access(f"{folder}/pg_ctl", os.X_OK):
            return Path(folder)
    return None


def redis_server_bin() -> str | None:
    return shutil.which("redis-server")


def missing_binaries() -> str:
    """Why the fault tests cannot run here ("" when they can)."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl)")
    if redis_server_bin() is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser (PostgreSQL must not run as root)")
    return ", ".join(missing)


class RedisServer:
    """``redis-server`` on its own port; ``stop()``/``start()`` make an outage (data is not kept, as in a restart
    of a cache-only Redis)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [redis_server_bin(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        args += ["no", "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process, timeout=20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # an outage, not a maintenance: nothing is flushed or announced
            self.process.wait(10)
            self.process = None

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)


class PostgresServer:
    """A throwaway PostgreSQL cluster with trust auth for ``postgres`` on 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ca-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
                "shared_buffers = 16MB\n"
            )

    def is_up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        self._pg("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60")
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        """An outage: every connection is cut at once, then nothing listens until ``start()``."""
        self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def createdb(self, name: str, *, template: str = "template1") -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    def remove(self) -> None:
        with contextlib.suppress(Exception):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet (e.g. the service is still starting)
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


__all__ = ["PostgresServer", "RedisServer", "missing_binaries", "stop_process", "wait_until"]
