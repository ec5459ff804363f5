"""From the messages to one request: the dataset it is about, the earlier question it builds on, or why not.

``request_resolve`` returns a ``Resolved``: the request and its intent, or a refusal (``refusal`` text set).
Follow-ups ("now by product", "same as a chart", "only for 2024") are merged into the previous question of the
session, which the system prompt lists under "Conversation so far" (the same text an LLM reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic_ai.messages import ModelMessage, ModelRequest

from analysis.agent.offline import words as w
from analysis.agent.offline.datasets import DatasetInfo
from analysis.agent.offline.intents import INTENTS, Intent, features, intent_for
from analysis.agent.offline.refusals import refusal_for
from analysis.agent.offline.understand import Request, columns_named, request_read


@dataclass
class Resolved:
    request: Request | None = None
    intent: Intent | None = None
    refusal: str = ""
    dataset_why: str = ""  # said in the answer when the project has several datasets
    builds_on: str = ""  # the earlier question a follow-up refines


# --- the conversation --------------------------------------------------------------------------------------


def question_of(messages: list[ModelMessage]) -> str:
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if part.part_kind == "user-prompt" and isinstance(part.content, str):
                    return part.content
    return ""


def earlier_questions(messages: list[ModelMessage]) -> list[str]:
    """The session's earlier questions, oldest first, from the "Conversation so far" part of the instructions."""
    text = next((m.instructions for m in messages if isinstance(m, ModelRequest) and m.instructions), "") or ""
    _, _, history = text.partition("Conversation so far in this session")
    return [q.strip() for q in re.findall(r"^Q: (.*?)\nA: ", history, flags=re.MULTILINE | re.DOTALL)]


# --- datasets ------------------------------------------------------------------------------------------------


def _name_score(question: str, toks: str, ds: DatasetInfo) -> int:
    """How specifically the question names ``ds``: its file name, its stem ("penguins"), a sheet's name."""
    score = len(ds.name) * 10 if ds.name.lower() in question.lower() else 0
    said = [len(n) for n in ds.names if f" {' '.join(n)} " in toks]
    return score + max(said, default=0)


def _named_datasets(question: str, datasets: list[DatasetInfo]) -> list[DatasetInfo]:
    """The datasets the question names most specifically ("sales_eu.csv" over "sales.csv"; a sheet's name
    over its workbook's); several when it names a workbook but none of its sheets."""
    toks = " " + " ".join(w.tokens(question)) + " "
    scores = {ds.label: _name_score(question, toks, ds) for ds in datasets}
    best = max(scores.values(), default=0)
    return [ds for ds in datasets if best and scores[ds.label] == best]


def dataset_choose(
    question: str, datasets: list[DatasetInfo], previous: Request | None
) -> tuple[DatasetInfo | None, str]:
    """The dataset to use and why (empty when there is only one); (None, reason) when it is ambiguous."""
    if len(datasets) == 1:
        return datasets[0], ""
    named = _named_datasets(question, datasets)
    if len(named) == 1:
        return named[0], f"{named[0].label}, named in the question"
    candidates = named or datasets
    scores = {ds.label: len({c.name for c in columns_named(question, ds)}) for ds in candidates}
    best = max(scores.values())
    if best == 0 and previous is not None and previous.dataset in candidates:
        return previous.dataset, f"{previous.dataset.label}, as in the previous question"
    leaders = [ds for ds in candidates if scores[ds.label] == best]
    if best == 0 and any(g in w.tokens(question) for g in _GRAIN_TOKENS):
        leaders = [ds for ds in candidates if ds.date_columns()]
    if len(leaders) == 1:
        cols = ", ".join(sorted({c.name for c in columns_named(question, leaders[0])})) or "a date column"
        return leaders[0], f"{leaders[0].label}, the only {_table_word(candidates)} with {cols}"
    names = ", ".join(ds.label for ds in (leaders or candidates))
    return None, (
        f"I can't tell which dataset you mean: {names} all fit the question. "
        "Name one, for example “… in " + _example_name((leaders or candidates)[0]) + "”."
    )


def _table_word(candidates: list[DatasetInfo]) -> str:
    return "sheet" if all(ds.sheet for ds in candidates) else "dataset"


def _example_name(ds: DatasetInfo) -> str:
    return f"the {ds.sheet} sheet" if ds.sheet else ds.name


