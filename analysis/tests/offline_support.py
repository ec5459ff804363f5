"""Helpers for the offline analyst's tests: ask through the real worker and sandbox, check the answer's numbers.

``numbers_unverified`` is the analyst's own contract with answer claims (issue 12): every number the answer
text states must be a value the run computed (its ``final_result`` or printed output), at the rounding the
text shows. Dates (2024-01, 2024-01-15, 2024Q1) are labels, not numbers; numbers the question itself states
(a year, "top 3") are not claims.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
from django.core.files.uploadedfile import SimpleUploadedFile

from analysis.models import Run
from analysis.services import run_claim, run_start
from projects.services import dataset_create

SAMPLE_SALES = Path(__file__).resolve().parents[2] / "projects" / "sample_data" / "sales.csv"
NUMBER = re.compile(r"(?<![\w.])[+-]?\d[\d,]*(?:\.\d+)?%?(?![\w-])")
DATE_LIKE = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?\b|\b\d{4}Q[1-4]\b")


def ask(session, user, question: str, worker) -> Run:
    run_start(session=session, user=user, question=question)
    worker.process(run_claim(worker_id=worker.worker_id))
    return Run.objects.filter(session=session).order_by("-pk").first()


def upload(project, user, name: str, content: bytes):
    """A dataset through the real upload service, so its profile is the one users get."""
    return dataset_create(project=project, uploaded_file=SimpleUploadedFile(name, content), user=user)


def upload_frame(project, user, name: str, frame: pd.DataFrame):
    return upload(project, user, name, frame.to_csv(index=False).encode())


def final_results(run: Run) -> list:
    return [
        s.data.get("final_result") for s in run.steps.filter(kind="output") if s.data.get("final_result") is not None
    ]


def _flatten(value) -> list[float]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (_flatten(k) + _flatten(v))]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [float(value)] if math.isfinite(value) else []
    try:
        return [float(str(value).replace(",", ""))]
    except ValueError:
        return []


def _matches(text: str, value: float) -> bool:
    body = text.rstrip("%").replace(",", "").lstrip("+")
    decimals = len(body.split(".")[1]) if "." in body else 0
    shown = float(body)
    candidates = [value, value * 100] if text.endswith("%") else [value]
    return any(round(v, decimals) == shown or round(abs(v), decimals) == abs(shown) == 0 for v in candidates)


def numbers_unverified(run: Run) -> list[str]:
    """The numbers in the answer that no computed value explains (empty means fully verified): the platform's
    claims (analysis/claims.py, saved on the answer step) and, stricter, the exact rounding check below."""
    answer_step = run.steps.filter(kind="answer").first()
    claimed = (answer_step.data or {}).get("claims") or [] if answer_step else []
    return [c["text"] for c in claimed if not c["verified"]] + _numbers_unexplained(run)


def _numbers_unexplained(run: Run) -> list[str]:
    values = [v for r in final_results(run) for v in _flatten(r)]
    stdout = " ".join(s.content for s in run.steps.filter(kind="output"))
    values += [float(n.replace(",", "")) for n in re.findall(r"\d+(?:\.\d+)?", stdout)]
    in_question = set(NUMBER.findall(run.question))
    text = DATE_LIKE.sub(" ", run.answer)
    return [n for n in NUMBER.findall(text) if n not in in_question and not any(_matches(n, v) for v in values)]


def money(x: float) -> str:
    return f"{x:,.2f}"
