"""Dataset profiles as people read them: one formatter for the dataset page, the project page and every export.

The stored profile is data (``projects/profiling.py``); this turns it into short text: thousands separators,
a few significant decimals, date ranges, top values. Django-free so renderers of any kind can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TOP_SHOWN = 3


@dataclass(frozen=True)
class TopValue:
    value: str
    count: str


@dataclass(frozen=True)
class ColumnDisplay:
    name: str
    type_label: str  # "number", "date", "text", "true/false"
    type_detail: str  # the dtype as pandas reads it, and a date column's format
    missing: str
    summary: str  # numbers and dates: "min 1 · max 40 · …", "2024-01-01 → 2024-12-31"; text: "3 unique"
    top: tuple[TopValue, ...] = ()

    @property
    def summary_text(self) -> str:
        """The summary with the top values, as one line of plain text (exports)."""
        if not self.top:
            return self.summary
        return f"{self.summary} · top: " + ", ".join(f"{t.value} ({t.count})" for t in self.top)


@dataclass(frozen=True)
class TableDisplay:
    """One table of a dataset: the whole file, or one sheet of a workbook."""

    sheet: str  # "" unless the dataset is a workbook
    shape: str  # "2,000 rows × 8 columns"
    columns: tuple[ColumnDisplay, ...]
    preview_columns: tuple[str, ...]
    preview_rows: tuple[tuple[Any, ...], ...]


def number_text(value: Any) -> str:
    """2000 → "2,000"; 12.5 → "12.5"; 1234.5678 → "1,234.57"; 0.000123 → "0.000123"; None → "–"."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "–" if math.isnan(value) else ("∞" if value > 0 else "−∞")
    if isinstance(value, int) or value.is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.2f}"
    if abs(value) >= 1:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def shape_text(rows: Any, columns: Any) -> str:
    rows, columns = int(rows or 0), int(columns or 0)
    return f"{rows:,} row{'' if rows == 1 else 's'} × {columns:,} column{'' if columns == 1 else 's'}"


def date_text(value: Any) -> str:
    """An ISO date or moment without a midnight time or seconds it does not have."""
    if not isinstance(value, str):
        return number_text(value) if value is not None else "–"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M" if not moment.second else "%Y-%m-%d %H:%M:%S")


def column_display(column: dict[str, Any]) -> ColumnDisplay:
    stats = column.get("stats") if isinstance(column.get("stats"), dict) else {}
    kind, dtype = str(column.get("kind") or "text"), str(column.get("dtype") or "")
    name, missing = str(column.get("name", "")), number_text(column.get("missing") or 0)
    if kind == "numeric":
        parts = [f"{key} {number_text(stats.get(key))}" for key in ("min", "max", "mean", "std") if key in stats]
        return ColumnDisplay(name, "number", dtype, missing, " · ".join(parts))
    if kind == "datetime":
        detail = f"{dtype}, format {column['date_format']}" if column.get("date_format") else dtype
        summary = f"{date_text(stats.get('min'))} → {date_text(stats.get('max'))}" if stats.get("min") else ""
        return ColumnDisplay(name, "date", detail, missing, summary)
    if kind == "boolean":
        return ColumnDisplay(name, "true/false", dtype, missing, f"{number_text(stats.get('count'))} values")
    unique = number_text(stats.get("unique", 0)) + ("" if stats.get("unique_exact", True) else "+")
    top = tuple(
        TopValue(_clip(str(t.get("value", ""))), number_text(t.get("count")))
        for t in (stats.get("top") or [])[:TOP_SHOWN]
        if isinstance(t, dict)
    )
    return ColumnDisplay(name, "text", dtype, missing, f"{unique} unique", top)


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(profile: dict[str, Any], sheet: str = "") -> TableDisplay:
    columns = [c for c in profile.get("columns") or [] if isinstance(c, dict)]
    preview = profile.get("preview") if isinstance(profile.get("preview"), dict) else {}
    return TableDisplay(
        sheet=sheet,
        shape=shape_text(profile.get("rows"), profile.get("column_count", len(columns))),
        columns=tuple(column_display(c) for c in columns),
        preview_columns=tuple(str(c) for c in preview.get("columns") or []),
        preview_rows=tuple(tuple(row) for row in preview.get("rows") or [] if isinstance(row, list)),
    )


def profile_tables(profile: dict[str, Any] | None) -> list[TableDisplay]:
    """Every table of a stored profile: each sheet of a workbook with several, else the one table of the file."""
    profile = profile if isinstance(profile, dict) else {}
    sheets = [s for s in profile.get("sheets") or [] if isinstance(s, dict)]
    if len(sheets) > 1:
        return [_table(s, str(s.get("name", ""))) for s in sheets]
    return [_table(profile)]
