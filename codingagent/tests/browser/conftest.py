"""A real app (daphne + one run worker on a fresh SQLite file) and one headless Chromium for the module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from analysis.tests.llm_server import LoopbackLLM
from codingagent.tests.support import REPO_ROOT, VENV_BIN, free_port, stop_process, wait_for_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
]
OUTSIDER_EMAIL = "outsider@example.com"
OUTSIDER_PASSWORD = "outsider-password-42"


@dataclass
class LiveApp:
    url: str
    data_dir: Path
    demo_email: str
    demo_password: str
    demo_project_pk: int


def _app_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Never the test database or the CI bucket: the served app owns a fresh SQLite file and local files.
    # REDIS_URL stays, so CI's second pass exercises the Redis channel layer end to end.
    for name in ("DATABASE_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="codingagent.settings",
        DEBUG="1",
        DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
        # Its own prefix per app, as separate deployments have: the login throttle counts every attempt per
        # address in the cache, and the browser tests of one session log in from 127.0.0.1 more than 10 times a minute.
        REDIS_PREFIX=f"codingagent-browser-{os.getpid()}-{data_dir.name}",
    )
    return env


# One interpreter start instead of three: migrate, seed the demo, add an outsider (printed lines are parsed).
_SETUP = f"""
from django.core.management import call_command
from accounts.models import User
call_command("migrate", "--noinput", verbosity=0)
call_command("seed_demo")
User.objects.create_user({OUTSIDER_EMAIL!r}, {OUTSIDER_PASSWORD!r})
"""


def _app_setup(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", _SETUP],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"app setup failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _warm_up(url: str) -> None:
    # The first request imports the URLconf and every view module; pay for it here, not in a test's timeout.
    with urllib.request.urlopen(f"{url}/accounts/login/", timeout=120) as response:
        response.read()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    with live_app_started(tmp_path_factory.mktemp("browser-app")) as app:
        yield app


@contextmanager
def live_app_started(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[LiveApp]:
    """The app served from a fresh DATA_DIR; `extra_env` configures it (e.g. a loopback LLM endpoint)."""
    env = {**_app_env(data_dir), **(extra_env or {})}
    seeded = _app_setup(env)
    port = free_port()
    logs = {name: (data_dir / f"{name}.log").open("w") for name in ("daphne", "worker")}
    server = subprocess.Popen(
        [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "codingagent.asgi:application"],
        cwd=REPO_ROOT,
        env=env,
        stdout=logs["daphne"],
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=logs["worker"],
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process=server, timeout=120)
        url = f"http://127.0.0.1:{port}"
        _warm_up(url)
        yield LiveApp(
            url=url,
            data_dir=data_dir,
            demo_email=re.search(r"Demo account: (\S+)", seeded).group(1),
            demo_password=re.search(r"password: (\S+)", seeded).group(1),
            demo_project_pk=int(re.search(r"/projects/(\d+)/", seeded).group(1)),
        )
    finally:
        stop_process(worker)
        stop_process(server)
        for fh in logs.values():
            fh.close()


@contextmanager
def llm_app_started(data_dir: Path, responder) -> Iterator[LiveApp]:
    """The app with its model on a loopback OpenAI-compatible endpoint that answers through `responder`."""
    with LoopbackLLM(responder=responder) as llm:
        extra = {"LLM_BASE_URL": llm.base_url, "LLM_MODEL": "loopback", "LLM_API_KEY": "test"}
        with live_app_started(data_dir, extra) as app:
            yield app


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Stopped at module end: Playwright's event loop must not outlive these tests (Django's ORM
    # refuses sync queries while an event loop runs in the thread).
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def desktop_page(browser, app: LiveApp, *, timeout: float = 15_000, **options):
    """A page of a fresh desktop-sized browser context on `app`; `options` go to the context. The caller closes
    it: `page.context.close()`."""
    context = browser.new_context(base_url=app.url, viewport={"width": 1400, "height": 900}, **options)
    context.set_default_timeout(timeout)
    return context.new_page()


@pytest.fixture
def page(browser, live_app):
    page = desktop_page(browser, live_app)
    yield page
    page.context.close()


def log_in(page, *, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def demo_session_started(page, app: LiveApp, *, title: str) -> str:
    """Log in as the demo user and start a session in the demo project (titled, where the form asks for a
    title); the session page's path."""
    log_in(page, email=app.demo_email, password=app.demo_password)
    page.goto(f"/projects/{app.demo_project_pk}/")
    new_session = f"form[action='/projects/{app.demo_project_pk}/sessions/new/']"
    page.wait_for_selector(new_session)  # the sessions fragment arrives over htmx
    if page.locator(f"{new_session} [name=title]").count():
        page.fill(f"{new_session} [name=title]", title)
    page.click(f"{new_session} [type=submit]")
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))
    return page.url.removeprefix(app.url)


def question_asked(page, session_path: str, question: str) -> None:
    """Type `question` into the session's question form and send it."""
    page.fill(f"form[action='{session_path}runs/'] [name=question]", question)
    page.click(f"form[action='{session_path}runs/'] [type=submit]")
