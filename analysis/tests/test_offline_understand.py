"""How the offline analyst reads a question (no sandbox): each word's role decides the answer or the refusal."""

from __future__ import annotations

import pytest

from analysis.agent.offline.conversation import request_resolve
from analysis.agent.offline.datasets import DatasetInfo
from analysis.agent.offline.understand import request_read

SALES = DatasetInfo.from_prompt_info(
    {
        "name": "sales.csv",
        "format": "csv",
        "columns": [
            {"name": "date", "dtype": "str", "samples": ["2024-01-04", "2024-01-06"]},
            {"name": "region", "dtype": "str", "samples": ["East", "West", "North", "South"]},
            {"name": "product", "dtype": "str", "samples": ["Laptop", "Docking station"]},
            {"name": "units", "dtype": "int64"},
            {"name": "Unit Price", "dtype": "float64"},
            {"name": "revenue", "dtype": "float64"},
        ],
    }
)


def _names(columns) -> list[str]:
    return [c.name for c in columns]


def test_columns_after_a_grouping_word_group_and_the_rest_are_measured():
    req = request_read("average revenue by region and product", SALES)

    assert (_names(req.measures), _names(req.groups), req.agg) == (["revenue"], ["region", "product"], "mean")


def test_a_column_named_with_its_value_is_only_the_filter():
    req = request_read("revenue by product where region is East", SALES)

    assert _names(req.measures) == ["revenue"]
    assert [(f.column.name, f.values) for f in req.filters] == [("region", ["East"])]


@pytest.mark.parametrize("question", ["unit prices by region", "UnitPrice by region", "unit_price by region"])
def test_column_names_match_whatever_their_spelling(question):
    assert _names(request_read(question, SALES).measures) == ["Unit Price"]


def test_a_date_column_stored_as_text_is_the_date_of_a_grain():
    req = request_read("monthly revenue", SALES)

    assert (req.grain, req.date.name if req.date else None) == ("month", None)
    assert request_resolve("monthly revenue", [SALES]).request.date.name == "date"


@pytest.mark.parametrize(
    ("question", "agg"),
    [
        ("total number of orders", "count"),
        ("number of distinct products", "nunique"),
        ("average number of orders per month", "mean_count"),
    ],
)
def test_two_aggregate_words_combine_into_one(question, agg):
    assert request_read(question, SALES).agg == agg


def test_a_row_noun_with_value_after_it_is_an_unknown_compound():
    assert request_read("average order value per month", SALES).unknown == ["order value"]


def test_every_word_left_unexplained_is_named():
    assert request_read("average profit margin by colour", SALES).unknown == ["profit margin", "colour"]


def test_a_year_and_a_month_name_filter_by_date():
    req = request_read("revenue by region in March 2024", SALES)

    assert [(f.kind, f.values) for f in req.filters] == [("month", [(2024, 3)])]


def test_may_alone_is_no_month():
    assert request_read("may I see the revenue by region", SALES).filters == []


def test_top_n_ranks_the_groups_by_the_measure():
    req = request_read("top 3 regions by revenue", SALES)

    assert (req.rank, req.n, _names(req.groups), _names(req.measures)) == ("top", 3, ["region"], ["revenue"])


def test_polite_filler_is_no_unknown_word():
    assert request_read("may I please see the revenue by region", SALES).unknown == []
