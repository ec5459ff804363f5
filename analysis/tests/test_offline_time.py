"""The offline analyst on time: grains on the demo's sales.csv and on dates stored in other formats.

Expected values are computed here with pandas directly on the same file; the analyst runs for real (worker,
agent, sandbox) and its answer must quote them, with every number traceable to what the run computed.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from analysis.agent.offline import fmt
from analysis.models import Run
from analysis.tests.offline_support import SAMPLE_SALES, ask, money, numbers_unverified, upload_frame

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_only")]

SALES = pd.read_csv(SAMPLE_SALES, parse_dates=["date"])


def _monthly(column: str, agg: str = "sum") -> pd.Series:
    return SALES.groupby(SALES["date"].dt.to_period("M").astype(str))[column].agg(agg)


def _chart(run: Run) -> dict:
    artifact = run.artifacts.get(kind="plotly")
    with artifact.file.open("rb") as fh:
        return json.load(fh)


def _values(array) -> list:
    """A plotly array, also in plotly 6's typed form ({"dtype": "f8", "bdata": base64})."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


@pytest.mark.parametrize(
    "question",
    ["line chart of revenue by month", "revenue by month", "monthly revenue", "show me the revenue per month"],
)
def test_revenue_by_month_quotes_monthly_totals(session, demo_sales, alice, shared_worker, question):
    run = ask(session, alice, question, shared_worker)

    expected = _monthly("revenue")
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"2024-01: {money(expected['2024-01'])}" in run.answer
    assert f"2024-12: {money(expected['2024-12'])}" in run.answer
    assert f"Highest: **{money(expected.max())}** ({expected.idxmax()})" in run.answer
    assert numbers_unverified(run) == []


def test_the_line_chart_of_revenue_by_month_plots_one_point_per_month(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "line chart of revenue by month", shared_worker)

    trace = _chart(run)["data"][0]
    assert trace["type"] == "scatter" and "lines" in trace["mode"]
    assert [x[:7] for x in _values(trace["x"])] == list(_monthly("revenue").index)  # month starts, as dates
    assert [round(v, 2) for v in _values(trace["y"])] == [round(v, 2) for v in _monthly("revenue")]


def test_count_of_orders_by_month_counts_rows_per_month(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "count of orders by month", shared_worker)

    expected = SALES.groupby(SALES["date"].dt.to_period("M").astype(str)).size()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.answer.startswith("Number of orders per month")
    assert f"2024-03: {expected['2024-03']}" in run.answer
    assert numbers_unverified(run) == []


def test_average_revenue_per_quarter_is_the_quarterly_mean(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "average revenue per quarter", shared_worker)

    expected = SALES.groupby(SALES["date"].dt.to_period("Q").astype(str))["revenue"].mean()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"2024Q2: {money(expected['2024Q2'])}" in run.answer
    assert numbers_unverified(run) == []


def test_weekly_units_start_each_week_on_monday(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "weekly units", shared_worker)

    weeks = SALES.groupby(SALES["date"].dt.to_period("W").dt.start_time)["units"].sum()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"from {weeks.index[0]:%Y-%m-%d}" in run.answer or f"{weeks.index[0]:%Y-%m-%d}" in run.answer
    assert f"Highest: **{weeks.max():,}**" in run.answer
    assert numbers_unverified(run) == []


def test_yearly_and_daily_grains_match_pandas(session, demo_sales, alice, shared_worker):
    yearly = ask(session, alice, "total revenue per year", shared_worker)
    daily = ask(session, alice, "daily units", shared_worker)

    per_day = SALES.groupby(SALES["date"].dt.strftime("%Y-%m-%d"))["units"].sum()
    assert f"2024: {money(SALES['revenue'].sum())}" in yearly.answer
    assert f"Highest: **{per_day.max():,}** ({per_day.idxmax()})" in daily.answer
    assert numbers_unverified(yearly) == numbers_unverified(daily) == []


def test_revenue_over_time_picks_a_readable_grain_and_says_which(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "show revenue over time", shared_worker)

    assert run.answer.startswith("Total revenue per month")
    assert money(_monthly("revenue")["2024-06"]) in run.answer


def test_monthly_revenue_by_region_draws_one_line_per_region(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "monthly revenue by region", shared_worker)

    totals = SALES.groupby("region")["revenue"].sum().sort_values(ascending=False)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert len(_chart(run)["data"]) == SALES["region"].nunique()
    assert f"{totals.index[0]}: {money(totals.iloc[0])}" in run.answer
    assert numbers_unverified(run) == []


def test_which_region_grew_fastest_compares_the_first_and_last_month(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "which region grew fastest", shared_worker)

    wide = SALES.groupby([SALES["date"].dt.to_period("M").astype(str), "region"])["revenue"].sum().unstack()
    change = ((wide.iloc[-1] - wide.iloc[0]) / wide.iloc[0]).sort_values(ascending=False)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.answer.startswith("Comparing 2024-01 with 2024-12 (total revenue per month)")
    assert f"**{change.index[0]}** grew fastest, **{change.iloc[0] * 100:+.1f}%**" in run.answer
    assert numbers_unverified(run) == []


