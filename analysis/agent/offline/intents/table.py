"""The table of intents: for each kind of question, when it applies, the code it runs and how it words the answer.

Each row names its matcher, the features it uses, its code plan and its answer wording (the plan and the
answer of a row sit next to each other in ``describe.py``, ``aggregates.py`` or ``time.py``). The first
row that applies wins (``Intent.applies``: the matcher accepts and every feature of the question is used).
"""

from __future__ import annotations

from analysis.agent.offline.intents import aggregates as a
from analysis.agent.offline.intents import describe as d
from analysis.agent.offline.intents import time as t
from analysis.agent.offline.intents.base import Intent
from analysis.agent.offline.understand import Request

# --- the table ---------------------------------------------------------------------------------------------

_FILTERS = {"filter", "date"}
_CHARTS = {"chart", "chart:bar", "chart:line", "chart:table"}


def _has_text_group(req: Request) -> bool:
    return len(req.groups) == 1 and not req.groups[0].numeric


def _counts_rows(req: Request) -> bool:
    return not req.measures and (req.rows or req.agg == "count")


INTENTS: list[Intent] = [
    Intent(
        "overview",
        "a dataset overview (shape, columns, first rows)",
        frozenset({"kw:overview", "kw:describe", "chart:table", "rows", "n", "rank"}),
        lambda r: "overview" in r.keywords or (r.head and r.rows and not r.measures and not r.groups),
        d.overview_plan,
        d.overview_answer,
    ),
    Intent(
        "missing",
        "missing values per column",
        frozenset({"kw:missing", "agg", "measure", "measure2", "rows", "chart:table"} | _FILTERS),
        lambda r: "missing" in r.keywords,
        d.missing_plan,
        d.missing_answer,
    ),
    Intent(
        "describe",
        "summary statistics",
        frozenset({"kw:describe", "measure", "measure2", "chart:table"} | _FILTERS),
        lambda r: "describe" in r.keywords,
        d.describe_plan,
        d.describe_answer,
    ),
    Intent(
        "correlation",
        "the correlation of two columns or the correlation matrix",
        frozenset({"kw:correlation", "kw:versus", "measure", "measure2", "chart"} | _FILTERS),
        lambda r: "correlation" in r.keywords and len(r.numeric) in (0, 2) and len(r.numeric) == len(r.measures),
        d.corr_plan,
        d.corr_answer,
    ),
    Intent(
        "scatter",
        "a scatter plot of two numeric columns",
        frozenset({"chart:scatter", "chart", "kw:versus", "measure", "measure2", "group"} | _FILTERS),
        lambda r: (r.chart == "scatter" or "versus" in r.keywords) and len(r.numeric) == 2 == len(r.measures),
        d.scatter_plan,
        d.scatter_answer,
    ),
    Intent(
        "distribution",
        "the distribution of a column (histogram or box plot)",
        frozenset({"kw:distribution", "chart:histogram", "chart:box", "chart", "measure"} | _FILTERS),
        lambda r: ("distribution" in r.keywords or r.chart in ("histogram", "box")) and len(r.numeric) == 1,
        d.distribution_plan,
        d.distribution_answer,
    ),
    Intent(
        "growth",
        "which group grew (or declined) most between the first and last period",
        frozenset(
            {"kw:growth", "kw:decline", "rank", "group", "grain", "measure", "agg", "rows", "chart"}
            | _FILTERS
            | _CHARTS
        ),  # fmt: skip
        lambda r: (
            bool(r.keywords & {"growth", "decline"})
            and _has_text_group(r)
            and r.date is not None
            and len(r.measures) <= 1
        ),
        t.growth_plan,
        t.growth_answer,
    ),
    Intent(
        "average_count",
        "the average number of rows per period or per group",
        frozenset({"agg", "rows", "grain", "group"} | _FILTERS | _CHARTS),
        lambda r: (
            r.agg == "mean_count"
            and ((bool(r.grain) and r.date is not None and not r.groups) or (not r.grain and _has_text_group(r)))
        ),
        t.average_count_plan,
        t.average_count_answer,
    ),
    Intent(
        "time_series",
        "a measure per day/week/month/quarter/year (line chart)",
        frozenset({"grain", "measure", "agg", "rows", "group"} | _FILTERS | _CHARTS),
        lambda r: (
            bool(r.grain)
            and r.date is not None
            and len(r.measures) <= 1
            and (bool(r.numeric) or _counts_rows(r) or r.agg == "nunique")
            and all(not g.numeric for g in r.groups)
        ),
        t.time_plan,
        t.time_answer,
    ),
    Intent(
        "share",
        "each group's share of a total (pie chart)",
        frozenset({"kw:share", "group", "measure", "agg", "rows", "chart", "chart:pie", "chart:table"} | _FILTERS),
        lambda r: (
            ("share" in r.keywords or r.chart == "pie")
            and _has_text_group(r)
            and len(r.measures) <= 1
            and (bool(r.numeric) or _counts_rows(r))
            and r.agg in (None, "sum", "count")
        ),
        a.share_plan,
        a.share_answer,
    ),
    Intent(
        "top_groups",
        "the top/bottom N groups by a measure",
        frozenset({"rank", "n", "group", "measure", "agg", "rows"} | _FILTERS | _CHARTS),
        lambda r: bool(r.rank) and _has_text_group(r) and len(r.measures) <= 1 and (bool(r.numeric) or _counts_rows(r)),
        a.topn_groups_plan,
        a.topn_groups_answer,
    ),
    Intent(
        "top_rows",
        "the top/bottom N rows by a column",
        frozenset({"rank", "n", "measure", "rows", "chart:table"} | _FILTERS),
        lambda r: bool(r.rank) and len(r.numeric) == 1 == len(r.measures) and (r.n is not None or r.rows),
        a.topn_rows_plan,
        a.topn_rows_answer,
    ),
    Intent(
        "group_aggregate",
        "a total/mean/median/min/max/count of a measure per group (bar chart)",
        frozenset({"group", "group2", "measure", "agg", "rows", "kw:versus"} | _FILTERS | _CHARTS),
        lambda r: (
            len(r.groups) in (1, 2)
            and len(r.measures) <= 1
            and (bool(r.numeric) or _counts_rows(r) or (r.agg in ("count", "nunique") and bool(r.measures)))
        ),
        a.group_plan,
        a.group_answer,
    ),
    Intent(
        "count_rows",
        "the number of rows (optionally filtered)",
        frozenset({"rows", "agg"} | _FILTERS),
        lambda r: _counts_rows(r) and r.agg in (None, "count"),
        a.count_plan,
        a.count_answer,
    ),
    Intent(
        "single_aggregate",
        "one total/mean/median/min/max/count of a column",
        frozenset({"agg", "rank", "measure", "rows"} | _FILTERS),
        lambda r: (
            len(r.measures) == 1
            and (bool(r.agg) or bool(r.rank))
            and (bool(r.numeric) or r.agg in ("nunique", "count"))
            and r.n is None
        ),
        a.single_plan,
        a.single_answer,
    ),
    Intent(
        "value_counts",
        "the number of rows per value of a column (bar chart)",
        frozenset({"measure", "chart", "chart:bar", "rows"} | _FILTERS),
        lambda r: len(r.measures) == 1 and not r.measures[0].numeric and r.chart in ("bar", "any"),
        a.value_counts_plan,
        a.value_counts_answer,
    ),
]


def intent_for(req: Request) -> Intent | None:
    return next((intent for intent in INTENTS if intent.applies(req)), None)
