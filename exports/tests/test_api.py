"""Artifacts API: detail and lists, with download links; membership-checked."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.tests.factories import AnalysisSessionFactory
from exports.tests.conftest import HOSTILE, artifact_make, plotly_json

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def session(project):
    return AnalysisSessionFactory(project=project)


@pytest.fixture
def chart(project, session):
    return artifact_make(project=project, session=session, kind="plotly", body=plotly_json(), title=HOSTILE)


def test_artifact_detail_api_describes_the_artifact_and_its_downloads(bob, chart):
    response = _client(bob).get(reverse("api-v1:artifact-detail", args=[chart.pk]))

    body = response.json()
    assert response.status_code == 200
    assert (body["id"], body["kind"], body["title"], body["session_id"]) == (
        chart.pk,
        "plotly",
        HOSTILE,
        chart.session_id,
    )
    assert set(body["downloads"]) == {"png", "svg", "json"}
    assert body["downloads"]["svg"].endswith(f"/artifacts/{chart.pk}/download/?format=svg")


def test_session_artifact_list_api_pages_the_sessions_artifacts(alice, session, chart, png):
    artifact_make(project=session.project, session=session, kind="image", body=png, title="second")
    artifact_make(project=session.project, kind="image", body=png, title="not in the session")

    response = _client(alice).get(reverse("api-v1:session-artifact-list", args=[session.pk]))

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 2
    assert [a["title"] for a in body["results"]] == [HOSTILE, "second"]


def test_project_artifact_list_api_is_the_union_of_sessions_and_pins(alice, project, chart, png):
    pinned = artifact_make(project=project, kind="image", body=png, title="pinned", pinned=True)
    artifact_make(project=project, kind="image", body=png, title="loose")

    response = _client(alice).get(reverse("api-v1:project-artifact-list", args=[project.pk]))

    assert {a["id"] for a in response.json()["results"]} == {chart.pk, pinned.pk}


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("api-v1:artifact-detail", "chart"),
        ("api-v1:session-artifact-list", "session"),
        ("api-v1:project-artifact-list", "project"),
    ],
)
def test_artifact_apis_are_404_for_an_outsider(charlie, request, name, target):
    pk = request.getfixturevalue(target).pk

    assert _client(charlie).get(reverse(name, args=[pk])).status_code == 404


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("api-v1:artifact-detail", "chart"),
        ("api-v1:session-artifact-list", "session"),
        ("api-v1:project-artifact-list", "project"),
    ],
)
def test_artifact_apis_refuse_post(alice, request, name, target):
    pk = request.getfixturevalue(target).pk

    assert _client(alice).post(reverse(name, args=[pk])).status_code == 405


def test_artifact_api_needs_authentication(chart):
    assert APIClient().get(reverse("api-v1:artifact-detail", args=[chart.pk])).status_code == 401


def test_the_export_api_accepts_the_trailing_slash_like_the_other_urls(alice, session):
    bare = _client(alice).get(f"/api/v1/sessions/{session.pk}/export?format=json")
    slashed = _client(alice).get(f"/api/v1/sessions/{session.pk}/export/?format=json")

    assert bare.status_code == slashed.status_code == 200
    assert slashed["Content-Type"] == bare["Content-Type"]


def test_the_project_export_api_accepts_the_trailing_slash(alice, project):
    response = _client(alice).get(f"/api/v1/projects/{project.pk}/export/?format=md")

    assert response.status_code == 200
    assert response.content.startswith(b"PK")  # format=md is a zip


def test_the_export_api_with_a_slash_is_still_a_404_for_an_outsider(charlie, session):
    assert _client(charlie).get(f"/api/v1/sessions/{session.pk}/export/?format=json").status_code == 404
