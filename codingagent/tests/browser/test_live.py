"""A live run watched in a real Chromium, with a model on a loopback endpoint that takes its time: the run's footer
names the real model and the session counts the question while it streams, the running indicator says what
the run is doing and is gone at the end, steps fold one by one (click and keyboard) and stay folded as more
stream in; and every empty state a newcomer meets names the next action. Console and CSP are watched."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from analysis.tests.llm_server import text_reply, tool_reply
from codingagent.tests.browser.conftest import (
    OUTSIDER_EMAIL,
    OUTSIDER_PASSWORD,
    _app_env,
    desktop_page,
    llm_app_started,
    log_in,
)
from codingagent.tests.browser.test_journey import LAST_RUN_ENDED, NO_SIDEWAYS_SCROLL, TEMPLATE_SYNTAX, shoot
from codingagent.tests.browser.test_security import violations, watch
from codingagent.tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

THINK = 1.2  # seconds the model takes per reply; each code step runs for 1.5 s
COUNT_CODE = "import time\ntime.sleep(1.5)\nfor i in range(40):\n    print(i)\n"
CHART_CODE = (
    "import time\nimport plotly.express as px\ntime.sleep(1.5)\n"
    "fig = px.bar(x=['North', 'South'], y=[3, 5], title='Orders')\nfig.show()\n"
)
# Every change of the page, sampled: the indicator's text, the last run's model label, the session's totals.
RECORD = """
window.__live = [];
new MutationObserver(function () {
  var activity = document.querySelector('#session-runs .run-activity .activity-text');
  var models = document.querySelectorAll('#session-runs .run-meta .run-model');
  var usage = document.getElementById('session-usage');
  var sample = [activity ? activity.textContent : '', models.length ? models[models.length - 1].textContent : '',
                usage ? usage.textContent.trim() : ''];
  var last = window.__live[window.__live.length - 1];
  if (!last || last.join('|') !== sample.join('|')) window.__live.push(sample);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def _respond(body: dict) -> dict:
    """Count rows (a long output), draw a chart, answer; each reply after THINK seconds."""
    time.sleep(THINK)
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    done = sum(1 for m in messages[last_user:] if m.get("role") == "tool")
    if done == 0:
        return tool_reply(COUNT_CODE, "First I count the rows.")
    if done == 1:
        return tool_reply(CHART_CODE, "Now a chart of the orders.")
    return text_reply("North has 3 orders and South 5.")


@pytest.fixture(scope="module")
def llm_app(tmp_path_factory):
    with llm_app_started(tmp_path_factory.mktemp("live-app"), _respond) as app:
        yield app


@pytest.fixture
def page(browser, llm_app):
    page = desktop_page(browser, llm_app, timeout=20_000)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=llm_app.url)
    yield page
    page.context.close()


def _new_session(page, app) -> str:
    log_in(page, email=app.demo_email, password=app.demo_password)
    page.goto(f"/projects/{app.demo_project_pk}/")
    page.click(f"form[action='/projects/{app.demo_project_pk}/sessions/new/'] [type=submit]")
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))
    return page.url


def _ask(page, question: str) -> None:
    page.fill("#question-input", question)
    page.keyboard.press("Enter")


def _in_order(seen: list[str], expected: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == e for s in it) for e in expected)


