"""The offline analyst: many phrasings per intent, two datasets, numbers checked against pandas."""

from __future__ import annotations

import re

import pytest

from analysis.agent.offline import fmt
from analysis.models import Run
from analysis.services import run_start
from analysis.tests.conftest import PENGUINS, SALES
from analysis.worker import Worker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _offline(settings):
    settings.OPENROUTER_API_KEY = ""
    settings.LLM_BASE_URL = ""


@pytest.fixture(scope="module")
def shared_worker():
    worker = Worker(worker_id="offline-tests")
    yield worker
    worker.close()


def _ask(session, alice, question, worker) -> Run:
    run = run_start(session=session, user=alice, question=question)
    worker.process(_claim(worker))
    run.refresh_from_db()
    return run


def _claim(worker):
    from analysis.services import run_claim

    return run_claim(worker_id=worker.worker_id)


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
    assert f"**{int(PENGUINS.isna().sum().sum())} missing values**" in run.answer
    assert "body_mass_g: 1" in run.answer


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
    assert re.search(rf"is {r:.4g}"[:8], run.answer)


@pytest.mark.parametrize("question", ["scatter plot of unit price vs quantity", "plot quantity against Unit Price"])
def test_scatter_draws_a_chart(session, sales, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.artifacts.filter(kind="plotly").exists()


def test_revenue_over_time_draws_a_line_chart(session, sales, alice, shared_worker):
    run = _ask(session, alice, "show revenue over time", shared_worker)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.artifacts.filter(kind="plotly").exists()
    assert "2024-01-01" in run.answer


@pytest.mark.parametrize("question", ["write me a poem about penguins", "train a neural network to predict species"])
def test_requests_beyond_its_scope_get_a_plain_answer_and_no_code(session, penguins, alice, shared_worker, question):
    run = _ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED
    assert "beyond the built-in offline analyst" in run.answer
    assert not run.steps.filter(kind="code").exists()


def test_an_unknown_column_is_named_back_with_the_columns_that_exist(session, sales, alice, shared_worker):
    run = _ask(session, alice, "average weight by colour", shared_worker)

    assert run.status == Run.Status.SUCCEEDED
    assert "could not match a column" in run.answer
    assert "sales.csv: order_date, Region, product, Unit Price, quantity, revenue" in run.answer
    assert not run.steps.filter(kind="code").exists()
