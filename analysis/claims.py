"""Claims: every number in an answer, matched against the values the run's steps computed.

Pure logic, no Django: `mentions_in` reads the numbers a text states, `ValuePool` holds the values a run produced
(its `final_result`s, printed output and table cells) and `claims_match` links each stated number to the value it
came from, allowing the rounding and the formatting the text shows. docs/claims.md states the rules and their limits.

A stated number is verified when some computed value, scaled the way the text writes it (%, k, M, B, thousand,
million, …), lies within half a unit of the last digit shown: "196,817.88" matches 196817.8812, "19.7%" matches 0.1973
(or 19.73), "1.2M" matches 1,234,567. An unsigned number also matches a negative value ("fell by 12%" for -0.12).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SOURCE_FINAL_RESULT = "final_result"
SOURCE_TABLE = "table"
SOURCE_STDOUT = "stdout"
# Where a number most likely came from when several sources hold it: the agent's convention is to put every key
# number in final_result; tables come next; printed output last.
_SOURCE_RANK = {SOURCE_FINAL_RESULT: 0, SOURCE_TABLE: 1, SOURCE_STDOUT: 2}
SMALL_GROUP_ROWS = 30

_SCALES = {
    "k": 1e3, "thousand": 1e3,
    "m": 1e6, "mn": 1e6, "mio": 1e6, "million": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9,
    "t": 1e12, "tn": 1e12, "trillion": 1e12,
}  # fmt: skip
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
# Spans that contain digits but are not numbers: dates, times, quarters, URLs, list markers.
_NOT_NUMBERS = re.compile(
    r"https?://\S+"
    r"|\b\d{4}-\d{1,2}(?:-\d{1,2})?(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b|\b\d{4}/\d{1,2}/\d{1,2}\b"
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?\b"
    rf"|\b{_MONTH},?\s+\d{{4}}\b"
    r"|\b[QH][1-4][\s-]*\d{4}\b|\b\d{4}[\s-]*[QH][1-4]\b|\bFY\s?\d{2,4}\b"
    r"|^[ \t]*\d+[.)][ \t]",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(
    r"(?<![\w.,])"  # not inside a word, an identifier (col2) or another number
    r"(?P<sign>[-−+]\s?)?"
    r"(?P<currency>[$€£¥₹]\s?)?"
    r"(?P<sign2>[-−])?"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<suffix>%|percent\b|per\s?cent\b|(?:k|K|M|B|bn|mn|tn|T)\b|(?:thousand|million|billion|trillion)\b))?"
    r"(?![\w])",  # 1st, 3x, 10px are not quantities we check
)
_YEAR_MIN, _YEAR_MAX = 1900, 2100
_SENTINELS = re.compile("[\ue000-\ue002]")
_MARKED = re.compile("\ue000(\\d+)\ue001([^\ue000-\ue002<]*)\ue002")
_SPAN_CLASS = re.compile(r'(<span\b[^>]*?\bclass=")([^"]*)(")')


@dataclass(frozen=True)
class Mention:
    """One number as the text states it."""

    text: str
    start: int
    end: int
    mantissa: float  # the digits as written, sign included ("1.2" of "$1.2M", "-3" of "−3%")
    decimals: int  # digits shown after the decimal point
    scale: float  # what the mantissa is multiplied by (1e6 for M); percent is handled apart
    percent: bool
    signed: bool  # the text wrote a sign: a computed value of the other sign does not match

    @property
    def value(self) -> float:
        return self.mantissa * self.scale / (100.0 if self.percent else 1.0)

    @property
    def is_year(self) -> bool:
        plain = not (self.percent or self.signed or self.decimals or self.scale != 1 or "," in self.text)
        return plain and self.text.isdigit() and _YEAR_MIN <= self.mantissa <= _YEAR_MAX

    def readings(self) -> Iterator[tuple[float, float]]:
        """(centre, half-width) of the computed values this text may stand for, in computed units."""
        tolerance = 0.5 * 10.0**-self.decimals * (1 + 1e-9) + 1e-12
        if self.percent:  # 19.7% is 0.197 as a fraction, or 19.7 when the code already multiplied by 100
            yield self.mantissa / 100.0, tolerance / 100.0
            yield self.mantissa, tolerance
        else:
            yield self.mantissa * self.scale, tolerance * self.scale


def _mention(match: re.Match[str], text: str) -> Mention:
    digits = match["digits"].replace(",", "")
    suffix = (match["suffix"] or "").lower().replace(" ", "")
    negative = any(s and s.strip() in "-−" for s in (match["sign"], match["sign2"]))
    mantissa = float(digits)
    return Mention(
        text=text[match.start() : match.end()],
        start=match.start(),
        end=match.end(),
        mantissa=-mantissa if negative else mantissa,
        decimals=len(digits.split(".")[1]) if "." in digits else 0,
        scale=_SCALES.get(suffix, 1.0),
        percent=suffix in ("%", "percent"),
        signed=bool(match["sign"] or match["sign2"]),
    )


def _masked(text: str) -> str:
    """The text with every date, time, URL and list marker blanked out (same length, so offsets hold)."""
    return _NOT_NUMBERS.sub(lambda m: " " * len(m.group(0)), text)


def mentions_in(text: str) -> list[Mention]:
    """Every number the text states, in order; dates, times, URLs and list markers are not numbers."""
    text = text or ""
    # Matching runs on the masked text; a match never covers a blanked span, so its characters are the original's.
    return [_mention(match, text) for match in _NUMBER.finditer(_masked(text))]


def claim_mentions(answer: str, question: str = "") -> list[Mention]:
    """The numbers of an answer that are claims: not years, and not numbers that only restate the question."""
    asked = {round(m.value, 9) for m in mentions_in(question)}
    return [m for m in mentions_in(answer) if not m.is_year and round(m.value, 9) not in asked]


# --- the values a run computed -------------------------------------------------------------------------------


class _RowLabels:
    """A table's row labels (its leading index columns joined), made only for the rows a claim points at."""

    def __init__(self, rows: list[list[Any]], columns: int) -> None:
        self.rows, self.columns = rows, columns

    def __getitem__(self, row: int) -> str:
        return " / ".join(str(v) for v in self.rows[row][: self.columns])


