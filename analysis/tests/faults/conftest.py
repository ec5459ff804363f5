"""Fault tests start their own PostgreSQL and Redis (and stop them to make outages): they need the server
binaries, which CI installs. Without them the tests are skipped, saying which binary is missing.

Starting interpreters dominates these tests' time, so the database is migrated and seeded once (a SQLite file,
or a PostgreSQL template database) and every test gets a copy.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from analysis.tests.faults.servers import PostgresServer, RedisServer, missing_binaries
from analysis.tests.faults.stack import Stack

MISSING = missing_binaries()


def pytest_collection_modifyitems(config, items):
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"fault tests need real servers; missing here: {MISSING}")
    for item in items:
        if "/faults/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres_server():
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """(path of a migrated and seeded SQLite file, what was seeded)."""
    root = tmp_path_factory.mktemp("sqlite-template")
    path = root / "template.sqlite3"
    seeded = Stack(root=root, database_url=f"sqlite:///{path}").migrate_and_seed()
    return path, seeded


@pytest.fixture(scope="module")
def postgres_template(postgres_server, tmp_path_factory):
    """(name of a migrated and seeded template database on ``postgres_server``, what was seeded)."""
    name = "template_faults"
    postgres_server.createdb(name)
    root = tmp_path_factory.mktemp("pg-template")
    seeded = Stack(root=root, database_url=postgres_server.url(name)).migrate_and_seed()
    return name, seeded


def sqlite_stack(tmp_path, template, **kwargs) -> Stack:
    path, seeded = template
    shutil.copy(path, tmp_path / "app.sqlite3")
    stack = Stack(root=tmp_path, database_url=f"sqlite:///{tmp_path / 'app.sqlite3'}", **kwargs)
    stack.seeded = seeded
    return stack


def postgres_stack(tmp_path, server: PostgresServer, template, **kwargs) -> Stack:
    name, seeded = template
    database = f"faults_{uuid.uuid4().hex[:8]}"
    server.createdb(database, template=name)
    stack = Stack(root=tmp_path, database_url=server.url(database), **kwargs)
    stack.seeded = seeded
    return stack


def unique_prefix(label: str) -> str:
    return f"faults-{label}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
