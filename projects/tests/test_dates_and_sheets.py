"""Date columns are recognised in every common format; every sheet of a workbook is profiled and shown."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.urls import reverse

from analysis.agent.runner import dataset_prompt_info
from projects import services
from projects.profile_display import column_display, number_text, profile_tables
from projects.tests.conftest import upload

pytestmark = pytest.mark.django_db


def _csv(project, user, text: str):
    return services.dataset_create(project=project, uploaded_file=upload("dates.csv", text.encode()), user=user)


def _workbook() -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"region": ["North", "South", "North"], "revenue": [1200.5, 800.0, 2000.25]}).to_excel(
            writer, sheet_name="Orders", index=False
        )
        pd.DataFrame({"month": pd.to_datetime(["2024-01-01", "2024-02-01"]), "cost": [300, 410]}).to_excel(
            writer, sheet_name="Costs 2024", index=False
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("values", "fmt", "low", "high"),
    [
        (["2024-01-05", "2024-03-31"], "ISO8601", "2024-01-05", "2024-03-31"),
        (["2024-01-05 10:30", "2024-01-05T18:00:00Z"], "ISO8601", "2024-01-05T10:30+00:00", "2024-01-05T18:00+00:00"),
        (["31/01/2024", "01/02/2024"], "%d/%m/%Y", "2024-01-31", "2024-02-01"),
        (["01/31/2024", "02/01/2024"], "%m/%d/%Y", "2024-01-31", "2024-02-01"),
        (["31.01.2024", "01.02.2024"], "%d.%m.%Y", "2024-01-31", "2024-02-01"),
        (['"Jan 5, 2024"', '"Feb 6, 2024"'], "%b %d, %Y", "2024-01-05", "2024-02-06"),
        (["5 March 2024", "6 April 2024"], "%d %B %Y", "2024-03-05", "2024-04-06"),
        (["2024/01/05", "2024/02/06"], "ISO8601", "2024-01-05", "2024-02-06"),  # pandas' ISO reader takes slashes
        (["Jan 2024", "Mar 2024"], "%b %Y", "2024-01-01", "2024-03-01"),
    ],
)
def test_text_dates_in_common_formats_are_profiled_as_dates(project, alice, values, fmt, low, high):
    dataset = _csv(project, alice, "when,units\n" + "".join(f"{v},1\n" for v in values))

    column = dataset.profile["columns"][0]
    assert (column["kind"], column["date_format"]) == ("datetime", fmt)
    assert (column["stats"]["min"], column["stats"]["max"]) == (low, high)


@pytest.mark.parametrize("values", [["North", "South"], ["A-12", "B-7"], ["12-345", "99-1"], ["v1.2", "v1.10"]])
def test_text_that_only_looks_a_bit_like_dates_stays_text(project, alice, values):
    dataset = _csv(project, alice, "code,units\n" + "".join(f"{v},1\n" for v in values))

    assert dataset.profile["columns"][0]["kind"] == "text"


def test_one_value_that_is_not_a_date_keeps_the_column_text(project, alice):
    dataset = _csv(project, alice, "when\n2024-01-05\n2024-01-06\nsoon\n")

    assert dataset.profile["columns"][0]["kind"] == "text"


def test_the_profile_reads_like_the_page_numbers_dates_and_top_values():
    numeric = {"name": "revenue", "kind": "numeric", "dtype": "float64", "missing": 2000,
               "stats": {"min": 0.5, "max": 1234567.891, "mean": 12.3456, "std": 3.0}}  # fmt: skip
    text = {"name": "region", "kind": "text", "dtype": "str", "missing": 0,
            "stats": {"unique": 4, "unique_exact": True, "top": [{"value": "North", "count": 1200}]}}  # fmt: skip
    dated = {"name": "d", "kind": "datetime", "dtype": "str", "date_format": "%d/%m/%Y", "missing": 0,
             "stats": {"min": "2024-01-01T00:00:00", "max": "2024-12-31T00:00:00"}}  # fmt: skip

    assert column_display(numeric).summary == "min 0.5 · max 1,234,567.89 · mean 12.346 · std 3"
    assert column_display(numeric).missing == "2,000"
    assert column_display(text).summary_text == "4 unique · top: North (1,200)"
    assert (column_display(dated).type_label, column_display(dated).summary) == ("date", "2024-01-01 → 2024-12-31")
    assert [number_text(v) for v in (2000, 0.000123, None, float("nan"))] == ["2,000", "0.000123", "–", "–"]


def test_every_sheet_of_a_workbook_is_profiled_under_its_name(project, alice):
    dataset = services.dataset_create(project=project, uploaded_file=upload("book.xlsx", _workbook()), user=alice)

    sheets = dataset.profile["sheets"]
    assert [(s["name"], s["rows"], s["column_count"]) for s in sheets] == [("Orders", 3, 2), ("Costs 2024", 2, 2)]
    assert sheets[1]["columns"][0]["kind"] == "datetime"
    assert (dataset.row_count, dataset.column_count) == (3, 2)  # the first sheet: what pd.read_excel(name) loads
    assert [t.sheet for t in profile_tables(dataset.profile)] == ["Orders", "Costs 2024"]


def test_the_dataset_page_shows_every_sheet(client, alice, project):
    dataset = services.dataset_create(project=project, uploaded_file=upload("book.xlsx", _workbook()), user=alice)
    client.force_login(alice)

    html = client.get(reverse("projects:dataset-detail", args=[dataset.pk])).content.decode()

    assert "Sheet <code>Orders</code>" in html and "Sheet <code>Costs 2024</code>" in html
    assert "<code>cost</code>" in html and "2024-01-01 → 2024-02-01" in html


def test_the_prompt_tells_the_model_how_to_load_each_sheet(project, alice):
    dataset = services.dataset_create(project=project, uploaded_file=upload("book.xlsx", _workbook()), user=alice)

    info = dataset_prompt_info(dataset)

    assert [s["load"] for s in info["sheets"]] == [
        "pd.read_excel('book.xlsx', sheet_name='Orders')",
        "pd.read_excel('book.xlsx', sheet_name='Costs 2024')",
    ]
    assert [c["name"] for c in info["sheets"][1]["columns"]] == ["month", "cost"]


def test_a_workbook_whose_sheets_are_all_empty_is_refused_with_a_clear_message(project, alice):
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"a": []}).to_excel(writer, sheet_name="One", index=False)
        pd.DataFrame({"b": []}).to_excel(writer, sheet_name="Two", index=False)

    with pytest.raises(Exception, match="no data rows in any of its sheets"):
        services.dataset_create(project=project, uploaded_file=upload("empty.xlsx", buffer.getvalue()), user=alice)
