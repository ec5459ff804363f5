"""Reading stored table artifacts and shaping one page of them for display.

A table artifact's file is JSON ``{"columns", "rows", "shape", "dtypes", "truncated", "index_columns"}``
(see the artifact storage contract); the first ``index_columns`` columns are the frame's row labels. Pages are cut on the server so a large frame
never travels whole to the browser; cells are formatted here, once, so templates
only loop over precomputed strings.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from analysis.models import Artifact

PAGE_SIZE = 25
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""  # "num", "null", "date" or ""
    label: bool = False  # a row label (index level): drawn as the row's header cell


@dataclass(frozen=True)
class Column:
    index: int
    name: str
    numeric: bool
    sort_param: str  # the ?sort= value a click on this header asks for
    sort_state: str  # "ascending", "descending" or "none" (aria-sort)


@dataclass
class TablePage:
    columns: list[Column]
    rows: list[list[Cell]]
    page: int
    num_pages: int
    total_rows: int  # rows stored for this artifact
    shape: list[int]  # shape of the original frame (may exceed the stored rows)
    truncated: bool
    sort: str
    start: int = 0
    end: int = 0
    pages: list[int] = field(default_factory=list)
    page_size: int = PAGE_SIZE

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages


def table_data_read(*, artifact: Artifact) -> dict[str, Any]:
    """The stored table JSON, normalised (one storage read). Raises ValueError when the file is not a table."""
    from analysis.artifact_views import artifact_json_read

    data = artifact_json_read(artifact=artifact)
    if not isinstance(data, dict):
        raise ValueError(f"artifact {artifact.pk}'s file is not a table")
    return table_data_normalise(data)


def table_data_normalise(data: dict[str, Any]) -> dict[str, Any]:
    """A table body that always has columns, rows, shape, dtypes, truncated and index_columns."""
    columns = [str(c) for c in _list(data.get("columns"))]
    rows = [list(r) if isinstance(r, list | tuple) else [r] for r in _list(data.get("rows"))]
    shape = data.get("shape")
    if not (isinstance(shape, list) and shape and all(isinstance(n, int) and n >= 0 for n in shape)):
        shape = [len(rows), len(columns)]
    index_columns = data.get("index_columns")
    dtypes = data.get("dtypes")
    return {
        "columns": columns,
        "rows": rows,
        "shape": list(shape),
        "dtypes": {str(k): str(v) for k, v in dtypes.items()} if isinstance(dtypes, dict) else {},
        "truncated": data.get("truncated") is True or shape[0] > len(rows),
        "index_columns": min(max(0, index_columns), len(columns)) if isinstance(index_columns, int) else 0,
    }


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def column_decimals(values: list[Any]) -> int:
    """How many decimals a numeric column shows: none for whole numbers, fewer for big magnitudes."""
    finite = [v for v in values if _is_number(v) and math.isfinite(v)]
    if not finite or all(float(v).is_integer() for v in finite):
        return 0
    biggest = max(abs(v) for v in finite)
    if biggest >= 100:
        return 2
    if biggest >= 1:
        return 3
    return 4


def cell_format(value: Any, *, decimals: int = 2, dtype: str = "") -> Cell:
    """One display cell. Values are plain text; the template escapes them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("null", "null")
    if isinstance(value, bool):
        return Cell("true" if value else "false")
    if _is_number(value):
        if isinstance(value, float) and math.isinf(value):
            return Cell("∞" if value > 0 else "−∞", "num")
        if isinstance(value, float) and value != 0 and (abs(value) >= 1e15 or abs(value) < 1e-4):
            return Cell(f"{value:.3e}", "num")
        if isinstance(value, int) or decimals == 0:
            return Cell(f"{round(value):,}", "num")
        return Cell(f"{value:,.{decimals}f}", "num")
    if isinstance(value, str):
        if ("datetime" in dtype or _ISO_DATETIME.match(value)) and (text := _date_text(value)):
            return Cell(text, "date")
        return Cell(value)
    return Cell(json.dumps(value, ensure_ascii=False, default=str))


def _date_text(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M" if moment.second == 0 else "%Y-%m-%d %H:%M:%S")


def _parse_sort(sort: str, n_columns: int) -> tuple[int, bool] | None:
    """``?sort=3`` sorts by the 4th column ascending, ``?sort=-3`` descending; anything else: stored order."""
    match = re.fullmatch(r"(-?)(\d{1,4})", sort or "")
    if not match or int(match.group(2)) >= n_columns:
        return None
    return int(match.group(2)), match.group(1) == "-"


def _sort_key(value: Any) -> tuple:
    # Nulls last, numbers before text, so mixed columns still sort without TypeError.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0, "")
    if _is_number(value) or isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0, str(value).casefold())


def table_page_build(*, data: dict[str, Any], page: Any = 1, sort: str = "", page_size: int = PAGE_SIZE) -> TablePage:
    columns, rows, dtypes = data["columns"], data["rows"], data["dtypes"]
    parsed = _parse_sort(sort, len(columns))
    if parsed is not None:
        index, descending = parsed
        nulls = [r for r in rows if _sort_key(r[index] if index < len(r) else None)[0] == 2]
        rest = [r for r in rows if _sort_key(r[index] if index < len(r) else None)[0] != 2]
        rest.sort(key=lambda r: _sort_key(r[index]), reverse=descending)
        rows = rest + nulls  # nulls stay last in both directions
    num_pages = max(1, math.ceil(len(rows) / page_size))
    try:
        page_number = min(max(1, int(page)), num_pages)
    except (TypeError, ValueError):
        page_number = 1
    start = (page_number - 1) * page_size
    chunk = rows[start : start + page_size]
    numeric = [_column_is_numeric(rows, i, dtypes.get(name, "")) for i, name in enumerate(columns)]
    decimals = [column_decimals([r[i] for r in chunk if i < len(r)]) for i in range(len(columns))]
    labels = data.get("index_columns", 0)
    cells = [
        [replace(cell_format(r[i] if i < len(r) else None, decimals=decimals[i], dtype=dtypes.get(columns[i], "")),
                 label=i < labels)
         for i in range(len(columns))]
        for r in chunk
    ]  # fmt: skip
    return TablePage(
        columns=[_column(i, name, numeric[i], parsed) for i, name in enumerate(columns)],
        rows=cells,
        page=page_number,
        num_pages=num_pages,
        total_rows=len(rows),
        shape=data["shape"],
        truncated=data["truncated"],
        sort=sort if parsed else "",
        start=start + 1 if chunk else 0,
        end=start + len(chunk),
        pages=list(range(1, num_pages + 1)) if num_pages <= 12 else [],
        page_size=page_size,
    )


def _column_is_numeric(rows: list[list[Any]], index: int, dtype: str) -> bool:
    if dtype:
        return dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float"))
    values = [r[index] for r in rows[:200] if index < len(r) and r[index] is not None]
    return bool(values) and all(_is_number(v) for v in values)


def _column(index: int, name: str, numeric: bool, parsed: tuple[int, bool] | None) -> Column:
    if parsed and parsed[0] == index:
        state = "descending" if parsed[1] else "ascending"
        next_sort = str(index) if parsed[1] else f"-{index}"
    else:
        state, next_sort = "none", str(index)
    return Column(index=index, name=name, numeric=numeric, sort_param=next_sort, sort_state=state)
