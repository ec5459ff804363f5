"""The offline analyst in a conversation: follow-ups refine the previous question; several datasets.

Runs go through the real worker, agent and sandbox; the previous questions reach the analyst the way they
reach any model, in the system prompt's "Conversation so far".
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from analysis.models import Run
from analysis.tests.conftest import PENGUINS
from analysis.tests.offline_support import SAMPLE_SALES, ask, money, numbers_unverified, upload, upload_frame

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_only")]

SALES = pd.read_csv(SAMPLE_SALES, parse_dates=["date"])
# Two years of orders: the demo's 2024 and the same orders a year earlier at 90% of the revenue.
TWO_YEARS = pd.concat(
    [SALES.assign(date=SALES["date"] - pd.DateOffset(years=1), revenue=(SALES["revenue"] * 0.9).round(2)), SALES]
)


@pytest.fixture
def two_years(project, alice):
    return upload_frame(project, alice, "orders.csv", TWO_YEARS.assign(date=TWO_YEARS["date"].dt.strftime("%Y-%m-%d")))


def _line(series: pd.Series) -> str:
    return ", ".join(f"{k}: {money(v)}" for k, v in series.sort_values(ascending=False).items())


def test_now_by_product_regroups_the_previous_question(session, two_years, alice, shared_worker):
    ask(session, alice, "total revenue by region", shared_worker)

    run = ask(session, alice, "now by product", shared_worker)

    expected = TWO_YEARS.groupby("product")["revenue"].sum()
    assert run.answer.startswith("Building on “total revenue by region”. Total revenue by product: ")
    assert _line(expected) in run.answer
    assert numbers_unverified(run) == []


def test_only_for_a_year_filters_the_previous_question_and_chains(session, two_years, alice, shared_worker):
    ask(session, alice, "total revenue by region", shared_worker)
    ask(session, alice, "now by product", shared_worker)

    run = ask(session, alice, "only for 2023", shared_worker)

    in_2023 = TWO_YEARS[TWO_YEARS["date"].dt.year == 2023].groupby("product")["revenue"].sum()
    assert run.answer.startswith("Building on “now by product”. Total revenue by product in 2023: ")
    assert _line(in_2023) in run.answer


def test_same_as_a_chart_draws_the_previous_ranking(session, two_years, alice, shared_worker):
    first = ask(session, alice, "top 3 products by revenue", shared_worker)

    run = ask(session, alice, "same as a chart", shared_worker)

    assert not first.artifacts.filter(kind="plotly").exists()
    assert run.artifacts.filter(kind="plotly").count() == 1
    assert run.answer == f"Building on “top 3 products by revenue”. {first.answer}"


def test_what_about_another_measure_keeps_the_grouping(session, two_years, alice, shared_worker):
    ask(session, alice, "average revenue per quarter", shared_worker)

    run = ask(session, alice, "what about units?", shared_worker)

    quarters = TWO_YEARS.groupby(TWO_YEARS["date"].dt.to_period("Q").astype(str))["units"].mean()
    assert run.answer.startswith("Building on “average revenue per quarter”. Mean units per quarter")
    assert f"2023Q1: {money(quarters['2023Q1'])}" in run.answer


def test_a_refused_question_is_not_built_on(session, two_years, alice, shared_worker):
    ask(session, alice, "total revenue by region", shared_worker)
    ask(session, alice, "average profit by product", shared_worker)

    run = ask(session, alice, "only for 2024", shared_worker)

    assert run.answer.startswith("Building on “total revenue by region”. Total revenue by region in 2024: ")


def test_growth_follow_up_compares_within_the_filter(session, two_years, alice, shared_worker):
    ask(session, alice, "which region grew fastest by year", shared_worker)

    run = ask(session, alice, "only for the West", shared_worker)

    assert run.answer.startswith("Building on “which region grew fastest by year”. Comparing 2023 with 2024")
    assert "**West** grew fastest, **+11.1%**" in run.answer  # 2024 is 1/0.9 of 2023


def test_with_several_datasets_it_says_which_one_and_why(project, session, alice, shared_worker):
    upload(project, alice, "sales.csv", SAMPLE_SALES.read_bytes())
    upload_frame(project, alice, "penguins.csv", PENGUINS)

    sales_run = ask(session, alice, "average revenue by region", shared_worker)
    penguin_run = ask(session, alice, "mean body mass by species", shared_worker)
    named_run = ask(session, alice, "how many rows does penguins have", shared_worker)

    assert sales_run.answer.startswith("Using sales.csv, the only dataset with region, revenue. Mean revenue by region")
    assert penguin_run.answer.startswith("Using penguins.csv, the only dataset with body_mass_g, species.")
    assert named_run.answer == f"Using penguins.csv, named in the question. penguins.csv has **{len(PENGUINS)} rows**."


def test_a_time_question_goes_to_the_only_dataset_with_dates(project, session, alice, shared_worker):
    upload(project, alice, "sales.csv", SAMPLE_SALES.read_bytes())
    upload_frame(project, alice, "penguins.csv", PENGUINS)

    run = ask(session, alice, "count of orders by month", shared_worker)

    assert run.answer.startswith("Using sales.csv, the only dataset with a date column. Number of orders per month")


def test_a_question_two_datasets_fit_is_refused_naming_both(project, session, alice, shared_worker):
    upload(project, alice, "sales.csv", SAMPLE_SALES.read_bytes())
    upload(project, alice, "sales_eu.csv", SAMPLE_SALES.read_bytes())

    run = ask(session, alice, "total revenue", shared_worker)
    named = ask(session, alice, "total revenue in sales_eu.csv", shared_worker)

    assert run.answer.startswith("I can't tell which dataset you mean: sales.csv, sales_eu.csv all fit")
    assert not run.steps.filter(kind="code").exists()
    assert named.status == Run.Status.SUCCEEDED
    assert (
        named.answer
        == f"Using sales_eu.csv, named in the question. The total revenue is **{money(SALES['revenue'].sum())}**."
    )


def _workbook(orders: pd.DataFrame, returns: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        orders.to_excel(writer, sheet_name="Orders", index=False)
        returns.to_excel(writer, sheet_name="Returns", index=False)
    return buffer.getvalue()


ORDERS = pd.DataFrame({"ordered": pd.date_range("2024-01-05", periods=40, freq="5D"), "amount": range(10, 50)})
RETURNS = pd.DataFrame({"reason": ["broken", "late", "broken"], "refund": [5.5, 2.0, 7.25]})


def test_each_sheet_of_a_workbook_is_a_table_of_its_own(project, session, alice, shared_worker):
    upload(project, alice, "book.xlsx", _workbook(ORDERS, RETURNS))

    monthly = ask(session, alice, "total amount by month", shared_worker)
    refunds = ask(session, alice, "total refund by reason", shared_worker)
    counted = ask(session, alice, "how many rows are in the Returns sheet", shared_worker)

    per_month = ORDERS.groupby(ORDERS["ordered"].dt.to_period("M").astype(str))["amount"].sum()
    assert monthly.answer.startswith(
        "Using book.xlsx (sheet Orders), the only sheet with amount. Total amount per month of ordered: "
        f"2024-01: {per_month['2024-01']}, "
    )
    assert "broken: 12.75, late: 2.00" in refunds.answer
    assert (
        counted.answer
        == "Using book.xlsx (sheet Returns), named in the question. book.xlsx (sheet Returns) has **3 rows**."
    )
    assert "sheet_name='Orders'" in monthly.steps.get(kind="code").content
