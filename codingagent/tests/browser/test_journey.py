"""The whole journey a new user takes, in a real Chromium against the real app, with the console and the
Content-Security-Policy watched throughout: log in, create a project, upload a CSV (with progress), Ctrl+J for a
new session, ask the offline analyst for a chart, watch it stream (the session named after it everywhere), reload,
export PDF and notebook, every keyboard shortcut, phone width with no sideways scroll, an outsider's 404, and a
rename in place.

Screenshots of the key screens (light and dark, desktop and phone) are written to ``SCREENSHOTS_DIR`` when it
is set (``make screenshots``: var/screenshots/, git-ignored)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from codingagent.tests.browser.conftest import OUTSIDER_EMAIL, OUTSIDER_PASSWORD, demo_session_started, log_in
from codingagent.tests.browser.test_security import RECORD_VIOLATIONS, violations, watch

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

MOD = "Control"  # Linux Chromium: the shortcuts use Ctrl (Cmd on a Mac)
SCREENSHOTS = Path(os.environ["SCREENSHOTS_DIR"]) if os.environ.get("SCREENSHOTS_DIR") else None
RECORD_PROGRESS = """
window.__progress = [];
document.addEventListener('htmx:xhr:progress', function (e) {
  if (e.detail.total) window.__progress.push(Math.round(e.detail.loaded / e.detail.total * 100));
});
"""
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
LAST_RUN_ENDED = """() => {
  const meta = [...document.querySelectorAll('#session-runs .run-meta')].pop();
  return meta && ['cancelled', 'succeeded', 'failed'].includes(meta.dataset.status);
}"""
TEMPLATE_SYNTAX = "() => /\\{[%{#]/.test(document.body.innerText)"


def shoot(page, name: str) -> None:
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def theme(page) -> str:
    return page.evaluate("document.documentElement.dataset.theme")


def theme_chosen(page, wanted: str) -> None:
    """Toggle the account's theme to `wanted` if it is not already."""
    if theme(page) != wanted:
        page.click("[data-theme-toggle]")
        page.wait_for_timeout(300)  # the choice is saved with a background POST
    assert theme(page) == wanted


def session_pk(session_path: str) -> int:
    return int(re.search(r"/sessions/(\d+)/", session_path).group(1))


