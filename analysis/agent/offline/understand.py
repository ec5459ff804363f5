"""Reading a question into a ``Request``: which columns it measures and groups by, the time grain, the filters.

Every token of the question is accounted for: a column or one of its values, a number, a word of the
vocabulary (``words.py``) or a stopword. What is left over is a phrase the analyst does not understand, and
a question with such a phrase is refused (``Request.unknown``), never answered by guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from analysis.agent.offline import words as w
from analysis.agent.offline.datasets import Column, DatasetInfo, Span, column_spans


@dataclass
class Filter:
    """Keep rows where ``column`` equals one of ``values`` (kind "equals"), or whose date falls in a year/month."""

    column: Column | None
    kind: str  # "equals" | "year" | "month"
    values: list = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == "year":
            return "in " + " and ".join(str(v) for v in self.values)
        if self.kind == "month":
            return "in " + " and ".join(f"{w.MONTHS[m - 1].capitalize()} {y}" for y, m in self.values)
        assert self.column is not None
        return f"where {self.column.name} is " + " or ".join(self.values)


@dataclass
class Request:
    text: str
    dataset: DatasetInfo
    measures: list[Column] = field(default_factory=list)
    groups: list[Column] = field(default_factory=list)
    agg: str | None = None
    aggs: list[str] = field(default_factory=list)  # every aggregate word, to notice two that conflict
    rows: bool = False
    row_noun: str = ""  # the word the question uses for rows: "order", "penguin"
    grain: str | None = None
    date: Column | None = None
    filters: list[Filter] = field(default_factory=list)
    chart: str | None = None
    rank: str | None = None
    sort: bool = False  # "sort"/"rank": every group in order, not the top 5
    head: bool = False  # "the first 3 rows": rows as they come
    n: int | None = None
    which: bool = False
    keywords: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)
    follow_up: bool = False
    recognised: int = 0  # how many vocabulary words (not stopwords) the question used

    @property
    def numeric(self) -> list[Column]:
        return [c for c in self.measures if c.numeric]

    @property
    def measure(self) -> Column | None:
        return self.measures[0] if self.measures else None

    @property
    def group(self) -> Column | None:
        return self.groups[0] if self.groups else None

    def with_changes(self, **changes) -> Request:
        return replace(self, **changes)


@dataclass
class _Scan:
    """Working state while reading one question: the tokens and what each one turned out to be."""

    words: list[str]
    used: list[bool]

    def take(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.used[i] = True

    def free(self, start: int, end: int) -> bool:
        return end <= len(self.words) and not any(self.used[start:end])


def _vocabulary(dataset: DatasetInfo) -> list[tuple[list[str], str, str]]:
    """(tokens, role, value) for every phrase the analyst knows, longest phrases first."""
    vocab: list[tuple[list[str], str, str]] = []
    tables = {"agg": w.AGG_WORDS, "rank": w.RANK_WORDS, "grain": w.GRAIN_WORDS, "chart": w.CHART_WORDS}
    for role, table in tables.items():
        vocab += [(w.tokens(p), role, value) for value, phrases in table.items() for p in phrases]
    vocab += [(w.tokens(p), "keyword", kw) for kw, phrases in w.KEYWORDS.items() for p in phrases]
    vocab += [(w.tokens(p), "group", "") for p in w.GROUP_MARKERS]
    vocab += [(w.tokens(p), "follow", "") for p in w.FOLLOW_UP_MARKERS]
    vocab += [(w.tokens(p), "filler", "") for p in w.FILLER]
    vocab += [(w.tokens(p), "rows", p) for p in w.ROW_NOUNS]
    vocab += [(name, "rows", " ".join(name)) for name in dataset.names]
    vocab += [([m], "month", str(i)) for m, i in w.MONTH_ABBR.items()]
    return sorted((v for v in vocab if v[0]), key=lambda v: -len(v[0]))


def _grouped(scan: _Scan, start: int) -> bool:
    """Whether the tokens just before ``start`` are a grouping word ("by", "for each", "broken down by" …)."""
    before = scan.words[:start]
    while before and before[-1] in ("the", "a", "their", "its"):
        before = before[:-1]
    return any(m and before[-len(m) :] == m for m in (w.tokens(p) for p in w.GROUP_MARKERS))


def _after_group(scan: _Scan, req: Request, start: int, previous: Span | None) -> bool:
    """ "by species and island": a column joined by "and" to a grouped one is grouped too."""
    if previous is None or previous.column not in req.groups:
        return False
    return all(t in ("and", "or", "then") for t in scan.words[previous.end : start]) and start > previous.end


def _columns(scan: _Scan, req: Request, spans: list[Span]) -> None:
    values: dict[str, Filter] = {}
    previous: Span | None = None
    for span in spans:
        scan.take(span.start, span.end)
        if span.value is None and _after_group(scan, req, span.start, previous):
            req.groups.append(span.column)
            previous = span
            continue
        previous = span
        if span.value is not None:
            values.setdefault(span.column.name, Filter(span.column, "equals")).values.append(span.value)
        elif span.column.is_date and (_grouped(scan, span.start) or req.date is None):
            req.date = span.column
            if _grouped(scan, span.start):
                req.grain = req.grain or "day"
        elif _grouped(scan, span.start):
            req.groups.append(span.column)
        else:
            req.measures.append(span.column)
    req.filters += list(values.values())


def _numbers(scan: _Scan, req: Request) -> None:
    years: list[int] = []
    for i, word in enumerate(scan.words):
        if scan.used[i] or not word.isdigit():
            continue
        value = int(word)
        if 1900 <= value <= 2100 and len(word) == 4:
            month = w.MONTH_ABBR.get(scan.words[i - 1]) if i else None
            if month:
                req.filters.append(Filter(None, "month", [(value, month)]))
                scan.take(i - 1, i + 1)
            else:
                years.append(value)
                scan.take(i, i + 1)
        elif req.n is None and 0 < value <= 1000:
            req.n = value
            scan.take(i, i + 1)
    if years:
        req.filters.append(Filter(None, "year", years))


def _vocab_words(scan: _Scan, req: Request) -> None:
    for phrase, role, value in _vocabulary(req.dataset):
        for i in range(len(scan.words) - len(phrase) + 1):
            if scan.words[i : i + len(phrase)] != phrase or not scan.free(i, i + len(phrase)):
                continue
            if role == "month" and not (i + 1 < len(scan.words) and scan.words[i + 1].isdigit()):
                continue  # "may" alone is a verb; month names count only before a year
            scan.take(i, i + len(phrase))
            _apply(req, role, value, first=(i == 0), phrase=phrase)


_SORT_WORDS = [["sort"], ["sorted"], ["rank"], ["ranking"], ["ranked"]]


def _apply(req: Request, role: str, value: str, *, first: bool, phrase: list[str]) -> None:
    if role == "follow":
        req.follow_up = req.follow_up or first
        return
    if role == "filler":
        return
    req.recognised += 1
    if role == "agg":
        req.aggs.append(value)
        req.agg = value if value == "nunique" else (req.agg or value)  # "number of distinct …" counts values
    elif role == "rank":
        req.rank = value if phrase in (["ascending"], ["descending"]) else (req.rank or value)
        req.sort = req.sort or phrase in _SORT_WORDS
        req.head = req.head or phrase == ["first"]
    elif role == "grain":
        req.grain = value if req.grain in (None, "auto", "day") and value != "auto" else (req.grain or value)
    elif role == "chart":
        req.chart = value if req.chart in (None, "any") else req.chart
    elif role == "keyword":
        req.keywords.add(value)
    elif role == "rows":
        req.rows = True
        req.row_noun = req.row_noun or value
        req.recognised -= 1  # naming the rows ("orders", "penguins") asks nothing yet
    elif role == "group":
        req.recognised -= 1  # "by" alone says nothing


def _number_words(scan: _Scan, req: Request) -> None:
    for i, word in enumerate(scan.words):
        if not scan.used[i] and word in w.NUMBER_WORDS and req.n is None and req.rank:
            req.n = w.NUMBER_WORDS[word]
            scan.take(i, i + 1)


_ROW_TOKENS = {w.tokens(p)[-1] for p in w.ROW_NOUNS}


def _leftovers(scan: _Scan) -> list[str]:
    """Runs of tokens nothing explained (stopwords aside), as the phrases to name back to the user."""
    phrases: list[list[str]] = []
    previous = -2
    for i, word in enumerate(scan.words):
        if scan.used[i] or word in w.STOPWORDS:
            continue
        if i == previous + 1 and phrases:
            phrases[-1].append(word)
        elif word in w.COMPOUND_TAILS and i and scan.words[i - 1] in _ROW_TOKENS:
            phrases.append([scan.words[i - 1], word])  # "order value" is no column, not a count of orders
        else:
            phrases.append([word])
        previous = i
    return [" ".join(p) for p in phrases]


def _normalise(req: Request) -> None:
    """Put columns in the roles the question gives them: "top 3 regions by revenue" ranks regions by revenue,
    and in "where region is East" the column only names the filter."""
    filtered = {f.column.name for f in req.filters if f.kind == "equals" and f.column is not None}
    req.measures = [c for c in req.measures if c.numeric or c.name not in filtered]
    # "revenue in East and West", "compare East with West": several values of one column compare them.
    compared = [f.column for f in req.filters if f.kind == "equals" and f.column is not None and len(f.values) > 1]
    if compared and not req.groups and not req.grain:
        req.groups = compared[:1]
    numeric_groups = [c for c in req.groups if c.numeric]
    text_measures = [c for c in req.measures if not c.numeric and not c.is_date]
    if (req.rank or req.keywords & {"growth", "decline"}) and numeric_groups and not req.numeric:
        req.groups = [c for c in req.groups if c not in numeric_groups] + text_measures
        req.measures = numeric_groups + [c for c in req.measures if c not in text_measures]
    elif (
        req.which
        and text_measures
        and not req.groups
        or req.rank
        and text_measures
        and not req.groups
        and (req.numeric or req.rows or req.agg == "count")
    ):
        req.groups, req.measures = text_measures, [c for c in req.measures if c not in text_measures]


def request_read(question: str, dataset: DatasetInfo) -> Request:
    """Read ``question`` against ``dataset``; ``unknown`` lists any phrase it could not account for."""
    scan = _Scan(w.tokens(question), [False] * len(w.tokens(question)))
    req = Request(text=question, dataset=dataset, which=any(t in ("which", "who", "whose") for t in scan.words))
    _columns(scan, req, column_spans(scan.words, dataset))
    _vocab_words(scan, req)
    _numbers(scan, req)
    _number_words(scan, req)
    req.unknown = _leftovers(scan)
    _normalise(req)
    _aggregates(req)
    return req


def _aggregates(req: Request) -> None:
    """Two aggregate words: "total number of orders" is a count, "average number of orders per month" the mean
    of the monthly counts; any other pair stays two (and is refused, see ``features``)."""
    kinds = set(req.aggs)
    if len(kinds) > 1 and kinds & {"count", "nunique"}:
        kinds.discard("sum")
    if kinds == {"count", "nunique"}:
        kinds = {"nunique"}
    if kinds == {"mean", "count"} and not req.measures:
        req.agg = "mean_count"
    req.aggs = sorted(kinds) if req.agg != "mean_count" else ["mean", "count"]
    if len(kinds) == 1:
        req.agg = next(iter(kinds))


def columns_named(question: str, dataset: DatasetInfo) -> list[Column]:
    return [s.column for s in column_spans(w.tokens(question), dataset) if s.value is None]
