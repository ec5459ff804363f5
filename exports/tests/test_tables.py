import pytest

from exports.tables import cell_format, column_decimals, table_page_build


def _data(rows, columns=("name", "value"), dtypes=None):
    return {
        "columns": list(columns),
        "rows": rows,
        "shape": [len(rows), len(columns)],
        "dtypes": dtypes or {},
        "truncated": False,
    }


@pytest.mark.parametrize(
    ("value", "decimals", "dtype", "text", "css"),
    [
        (1234567, 0, "int64", "1,234,567", "num"),
        (1234.5678, 2, "float64", "1,234.57", "num"),
        (0.000012, 4, "float64", "1.200e-05", "num"),
        (None, 2, "float64", "null", "null"),
        (float("nan"), 2, "float64", "null", "null"),
        (True, 0, "bool", "true", ""),
        ("2024-01-05T00:00:00.000", 0, "datetime64[ns]", "2024-01-05", "date"),
        ("2024-01-05T13:45:00.000", 0, "datetime64[ns]", "2024-01-05 13:45", "date"),
        ("<img src=x onerror=alert(1)>", 0, "object", "<img src=x onerror=alert(1)>", ""),
    ],
)
def test_cells_are_formatted_for_reading(value, decimals, dtype, text, css):
    cell = cell_format(value, decimals=decimals, dtype=dtype)

    assert (cell.text, cell.css) == (text, css)


@pytest.mark.parametrize(
    ("values", "decimals"),
    [([1.0, 2.0, None], 0), ([1234.5, 2.25], 2), ([1.5, 2.25], 3), ([0.5, 0.25], 4), (["a", None], 0)],
)
def test_column_decimals_follow_the_magnitude(values, decimals):
    assert column_decimals(values) == decimals


def test_pages_hold_at_most_the_page_size_and_report_the_range():
    rows = [[f"r{i}", i] for i in range(60)]

    page = table_page_build(data=_data(rows), page=3, page_size=25)

    assert [r[0].text for r in page.rows] == [f"r{i}" for i in range(50, 60)]
    assert (page.page, page.num_pages, page.start, page.end, page.has_next) == (3, 3, 51, 60, False)


@pytest.mark.parametrize("page", ["0", "-1", "abc", "999"])
def test_out_of_range_or_junk_pages_are_clamped(page):
    rows = [[f"r{i}", i] for i in range(30)]

    built = table_page_build(data=_data(rows), page=page, page_size=25)

    assert built.page in (1, 2)
    assert built.rows


def test_descending_sort_orders_numbers_and_keeps_nulls_last():
    rows = [["a", 5], ["b", None], ["c", 50], ["d", 7]]

    page = table_page_build(data=_data(rows, dtypes={"value": "float64"}), sort="-1")

    assert [r[0].text for r in page.rows] == ["c", "d", "a", "b"]
    assert page.columns[1].sort_state == "descending"
    assert page.columns[1].sort_param == "1"  # clicking again sorts ascending


def test_ascending_sort_of_text_is_case_insensitive():
    rows = [["banana", 1], ["Apple", 2], ["cherry", 3]]

    page = table_page_build(data=_data(rows), sort="0")

    assert [r[0].text for r in page.rows] == ["Apple", "banana", "cherry"]


@pytest.mark.parametrize("sort", ["9", "name", "--1", ""])
def test_unknown_sort_keeps_the_stored_order(sort):
    rows = [["b", 1], ["a", 2]]

    page = table_page_build(data=_data(rows), sort=sort)

    assert [r[0].text for r in page.rows] == ["b", "a"]
    assert page.sort == ""


def test_numeric_columns_are_flagged_for_right_alignment():
    page = table_page_build(data=_data([["a", 1.5]], dtypes={"name": "object", "value": "float64"}))

    assert [c.numeric for c in page.columns] == [False, True]