def test_the_journey_from_login_to_exports_with_every_shortcut(page, live_app, tmp_path):
    problems = watch(page)
    page.add_init_script(RECORD_PROGRESS)
    page.emulate_media(color_scheme="light")
    csv_file = tmp_path / "shop.csv"
    csv_file.write_text("region,revenue\n" + "".join(f"{r},{v}\n" for r, v in [("North", 120), ("South", 80),
                                                                           ("East", 95), ("West", 60)] * 200))  # fmt: skip

    # Log in, create a project, upload a CSV and see its progress and profile.
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    shoot(page, "dashboard-light-desktop")
    page.fill("form[action='/projects/new/'] [name=name]", "Shop review")
    page.click("form[action='/projects/new/'] [type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project_path = page.url.removeprefix(live_app.url)
    page.set_input_files(f"form[action='{project_path}datasets/'] input[type=file]", str(csv_file))
    page.click(f"form[action='{project_path}datasets/'] [type=submit]")
    page.get_by_text("shop.csv").first.wait_for()
    assert page.evaluate("window.__progress")[-1] == 100
    assert page.get_by_text("800 rows").first.is_visible()
    page.wait_for_selector("#project-sessions .project-sessions")
    shoot(page, "project-light-desktop")

    # Ctrl+J: a new session in this project, opened at once.
    page.keyboard.press(f"{MOD}+j")
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))
    session_path = page.url.removeprefix(live_app.url)
    assert page.locator("#session-title").input_value() == "Untitled session"
    assert page.locator("#empty-hint").is_visible()

    # "/" focuses the question box, Shift+Enter is a new line, Enter sends.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "question-input"
    page.keyboard.type("show me a bar chart")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("of revenue by region")
    assert page.locator("#question-input").input_value() == "show me a bar chart\nof revenue by region"
    page.evaluate("window.__noReload = true")
    page.keyboard.press("Enter")

    # Steps stream in, the running indicator counts, then the interactive chart and the answer.
    page.wait_for_selector("#session-runs [id^='step-']", timeout=60_000)
    assert not page.locator("#empty-hint").is_visible()
    page.wait_for_selector("#session-runs .step-answer", timeout=60_000)
    page.wait_for_selector("#session-runs .plotly-chart[data-drawn='yes'] .main-svg", timeout=30_000)
    page.wait_for_selector("#session-runs .run-meta[data-status='succeeded']", timeout=30_000)
    # Named after the question in the sidebar and the tab too, not only in the title box (the question's response).
    title = "show me a bar chart of revenue by region"
    expect(page.locator(f"#sidebar-session-{session_pk(session_path)}")).to_have_text(title)
    expect(page).to_have_title(f"{title} · CodingAgent")
    assert page.evaluate("window.__noReload") is True
    steps = page.locator("#session-runs [id^='step-']").count()
    assert "North" in page.locator("#session-runs .step-answer").text_content()
    assert page.locator("#session-runs .step-answer .copy-button").count() == 1

    # Reload: the same steps, the chart, and the title taken from the first question.
    page.reload()
    page.wait_for_selector("#session-runs .plotly-chart[data-drawn='yes'] .main-svg", timeout=30_000)
    assert page.locator("#session-runs [id^='step-']").count() == steps
    assert page.locator("#session-title").input_value() == title
    shoot(page, "session-light-desktop")

    # Exports: PDF and notebook download through the menu.
    downloads = {}
    for label, suffix in (("PDF report", ".pdf"), ("Jupyter notebook", ".ipynb")):
        page.evaluate("document.querySelector('.session-header .export-menu').open = true")
        with page.expect_download(timeout=90_000) as info:
            page.click(f".session-header .export-menu a[data-export='{label}']")
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        downloads[suffix] = path
    assert downloads[".pdf"].name.endswith(".pdf") and downloads[".pdf"].read_bytes().startswith(b"%PDF")
    notebook = json.loads(downloads[".ipynb"].read_text())
    assert notebook["nbformat"] == 4 and any("plotly" in "".join(c["source"]) for c in notebook["cells"])

    # Ctrl+Shift+L: dark mode, remembered on the account (a fresh browser context gets it too).
    page.keyboard.press(f"{MOD}+Shift+L")
    assert theme(page) == "dark"
    page.wait_for_timeout(300)  # the choice is saved with a background POST
    page.reload()
    assert theme(page) == "dark"
    page.wait_for_selector("#session-runs .plotly-chart[data-drawn='yes'] .main-svg", timeout=30_000)
    shoot(page, "session-dark-desktop")
    other = page.context.browser.new_context(base_url=live_app.url, color_scheme="light")
    other_page = other.new_page()
    log_in(other_page, email=live_app.demo_email, password=live_app.demo_password)
    assert theme(other_page) == "dark"
    other.close()

    # Ctrl+B and Ctrl+Shift+B collapse the side panels; the state survives a reload.
    page.keyboard.press(f"{MOD}+b")
    page.keyboard.press(f"{MOD}+Shift+B")
    assert not page.locator(".layout > .sidebar").is_visible()
    assert not page.locator(".layout > .aside").is_visible()
    page.reload()
    assert not page.locator(".layout > .sidebar").is_visible()
    page.keyboard.press(f"{MOD}+b")
    page.keyboard.press(f"{MOD}+Shift+B")
    assert page.locator(".layout > .sidebar").is_visible() and page.locator(".layout > .aside").is_visible()
    assert page.get_attribute("[data-theme-toggle]", "title") == "Toggle dark mode (Ctrl/⌘+Shift+L)"

    # "?" lists the shortcuts; Esc closes the list.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("?")
    assert page.locator("#shortcuts-dialog").is_visible()
    assert "Ctrl/⌘ J" in page.locator("#shortcuts-dialog").inner_text().replace("\n", " ").replace("\t", " ")
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts-dialog").is_visible()

    # Esc stopping a running question is tried in test_live.py, against a model slow enough to be stopped:
    # the offline analyst can answer before the key is pressed.
    page.keyboard.press(f"{MOD}+Shift+L")  # back to light for whoever comes next
    page.wait_for_timeout(300)

    assert page.evaluate(TEMPLATE_SYNTAX) is False
    assert violations(page) == []
    assert problems == []
    live_app.session_path = session_path