def test_a_streaming_run_names_its_model_counts_the_question_and_says_what_it_does(page, llm_app):
    problems = watch(page)
    page.add_init_script(RECORD)
    page.emulate_media(color_scheme="light")
    _new_session(page, llm_app)

    # The empty session offers questions named after the project's columns; one click puts it in the box.
    example = page.locator("#empty-hint [data-example-question]").first
    assert example.is_visible() and "revenue" in example.text_content().lower()
    shoot(page, "empty-session-light-desktop")
    example.click()
    assert page.locator("#question-input").input_value() == example.text_content()
    assert page.evaluate("document.activeElement.id") == "question-input"
    page.keyboard.press("Enter")

    page.wait_for_selector("#session-runs .run-activity", timeout=30_000)
    question = page.locator("#session-runs .question").first.text_content().strip()
    # Named after it at once, not on reload: the question's own response carries the title, and may land a moment
    # after the run's websocket push that showed the indicator.
    expect(page.locator("#session-title")).to_have_value(question, timeout=5_000)
    page.wait_for_selector("#session-runs .step-code")
    shoot(page, "session-streaming-light-desktop")
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_timeout(500)  # the side panels slide into their closed drawers
    page.locator("#session-runs .run-activity").scroll_into_view_if_needed()
    assert page.locator("#session-runs .run-activity").is_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    shoot(page, "session-streaming-light-phone")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.emulate_media(color_scheme="dark")
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    page.wait_for_selector("#session-runs .plotly-chart", timeout=30_000)
    shoot(page, "session-streaming-dark-desktop")
    page.wait_for_function(LAST_RUN_ENDED, timeout=60_000)
    assert page.locator("#session-runs .run-meta[data-status='succeeded']").count() == 1

    samples = page.evaluate("window.__live")
    streaming = [s for s in samples if s[0]]
    assert streaming, samples
    assert {model for _, model, _ in streaming} == {"loopback"}  # the real name, never "offline" or a key
    assert all(usage.startswith("Session: 1 question ·") for _, _, usage in streaming), samples
    activities = [a for a, _, _ in samples]
    # Thinking, running the first code, thinking again, the chart, the answer; then the indicator is gone.
    assert _in_order(
        activities, ["Thinking…", "Running code (step 1)…", "Thinking…", "Drawing chart…", "Writing the answer…", ""]
    ), activities
    assert activities[-1] == ""
    assert page.locator(".run-activity").count() == 0
    meta = page.locator("#session-runs .run-meta").last
    assert meta.locator(".run-model").text_content() == "loopback"
    assert page.locator("#session-usage").text_content().strip().startswith("Session: 1 question ·")

    page.reload()
    assert page.locator("#session-runs .run-meta .run-model").last.text_content() == "loopback"
    assert page.locator("#session-usage").text_content().strip().startswith("Session: 1 question ·")
    assert not page.evaluate(TEMPLATE_SYNTAX)
    assert problems == [] and violations(page) == []


