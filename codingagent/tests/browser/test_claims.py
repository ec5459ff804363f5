"""Answers you can check, in a real Chromium: a model on a loopback endpoint answers with true and invented numbers;
verified ones show their source on hover and lead to it on click, unverified ones are flagged."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from analysis.tests.llm_server import text_reply, tool_reply
from codingagent.tests.browser.conftest import demo_session_started, desktop_page, llm_app_started, question_asked
from codingagent.tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SALES = pd.read_csv(REPO_ROOT / "projects" / "sample_data" / "sales.csv")
BY_REGION = SALES.groupby("region")["revenue"].sum().round(2)
CODE = """
import pandas as pd
df = pd.read_csv('sales.csv')
print('orders:', len(df))
final_result = {'total': round(float(df['revenue'].sum()), 2)}
df.groupby('region')['revenue'].sum().round(2)
"""
ANSWER = (
    f"Revenue totals **{SALES['revenue'].sum():,.2f}** over {len(SALES)} orders; "
    f"East made {BY_REGION['East']:,.2f}. Margins were 41.7%."
)
ANSWERED = ".run-meta[data-status='succeeded']"


def _respond(body: dict) -> dict:
    """Run the code first; once its result came back, answer."""
    answered = body["messages"][-1].get("role") == "tool"
    return text_reply(ANSWER) if answered else tool_reply(CODE, "Summing revenue.")


@pytest.fixture(scope="module")
def llm_app(tmp_path_factory):
    with llm_app_started(tmp_path_factory.mktemp("claims-app"), _respond) as app:
        yield app


@pytest.fixture(scope="module")
def answered(browser, llm_app):
    """One answered question, looked at by every test of the module (each asks the page something else)."""
    page = desktop_page(browser, llm_app, timeout=20_000)
    path = demo_session_started(page, llm_app, title="Checkable numbers")
    question_asked(page, path, "What is the total revenue?")
    page.wait_for_selector(ANSWERED, timeout=90_000)
    page.reload()  # the marks are the same live and after a reload; a reload makes the test independent of timing
    page.wait_for_selector(".claim")
    yield page
    page.context.close()


def _claim(page, text: str):
    return page.locator(".answer-body .claim", has_text=text).first


def test_hovering_a_verified_number_shows_where_it_came_from(answered):
    total = _claim(answered, f"{SALES['revenue'].sum():,.2f}")

    total.hover()

    tip = total.locator(".claim-tip")
    assert tip.is_visible()
    assert re.search(r"From step \d+, final_result\['total'\]", tip.text_content())


def test_clicking_a_table_number_highlights_its_cell(answered):
    east = _claim(answered, f"{BY_REGION['East']:,.2f}")

    east.click()

    cell = answered.locator("td.claim-target")
    cell.wait_for()
    assert cell.text_content().strip() == f"{BY_REGION['East']:,.2f}"
    assert "East" in cell.locator("xpath=..").text_content()


def test_a_printed_number_highlights_its_line_from_the_keyboard(answered):
    orders = _claim(answered, str(len(SALES)))

    orders.focus()
    answered.keyboard.press("Enter")

    line = answered.locator("mark.claim-line")
    line.wait_for()
    assert line.text_content() == f"orders: {len(SALES)}"
    assert orders.locator(".claim-tip").is_visible()  # focus shows the source too


def test_an_invented_number_is_flagged_with_a_note(answered):
    margin = _claim(answered, "41.7%")

    assert "claim-unverified" in margin.get_attribute("class")
    assert answered.get_by_text("1 number in this answer was not found in any computed output.").is_visible()
    margin.hover()
    assert margin.locator(".claim-tip").text_content() == "Not found in any computed output"
