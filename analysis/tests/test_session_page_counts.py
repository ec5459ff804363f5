"""The session page's cost is pinned: an exact number of queries and no artifact file read, whatever it shows.

Storage opens are counted by a real storage subclass (every ``open()`` through the storage API ends in
``_open``), so a chart or table read during the render, one S3 GET each in production, fails the pin.
"""

from __future__ import annotations

import base64
import io
import json
import re

import pandas as pd
import plotly.express as px
import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analysis.models import Step
from analysis.sandbox.capture import table_artifact
from analysis.services import artifact_create_from_sandbox
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.tests.conftest import artifact_make, png_bytes, table_json

TABLE_25_ROWS = pd.DataFrame(
    {"region": [f"Region {i}" for i in range(25)], "revenue": [1000.5 * i for i in range(25)],
     "day": pd.date_range("2024-01-01", periods=25), "orders": range(25)}
).set_index("region")  # fmt: skip

pytestmark = pytest.mark.django_db


class CountingStorage(FileSystemStorage):
    opened: list[str] = []

    def _open(self, name, mode="rb"):
        CountingStorage.opened.append(name)
        return super()._open(name, mode)


@pytest.fixture
def counted(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": f"{__name__}.CountingStorage",
            "OPTIONS": {"location": str(tmp_path / "counted-media")},
        },
    }
    CountingStorage.opened = []
    return CountingStorage.opened


@pytest.fixture
def session(project, alice):
    return AnalysisSessionFactory(project=project, user=alice, title="Revenue")


def _question_with_artifacts(session) -> None:
    """One answered question with a chart, a table (and its stored preview), an image and a legacy table."""
    run = RunFactory(session=session, answer="North leads.")
    frame = pd.DataFrame({"region": ["North", "South"], "revenue": [10.5, 7.25]}).set_index("region")
    payloads = [
        {"kind": "plotly", "json": px.bar(frame.reset_index(), x="region", y="revenue").to_json()},
        table_artifact(frame),
        {"kind": "image", "mime": "image/png", "name": "hist.png", "data": base64.b64encode(png_bytes()).decode()},
    ]
    for ordinal, payload in enumerate(payloads, start=1):
        step = StepFactory(run=run, ordinal=ordinal, kind=Step.Kind.ARTIFACT, content=payload["kind"])
        artifact = artifact_create_from_sandbox(run=run, step=step, payload=payload)
        Step.objects.filter(pk=step.pk).update(data={"kind": payload["kind"], "artifact_id": artifact.pk})
    legacy = StepFactory(run=run, ordinal=4, kind=Step.Kind.ARTIFACT, content="table")
    artifact_make(project=session.project, session=session, run=run, step=legacy, kind="table", body=table_json())
    StepFactory(run=run, ordinal=5, kind=Step.Kind.ANSWER, content=run.answer)


def test_the_session_page_is_pinned_to_its_queries_and_reads_no_artifact_file(
    client, alice, session, counted, django_assert_num_queries
):
    _question_with_artifacts(session)
    client.force_login(alice)
    client.get(reverse("analysis:session-detail", args=[session.pk]))  # warm the login session
    _question_with_artifacts(session)
    _question_with_artifacts(session)
    counted.clear()

    with django_assert_num_queries(10):  # 9 for the page, 1 for the projects sidebar
        response = client.get(reverse("analysis:session-detail", args=[session.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert counted == []  # 12 artifacts on the page, not one file opened
    assert html.count("data-figure-src=") == 3
    # All 6 tables, with a stored preview or not, load their first page when scrolled into view; none is inline.
    assert len(re.findall(r'hx-get="/artifacts/\d+/" hx-trigger="intersect once, load-table"', html)) == 6
    assert '<th scope="row">North</th>' not in html


def test_the_artifact_detail_page_reads_its_file_exactly_once(client, alice, session, counted):
    _question_with_artifacts(session)
    chart = session.artifacts.get(kind="plotly")
    client.force_login(alice)
    counted.clear()

    response = client.get(reverse("exports:artifact-detail", args=[chart.pk]))

    assert response.status_code == 200
    assert counted == [chart.file.name]
    assert f'<script id="artifact-{chart.pk}-figure" type="application/json">' in response.content.decode()


def test_a_table_stores_its_first_page_as_a_preview_of_its_file(session):
    _question_with_artifacts(session)
    table = session.artifacts.filter(kind="table").exclude(meta__preview=None).get()

    with table.file.open("rb") as fh:
        body = json.load(io.TextIOWrapper(fh))
    assert table.meta["preview"]["rows"] == body["rows"][:25]
    assert table.meta["preview"]["index_columns"] == 1


def _questions_with_a_table(session, count: int) -> None:
    """Answered questions as a run stores them: thought, code, output, a 25-row table (with its preview), answer."""
    for n in range(count):
        run = RunFactory(session=session, question=f"Revenue by region, take {n}?", answer="North leads.")
        StepFactory(run=run, ordinal=1, kind=Step.Kind.THOUGHT, content="I will group revenue by region.")
        StepFactory(run=run, ordinal=2, kind=Step.Kind.CODE, content="df.groupby('region')['revenue'].sum()")
        StepFactory(run=run, ordinal=3, kind=Step.Kind.OUTPUT, content="North 24000\nSouth 16000\n")
        step = StepFactory(run=run, ordinal=4, kind=Step.Kind.ARTIFACT, content="table")
        artifact = artifact_create_from_sandbox(run=run, step=step, payload=table_artifact(TABLE_25_ROWS))
        Step.objects.filter(pk=step.pk).update(data={"kind": "table", "artifact_id": artifact.pk})
        StepFactory(run=run, ordinal=5, kind=Step.Kind.ANSWER, content="**North** leads with 24,000.")


def _session_page(client, session):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("analysis:session-detail", args=[session.pk]))
    assert response.status_code == 200
    return response.content, len(queries)


def test_a_session_of_50_runs_with_25_row_tables_stays_under_300_kb_in_constant_queries(client, alice, session):
    _questions_with_a_table(session, 5)
    client.force_login(alice)
    client.get(reverse("analysis:session-detail", args=[session.pk]))  # warm the login session
    _, queries_at_5 = _session_page(client, session)
    _questions_with_a_table(session, 45)

    html, queries_at_50 = _session_page(client, session)

    assert len(html) < 300 * 1024
    assert queries_at_50 == queries_at_5
    assert html.count(b'style="--rows: 25"') == 50  # each table a placeholder as tall as its first page
    assert b"25 rows \xc3\x97 3 columns" in html and b"Region 7" not in html


def test_a_lazy_table_that_its_preview_holds_whole_loads_without_opening_its_file(client, alice, session, counted):
    _questions_with_a_table(session, 1)
    table = session.artifacts.get(kind="table")
    client.force_login(alice)
    counted.clear()

    response = client.get(reverse("exports:artifact-detail", args=[table.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert counted == []
    assert b"Region 24" in response.content and b"Rows 1\xe2\x80\x9325 of 25" in response.content


def test_a_lazy_table_longer_than_its_preview_reads_its_file_once_per_page(client, alice, session, counted):
    run = RunFactory(session=session)
    step = StepFactory(run=run, ordinal=1, kind=Step.Kind.ARTIFACT, content="table")
    frame = pd.DataFrame({"n": range(40)})
    table = artifact_create_from_sandbox(run=run, step=step, payload=table_artifact(frame))
    client.force_login(alice)
    counted.clear()

    response = client.get(
        reverse("exports:artifact-detail", args=[table.pk]), {"page": 2}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert counted == [table.file.name]
    assert b"Rows 26\xe2\x80\x9340 of 40" in response.content
