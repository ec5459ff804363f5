"""The Content-Security-Policy in a real Chromium: every main page, htmx, the websocket and plotly work
under it with no violation reported, and a chart cannot make a viewer's browser fetch an outside URL."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from codingagent.tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, demo_session_started, question_asked
from exports.tests.conftest import artifact_make

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# Playwright's init scripts run outside the page's CSP, so this listener sees every violation.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sample || ''));
});
"""


def watch(page) -> list[str]:
    """Console errors, page errors and CSP violation reports of ``page``, as they happen."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.add_init_script(RECORD_VIOLATIONS)
    return problems


def violations(page) -> list[str]:
    return page.evaluate("window.__csp || []")


def test_the_policy_header_has_nonces_and_no_unsafe_inline_script(page, live_app):
    response = page.goto("/accounts/login/")

    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert re.search(r"'nonce-[A-Za-z0-9+/=]{16,}'", directives["script-src"])
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]
    assert directives["img-src"] == "'self' data: blob:"
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


def test_every_main_page_works_under_the_policy_with_no_violation(page, live_app):
    problems = watch(page)
    session_path = demo_session_started(page, live_app, title="CSP check")

    # htmx posts the question, the websocket streams the steps, plotly draws the chart.
    question_asked(page, session_path, "show me a bar chart of revenue by region")
    page.wait_for_selector("#session-runs .step-answer", timeout=60_000)
    page.wait_for_selector("#session-runs .plotly-chart[data-drawn='yes'] .main-svg", timeout=30_000)
    seen = {session_path: violations(page)}
    for path in ("/", f"/projects/{live_app.demo_project_pk}/", f"/projects/{live_app.demo_project_pk}/gallery/",
                 "/api/v1/docs/", "/admin/", "/admin/accounts/user/", "/accounts/password_change/"):  # fmt: skip
        page.goto(path)
        page.wait_for_load_state("networkidle")
        seen[path] = violations(page)
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)

    assert {path: found for path, found in seen.items() if found} == {}
    assert problems == []


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def outside_server():
    """Another origin on loopback standing in for "the internet": it counts every request it gets."""
    _Counter.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Counter.hits
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_a_chart_with_layout_images_cannot_make_the_viewer_fetch_an_outside_url(
    live_server, client, alice, project, settings, outside_server
):
    from playwright.sync_api import sync_playwright

    outside_url, hits = outside_server
    figure = {
        "data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}],
        "layout": {"images": [{"source": f"{outside_url}/track.png?viewer=alice", "x": 0, "y": 1,
                               "sizex": 1, "sizey": 1, "xref": "paper", "yref": "paper"}]},
    }  # fmt: skip
    chart = artifact_make(project=project, kind="plotly", body=json.dumps(figure).encode(), title="Beacon")
    settings.SESSION_COOKIE_SECURE = False
    client.force_login(alice)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    path = reverse("exports:artifact-detail", args=[chart.pk])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        page.add_init_script(RECORD_VIOLATIONS)
        page.goto(live_server.url + path)
        page.wait_for_selector(f"#artifact-{chart.pk} .plotly-chart .main-svg", timeout=30_000)
        page.wait_for_timeout(1000)
        reported = violations(page)
        browser.close()

    assert hits == []
    assert any(v.startswith("img-src") and outside_url in v for v in reported), reported
