"""docs/offline-analyst.md is the truth: every example it lists is asked for real and behaves as it says.

Each example of the intents table is answered by that intent (read from the same dataset profile a run
uses), through the real worker and sandbox, with every number of its answer found in what the run computed
(issue 12: the offline analyst's answers are fully verified by construction). Every follow-up equals the
answer to the question it stands for; every refusal says what the page says, and runs no code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.agent.offline.conversation import request_resolve
from analysis.agent.offline.datasets import DatasetInfo
from analysis.agent.runner import dataset_prompt_info
from analysis.models import Run
from analysis.tests.factories import AnalysisSessionFactory
from analysis.tests.offline_support import SAMPLE_SALES, ask, numbers_unverified, upload, upload_frame

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline_only")]

DOC = (Path(__file__).resolve().parents[2] / "docs" / "offline-analyst.md").read_text()


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _rows(title: str) -> list[list[str]]:
    lines = [line for line in _section(title).splitlines() if line.startswith("| ") and not line.startswith("|--")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def _quoted(cell: str) -> list[str]:
    return re.findall(r'"([^"]+)"', cell)


INTENT_EXAMPLES = [(row[0].strip("`"), q) for row in _rows("What it understands") for q in _quoted(row[1])]
INTENTS_BY_NAME = {name for name, _ in INTENT_EXAMPLES}
FOLLOW_UPS = [tuple(_quoted(f"{r[0]} {r[1]} {r[2]}")) for r in _rows("Follow-ups")]
REFUSALS = {_quoted(row[1])[0]: row[2] for row in _rows("Refusals")}


def test_the_docs_list_every_intent_of_the_table_with_examples():
    from analysis.agent.offline.intents import INTENTS

    documented = list(dict.fromkeys(name for name, _ in INTENT_EXAMPLES))
    assert documented == [intent.name for intent in INTENTS]  # in the table's order: the first that applies wins
    assert len(INTENT_EXAMPLES) >= 50 and len(FOLLOW_UPS) >= 5 and len(REFUSALS) >= 10


@pytest.mark.parametrize(("intent", "question"), INTENT_EXAMPLES)
def test_each_documented_example_is_answered_by_its_intent_with_verified_numbers(
    session, demo_sales, alice, shared_worker, intent, question
):
    info = DatasetInfo.from_prompt_info(dataset_prompt_info(demo_sales))

    resolved = request_resolve(question, [info])
    run = ask(session, alice, question, shared_worker)

    assert resolved.intent is not None and resolved.intent.name == intent, resolved.refusal
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert not run.answer.startswith(("I can't", "I could not", "That request")), run.answer
    assert numbers_unverified(run) == [], run.answer
    assert [s.data.get("refusals") for s in run.steps.filter(kind="code") if s.data.get("refusals")] == []


@pytest.mark.parametrize(("follow_up", "after", "equivalent"), FOLLOW_UPS)
def test_each_documented_follow_up_equals_the_question_it_stands_for(
    project, session, demo_sales, alice, shared_worker, follow_up, after, equivalent
):
    ask(session, alice, after, shared_worker)
    run = ask(session, alice, follow_up, shared_worker)
    direct = ask(AnalysisSessionFactory(project=project, user=alice), alice, equivalent, shared_worker)

    assert run.answer == f"Building on “{after}”. {direct.answer}"
    assert numbers_unverified(run) == []


def _expect(answer: str, documented: str) -> None:
    """The documented text, where "…" stands for any text."""
    position = 0
    for piece in (p.strip() for p in documented.split("…")):
        found = answer.find(piece, position)
        assert found >= 0, f"{piece!r} not in {answer!r}"
        position = found + len(piece)


def _two_sales(project, alice):
    upload(project, alice, "sales.csv", SAMPLE_SALES.read_bytes())
    upload(project, alice, "sales_2023.csv", SAMPLE_SALES.read_bytes().replace(b"2024-", b"2023-"))


REFUSAL_SETUP = {
    "monthly score": lambda p, u: upload_frame(p, u, "scores.csv", pd.DataFrame({"team": ["a"], "score": [1]})),
    "monthly n": lambda p, u: upload_frame(
        p, u, "two_dates.csv", pd.DataFrame({"ordered": ["2024-01-02"], "shipped": ["2024-01-05"], "n": [1]})
    ),
    "average revenue by region": _two_sales,
    "what is the total revenue?": lambda p, u: None,
    "n by month of date": lambda p, u: upload_frame(
        p, u, "odd.csv", pd.DataFrame({"date": ["soon", "later", "2024-01-01"], "n": [1, 2, 3]})
    ),
}


@pytest.mark.parametrize(("question", "documented"), REFUSALS.items())
def test_each_documented_refusal_gives_its_reason(project, session, alice, shared_worker, question, documented):
    REFUSAL_SETUP.get(question, lambda p, u: upload(p, u, "sales.csv", SAMPLE_SALES.read_bytes()))(project, alice)

    run = ask(session, alice, question, shared_worker)

    assert run.status == Run.Status.SUCCEEDED, run.error
    _expect(run.answer, documented)
    runs_code = documented.startswith("I could not compute")
    assert run.steps.filter(kind="code").exists() == runs_code


def test_the_readme_lists_only_documented_examples():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("What the offline analyst understands", 1)[1].split("\n\n", 2)[1]
    documented = {q for _, q in INTENT_EXAMPLES}

    examples = [q for row in section.splitlines()[2:] for q in _quoted(row.split(" | ")[0])]

    assert len(examples) == len(INTENTS_BY_NAME)
    assert set(examples) <= documented
    assert {name for name, q in INTENT_EXAMPLES if q in examples} == set(INTENTS_BY_NAME)
