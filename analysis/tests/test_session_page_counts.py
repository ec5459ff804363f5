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
from django.urls import reverse

from analysis.models import Step
from analysis.sandbox.capture import table_artifact
from analysis.services import artifact_create_from_sandbox
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.tests.conftest import artifact_make, png_bytes, table_json

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

    with django_assert_num_queries(12):  # 11 for the page, 1 for the projects sidebar
        response = client.get(reverse("analysis:session-detail", args=[session.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert counted == []  # 12 artifacts on the page, not one file opened
    assert html.count("data-figure-src=") == 3 and html.count('<th scope="row">North</th>') == 3
    assert len(re.findall(r'hx-get="/artifacts/\d+/" hx-trigger="load"', html)) == 3  # legacy tables, over htmx


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
