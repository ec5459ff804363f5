"""Profiles of every supported format, computed on upload (through ``dataset_create``)."""

import json

import numpy as np
import pandas as pd
import pytest

from projects import profiling, services
from projects.tests.conftest import frame_bytes, upload

pytestmark = pytest.mark.django_db

FRAME = pd.DataFrame(
    {
        "region": ["north", "south", "north", None, "east"],
        "price": [1.0, 2.0, np.nan, 4.0, 5.0],
        "units": [1, 2, 3, 4, 5],
    }
)


def _create(project, user, name, content):
    return services.dataset_create(project=project, uploaded_file=upload(name, content), user=user)


def _column(dataset, name):
    return next(c for c in dataset.profile["columns"] if c["name"] == name)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "xlsx", "parquet", "json"])
def test_every_format_is_profiled_with_rows_columns_missing_and_stats(project, alice, fmt):
    dataset = _create(project, alice, f"frame.{fmt}", frame_bytes(FRAME, fmt))

    price, region = _column(dataset, "price"), _column(dataset, "region")
    assert dataset.format == fmt
    assert (dataset.row_count, dataset.column_count) == (5, 3)
    assert [c["name"] for c in dataset.profile["columns"]] == ["region", "price", "units"]
    assert (price["kind"], price["missing"]) == ("numeric", 1)
    assert price["stats"]["min"] == 1.0 and price["stats"]["max"] == 5.0
    assert price["stats"]["mean"] == pytest.approx(3.0)
    assert price["stats"]["std"] == pytest.approx(FRAME["price"].std())
    assert (region["kind"], region["missing"], region["stats"]["unique"]) == ("text", 1, 3)
    assert region["stats"]["top"][0] == {"value": "north", "count": 2}


def test_the_preview_holds_twenty_json_safe_rows(project, alice):
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=30, freq="D"),
            "value": [np.nan, np.inf] + list(range(28)),
            "flag": [True, False] * 15,
        }
    )

    dataset = _create(project, alice, "times.parquet", frame_bytes(frame, "parquet"))

    preview = dataset.profile["preview"]
    assert len(preview["rows"]) == 20
    assert preview["rows"][0] == ["2024-01-01T00:00:00", None, True]
    assert preview["rows"][1][1] is None
    assert _column(dataset, "when")["stats"] == {
        "count": 30,
        "min": "2024-01-01T00:00:00",
        "max": "2024-01-30T00:00:00",
    }
    assert _column(dataset, "flag")["kind"] == "boolean"
    json.dumps(dataset.profile, allow_nan=False)


def test_json_lines_are_accepted(project, alice):
    content = b'{"a": 1, "b": "x"}\n{"a": 2, "b": null}\n'

    dataset = _create(project, alice, "events.json", content)

    assert (dataset.row_count, dataset.column_count) == (2, 2)
    assert _column(dataset, "b")["missing"] == 1


def test_a_utf8_bom_does_not_leak_into_the_first_column_name(project, alice):
    dataset = _create(project, alice, "bom.csv", "\ufeffname,n\nZoë,1\n".encode())

    assert dataset.profile["preview"] == {"columns": ["name", "n"], "rows": [["Zoë", 1]]}


def test_csv_is_profiled_in_chunks_with_the_same_result_as_at_once(project, alice, monkeypatch):
    frame = pd.DataFrame({"x": np.arange(1000) * 1.5, "g": ["a", "b", "c", "d"] * 250})
    frame.loc[::7, "x"] = np.nan
    monkeypatch.setattr(profiling, "CHUNK_ROWS", 64)

    dataset = _create(project, alice, "big.csv", frame_bytes(frame, "csv"))

    x = _column(dataset, "x")
    assert dataset.row_count == 1000
    assert x["missing"] == int(frame["x"].isna().sum())
    assert x["stats"]["mean"] == pytest.approx(frame["x"].mean())
    assert x["stats"]["std"] == pytest.approx(frame["x"].std())
    assert _column(dataset, "g")["stats"]["top"][0]["count"] == 250


def test_a_column_that_turns_to_text_in_a_later_chunk_is_reported_as_mixed(project, alice, monkeypatch):
    monkeypatch.setattr(profiling, "CHUNK_ROWS", 2)

    dataset = _create(project, alice, "mixed.csv", b"v\n1\n2\nthree\nfour\n")

    assert _column(dataset, "v")["dtype"] == "object"
    assert dataset.row_count == 4


def test_parquet_is_profiled_row_group_by_row_group(project, alice, monkeypatch):
    frame = pd.DataFrame({"n": np.arange(500), "s": ["x"] * 500})
    monkeypatch.setattr(profiling, "CHUNK_ROWS", 100)

    dataset = _create(project, alice, "groups.parquet", frame_bytes(frame, "parquet", row_group_size=100))

    n = _column(dataset, "n")
    assert dataset.row_count == 500
    assert (n["stats"]["min"], n["stats"]["max"]) == (0, 499)
    assert n["stats"]["mean"] == pytest.approx(249.5)


def test_text_columns_past_the_unique_cap_say_their_count_is_a_lower_bound(project, alice, monkeypatch):
    monkeypatch.setattr(profiling, "UNIQUE_CAP", 3)

    dataset = _create(project, alice, "ids.csv", b"id\na\nb\nc\nd\ne\na\n")

    stats = _column(dataset, "id")["stats"]
    assert (stats["unique"], stats["unique_exact"]) == (3, False)
    assert stats["top"][0] == {"value": "a", "count": 2}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float64("nan"), None),
        (float("inf"), None),
        (pd.NaT, None),
        (pd.NA, None),
        (np.int64(7), 7),
        (pd.Timestamp("2024-05-06 07:08:09"), "2024-05-06T07:08:09"),
        (np.array([1, 2]), [1, 2]),
        (b"bytes", "bytes"),
    ],
)
def test_json_safe_turns_cells_into_json_values(value, expected):
    assert profiling.json_safe(value) == expected