def test_phone_width_has_no_sideways_scroll_on_any_main_page_and_the_panels_are_drawers(browser, live_app):
    context = browser.new_context(base_url=live_app.url, viewport={"width": 375, "height": 780}, is_mobile=True,
                                  has_touch=True)  # fmt: skip
    page = context.new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    page.emulate_media(color_scheme="light")
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    theme_chosen(page, "light")  # whatever an earlier test left on the account
    project = f"/projects/{live_app.demo_project_pk}/"
    page.goto(project)
    page.wait_for_selector("#project-sessions .project-sessions")
    session_link = page.locator("#project-sessions a[href^='/sessions/']").first
    session_path = (
        session_link.get_attribute("href") if session_link.count() else getattr(live_app, "session_path", None)
    )
    dataset_path = page.locator("#datasets a[href^='/datasets/']").first.get_attribute("href")
    pages = ["/", project, dataset_path, f"{project}gallery/", f"{project}edit/", "/accounts/password_change/",
             "/accounts/password-reset/"]  # fmt: skip
    if session_path:
        pages.append(session_path)

    scrolls, drawers = {}, {}
    for path in pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        scrolls[path] = page.evaluate(NO_SIDEWAYS_SCROLL)
        # The projects sidebar is on the page, as a drawer that starts closed.
        drawers[path] = (page.locator("#projects-sidebar .project-list").count(), page.is_visible("#projects-sidebar"))
        assert page.evaluate(TEMPLATE_SYNTAX) is False, path
    shots = {"dashboard": "/", "project": project, "session": session_path}
    for name, path in shots.items():
        if path:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            shoot(page, f"{name}-light-phone")
    if session_path:
        page.goto(session_path)
        page.wait_for_load_state("networkidle")
        page.click("[data-toggle-panel='sidebar']")
        page.wait_for_timeout(300)
        sidebar_open = page.locator(".layout > .sidebar").is_visible()
        current = page.locator("#projects-sidebar .project-list li.current a").text_content()
        shoot(page, "session-drawer-phone")
        page.click("[data-drawer-backdrop]", position={"x": 360, "y": 400})  # beside the drawer
        page.wait_for_timeout(300)
        assert sidebar_open and not page.locator(".layout > .sidebar").is_visible()
        assert current
    # Dark, chosen on the account (its saved choice outranks the system's), then back to light.
    page.goto("/")
    page.click("[data-theme-toggle]")
    page.wait_for_timeout(300)  # the choice is saved with a background POST
    for name, path in shots.items():
        if path:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            assert theme(page) == "dark", path
            shoot(page, f"{name}-dark-phone")
    page.click("[data-theme-toggle]")
    page.wait_for_timeout(300)

    assert {path: ok for path, ok in scrolls.items() if not ok} == {}
    assert {path: state for path, state in drawers.items() if state != (1, False)} == {}
    assert violations(page) == []
    context.close()


def test_a_second_user_gets_404_on_the_first_users_session(page, live_app):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    page.goto(f"/projects/{live_app.demo_project_pk}/")
    page.wait_for_selector("#project-sessions .project-sessions")
    page.keyboard.press(f"{MOD}+j")  # a session of the demo user's own
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))
    href = page.url.removeprefix(live_app.url)
    page.context.clear_cookies()

    log_in(page, email=OUTSIDER_EMAIL, password=OUTSIDER_PASSWORD)
    response = page.goto(href)

    # The served app runs with DEBUG=1 (Django's own 404 page); the friendly one is checked in test_pages.py.
    assert response.status == 404
    assert "show me" not in page.content() and "Untitled session" not in page.content()


def test_the_projects_sidebar_follows_the_user_across_pages_and_stays_collapsed_once_collapsed(page, live_app):
    log_in(page, email=live_app.demo_email, password=live_app.demo_password)
    theme_chosen(page, "light")  # whatever an earlier test left on the account
    project = f"/projects/{live_app.demo_project_pk}/"
    page.goto(project)
    current = page.locator("#projects-sidebar .project-list li.current a").get_attribute("href")

    page.keyboard.press(f"{MOD}+b")
    page.goto(f"{project}gallery/")
    collapsed_elsewhere = page.locator(".layout > .sidebar").is_visible()
    page.goto("/accounts/password_change/")
    page.keyboard.press(f"{MOD}+b")
    page.goto(f"{project}gallery/")

    assert current == project
    assert collapsed_elsewhere is False
    assert page.locator(".layout > .sidebar").is_visible()
    assert page.locator("#projects-sidebar .project-list li.current a").get_attribute("href") == project


def test_renaming_a_session_by_hand_renames_its_sidebar_entry_and_tab_without_a_reload(page, live_app):
    problems = watch(page)
    session_path = demo_session_started(page, live_app, title="Before the rename")
    entry = page.locator(f"#sidebar-session-{session_pk(session_path)}")
    page.evaluate("window.__noReload = true")

    page.fill("#session-title", "  After the rename ")
    page.keyboard.press("Enter")

    expect(entry).to_have_text("After the rename")
    expect(page).to_have_title("After the rename · CodingAgent")
    assert page.locator("#session-title").input_value() == "After the rename"
    assert page.locator("#model-picker-title").input_value() == "After the rename"
    expect(entry).to_have_class("current")  # awaited: htmx adds its settling classes for a moment
    assert page.evaluate("window.__noReload") is True
    assert problems == [] and violations(page) == []
