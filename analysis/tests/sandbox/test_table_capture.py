"""Tables shown by the kernel keep their row labels (index levels) as leading columns."""

from __future__ import annotations

LOAD = "import pandas as pd\ndf = pd.DataFrame({'region': ['N', 'S', 'N'], 'units': [1, None, 3], 'price': [2.0, 4.0, 8.0]})\n"


def test_describe_keeps_count_mean_std_as_the_first_column(sandbox):
    result = sandbox.run(LOAD + "df.describe()")

    (table,) = result.artifacts
    assert table["columns"] == ["", "units", "price"]
    assert table["index_columns"] == 1
    assert [row[0] for row in table["rows"]] == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    assert table["rows"][0][1:] == [2.0, 3.0]


def test_missing_value_counts_keep_the_column_names(sandbox):
    result = sandbox.run(LOAD + "df.isna().sum()")

    (table,) = result.artifacts
    assert table["columns"] == ["", "value"]
    assert table["rows"] == [["region", 0], ["units", 1], ["price", 0]]


def test_a_named_series_and_a_grouped_frame_keep_their_group_labels(sandbox):
    result = sandbox.run(LOAD + "df.groupby('region')['price'].sum()")

    (table,) = result.artifacts
    assert table["columns"] == ["region", "price"]
    assert table["rows"] == [["N", 10.0], ["S", 4.0]]


def test_a_multiindex_becomes_one_leading_column_per_level(sandbox):
    result = sandbox.run(LOAD + "df.groupby(['region', 'units'], dropna=False).agg({'price': ['sum', 'max']})")

    (table,) = result.artifacts
    assert table["columns"] == ["region", "units", "price / sum", "price / max"]
    assert table["index_columns"] == 2
    assert table["rows"][0] == ["N", 1.0, 2.0, 2.0]


def test_the_default_row_numbers_stay_hidden(sandbox):
    result = sandbox.run(LOAD + "df")

    (table,) = result.artifacts
    assert table["columns"] == ["region", "units", "price"]
    assert table["index_columns"] == 0


def test_filtered_rows_keep_their_original_row_numbers(sandbox):
    result = sandbox.run(LOAD + "df[df.price > 3]")

    (table,) = result.artifacts
    assert table["columns"] == ["", "region", "units", "price"]
    assert [row[0] for row in table["rows"]] == [1, 2]
