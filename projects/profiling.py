"""Dataset profiles: rows, columns, dtypes, missing counts, basic stats and a JSON-safe preview.

Built chunk by chunk where the format allows (CSV/TSV via ``read_csv(chunksize=...)``, Parquet by
record batches, JSON Lines by chunks), so a large file never sits in memory whole. Excel and plain
JSON documents are read at once (their parsers cannot stream). A workbook is profiled sheet by sheet
(``profile["sheets"]``); its top level is the first sheet, the one ``pd.read_excel(name)`` loads. Text
columns whose every value is a date in one format are profiled as dates (``kind``, ``date_format``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError

from projects.models import Dataset

PREVIEW_ROWS = 20
CHUNK_ROWS = 50_000
TOP_VALUES = 5
# Past this many distinct values a text column's unique count is a lower bound ("unique_exact": false).
UNIQUE_CAP = 100_000
# Text columns holding dates: tried in order, the first format that reads every distinct value wins. ISO 8601
# covers 2024-03-05, 2024-03, with times, T and zones; day-first comes before month-first (ambiguous only when
# no day in the column is above 12).
DATE_FORMATS = (
    "ISO8601", "%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S",
    "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S",
    "%d/%m/%y", "%m/%d/%y", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%y", "%d-%m-%Y", "%m-%d-%Y",
    "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%d-%b-%Y", "%d-%b-%y", "%b %Y", "%B %Y",
    "%a, %d %b %Y %H:%M:%S %z",
)  # fmt: skip
_DATE_SHAPE = re.compile(r"\d{1,4}\D+\d{1,4}|[A-Za-z]{3,}\.? \d{4}")  # two number groups, or "Mar 2024"
DATE_SAMPLE = 200
MAX_SHEETS = 50  # a workbook's sheets profiled (the rest are named in the count only)


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy of a cell: NaN/NaT/NA → null, timestamps → ISO strings, numpy → Python."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    return "text"


class ColumnProfile:
    """Running statistics for one column, merged chunk by chunk (Chan et al. for mean/variance)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype: str | None = None
        self.kind: str | None = None
        self.missing = 0
        self.count = 0
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.min: Any = None
        self.max: Any = None
        self.counts: pd.Series | None = None
        self.unique_exact = True

    def add(self, series: pd.Series) -> None:
        kind = _kind(series)
        self._merge_dtype(str(series.dtype), kind)
        present = series.dropna()
        self.missing += len(series) - len(present)
        self.count += len(present)
        if not len(present):
            return
        if kind == "numeric":
            self._add_numeric(present.astype("float64"))
        elif kind == "datetime":
            self._add_range(present.min(), present.max())
        else:
            self._add_values(present)

    def _merge_dtype(self, dtype: str, kind: str) -> None:
        if self.dtype is None or self.dtype == dtype:
            self.dtype, self.kind = dtype, kind
        elif self.kind == kind == "numeric":
            self.dtype = (
                str(np.promote_types(np.dtype(self.dtype), np.dtype(dtype)))
                if _is_numpy(self.dtype, dtype)
                else "float64"
            )
        else:
            # Chunks disagree (e.g. numbers, then text further down): report the column as mixed text.
            self.dtype, self.kind = "object", "text"

    def _add_numeric(self, values: pd.Series) -> None:
        finite = values[np.isfinite(values)]
        if not len(finite):
            return
        n_b, mean_b = len(finite), float(finite.mean())
        m2_b = float(((finite - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self._add_range(float(finite.min()), float(finite.max()))

    def _add_range(self, low: Any, high: Any) -> None:
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)

    def _add_values(self, values: pd.Series) -> None:
        counts = values.astype(str).value_counts(sort=False)
        if self.counts is None:
            self.counts = counts
        elif self.unique_exact:
            self.counts = self.counts.add(counts, fill_value=0)
        else:
            # Past the cap only values already counted are followed (an id-like column costs nothing more).
            known = counts[self.counts.index.get_indexer(counts.index) >= 0]
            if len(known):
                self.counts = self.counts.add(known, fill_value=0)
        if len(self.counts) > UNIQUE_CAP:
            self.unique_exact = False
            self.counts = self.counts.nlargest(UNIQUE_CAP)

    def result(self) -> dict[str, Any]:
        if self.kind == "numeric":
            std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
            stats = {
                "count": self.count,
                "min": self.min,
                "max": self.max,
                "mean": self.mean if self.n else None,
                "std": std,
            }
        elif self.kind == "datetime":
            stats = {"count": self.count, "min": self.min, "max": self.max}
        else:
            counts = self.counts if self.counts is not None else pd.Series(dtype="int64")
            dated = _text_dates(counts.index)
            if dated is not None:
                return self._dated_result(*dated)
            top = [{"value": value, "count": int(n)} for value, n in counts.nlargest(TOP_VALUES, keep="first").items()]
            stats = {"count": self.count, "unique": len(counts), "unique_exact": self.unique_exact, "top": top}
        return json_safe(
            {
                "name": self.name,
                "dtype": self.dtype or "object",
                "kind": self.kind or "text",
                "missing": self.missing,
                "stats": stats,
            }
        )

    def _dated_result(self, fmt: str, low: Any, high: Any) -> dict[str, Any]:
        """A text column whose every value is a date in ``fmt``: profiled as a date range."""
        return json_safe(
            {
                "name": self.name,
                "dtype": self.dtype or "object",  # as pandas reads it; ``date_format`` says how to parse it
                "kind": "datetime",
                "date_format": fmt,
                "missing": self.missing,
                "stats": {"count": self.count, "min": _moment_text(low), "max": _moment_text(high)},
            }
        )


def _text_dates(values: pd.Index) -> tuple[str, Any, Any] | None:
    """(format, earliest, latest) when every distinct text value is a date in one of DATE_FORMATS."""
    if not len(values):
        return None
    sample = values[:DATE_SAMPLE]
    if not all(isinstance(v, str) and _DATE_SHAPE.search(v) for v in sample):
        return None
    for fmt in DATE_FORMATS:
        if _parse_dates(sample, fmt) is None:
            continue
        parsed = _parse_dates(values, fmt)
        if parsed is not None:
            return fmt, parsed.min(), parsed.max()
    return None


def _parse_dates(values: pd.Index, fmt: str) -> pd.DatetimeIndex | None:
    try:
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    except (ValueError, TypeError):  # mixed time zones: compare them in UTC
        try:
            parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
        except (ValueError, TypeError):
            return None
    return None if parsed.isna().any() else parsed


def _moment_text(moment: Any) -> str:
    """A date without its midnight time; a moment to the minute or second."""
    if moment.hour == moment.minute == moment.second == 0 and not moment.microsecond:
        return moment.strftime("%Y-%m-%d")
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


def _is_numpy(*dtypes: str) -> bool:
    try:
        for name in dtypes:
            np.dtype(name)
    except TypeError:
        return False
    return True


class ProfileBuilder:
    def __init__(self) -> None:
        self.rows = 0
        self.columns: dict[str, ColumnProfile] = {}
        self.preview: dict[str, Any] | None = None

    def add(self, frame: pd.DataFrame) -> None:
        frame = frame.rename(columns=str)
        if self.preview is None:
            head = frame.head(PREVIEW_ROWS)
            self.preview = {
                "columns": list(head.columns),
                "rows": [[json_safe(v) for v in row] for row in head.itertuples(index=False, name=None)],
            }
        self.rows += len(frame)
        for name in frame.columns:
            self.columns.setdefault(name, ColumnProfile(name)).add(frame[name])

    def result(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "column_count": len(self.columns),
            "columns": [column.result() for column in self.columns.values()],
            "preview": self.preview or {"columns": [], "rows": []},
        }


def _csv_chunks(path: Path, sep: str) -> Iterator[pd.DataFrame]:
    with pd.read_csv(path, sep=sep, chunksize=CHUNK_ROWS, encoding="utf-8-sig") as reader:
        yield from reader


def _json_chunks(path: Path) -> Iterator[pd.DataFrame]:
    try:
        frame = pd.read_json(path)
    except ValueError:
        # Not one JSON document of records/columns: try JSON Lines (one object per line), in chunks.
        with pd.read_json(path, lines=True, chunksize=CHUNK_ROWS) as reader:
            yield from reader
        return
    yield frame


def _parquet_chunks(path: Path) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows == 0:
        yield parquet.schema_arrow.empty_table().to_pandas()
        return
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        yield batch.to_pandas()


def _chunks(path: Path, fmt: str) -> Iterable[pd.DataFrame]:
    if fmt == Dataset.Format.CSV:
        return _csv_chunks(path, ",")
    if fmt == Dataset.Format.TSV:
        return _csv_chunks(path, "\t")
    if fmt == Dataset.Format.JSON:
        return _json_chunks(path)
    if fmt == Dataset.Format.PARQUET:
        return _parquet_chunks(path)
    raise ValueError(f"no chunk reader for {fmt}")  # workbooks: _workbook_profile


def _workbook_profile(path: Path) -> dict[str, Any]:
    """The first sheet's profile (what ``pd.read_excel(name)`` loads) plus ``sheets``: every sheet's, by name."""
    frames = pd.read_excel(path, sheet_name=None, engine="openpyxl")
    sheets = []
    for name, frame in list(frames.items())[:MAX_SHEETS]:
        builder = ProfileBuilder()
        builder.add(frame)
        sheets.append({"name": str(name), **builder.result()})
    if not sheets:
        return ProfileBuilder().result()
    first = {key: value for key, value in sheets[0].items() if key != "name"}
    return {**first, "sheets": sheets, "sheets_omitted": max(0, len(frames) - MAX_SHEETS)}


def dataset_profile_build(*, path: Path, fmt: str) -> dict[str, Any]:
    """Parse the local file at ``path`` as ``fmt`` and profile it.

    Raises ``ValidationError`` when it does not parse or holds no data, so nothing gets stored.
    """
    label = Dataset.Format(fmt).label
    builder = ProfileBuilder()
    try:
        if fmt == Dataset.Format.XLSX:
            profile = _workbook_profile(path)
        else:
            for chunk in _chunks(path, fmt):
                builder.add(chunk)
            profile = builder.result()
    except pd.errors.EmptyDataError as exc:
        raise ValidationError(f"The {label} file has no columns to read.") from exc
    except pd.errors.ParserError as exc:
        raise ValidationError(f"The file could not be parsed as {label}: {_first_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - parsers raise many types; any of them means "unreadable"
        raise ValidationError(
            f"The file could not be read as {label} ({type(exc).__name__}: {_first_line(exc)})."
        ) from exc
    tables = profile.get("sheets") or [profile]
    if not any(t["column_count"] for t in tables):
        raise ValidationError(f"The {label} file has no columns.")
    if not any(t["rows"] for t in tables):
        where = "in any of its sheets" if len(tables) > 1 else ""
        raise ValidationError(f"The {label} file has column names but no data rows{where and ' ' + where}.")
    return profile


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "unknown error"