def _viewer_of_the_demo_project(app) -> tuple[str, str]:
    email, password = "viewer@example.com", "viewer-password-42"
    code = (
        "from accounts.models import User\nfrom projects.models import Project, ProjectMember\n"
        f"user = User.objects.create_user({email!r}, {password!r})\n"
        f"ProjectMember.objects.create(project=Project.objects.get(pk={app.demo_project_pk}), user=user, role='viewer')"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT, env=_app_env(app.data_dir),
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    return email, password


def test_a_viewer_watches_the_same_live_run_without_a_console_error(page, browser, llm_app):
    session_url = _new_session(page, llm_app)
    email, password = _viewer_of_the_demo_project(llm_app)
    viewer = desktop_page(browser, llm_app, timeout=20_000)
    problems = watch(viewer)
    viewer.add_init_script(RECORD)
    log_in(viewer, email=email, password=password)
    viewer.goto(session_url)
    assert viewer.locator("#question-input").count() == 0  # a viewer's page has no composer
    assert "Owners and editors" in viewer.locator("#empty-hint").text_content()

    _ask(page, "orders by region")
    viewer.wait_for_selector("#session-runs .run-activity", timeout=30_000)
    viewer.wait_for_function(LAST_RUN_ENDED, timeout=60_000)

    samples = viewer.evaluate("window.__live")
    streaming = [s for s in samples if s[0]]
    assert {model for _, model, _ in streaming} == {"loopback"}
    assert all(usage.startswith("Session: 1 question ·") for _, _, usage in streaming), samples
    assert _in_order([a for a, _, _ in samples], ["Running code (step 1)…", "Drawing chart…", ""]), samples
    assert viewer.locator("#user-usage").count() == 1  # the viewer's own total stays theirs
    assert problems == [] and violations(viewer) == []  # no htmx:oobErrorNoTarget for a missing composer
    viewer.context.close()


def test_stopping_a_run_clears_its_indicator_and_frees_the_composer(page, llm_app):
    problems = watch(page)
    _new_session(page, llm_app)
    asked, answers = [], []
    page.on(
        "dialog", lambda dialog: (asked.append(dialog.message), dialog.accept() if answers.pop(0) else dialog.dismiss())
    )

    # Esc with the focus still in the question box: "Cancel" keeps the run going, "OK" stops it.
    _ask(page, "count the orders")
    page.wait_for_selector("#session-runs .run-activity", timeout=30_000)
    assert page.locator("#question-input").is_disabled()
    answers.extend([False, True])
    page.keyboard.press("Escape")
    page.wait_for_timeout(200)
    assert page.locator("#session-runs .run-activity").count() == 1
    page.keyboard.press("Escape")
    page.wait_for_selector("#session-runs .run-meta[data-status='cancelled']", timeout=30_000)
    assert asked == ["Stop the running question?"] * 2
    assert page.locator(".run-activity").count() == 0
    assert page.locator("#question-input").is_enabled()
    assert page.locator("#session-usage").text_content().strip().startswith("Session: 1 question ·")

    # Esc from anywhere on the page stops the next one.
    _ask(page, "count the orders again")
    page.wait_for_selector("#session-runs .run-activity", timeout=30_000)
    answers.append(True)
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => document.querySelectorAll(\"#session-runs .run-meta[data-status='cancelled']\").length === 2",
        timeout=30_000,
    )
    assert len(asked) == 3 and page.locator("#question-input").is_enabled()
    assert problems == [] and violations(page) == []


def test_steps_fold_by_click_and_keyboard_and_stay_folded_while_more_stream_in(page, llm_app):
    problems = watch(page)
    _new_session(page, llm_app)
    _ask(page, "how many orders per region?")

    code = page.locator("#session-runs .step-code details.step-fold").first
    code.wait_for(timeout=30_000)
    thought = page.locator("#session-runs .step-thought details.step-fold").first
    assert code.get_attribute("open") is not None and thought.get_attribute("open") is not None
    code.locator("summary").click()  # folded by a click while the run goes on
    thought.locator("summary").focus()
    page.keyboard.press("Enter")  # and from the keyboard
    assert code.get_attribute("open") is None and thought.get_attribute("open") is None

    page.wait_for_selector("#session-runs .step-answer", timeout=60_000)
    page.wait_for_function(LAST_RUN_ENDED, timeout=30_000)
    assert page.locator("#session-runs .step-code").count() == 2  # more steps came in after the folding
    assert code.get_attribute("open") is None and thought.get_attribute("open") is None
    assert page.locator("#session-runs .step-code details.step-fold").nth(1).get_attribute("open") is not None

    # The 40-line output started folded, with its line count on the fold; Space opens it.
    output = page.locator("#session-runs .step-output details.step-fold").first
    assert output.get_attribute("open") is None
    assert "40 lines" in output.locator("summary").text_content()
    output.locator("summary").focus()
    page.keyboard.press("Space")
    assert output.get_attribute("open") is not None and output.locator("pre.stdout").is_visible()

    # Unfolded again, the code's copy button still copies it.
    code.locator("summary").click()
    copy = code.locator(".copy-button")
    copy.click()
    page.wait_for_function("() => [...document.querySelectorAll('.copy-button')].some(b => b.textContent === 'Copied')")
    assert "time.sleep(1.5)" in page.evaluate("navigator.clipboard.readText()")
    assert problems == [] and violations(page) == []


def test_every_empty_state_names_the_next_action(page, llm_app):
    problems = watch(page)
    log_in(page, email=OUTSIDER_EMAIL, password=OUTSIDER_PASSWORD)

    # No projects: the button leads to the new project's name field.
    empty = page.locator("#projects-empty")
    assert empty.is_visible()
    shoot(page, "empty-dashboard-light-desktop")
    empty.get_by_role("link", name="Create your first project").click()
    assert page.evaluate("document.activeElement.name") == "name"
    page.keyboard.type("First steps")
    page.click("#project-create-form [type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project_url = page.url

    # A new project: no data (the button opens the file chooser), no sessions (the button starts one).
    datasets = page.locator("#datasets-empty")
    assert datasets.is_visible()
    with page.expect_file_chooser() as chooser:
        datasets.get_by_role("link", name="Choose a file to upload").click()
    assert chooser.value.element.get_attribute("name") == "file"
    sessions = page.locator("#sessions-empty")
    sessions.wait_for()
    shoot(page, "empty-project-light-desktop")
    assert not page.evaluate(TEMPLATE_SYNTAX)
    sessions.get_by_role("button", name="Start your first session").click()
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))

    # An empty session without data: upload first; its artifact panel offers to ask for a chart.
    hint = page.locator("#empty-hint")
    assert hint.is_visible()
    assert (
        hint.get_by_role("link", name="Upload a dataset")
        .get_attribute("href")
        .startswith(project_url.removeprefix(llm_app.url))
    )
    panel_empty = page.locator("#artifacts-empty")
    panel_empty.wait_for()
    assert panel_empty.is_visible()
    page.emulate_media(color_scheme="dark")
    page.evaluate("document.documentElement.dataset.theme = 'dark'")
    shoot(page, "empty-session-dark-desktop")
    panel_empty.get_by_role("button", name="Ask for a chart").click()
    assert page.locator("#question-input").input_value() == "Show a chart of "
    assert page.evaluate("document.activeElement.id") == "question-input"
    assert not page.evaluate(TEMPLATE_SYNTAX)

    # The empty gallery starts a session too.
    page.goto(project_url + "gallery/")
    gallery = page.locator("#gallery-empty")
    assert gallery.is_visible()
    shoot(page, "empty-gallery-dark-desktop")
    assert not page.evaluate(TEMPLATE_SYNTAX)
    gallery.get_by_role("button", name="Start a session").click()
    page.wait_for_url(re.compile(r"/sessions/\d+/$"))
    assert problems == [] and violations(page) == []
