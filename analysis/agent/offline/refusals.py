"""Why a question is refused: each check names the exact reason, so the user can rephrase (docs list them all)."""

from __future__ import annotations

from analysis.agent.offline.intents import INTENTS, features, intent_for
from analysis.agent.offline.understand import Request

BEYOND = (
    "That request is beyond the built-in offline analyst. I can give a dataset overview, summary statistics and "
    "missing values; totals, means, medians, minimums, maximums and counts, overall or per group; top/bottom N; "
    "values per day, week, month, quarter or year; growth between the first and last period; distributions, "
    "scatter plots and correlations. For anything else, ask an administrator to configure a model "
    "(OPENROUTER_API_KEY, or LLM_BASE_URL for a local OpenAI-compatible server)."
)
FEATURE_WORDS = {
    "group": "a grouping",
    "group2": "a second grouping",
    "grain": "a time grain",
    "filter": "a filter",
    "measure2": "a second column",
    "rank": "a ranking",
    "n": "a number",
    "agg": "an aggregation",
    "agg2": "a second aggregation",
    "date": "a date column",
    "rows": "a count of rows",
}


def _feature_words(feature: str) -> str:
    kind, _, value = feature.partition(":")
    if kind == "chart":
        return f"a {value} chart" if value else "a chart"
    if kind == "kw":
        return f"a {value} analysis"
    return FEATURE_WORDS.get(feature, feature)


def _quoted(items: list[str]) -> str:
    quoted = [f"“{i}”" for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _unknown(req: Request) -> str:
    """Name the words back; a question of mostly unknown words and no analysis word is simply beyond us."""
    unknown_words = sum(len(p.split()) for p in req.unknown)
    if req.recognised == 0 and unknown_words > len(req.measures) + len(req.groups):
        return BEYOND
    return (
        f"I can't answer that: I don't know {_quoted(req.unknown)}. There is no such column in "
        f"{req.dataset.label}; the columns are: {req.dataset.column_list()}."
    )


def _dates(req: Request) -> str:
    wants = req.grain or any(f.kind in ("year", "month") for f in req.filters) or req.keywords & {"growth", "decline"}
    if not wants or req.date is not None:
        return ""
    dates = req.dataset.date_columns()
    if not dates:
        return (
            f"I can't answer that: it needs dates, and {req.dataset.label} has no date column. "
            f"The columns are: {req.dataset.column_list()}."
        )
    names = ", ".join(d.name for d in dates)
    return (
        f"I can't answer that: {req.dataset.label} has several date columns ({names}). Name the one to use, "
        f"for example “… by month of {dates[0].name}”."
    )


def _not_numeric(req: Request) -> str:
    text = [m for m in req.measures if not m.numeric]
    if not text or req.agg not in ("mean", "sum", "median", "min", "max"):
        return ""
    numeric = ", ".join(c.name for c in req.dataset.numeric_columns()) or "none"
    return (
        f"I can't answer that: {text[0].name} is not numeric, so it has no {req.agg}. "
        f"The numeric columns are: {numeric}."
    )


def _combination(req: Request) -> str:
    """No intent uses every part of the question: name what the closest one would have to leave out."""
    have = features(req)
    near = sorted((i for i in INTENTS if i.match(req)), key=lambda i: len(have - i.uses))
    for intent in near[:1]:
        left = sorted(_feature_words(f) for f in have - intent.uses)
        if left:
            return (
                f"I can't answer that as asked: I can compute {intent.summary}, but not with "
                f"{' and '.join(left)} as well. Ask without it, or ask a configured model."
            )
    return (
        "I can't answer that: I recognise parts of the question but no analysis of mine fits them together. "
        + BEYOND.split(". ", 1)[1]
    )


def refusal_for(req: Request, *, builds_on: str = "") -> str:
    """The reason to refuse ``req``, or "" when an intent answers it fully."""
    reason = ""
    if req.unknown:
        reason = _unknown(req)
    elif req.follow_up and not builds_on and not intent_for(req) and not req.measures:
        reason = "I can't answer that: it seems to refine an earlier question, but there is none to build on here."
    else:
        reason = _dates(req) or _not_numeric(req) or ("" if intent_for(req) else _combination(req))
    if reason and builds_on and reason != BEYOND:
        reason += f" (I read it as a follow-up to “{builds_on}”.)"
    return reason