@dataclass
class _Chunk:
    """Values from one place: one final_result, one printed output, or one table (its cells column by column)."""

    values: np.ndarray
    step: int
    source: str
    locations: list[dict[str, Any] | None] | None = None  # one per value, or built from the table fields below
    rows: np.ndarray | None = None
    columns: np.ndarray | None = None
    column_names: list[str] | None = None
    labels: _RowLabels | None = None
    title: str = ""
    group_sizes: list[int | None] | None = None  # per value (final_result) or per row (table)

    def location(self, offset: int) -> dict[str, Any] | None:
        if self.locations is not None:
            return self.locations[offset]
        row = int(self.rows[offset])
        location: dict[str, Any] = {"row": row, "column": self.column_names[int(self.columns[offset])]}
        if self.labels is not None:
            location["label"] = self.labels[row]
        if self.title:
            location["table"] = self.title
        return location

    def group_size(self, offset: int) -> int | None:
        if not self.group_sizes:
            return None
        return self.group_sizes[int(self.rows[offset]) if self.rows is not None else offset]


@dataclass
class ValuePool:
    """Every number a run's steps produced, with where each came from, searchable by value."""

    chunks: list[_Chunk] = field(default_factory=list)
    # Rows per group label over every groupby result the run produced ({"levels", "sizes"} from the sandbox).
    group_rows: dict[str, int] = field(default_factory=dict)
    _index: tuple[np.ndarray, ...] | None = None

    def add_final_result(self, value: Any, *, step: int, group_sizes: dict[str, Any] | None = None) -> None:
        sizes_by_label = self._register(group_sizes)
        found = list(_walk(value, ()))
        sizes = [sizes_by_label.get(str(path[-1])) if sizes_by_label and path else None for path, _ in found]
        self._add(
            _Chunk(
                values=np.array([n for _, n in found], dtype=np.float64),
                step=step,
                source=SOURCE_FINAL_RESULT,
                locations=[{"path": list(path)} if path else None for path, _ in found],
                group_sizes=sizes if any(s is not None for s in sizes) else None,
            )
        )

    def add_output(self, *, step: int, stdout: str, data: dict[str, Any]) -> None:
        """An output step's numbers: its final_result, then what it printed and displayed, as one text line by line."""
        if data.get("final_result") is not None:
            self.add_final_result(data["final_result"], step=step, group_sizes=data.get("group_sizes"))
        display = data.get("display")
        printed = "\n".join(t for t in (stdout, display if isinstance(display, str) else "") if t)
        if printed:
            self.add_stdout(printed, step=step)

    def add_table_body(self, table: dict[str, Any], *, step: int, title: str = "") -> None:
        """A table artifact's cells, from its stored JSON or the sandbox payload it was stored from (same keys)."""
        self.add_table(
            columns=table.get("columns") or [],
            rows=table.get("rows") or [],
            step=step,
            title=title,
            label_columns=int(table.get("index_columns") or 0),
            group_sizes=table.get("group_sizes"),
        )

    def add_stdout(self, text: str, *, step: int) -> None:
        line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        values, locations = [], []
        for mention in mentions_in(text):
            line = {"line": int(np.searchsorted(line_starts, mention.start, side="right"))}
            values.append(mention.value)
            locations.append(line)
            if mention.percent:  # printed "19.7%" was computed as 19.7 or as 0.197: both are values
                values.append(mention.mantissa)
                locations.append(line)
        self._add(
            _Chunk(values=np.array(values, dtype=np.float64), step=step, source=SOURCE_STDOUT, locations=locations)
        )

    def add_table(
        self,
        *,
        columns: list[str],
        rows: list[list[Any]],
        step: int,
        title: str = "",
        label_columns: int = 0,
        group_sizes: dict[str, Any] | None = None,
    ) -> None:
        """Every numeric cell; `label_columns` leading columns hold the row labels (the table's index)."""
        sizes_by_label = self._register(group_sizes)
        if sizes_by_label and not label_columns:  # a reset_index() result: its groups are the leading columns
            label_columns = int(group_sizes.get("levels") or 1)
        labels = _RowLabels(rows, label_columns) if label_columns else None
        values, row_ids, col_ids = [], [], []
        for col, cells in enumerate(zip(*rows, strict=False)):
            numbers = _numeric_column(cells)
            if numbers is None:
                continue
            keep = np.flatnonzero(np.isfinite(numbers))
            values.append(numbers[keep])
            row_ids.append(keep)
            col_ids.append(np.full(len(keep), col))
        if not values:
            return
        sizes = [sizes_by_label.get(labels[r]) for r in range(len(rows))] if sizes_by_label and labels else None
        self._add(
            _Chunk(
                values=np.concatenate(values),
                step=step,
                source=SOURCE_TABLE,
                rows=np.concatenate(row_ids),
                columns=np.concatenate(col_ids),
                column_names=[str(c) for c in columns],
                labels=labels,
                title=title,
                group_sizes=sizes if sizes and any(s is not None for s in sizes) else None,
            )
        )

    def _register(self, group_sizes: dict[str, Any] | None) -> dict[str, int]:
        sizes = (group_sizes or {}).get("sizes") or {}
        self.group_rows.update(sizes)
        return sizes

    def rows_behind(self, chunk: _Chunk, offset: int) -> int | None:
        """Rows of the group a value stands for: its own table row's group, or (for a final_result key such as
        "West") that label's size in any groupby result of the run."""
        rows = chunk.group_size(offset)
        location = chunk.location(offset) or {}
        if rows is None and chunk.source == SOURCE_FINAL_RESULT and location.get("path"):
            rows = self.group_rows.get(str(location["path"][-1]))
        return rows

    def _add(self, chunk: _Chunk) -> None:
        if len(chunk.values):
            self.chunks.append(chunk)
            self._index = None

    def __len__(self) -> int:
        return sum(len(c.values) for c in self.chunks)

    def _build(self) -> tuple[np.ndarray, ...]:
        values = np.concatenate([c.values for c in self.chunks])
        chunk_ids = np.concatenate([np.full(len(c.values), i) for i, c in enumerate(self.chunks)])
        # Lower is better: the source first, then the latest step (the final computation), then the first found.
        ranks = np.array([_SOURCE_RANK[c.source] * 10**7 - c.step for c in self.chunks], dtype=np.int64)
        rank = ranks[chunk_ids] * 10**8 + np.arange(len(values)) % 10**8
        magnitudes = np.abs(values)
        order = np.argsort(magnitudes)  # one sort by magnitude serves signed and unsigned mentions alike
        starts = np.cumsum([0] + [len(c.values) for c in self.chunks])
        return values, chunk_ids, starts, rank, order, magnitudes[order]

    def find(self, mention: Mention) -> int | None:
        """The index of the computed value the mention stands for (exact before rounded), or None."""
        if not self.chunks:
            return None
        if self._index is None:
            self._index = self._build()
        values, _chunks, _starts, rank, order, magnitudes = self._index
        best: tuple[int, int] | None = None
        for centre, half in mention.readings():
            target = abs(centre)
            lo = int(np.searchsorted(magnitudes, target - half, side="left"))
            hi = int(np.searchsorted(magnitudes, target + half, side="right"))
            candidates = order[lo:hi]
            if mention.signed and centre:  # "-3%" or "+3%": the computed value has that sign
                candidates = candidates[np.sign(values[candidates]) == np.sign(centre)]
            if not len(candidates):
                continue
            exact = candidates[np.abs(np.abs(values[candidates]) - target) <= 1e-9 * max(1.0, target)]
            tier, pool = (0, exact) if len(exact) else (1, candidates)
            pick = int(pool[np.argmin(rank[pool])])
            if best is None or (tier, rank[pick]) < (best[0], rank[best[1]]):
                best = (tier, pick)
        return None if best is None else best[1]

    def origin(self, index: int) -> tuple[_Chunk, int, float]:
        """(chunk, offset inside it, value) of a value `find` returned."""
        values, chunk_ids, starts, *_ = self._index
        chunk_id = int(chunk_ids[index])
        return self.chunks[chunk_id], index - int(starts[chunk_id]), float(values[index])