_GRAIN_TOKENS = {t for phrases in w.GRAIN_WORDS.values() for p in phrases for t in w.tokens(p)}


# --- follow-ups ------------------------------------------------------------------------------------------------


def _standalone(req: Request) -> bool:
    """A question stands alone when it has its own subject (a measure, a count, an analysis word, a ranking,
    or a phrase it does not understand) and does not open with a follow-up word ("now", "same", "only" …)."""
    has_subject = bool(req.measures or req.rows or req.keywords or req.agg or req.rank or req.unknown)
    return has_subject and not req.follow_up


def merge(previous: Request, new: Request) -> Request:
    """``new`` refines ``previous``: what it names replaces, what it leaves out is kept."""
    regrouped = bool(new.groups or new.grain)
    replaced = {(f.kind, f.column.name if f.column else None) for f in new.filters}
    kept = [f for f in previous.filters if (f.kind, f.column.name if f.column else None) not in replaced]
    return previous.with_changes(
        text=new.text,
        measures=new.measures or previous.measures,
        rows=new.rows if new.measures else (new.rows or previous.rows),
        agg=new.agg or previous.agg,
        groups=new.groups if regrouped else previous.groups,
        grain=new.grain if regrouped else previous.grain,
        date=new.date or previous.date,
        filters=kept + new.filters,
        chart=new.chart or previous.chart,
        rank=new.rank or previous.rank,
        n=new.n or previous.n,
        which=new.which or previous.which,
        row_noun=new.row_noun or previous.row_noun,
        keywords=previous.keywords | new.keywords,
        unknown=new.unknown,
        follow_up=True,
        recognised=previous.recognised + new.recognised,
    )


MONEY_WORDS = ("revenue", "sale", "amount", "total", "income", "turnover", "gmv", "value", "spend", "profit")


def _measure_default(req: Request) -> None:
    """ "Which region grew fastest" names no measure: use the money column when there is exactly one (the
    answer says which), else count rows."""
    if req.measures or req.rows or not req.keywords & {"growth", "decline"}:
        return
    money = [c for c in req.dataset.numeric_columns() if set(c.tokens) & set(MONEY_WORDS)]
    if len(money) == 1:
        req.measures = money
    else:
        req.rows = True


def _date_resolve(req: Request) -> None:
    """A grain or a year filter without a named date column uses the dataset's only date column."""
    wants = req.grain or any(f.kind in ("year", "month") for f in req.filters) or req.keywords & {"growth", "decline"}
    if not wants or req.date is not None:
        return
    if len(req.dataset.date_columns()) == 1:
        req.date = req.dataset.date_columns()[0]
        return
    named = [c for c in req.measures + req.groups if c.date_named]
    if not req.dataset.date_columns() and len(named) == 1:
        # Named like a date but its values did not look like dates: try, and let the code say why not.
        req.date = named[0]
        req.measures = [c for c in req.measures if c is not named[0]]
        req.groups = [c for c in req.groups if c is not named[0]]


def request_resolve(question: str, datasets: list[DatasetInfo], previous: Request | None = None) -> Resolved:
    if not datasets:
        return Resolved(refusal="This project has no datasets yet: upload one, then ask again.")
    dataset, why = dataset_choose(question, datasets, previous)
    if dataset is None:
        return Resolved(refusal=why)
    req = request_read(question, dataset)
    builds_on = ""
    if previous is not None and not _standalone(req) and previous.dataset == dataset:
        builds_on, req = previous.text, merge(previous, req)
    _date_resolve(req)
    _measure_default(req)
    refusal = refusal_for(req, builds_on=builds_on)
    if refusal:
        return Resolved(request=req, refusal=refusal)
    return Resolved(req, intent_for(req), dataset_why=why, builds_on=builds_on)


def conversation_resolve(messages: list[ModelMessage], datasets: list[DatasetInfo]) -> Resolved:
    """Replay the session's earlier questions (each may refine the one before), then read the current one."""
    previous: Request | None = None
    for earlier in earlier_questions(messages):
        resolved = request_resolve(earlier, datasets, previous)
        if resolved.intent is not None:
            previous = resolved.request
    return request_resolve(question_of(messages), datasets, previous)


__all__ = ["INTENTS", "Resolved", "conversation_resolve", "features", "request_resolve"]
