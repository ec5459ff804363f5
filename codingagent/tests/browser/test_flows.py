"""End-to-end flows in a real Chromium against the real app (daphne + run worker)."""

from __future__ import annotations

import os
import re

import pytest

from codingagent.tests.browser.conftest import (
    OUTSIDER_EMAIL,
    OUTSIDER_PASSWORD,
    demo_session_started,
    log_in,
    question_asked,
)
from codingagent.tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Selectors come from the URL contracts (form actions) and the shared partials, not from styling.
STEPS = "#session-runs"
STEP = "#session-runs [id^='step-']"
ANSWER = "#session-runs .step-answer"
CHART = "#session-runs figure.artifact .js-plotly-plot, #session-runs figure.artifact img.artifact-image"
SUCCEEDED = "#session-runs .run-meta[data-status='succeeded']"
# The README's screenshot is refreshed only on request (UPDATE_SCREENSHOTS=1), so a test run leaves the tree clean.
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "session.png"


def test_the_demo_user_logs_in_and_sees_the_dashboard_with_the_demo_project(page, live_app):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)

    assert page.url == f"{live_app.url}/"
    assert page.get_by_text("Demo: sales 2024").first.is_visible()


def test_a_user_creates_a_project_and_sees_the_profile_of_an_uploaded_csv(page, live_app, tmp_path):
    csv_file = tmp_path / "weather.csv"
    csv_file.write_text("city,temperature_c,rainfall_mm\nOslo,3.5,48\nLima,19.2,1\nPerth,24.8,12\n")
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)

    page.fill("form[action='/projects/new/'] [name=name]", "Weather check")
    page.click("form[action='/projects/new/'] [type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project_path = page.url.removeprefix(live_app.url)
    upload_form = f"form[action='{project_path}datasets/']"
    page.set_input_files(f"{upload_form} input[type=file]", str(csv_file))
    page.click(f"{upload_form} [type=submit]")

    page.get_by_text("temperature_c").first.wait_for()
    assert page.get_by_role("heading", name="Weather check").first.is_visible()
    assert page.get_by_text("weather.csv").first.is_visible()
    assert page.get_by_text("Lima").first.is_visible()


def test_the_offline_analyst_streams_steps_and_a_chart_that_survive_a_reload(page, live_app, tmp_path):
    session_path = demo_session_started(page, live_app, title="Revenue by region")
    # A marker on window proves that the answer arrives without a page load.
    page.evaluate("window.__noReload = true")

    question_asked(page, session_path, "show me a bar chart of revenue by region")
    page.wait_for_selector(STEP)
    page.wait_for_selector(ANSWER, timeout=60_000)
    page.wait_for_selector(CHART, timeout=20_000)
    page.wait_for_selector(SUCCEEDED)

    steps_live = page.locator(STEP).count()
    assert page.evaluate("window.__noReload") is True
    assert steps_live >= 3
    assert "North" in page.locator(STEPS).text_content()

    page.reload()
    page.wait_for_selector(CHART)
    assert page.locator(STEP).count() == steps_live
    assert page.locator(ANSWER).count() == 1
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "session.png"
    # From the top with a tall viewport: a full-page shot would paint the sticky top bar mid-page.
    page.evaluate("window.scrollTo(0, 0)")
    page.set_viewport_size({"width": 1400, "height": 1300})
    page.screenshot(path=str(shot))


def test_dark_mode_stays_on_after_a_reload(page, live_app):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    before = page.evaluate("document.documentElement.dataset.theme")

    page.click("[data-theme-toggle]")
    page.reload()

    after = page.evaluate("document.documentElement.dataset.theme")
    assert (before, after) == ("light", "dark")


def test_a_theme_the_account_has_not_saved_yet_survives_a_reload_and_is_saved_by_the_next_page(page, live_app):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    chosen = {"light": "dark", "dark": "light"}[page.evaluate("document.documentElement.dataset.theme")]
    page.route(
        "**/accounts/theme/", lambda route: route.abort()
    )  # the save does not land (offline, or cut by the reload)
    page.click("[data-theme-toggle]")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == chosen

    page.unroute("**/accounts/theme/")
    with page.expect_response(lambda r: r.url.endswith("/accounts/theme/") and r.request.method == "POST"):
        page.reload()  # the page sends the pending choice again
    page.wait_for_function("localStorage.getItem('theme-pending') === null")
    page.evaluate("localStorage.clear()")  # what another browser knows: only the account
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == chosen


def test_an_outsider_gets_404_on_the_demo_project(page, live_app):
    log_in(page, email=OUTSIDER_EMAIL, password=OUTSIDER_PASSWORD)

    response = page.goto(f"/projects/{live_app.demo_project_pk}/")

    assert response.status == 404
    assert "Demo: sales 2024" not in page.content()