def _numeric_column(cells: tuple) -> np.ndarray | None:
    """The column as floats (NaN where a cell is not a number), or None when it holds no numbers at all."""
    first = next((c for c in cells if c is not None), None)
    if isinstance(first, int | float) and not isinstance(first, bool):
        try:  # the common case, a column of numbers (None becomes NaN), in one C loop
            return np.array(cells, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    if isinstance(first, str | type(None)) and not any(type(c) in (int, float) for c in cells):
        return None  # text (labels, dates): checked without a call per cell
    numbers = [_number(c) for c in cells]
    if all(n is None for n in numbers):
        return None
    return np.array([np.nan if n is None else n for n in numbers], dtype=np.float64)


def _number(cell: Any) -> float | None:
    if isinstance(cell, bool) or cell is None:
        return None
    if isinstance(cell, int | float):
        return float(cell)
    return None


def _walk(value: Any, path: tuple) -> Iterator[tuple[tuple, float]]:
    """(path, number) for every number inside a JSON value; numbers written inside strings count too."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        yield path, float(value)
    elif isinstance(value, str):
        for mention in mentions_in(value):
            yield path, mention.value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


# --- claims ------------------------------------------------------------------------------------------------


def claims_match(*, answer: str, question: str, pool: ValuePool) -> list[dict[str, Any]]:
    """One claim per number of the answer: its text and span, the value it states, and its source if verified."""
    claims = []
    for mention in claim_mentions(answer, question):
        index = pool.find(mention)
        claim: dict[str, Any] = {
            "text": mention.text,
            "span": [mention.start, mention.end],
            "value": _tidy(mention.value),
            "verified": index is not None,
            "step": None,
            "source": None,
            "location": None,
        }
        if index is not None:
            chunk, offset, computed = pool.origin(index)
            claim.update(
                step=chunk.step, source=chunk.source, location=chunk.location(offset), computed=_tidy(computed)
            )
            rows = pool.rows_behind(chunk, offset)
            if rows is not None and rows < SMALL_GROUP_ROWS:
                claim["warning"] = f"based on {rows} row{'s' if rows != 1 else ''}"
        claims.append(claim)
    return claims


def _tidy(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else round(value, 12)


def strip_sentinels(text: str) -> str:
    """Remove the private-use characters `mark_claims` uses, so a text cannot forge a mark."""
    return _SENTINELS.sub("", text or "")


def spans_replace(text: str, claims: list[dict[str, Any]], replace: Callable[[dict[str, Any], int, str], str]) -> str:
    """The text with each claim's span replaced by `replace(claim, index, number as written)`; claims whose span
    does not hold their text (an edited answer) are left as they are."""
    out, cursor = [], 0
    for index, claim in enumerate(claims):
        start, end = claim.get("span") or (None, None)
        if start is None or start < cursor or end > len(text) or text[start:end] != claim["text"]:
            continue
        out += [text[cursor:start], replace(claim, index, text[start:end])]
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def mark_claims(answer: str, claims: list[dict[str, Any]]) -> str:
    """The answer with each claim's span wrapped in private-use sentinels (\\ue000 index \\ue001 … \\ue002),
    for a renderer to turn into marks (`marks_replace`) after Markdown rendering and sanitizing, which both keep
    them as text."""
    return spans_replace(answer or "", claims, lambda claim, index, text: f"\ue000{index}\ue001{text}\ue002")


def marks_replace(html: str, claims: list[dict[str, Any]], mark: Callable[[dict[str, Any], int, str], str]) -> str:
    """Rendered (sanitized) HTML of `mark_claims` output with each marked number replaced by `mark(claim, index,
    text)`. Class names starting with "claim" on the text's own spans are dropped first, so an answer cannot
    dress a number up as a verified mark."""

    def unclaimed(match: re.Match[str]) -> str:
        kept = " ".join(name for name in match[2].split() if not name.startswith("claim"))
        return f"{match[1]}{kept}{match[3]}"

    html = _SPAN_CLASS.sub(unclaimed, html)
    html = _MARKED.sub(lambda m: mark(claims[int(m[1])], int(m[1]), m[2]), html)
    return strip_sentinels(html)


def unverified_note(claims: list[dict[str, Any]]) -> str:
    """ "2 numbers in this answer were not found in any computed output.", or "" when every number was found."""
    count = sum(1 for claim in claims if not claim.get("verified"))
    if not count:
        return ""
    return f"{count} number{'s' if count != 1 else ''} in this answer {'were' if count != 1 else 'was'} not found in any computed output."


def claim_source_label(claim: dict[str, Any]) -> str:
    """Where a claim's number came from, in words: "step 5, final_result['West']", "step 7, table “Revenue”,
    row West, column revenue", "step 3, printed output, line 2", or why it is flagged."""
    if not claim.get("verified"):
        return "not found in any computed output"
    location = claim.get("location") or {}
    source = claim.get("source")
    if source == SOURCE_TABLE:
        parts = [f"table “{location['table']}”" if location.get("table") else "table"]
        parts.append(f"row {location['label']}" if location.get("label") else f"row {location.get('row', 0) + 1}")
        parts.append(f"column {location.get('column')}")
        where = ", ".join(parts)
    elif source == SOURCE_STDOUT:
        where = f"printed output, line {location.get('line')}"
    else:
        path = "".join(f"[{p!r}]" for p in location.get("path") or [])
        where = f"final_result{path}"
    label = f"step {claim.get('step')}, {where}"
    return f"{label} ({claim['warning']})" if claim.get("warning") else label
