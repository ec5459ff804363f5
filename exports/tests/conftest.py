"""Fixtures for exports: a session with a realistic run (code, outputs, a corrected error, charts, a table)
and hostile text everywhere the model, the user or a dataset can write."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from django.core.files.base import ContentFile

from analysis.models import Artifact, Run, Step
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory

HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('xss')</script>"


def png_bytes() -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([1, 2, 3], [2, 1, 3])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plotly_json(title: str = "Sales by region") -> bytes:
    figure = {
        "data": [{"type": "bar", "x": ["North", "South", HOSTILE], "y": [10, 20, 5], "name": "sales"}],
        "layout": {"title": {"text": title}},
    }
    return json.dumps(figure).encode()


def table_json(rows: list[list[Any]] | None = None, columns: list[str] | None = None) -> bytes:
    columns = columns or ["region", "sales", "date", HOSTILE]
    rows = (
        rows
        if rows is not None
        else [["North", 1234567.891, "2024-01-05T00:00:00.000", HOSTILE], ["South", None, None, 3]]
    )
    body = {
        "columns": columns,
        "rows": rows,
        "shape": [len(rows), len(columns)],
        "dtypes": {"region": "object", "sales": "float64", "date": "datetime64[ns]", HOSTILE: "object"},
        "truncated": False,
    }
    return json.dumps(body).encode()


def artifact_make(*, project, kind: str, body: bytes, title: str = "", session=None, run=None, step=None,
                  mime: str = "", meta: dict | None = None, pinned: bool = False, name: str = "") -> Artifact:  # fmt: skip
    mimes = {"plotly": "application/vnd.plotly.v1+json", "image": "image/png", "table": "application/json"}
    artifact = Artifact(
        project=project, session=session, run=run, step=step, kind=kind, title=title, mime=mime or mimes.get(kind, "text/plain"),
        size=len(body), meta=meta or {}, pinned=pinned,
    )  # fmt: skip
    artifact.file.save(name or f"{kind}.bin", ContentFile(body), save=False)
    artifact.save()
    return artifact


def _artifact_step(run: Run, ordinal: int, *, kind: str, body: bytes, title: str, **kwargs) -> Artifact:
    step = StepFactory(run=run, ordinal=ordinal, kind=Step.Kind.ARTIFACT, content=title, data={"kind": kind})
    artifact = artifact_make(project=run.session.project, session=run.session, run=run, step=step, kind=kind,
                             body=body, title=title, **kwargs)  # fmt: skip
    Step.objects.filter(pk=step.pk).update(data={"kind": kind, "artifact_id": artifact.pk})
    return artifact


@pytest.fixture
def rich_session(project):
    """One question answered after a failed attempt; a chart, an image, a table; hostile strings everywhere."""
    session = AnalysisSessionFactory(project=project, title=f"Quarterly review {HOSTILE}")
    run = RunFactory(
        session=session, question=f"Which region sells most? {HOSTILE}", answer=f"**North** wins. {SCRIPT}"
    )
    StepFactory(run=run, ordinal=1, kind=Step.Kind.THOUGHT, content=f"I will load the data. {HOSTILE}")
    StepFactory(
        run=run, ordinal=2, kind=Step.Kind.CODE, content="totals = {'North': 10, 'South': 20}\nprint(totals['Nort'])"
    )
    StepFactory(
        run=run,
        ordinal=3,
        kind=Step.Kind.ERROR,
        content="KeyError: 'Nort'",
        data={"traceback": "Traceback ...\nKeyError: 'Nort'"},
    )
    StepFactory(run=run, ordinal=4, kind=Step.Kind.CODE,
                content="totals = {'North': 10, 'South': 20}\nfinal_result = max(totals, key=totals.get)\nprint(final_result)")  # fmt: skip
    StepFactory(
        run=run, ordinal=5, kind=Step.Kind.OUTPUT, content="North\n", data={"final_result": "North", "stderr": ""}
    )
    _artifact_step(run, 6, kind="plotly", body=plotly_json(f"Sales {HOSTILE}"), title=f"Sales {HOSTILE}")
    _artifact_step(run, 7, kind="image", body=png_bytes(), title="Histogram")
    _artifact_step(run, 8, kind="table", body=table_json(), title="Totals", meta={"shape": [2, 4], "columns": []})
    StepFactory(run=run, ordinal=9, kind=Step.Kind.ANSWER, content=run.answer)
    return session


@pytest.fixture
def png() -> bytes:
    return png_bytes()


@pytest.fixture
def png_b64() -> str:
    return base64.b64encode(png_bytes()).decode()