def test_which_product_declined_most_per_quarter(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "which product declined the most by quarter", shared_worker)

    wide = SALES.groupby([SALES["date"].dt.to_period("Q").astype(str), "product"])["revenue"].sum().unstack()
    change = ((wide.iloc[-1] - wide.iloc[0]) / wide.iloc[0]).sort_values()
    assert run.answer.startswith("Comparing 2024Q1 with 2024Q4")
    assert f"**{change.index[0]}** declined most, **{change.iloc[0] * 100:+.1f}%**" in run.answer


def test_a_year_filter_keeps_only_that_year(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "how many orders in March 2024", shared_worker)

    march = SALES[(SALES["date"].dt.year == 2024) & (SALES["date"].dt.month == 3)]
    assert run.answer == f"sales.csv has **{len(march)} orders** in March 2024."


@pytest.mark.parametrize(
    ("fmt", "dayfirst"),
    [("%d/%m/%Y", True), ("%m/%d/%Y", False), ("%b %d, %Y", False), ("%d.%m.%Y", True), ("%Y-%m-%d %H:%M", False)],
)
def test_dates_stored_as_text_in_other_formats_are_read_as_dates(project, session, alice, shared_worker, fmt, dayfirst):
    frame = pd.DataFrame(
        {
            "sold_on": pd.date_range("2023-11-03", periods=90, freq="3D"),
            "amount": [round(10 + (i * 7919) % 97 * 1.5, 2) for i in range(90)],
        }
    )
    upload_frame(project, alice, "orders.csv", frame.assign(sold_on=frame["sold_on"].dt.strftime(fmt)))

    run = ask(session, alice, "total amount by month", shared_worker)

    expected = frame.groupby(frame["sold_on"].dt.to_period("M").astype(str))["amount"].sum()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"2024-01: {money(expected['2024-01'])}" in run.answer
    assert f"2024-06: {money(expected['2024-06'])}" in run.answer


def test_average_order_value_per_month_is_refused_with_the_columns(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "average order value per month", shared_worker)

    assert run.status == Run.Status.SUCCEEDED
    assert "I don't know “order value”" in run.answer
    assert "the columns are: date, region, product, units, price, revenue" in run.answer
    assert not run.steps.filter(kind="code").exists()


def test_a_grain_without_a_date_column_is_refused(project, session, alice, shared_worker):
    upload_frame(project, alice, "scores.csv", pd.DataFrame({"team": ["a", "b"], "score": [1, 2]}))

    run = ask(session, alice, "monthly score", shared_worker)

    assert "scores.csv has no date column" in run.answer
    assert not run.steps.filter(kind="code").exists()


def test_a_grain_with_two_date_columns_asks_which(project, session, alice, shared_worker):
    frame = pd.DataFrame(
        {"ordered": ["2024-01-02", "2024-02-03"], "shipped": ["2024-01-05", "2024-02-09"], "n": [1, 2]}
    )
    upload_frame(project, alice, "two_dates.csv", frame)

    refused = ask(session, alice, "monthly n", shared_worker)
    chosen = ask(session, alice, "total n by month of shipped", shared_worker)

    assert "several date columns (ordered, shipped)" in refused.answer
    assert chosen.answer.startswith("Total n per month of shipped: 2024-01: 1, 2024-02: 2.")


def test_text_that_is_not_dates_stops_with_the_reason(project, session, alice, shared_worker):
    frame = pd.DataFrame({"date": ["soon", "later", "2024-01-01"], "n": [1, 2, 3]})
    upload_frame(project, alice, "odd.csv", frame)

    run = ask(session, alice, "n by month of date", shared_worker)

    assert "date does not hold dates" in run.answer


def test_average_number_of_orders_per_day_counts_days_without_orders(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "average number of orders per day", shared_worker)

    every_day = pd.date_range(SALES["date"].min(), SALES["date"].max(), freq="D")
    per_day = SALES.groupby("date").size().reindex(every_day, fill_value=0)
    assert run.answer.startswith(
        f"On average **{per_day.mean():.2f} orders per day** ({len(SALES)} orders over {len(every_day)} days)"
    )
    assert numbers_unverified(run) == []


def test_daily_totals_are_zero_on_days_without_orders(session, demo_sales, alice, shared_worker):
    run = ask(session, alice, "daily revenue", shared_worker)

    assert run.answer.endswith(f"lowest: **0** ({_first_day_without_orders()}).")


def _first_day_without_orders() -> str:
    every_day = pd.date_range(SALES["date"].min(), SALES["date"].max(), freq="D")
    return f"{every_day.difference(SALES['date'])[0]:%Y-%m-%d}"


def test_ambiguous_day_first_dates_follow_the_profiles_format(project, session, alice, shared_worker):
    # Every day is 12 or less, so 03/04/2024 reads either way: the profile decided day first, and so must the run.
    days = pd.to_datetime([f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in (1, 5, 12)])
    frame = pd.DataFrame({"sold_on": days, "amount": [float(i % 7 + 1) for i in range(len(days))]})
    upload_frame(project, alice, "eu.csv", frame.assign(sold_on=frame["sold_on"].dt.strftime("%d/%m/%Y")))

    run = ask(session, alice, "total amount per quarter", shared_worker)

    quarters = frame.groupby(frame["sold_on"].dt.to_period("Q").astype(str))["amount"].sum()
    assert "'%d/%m/%Y'" in run.steps.get(kind="code").content
    assert run.answer.startswith(
        "Total amount per quarter of sold_on: " + ", ".join(f"{k}: {fmt(v)}" for k, v in quarters.items())
    )
