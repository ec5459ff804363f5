"""Artifacts stored before the host checked them against the schema (or damaged in storage) must not break
the pages, downloads or exports of their session and project for anyone: each shows a placeholder or a
message instead."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from analysis.models import Artifact, Step
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.tests.conftest import artifact_make

pytestmark = pytest.mark.django_db

BAD = {
    "figure_data_is_a_number": ("plotly", json.dumps({"data": 5, "layout": []}).encode()),
    "figure_trace_is_text": ("plotly", json.dumps({"data": ["x"], "layout": {"title": 5}}).encode()),
    "figure_nbins_is_a_list": (
        "plotly",
        json.dumps({"data": [{"type": "histogram", "x": [1], "nbinsx": [1]}]}).encode(),
    ),
    "figure_not_json": ("plotly", b"{not json"),
    "figure_deep": ("plotly", b'{"data": [' + b"[" * 5000 + b"]" * 5000 + b"]}"),
    "table_rows_a_number": ("table", json.dumps({"columns": ["a"], "rows": 5}).encode()),
    "table_not_json": ("table", b"\xff\xfe"),
    "image_not_png": ("image", b"<svg onload=alert(1)>"),
}


@pytest.fixture
def broken_session(project, alice):
    session = AnalysisSessionFactory(project=project, user=alice, title="Broken charts")
    run = RunFactory(session=session, user=alice, question="draw it", status="succeeded", answer="Done.")
    for ordinal, (kind, body) in enumerate(BAD.values(), 1):
        step = StepFactory(run=run, ordinal=ordinal, kind=Step.Kind.ARTIFACT, data={"kind": kind})
        artifact = artifact_make(project=session.project, session=session, run=run, step=step, kind=kind, body=body,
                                 title=f"bad {ordinal}", pinned=True)  # fmt: skip
        Step.objects.filter(pk=step.pk).update(data={"kind": kind, "artifact_id": artifact.pk})
    return session


@pytest.mark.parametrize("fmt", ["md", "pdf", "json", "ipynb"])
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_exports_of_a_session_and_its_project_work_with_bad_stored_artifacts(client, broken_session, who, fmt, request):
    client.force_login(request.getfixturevalue(who))

    session_export = client.get(reverse("exports:session-export", args=[broken_session.pk]), {"format": fmt})
    project_export = client.get(reverse("exports:project-export", args=[broken_session.project_id]), {"format": fmt})

    assert session_export.status_code == 200
    assert project_export.status_code == 200


def test_pages_and_downloads_of_bad_stored_artifacts_answer_without_a_server_error(client, broken_session, alice):
    client.force_login(alice)

    statuses = {}
    for artifact in Artifact.objects.filter(session=broken_session):
        statuses[(artifact.title, "detail")] = client.get(
            reverse("exports:artifact-detail", args=[artifact.pk])
        ).status_code
        for fmt in ("png", "svg", "json", "csv"):
            url = reverse("exports:artifact-download", args=[artifact.pk])
            statuses[(artifact.title, fmt)] = client.get(url, {"format": fmt}).status_code
    gallery = client.get(reverse("exports:project-gallery", args=[broken_session.project_id]))
    page = client.get(broken_session.get_absolute_url())

    assert not {key: code for key, code in statuses.items() if code >= 500}
    assert gallery.status_code == 200
    assert page.status_code == 200
