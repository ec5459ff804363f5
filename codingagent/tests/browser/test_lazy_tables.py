"""Tables on the session page load when they come into view, in a real Chromium: a model on a loopback endpoint
computes a 50-row table, live and after a reload; the placeholder keeps the table's height, the loaded table sorts,
and a verified number whose table was never loaded still leads to its cell, with no console or CSP error."""

from __future__ import annotations

import re
from contextlib import suppress

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from analysis.tests.llm_server import text_reply, tool_reply
from codingagent.tests.browser.conftest import (
    demo_session_started,
    desktop_page,
    llm_app_started,
    log_in,
    question_asked,
)
from codingagent.tests.browser.test_security import violations, watch
from codingagent.tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SALES = pd.read_csv(REPO_ROOT / "projects" / "sample_data" / "sales.csv")
BY_DATE = SALES.groupby("date")["revenue"].sum().round(2)
CODE = "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.groupby('date')['revenue'].sum().round(2)\n"
# Row 3 sits on the table's first page, row 31 on its second (25 rows a page).
ANSWER = f"Revenue was {BY_DATE.iloc[2]:,.2f} on day three and {BY_DATE.iloc[30]:,.2f} on day thirty-one."
# Later questions answer with long text, so the first question's table ends up far above the newest answer.
FILLER = "\n".join(f"- Point {i}: nothing to compute here." for i in range(60))
ANSWERED = ".run-meta[data-status='succeeded']"


def _respond(body: dict) -> dict:
    question = next(m["content"] for m in reversed(body["messages"]) if m.get("role") == "user")
    if "filler" in str(question):
        return text_reply(FILLER)
    answered = body["messages"][-1].get("role") == "tool"
    return text_reply(ANSWER) if answered else tool_reply(CODE, "Summing revenue by day.")


@pytest.fixture(scope="module")
def llm_app(tmp_path_factory):
    with llm_app_started(tmp_path_factory.mktemp("lazy-tables-app"), _respond) as app:
        yield app


@pytest.fixture(scope="module")
def asked(browser, llm_app):
    """A session asked the table question (watched live: what the push showed is recorded), then two fillers."""
    page = desktop_page(browser, llm_app, timeout=20_000)
    problems = watch(page)
    path = demo_session_started(page, llm_app, title="Lazy tables")
    url = page.url
    _ask(page, path, "Revenue by day?")
    with suppress(PlaywrightTimeoutError):  # the pushed table loads itself: it is in view, the page follows the run
        page.locator(".run-artifacts .artifact-table:not([data-lazy]) tbody tr").nth(24).wait_for(timeout=10_000)
    live_rows = page.locator(".run-artifacts .artifact-table table.data tbody tr").count()
    for n in range(2):
        _ask(page, path, f"A filler question, number {n}?")
    last_run = page.locator(".run").last.get_attribute("id")
    yield {"url": url, "last_run": last_run, "live_rows": live_rows, "problems": problems + violations(page)}
    page.context.close()


def _ask(page, path: str, question: str) -> None:
    done = page.locator(ANSWERED).count()
    question_asked(page, path, question)
    page.wait_for_function(f'() => document.querySelectorAll("{ANSWERED}").length > {done}', timeout=90_000)


@pytest.fixture
def page(browser, llm_app):
    page = desktop_page(browser, llm_app, timeout=20_000)
    log_in(page, email=llm_app.demo_email, password=llm_app.demo_password)
    yield page
    page.context.close()


def _table_requests(page) -> list[str]:
    """The table blocks ``page`` asks for (/artifacts/<pk>/ over htmx)."""
    requests: list[str] = []
    block = re.compile(r"/artifacts/\d+/(\?|$)")
    page.on(
        "request", lambda r: requests.append(r.url) if r.headers.get("hx-request") and block.search(r.url) else None
    )
    return requests


def _open_at_the_newest_answer(page, asked: dict):
    """The session page opened at its last question (#run-<pk>): the first question's table is far above."""
    page.goto(f"{asked['url']}#{asked['last_run']}")
    page.wait_for_selector(ANSWERED)
    page.wait_for_timeout(300)  # time for an intersection to be noticed, were the table in view
    return page.locator(".run").first.locator("div.artifact-table")


def test_a_table_step_pushed_live_loads_its_first_page(asked):
    assert asked["live_rows"] == 25
    assert asked["problems"] == []


