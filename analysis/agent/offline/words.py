"""Tokens and the analyst's vocabulary: every word it knows, by the role the word plays in a question."""

from __future__ import annotations

import re

UNIT_TOKENS = {"mm", "cm", "kg", "km", "usd", "eur", "pct", "sec", "ms", "g"}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that carry no measure, grouping, grain or filter: they may be dropped without changing the question.
STOPWORDS = _words(
    """
    a an the of is are was were be been am do doe did what whats which who how much show me give tell list
    display compute calculate find get see want would like could can you i we please let u our my it its this
    that these those there their them and or with on to at as from into in for over within about all every per
    by each across plus s t use using just only also now then again instead same but what's here one
    kind look make create produce report between data dataset set column field variable
    has have had having any some contain include includ they will should got ever still where
    csv tsv xlsx xls parquet json jsonl file sheet may might shall
    """
)
# "value" is not a stopword on purpose: "order value" must not shrink to "order" and be counted.

# Aggregations (longest phrases first at match time).
AGG_WORDS = {
    "mean": ("mean", "average", "avg", "typical"),
    "sum": ("sum", "total", "sum of", "overall"),
    "count": ("count", "number of", "how many", "frequency", "num of", "no of"),
    "min": ("min", "minimum"),
    "max": ("max", "maximum"),
    "median": ("median",),
    "nunique": ("distinct", "unique", "different"),
}
AGG_LABEL = {
    "mean": "Mean",
    "sum": "Total",
    "count": "Count",
    "min": "Minimum",
    "max": "Maximum",
    "median": "Median",
    "nunique": "Distinct",
}
# Ranking words name an order, not a single statistic: "highest revenue by region" ranks regions.
RANK_WORDS = {
    "top": (
        "descending",
        "top",
        "rank",
        "ranking",
        "ranked",
        "sort",
        "sorted",
        "highest",
        "largest",
        "biggest",
        "best",
        "most",
        "greatest",
        "heaviest",
        "longest",
        "first",
    ),
    "bottom": ("ascending", "bottom", "lowest", "smallest", "least", "worst", "fewest", "lightest", "shortest", "last"),
}
GRAIN_WORDS = {
    "day": ("day", "daily", "per day", "each day", "by day", "date by date", "day by day"),
    "week": ("week", "weekly", "per week"),
    "month": ("month", "monthly", "per month", "month by month"),
    "quarter": ("quarter", "quarterly"),
    "year": ("year", "yearly", "annual", "annually", "per year", "year by year"),
    "auto": ("over time", "trend", "time series", "timeline", "through time", "evolution", "evolve", "evolved"),
}
GROUP_MARKERS = ("by", "per", "for each", "each", "across", "grouped by", "broken down by", "split by", "for every",
                 "in each", "breakdown by", "break down by")  # fmt: skip
CHART_WORDS = {
    "line": ("line chart", "line plot", "line graph", "line"),
    "bar": ("bar chart", "bar plot", "bar graph", "bar", "column chart", "bars"),
    "scatter": ("scatter plot", "scatter chart", "scatter", "scatterplot"),
    "pie": ("pie chart", "pie", "donut", "doughnut"),
    "histogram": ("histogram", "hist"),
    "box": ("box plot", "boxplot", "box", "whisker"),
    "any": (
        "chart",
        "plot",
        "graph",
        "visualize",
        "visualise",
        "visualization",
        "visualisation",
        "draw",
        "picture",
        "diagram",
    ),  # fmt: skip
    "table": ("as a table", "table", "tabular", "no chart", "without chart"),
}
KEYWORDS = {
    "overview": ("overview", "how many row and column", "how many column", "number of column", "shape", "size of", "what column", "which column", "column name", "list column",
                 "what in", "look like", "head", "preview", "first row", "sample", "tell me about", "explore",
                 "structure", "schema", "what kind of data"),
    "describe": ("describe", "description", "summary statistic", "summary stat", "statistic", "stat", "summarize",
                 "summarise", "summary"),
    "missing": ("missing value", "null value", "nan value", "empty value", "blank value", "missing", "null", "nan", "empty value", "empty", "blank", "na value", "na", "incomplete", "gap"),
    "correlation": ("correlation matrix", "correlation", "correlate", "correlated", "corr", "relationship between",
                    "relationship", "related", "relate"),
    "distribution": ("distribution", "distributed", "spread", "histogram", "box plot", "boxplot"),
    "versus": ("vs", "versus", "against"),
    "growth": ("grew", "grow", "growth", "growing", "increase", "increased", "rose", "risen", "gain", "gained",
               "fastest", "improve", "improved"),
    "decline": ("decline", "declined", "declining", "decrease", "decreased", "drop", "dropped", "fell", "fallen",
                "shrink", "shrank", "shrunk"),
    "share": ("share", "percentage", "percent", "proportion", "fraction", "part of", "contribution", "contribute",
              "come from", "comes from", "split of"),
}  # fmt: skip
FOLLOW_UP_MARKERS = ("now", "same", "instead", "also", "again", "what about", "how about", "and", "only", "just",
                     "but", "same as", "as a", "that", "it", "this", "then")  # fmt: skip
# Phrases that only fill: "the values of revenue by region" asks for revenue by region.
FILLER = ("value of", "value for", "value in", "figure", "number", "result", "breakdown", "break down", "split",
          "compare", "comparison")  # fmt: skip
# "order value" is not the number of orders: these words after a row noun make an unknown compound.
COMPOUND_TAILS = ("value", "amount", "size", "worth", "price", "cost")
ROW_NOUNS = ("row", "record", "entry", "order", "transaction", "observation", "line item", "case", "item", "sale",
             "purchase", "event")  # fmt: skip
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "fifteen": 15, "twenty": 20}  # fmt: skip
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")  # fmt: skip
MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {m: i + 1 for i, m in enumerate(MONTHS)}


def singular(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith(("ses", "xes", "ches", "shes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, singular, camelCase split: "UnitPrices" → ["unit", "price"]."""
    text = re.sub(r"([a-z]{2,})([A-Z][a-z])", r"\1 \2", str(text))
    text = re.sub(r"[’']s\b", "", text)  # "region's" → "region"
    return [singular(t) for t in re.findall(r"[a-z0-9]+", text.lower())]


def phrase_tokens(phrase: str) -> list[str]:
    return tokens(phrase)
