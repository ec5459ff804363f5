"""What every intent shares: the ``Intent`` and ``Plan`` records, the features a question has, and wording.

An intent applies when its matcher accepts the request AND it uses every feature the question has
(``features``): a grouping, a time grain, a filter or a chart the intent would ignore means another intent,
or a refusal, never a silently narrower answer. Answers quote only numbers from ``final_result``, formatted
by ``fmt`` (so each can be traced back to the code that computed it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis.agent.offline import code as c
from analysis.agent.offline.understand import Request
from analysis.agent.offline.words import AGG_LABEL

MAX_LISTED = c.LISTED


def fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def pct(fraction: float) -> str:
    return f"{fraction * 100:+.1f}%"


def features(req: Request) -> set[str]:
    """The parts of a question an intent must use (or the question goes to another intent, or is refused)."""
    f = {f"kw:{k}" for k in req.keywords}
    flags = {
        "agg": req.agg,
        "rank": req.rank,
        "n": req.n is not None,
        "group": req.groups,
        "group2": len(req.groups) > 1,
        "grain": req.grain,
        "filter": req.filters,
        "measure": req.measures,
        "measure2": len(req.measures) > 1,
        "rows": req.rows,
        "agg2": len(set(req.aggs)) > 1 and req.agg != "mean_count",
        "date": req.date is not None and not req.grain and not date_filtered(req),
    }
    f |= {name for name, on in flags.items() if on}
    if req.chart:
        f.add("chart" if req.chart == "any" else f"chart:{req.chart}")
    return f


def date_filtered(req: Request) -> bool:
    return any(f.kind in ("year", "month") for f in req.filters)


@dataclass
class Plan:
    thought: str
    code: str


@dataclass(frozen=True)
class Intent:
    name: str
    summary: str  # what it computes, for refusals that list the analyst's abilities
    uses: frozenset[str]
    match: Callable[[Request], bool]
    plan: Callable[[Request], Plan]
    answer: Callable[[Request, object], str]

    def applies(self, req: Request) -> bool:
        return self.match(req) and features(req) <= self.uses


# --- wording helpers ------------------------------------------------------------------------------------


def scope(req: Request) -> str:
    labels = [f.label for f in req.filters]
    return (" " + " and ".join(labels)) if labels else ""


def fmt_all(values) -> Callable[[object], str]:
    """One format for a list of numbers: two decimals for all as soon as one is fractional (766.00, 914.50)."""
    values = list(values)
    fractional = any(isinstance(v, float) and not v.is_integer() and abs(v) >= 1 for v in values)
    return (lambda v: f"{v:,.2f}" if isinstance(v, int | float) and abs(v) >= 1 else fmt(v)) if fractional else fmt


def listed(items: dict, total: int | None = None) -> str:
    f = fmt_all(items.values())
    more = f"; all {fmt(total)} are in the table" if total and total > len(items) else ""
    return ", ".join(f"{k}: {f(v)}" for k, v in items.items()) + more


def agg_for(req: Request, default: str = "sum") -> str:
    """The aggregation to run: counting a text column counts its distinct values ("number of products")."""
    agg = req.agg or default
    if req.measures and not req.numeric:
        return "nunique"
    return "count" if not req.measures else agg


def plural(noun: str) -> str:
    if noun.endswith("s") or "_" in noun or not noun[-1:].isalpha():  # "species", "order_id"…
        return noun
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def row_nouns(req: Request) -> str:
    return plural(req.row_noun or "row")


def value_label(req: Request, agg: str) -> str:
    if agg == "count" and not req.numeric:
        return f"number of {plural(req.row_noun or 'row')}"
    if agg == "nunique" and req.measure is not None:
        return f"number of distinct {plural(req.measure.name)}"
    return (
        f"{AGG_LABEL[agg].lower()} {req.measure.name}" if req.measure else f"number of {plural(req.row_noun or 'row')}"
    )


def series(req: Request, keys: str, agg: str) -> str:
    """The grouped pandas expression for the request's measure and aggregation."""
    if agg == "count" and not req.numeric:
        return f"df.groupby({keys}).size()"
    assert req.measure is not None
    return f"df.groupby({keys})[{req.measure.name!r}].{agg}()"