def test_a_table_out_of_view_stays_a_placeholder_of_its_size(page, asked):
    requests = _table_requests(page)

    table = _open_at_the_newest_answer(page, asked)

    assert table.get_attribute("data-lazy") is not None
    assert f"{len(BY_DATE)} rows × 1 column" in table.inner_text()
    assert table.locator("a", has_text="Open the table").get_attribute("href").startswith("/artifacts/")
    assert requests == []


def test_a_table_scrolled_into_view_loads_in_its_placeholders_height_and_sorts(page, asked):
    problems = watch(page)
    table = _open_at_the_newest_answer(page, asked)
    placeholder_height = table.bounding_box()["height"]

    row_px = table.locator(".table-skeleton").evaluate(
        "el => parseFloat(getComputedStyle(el).getPropertyValue('--row-h'))"
        " * parseFloat(getComputedStyle(document.documentElement).fontSize)"
    )

    table.scroll_into_view_if_needed()
    loaded = page.locator(".run").first.locator("div.artifact-table:not([data-lazy])")
    loaded.locator("tbody tr").nth(24).wait_for()

    assert abs(loaded.bounding_box()["height"] - placeholder_height) <= 4  # nothing below it jumps
    assert abs(loaded.locator("tbody tr").first.bounding_box()["height"] - row_px) <= 1  # nor for short tables
    assert loaded.locator("tbody tr").count() == 25
    loaded.locator("thead th", has_text="revenue").locator("a").click()
    sorted_table = page.locator(".run").first.locator("div.artifact-table:has(th[aria-sort='ascending'])")
    sorted_table.wait_for()
    assert (
        sorted_table.locator("tbody tr").first.locator("td").inner_text() == f"{BY_DATE.iloc[:50].min():,.2f}"
    )  # of the 50 rows stored
    assert problems == [] and violations(page) == []


def test_a_number_from_a_table_never_loaded_highlights_its_cell_on_the_second_page(page, asked):
    problems = watch(page)
    table = _open_at_the_newest_answer(page, asked)
    assert table.get_attribute("data-lazy") is not None  # the click below has to load it first
    claim = page.locator(".run").first.locator(".answer-body .claim", has_text=f"{BY_DATE.iloc[30]:,.2f}")

    claim.click()

    cell = page.locator("td.claim-target")
    cell.wait_for()
    assert cell.text_content().strip() == f"{BY_DATE.iloc[30]:,.2f}"
    assert BY_DATE.index[30] in cell.locator("xpath=..").text_content()
    assert "Page 2 / 2" in page.locator(".run").first.locator("div.artifact-table").inner_text()
    assert problems == [] and violations(page) == []


def test_a_number_on_the_first_page_of_a_table_never_loaded_highlights_its_cell(page, asked):
    table = _open_at_the_newest_answer(page, asked)
    assert table.get_attribute("data-lazy") is not None
    claim = page.locator(".run").first.locator(".answer-body .claim", has_text=f"{BY_DATE.iloc[2]:,.2f}")

    claim.focus()
    page.keyboard.press("Enter")

    cell = page.locator("td.claim-target")
    cell.wait_for()
    assert cell.text_content().strip() == f"{BY_DATE.iloc[2]:,.2f}"
    assert BY_DATE.index[2] in cell.locator("xpath=..").text_content()


def test_the_placeholder_follows_the_dark_theme(page, asked):
    skeleton = _open_at_the_newest_answer(page, asked).locator(".table-skeleton")
    light = skeleton.evaluate("el => getComputedStyle(el).backgroundImage")

    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")

    dark = skeleton.evaluate("el => getComputedStyle(el).backgroundImage")
    surface = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--surface-2')")
    assert light != dark
    assert _rgb(surface.strip()) in dark


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_a_table_that_fails_to_load_says_so_and_keeps_its_link(page, asked):
    # 502, not 500: under DEBUG (the served app), django-htmx shows a 400/403/404/500 as the whole page.
    page.route(re.compile(r"/artifacts/\d+/$"), lambda route: route.fulfill(status=502, body="bad gateway"))
    table = _open_at_the_newest_answer(page, asked)

    table.scroll_into_view_if_needed()

    page.locator(".run").first.locator("div.artifact-table.is-failed").wait_for()
    assert "The table could not be loaded." in table.inner_text()
    assert table.locator("a", has_text="Open the table").is_visible()
