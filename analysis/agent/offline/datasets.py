"""What the analyst knows about each dataset (from its profile) and how a question's words name its columns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analysis.agent.offline.words import UNIT_TOKENS, tokens

NUMERIC_PREFIXES = ("int", "float", "uint", "decimal", "number", "double")
DATE_NAME_WORDS = ("date", "time", "day", "month", "timestamp", "period", "datetime", "created", "updated", "when")
# Sample values that look like dates in the common formats (ISO, US/European numeric, month names).
DATE_PATTERNS = (
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?",
    r"\d{4}/\d{1,2}/\d{1,2}",
    r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?",
    r"\d{1,2}[ -][A-Za-z]{3,9}[ -,]+\d{2,4}",
    r"[A-Za-z]{3,9}\.? \d{1,2},? \d{4}",
    r"\d{4}-\d{2}",
)
_DATE_RE = re.compile("|".join(f"(?:{p})" for p in DATE_PATTERNS))


@dataclass
class Column:
    name: str
    dtype: str
    samples: list[str] = field(default_factory=list)
    kind: str = ""  # the profile's kind: "numeric", "datetime" (also dates stored as text), "text", …
    date_format: str = ""  # the profile's strftime format of dates stored as text ("%d/%m/%Y"), tried first

    @property
    def numeric(self) -> bool:
        d = self.dtype.lower()
        return d.startswith(NUMERIC_PREFIXES) and not d.startswith("bool")

    @property
    def is_date(self) -> bool:
        """A datetime dtype, or text whose sample values read as dates (dates stored as strings)."""
        d = self.dtype.lower()
        if self.kind == "datetime" or "datetime" in d or d.startswith(("date", "timestamp")):
            return True
        if self.numeric:
            return False
        values = [s for s in self.samples if s]
        if values:
            return sum(bool(_DATE_RE.fullmatch(v.strip())) for v in values) >= 0.8 * len(values)
        return any(w in tokens(self.name) for w in DATE_NAME_WORDS)

    @property
    def date_named(self) -> bool:
        return not self.numeric and any(w in tokens(self.name) for w in DATE_NAME_WORDS)

    @property
    def tokens(self) -> list[str]:
        return tokens(self.name)


@dataclass
class DatasetInfo:
    name: str
    format: str
    columns: list[Column] = field(default_factory=list)
    sheet: str | None = None

    @classmethod
    def from_prompt_info(cls, info: dict) -> DatasetInfo:
        cols = [
            Column(
                str(c["name"]),
                str(c.get("dtype") or "object"),
                [str(v) for v in c.get("samples") or []],
                str(c.get("kind") or ""),
                str(c.get("date_format") or ""),
            )
            for c in info.get("columns") or []
        ]
        return cls(name=info["name"], format=info.get("format") or "csv", columns=cols, sheet=info.get("sheet"))

    @classmethod
    def all_from_prompt_info(cls, info: dict) -> list[DatasetInfo]:
        """One table per dataset, or one per sheet of a workbook with several (named "book.xlsx (sheet X)")."""
        sheets = info.get("sheets") or []
        if not sheets:
            return [cls.from_prompt_info(info)]
        return [cls.from_prompt_info({**sheet, "name": info["name"], "format": "xlsx", "sheet": sheet["name"]})
                for sheet in sheets]  # fmt: skip

    @property
    def label(self) -> str:
        return f"{self.name} (sheet {self.sheet})" if self.sheet else self.name

    @property
    def stem_tokens(self) -> list[str]:
        return tokens(self.name.rsplit(".", 1)[0])

    @property
    def names(self) -> list[list[str]]:
        """Token sequences that name this table in a question: the file's stem, and a sheet's own name."""
        own = [tokens(self.sheet), self.stem_tokens + tokens(self.sheet)] if self.sheet else []
        return [n for n in [self.stem_tokens, *own] if n]

    def reader(self) -> str:
        if self.format == "xlsx" or self.sheet:
            sheet = f", sheet_name={self.sheet!r}" if self.sheet else ""
            return f"pd.read_excel({self.name!r}{sheet})"
        readers = {
            "tsv": f"pd.read_csv({self.name!r}, sep='\\t')",
            "parquet": f"pd.read_parquet({self.name!r})",
            "json": f"pd.read_json({self.name!r})",
        }
        return readers.get(self.format, f"pd.read_csv({self.name!r})")

    def column_list(self) -> str:
        return ", ".join(c.name for c in self.columns[:40])

    def numeric_columns(self) -> list[Column]:
        return [c for c in self.columns if c.numeric]

    def date_columns(self) -> list[Column]:
        return [c for c in self.columns if c.is_date]

    def values_of(self, column: Column) -> list[str]:
        return [] if column.numeric or column.is_date else column.samples


@dataclass
class Span:
    """Tokens ``start:end`` of the question name ``column`` (or one of its values, when ``value`` is set)."""

    start: int
    end: int
    column: Column
    value: str | None = None


def _variants(column: Column) -> list[list[str]]:
    toks = column.tokens
    out = [toks]
    if len(toks) > 1 and (len(toks[-1]) <= 2 or toks[-1] in UNIT_TOKENS):
        out.append(toks[:-1])  # "body mass" names body_mass_g
    if len(toks) > 1:
        out.append(["".join(toks)])  # "unitprice" names "Unit Price"
    return [v for v in out if v]


def _find(words: list[str], needle: list[str]) -> list[int]:
    n = len(needle)
    return [i for i in range(len(words) - n + 1) if words[i : i + n] == needle]


def column_spans(words: list[str], dataset: DatasetInfo) -> list[Span]:
    """Where the question names columns or text values, longest names first, never overlapping."""
    candidates: list[Span] = []
    for column in dataset.columns:
        for variant in _variants(column):
            candidates += [Span(i, i + len(variant), column) for i in _find(words, variant)]
        for value in dataset.values_of(column):
            vt = tokens(value)
            if vt and not (len(vt) == 1 and len(vt[0]) < 2):
                candidates += [Span(i, i + len(vt), column, value) for i in _find(words, vt)]
    taken: set[int] = set()
    chosen: list[Span] = []
    for span in sorted(candidates, key=lambda s: (-(s.end - s.start), s.value is not None, s.start)):
        if taken.isdisjoint(range(span.start, span.end)):
            chosen.append(span)
            taken.update(range(span.start, span.end))
    return sorted(chosen, key=lambda s: s.start)
