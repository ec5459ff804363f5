"""The offline analyst: many phrasings per intent, two datasets, numbers checked against pandas."""

from __future__ import annotations

import pytest

from analysis.agent.offline import fmt
from analysis.models import Run
from analysis.tests.conftest import PENGUINS, SALES
from analysis.tests.offline_support import ask, numbers_unverified

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_only")]


_ask = ask


def _fmt2(x: float) -> str:
    return f"{x:,.2f}"


@pytest.mark.parametrize(
    "question",
    [
        "What is the average revenue by region?",
        "mean revenue per Region",
        "avg revenues for each region",
        "Show me the typical revenue across regions",
    ],
)
def test_group_by_mean_matches_pandas(session, sales, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    expected = SALES.groupby("Region")["revenue"].mean()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"West: {_fmt2(expected['West'])}" in run.answer
    assert run.steps.filter(kind="artifact").exists()
    assert numbers_unverified(run) == []


@pytest.mark.parametrize(
    ("question", "agg"),
    [("total quantity by product", "sum"), ("sum of quantity per product", "sum"), ("max quantity by product", "max")],
)
def test_group_by_other_aggregates_match_pandas(session, sales, alice, shared_worker, question, agg):
    run = _ask(session, alice, question, shared_worker)

    expected = SALES.groupby("product")["quantity"].agg(agg)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"Widget: {int(expected['Widget']):,}" in run.answer


@pytest.mark.parametrize(
    "question",
    ["How many rows and columns are there?", "give me an overview of the dataset", "what columns does it have?"],
)
def test_overview_reports_the_shape(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"{len(PENGUINS)} rows" in run.answer and f"{PENGUINS.shape[1]} columns" in run.answer


@pytest.mark.parametrize("question", ["Are there missing values?", "count the nulls per column", "any NaN in the data"])
def test_missing_values_match_pandas(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"**{int(PENGUINS.isna().sum().sum())} missing values** in 2 column(s)" in run.answer
    assert "body_mass_g: 1" in run.answer
    assert numbers_unverified(run) == []


@pytest.mark.parametrize(
    "question", ["top 3 penguins by body mass", "the 3 heaviest by Body_Mass_G, highest first", "top three body masses"]
)
def test_top_n_rows_match_pandas(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    expected = ", ".join(f"{int(v):,}" for v in PENGUINS["body_mass_g"].nlargest(3))
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert expected in run.answer


@pytest.mark.parametrize(
    "question",
    ["show the distribution of flipper length", "histogram of flipper_length_mm", "box plot of flipper lengths"],
)
def test_distribution_reports_mean_and_median(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    s = PENGUINS["flipper_length_mm"]
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"mean **{fmt(s.mean())}**" in run.answer and f"median **{fmt(float(s.median()))}**" in run.answer


@pytest.mark.parametrize(
    "question",
    ["correlation between bill length and flipper length", "how correlated are bill_length_mm and flipper_length_mm"],
)
def test_correlation_of_two_columns_matches_pandas(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    r = PENGUINS["bill_length_mm"].corr(PENGUINS["flipper_length_mm"])
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert f"is **{r:.4g}**" in run.answer
    assert numbers_unverified(run) == []


@pytest.mark.parametrize("question", ["scatter plot of unit price vs quantity", "plot quantity against Unit Price"])
def test_scatter_draws_a_chart(session, sales, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.artifacts.filter(kind="plotly").exists()


def test_revenue_over_time_draws_a_line_chart_per_week_for_half_a_year(session, sales, alice, shared_worker):
    run = _ask(session, alice, "show revenue over time", shared_worker)

    weekly = SALES.groupby("order_date")["revenue"].sum()  # the fixture has one order a week, on Mondays
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.artifacts.filter(kind="plotly").exists()
    assert run.answer.startswith("Total revenue per week of order_date, 2024-01-01 to ")
    assert f"Highest: **{_fmt2(weekly.max())}** ({weekly.idxmax()})" in run.answer


@pytest.mark.parametrize("question", ["write me a poem about penguins", "train a neural network to predict species"])
def test_requests_beyond_its_scope_get_a_plain_answer_and_no_code(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED
    assert "beyond the built-in offline analyst" in run.answer
    assert not run.steps.filter(kind="code").exists()


def test_an_unknown_column_is_named_back_with_the_columns_that_exist(session, sales, alice, shared_worker):
    run = _ask(session, alice, "average weight by colour", shared_worker)

    assert run.status == Run.Status.SUCCEEDED
    assert "I don't know “weight” or “colour”" in run.answer
    assert "the columns are: order_date, Region, product, Unit Price, quantity, revenue" in run.answer
    assert not run.steps.filter(kind="code").exists()


def test_the_top_groups_by_a_measure_match_pandas(session, sales, alice, shared_worker):
    run = _ask(session, alice, "top 2 regions by revenue", shared_worker)

    expected = SALES.groupby("Region")["revenue"].sum().nlargest(2)
    assert run.answer == (
        f"Top Regions by total revenue: {expected.index[0]}: {_fmt2(expected.iloc[0])}, "
        f"{expected.index[1]}: {_fmt2(expected.iloc[1])}."
    )


def test_which_group_has_the_most_rows_names_one(session, penguins, alice, shared_worker):
    run = _ask(session, alice, "which island has the most penguins", shared_worker)

    counts = PENGUINS["island"].value_counts()
    assert run.answer == f"**{counts.index[0]}** has the highest number of penguins: **{counts.iloc[0]}**."


def test_how_many_of_a_text_column_counts_distinct_values(session, penguins, alice, shared_worker):
    run = _ask(session, alice, "how many species are there", shared_worker)

    assert run.answer == f"The number of distinct species is **{PENGUINS['species'].nunique()}**."


def test_a_value_of_a_column_filters_the_rows(session, sales, alice, shared_worker):
    run = _ask(session, alice, "total quantity by product in the West", shared_worker)

    west = SALES[SALES["Region"] == "West"].groupby("product")["quantity"].sum()
    assert run.answer.startswith("Total quantity by product where Region is West: ")
    assert all(f"{k}: {v:,}" in run.answer for k, v in west.items())


def test_two_groupings_key_each_pair(session, sales, alice, shared_worker):
    run = _ask(session, alice, "average revenue by Region and product", shared_worker)

    expected = SALES.groupby(["Region", "product"])["revenue"].mean().sort_values(ascending=False)
    (region, product), value = expected.index[0], expected.iloc[0]
    assert f"Highest: **{region} / {product}** ({_fmt2(value)})" in run.answer
    assert numbers_unverified(run) == []


def test_an_aggregate_of_a_text_column_is_refused(session, penguins, alice, shared_worker):
    run = _ask(session, alice, "average island", shared_worker)

    assert run.answer.startswith("I can't answer that: island is not numeric, so it has no mean.")
    assert not run.steps.filter(kind="code").exists()


def test_shares_of_a_total_match_pandas(session, sales, alice, shared_worker):
    run = _ask(session, alice, "what share of revenue comes from each region?", shared_worker)

    totals = SALES.groupby("Region")["revenue"].sum().sort_values(ascending=False)
    shares = totals / totals.sum()
    assert run.answer.startswith(f"Share of the total revenue (total {_fmt2(totals.sum())}) by Region: ")
    assert f"{totals.index[0]} {shares.iloc[0] * 100:.1f}% ({_fmt2(totals.iloc[0])})" in run.answer
    assert run.artifacts.filter(kind="plotly").exists()
    assert numbers_unverified(run) == []


def test_sorting_keeps_every_group_in_the_asked_order(session, sales, alice, shared_worker):
    run = _ask(session, alice, "sort products by quantity ascending", shared_worker)

    totals = SALES.groupby("product")["quantity"].sum().sort_values(kind="stable")
    listed = ", ".join(f"{k}: {v:,}" for k, v in totals.items())
    assert run.answer == f"Products by total quantity, lowest first: {listed}."
