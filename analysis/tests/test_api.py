"""The analysis API: sessions, questions (202/409), run detail, cancel and SSE events."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from analysis.models import Run
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(charlie):
    client = APIClient()
    client.force_authenticate(charlie)
    return client


def test_creating_a_session_returns_it(api, project):
    response = api.post(f"/api/v1/projects/{project.pk}/sessions/", {"title": "Q3"}, format="json")

    assert response.status_code == 201
    assert response.json()["title"] == "Q3"


def test_an_unknown_model_is_refused_with_a_clear_message(api, project):
    response = api.post(f"/api/v1/projects/{project.pk}/sessions/", {"title": "Q3", "model": "gpt-9"}, format="json")

    assert response.status_code == 400
    assert "Unknown model" in str(response.json())


def test_an_outsider_cannot_see_a_session(outsider, project):
    session = AnalysisSessionFactory(project=project)

    assert outsider.get(f"/api/v1/sessions/{session.pk}/").status_code == 404


def test_a_question_is_accepted_with_202_and_a_second_gets_409(api, project):
    session = AnalysisSessionFactory(project=project)

    first = api.post(f"/api/v1/sessions/{session.pk}/query", {"question": "mean revenue?"}, format="json")
    second = api.post(f"/api/v1/sessions/{session.pk}/query", {"question": "again?"}, format="json")

    assert first.status_code == 202 and Run.objects.get(pk=first.json()["run_id"]).status == "queued"
    assert second.status_code == 409
    assert second.json()["active_run_id"] == first.json()["run_id"]


def test_query_refuses_get_with_405(api, project):
    session = AnalysisSessionFactory(project=project)

    assert api.get(f"/api/v1/sessions/{session.pk}/query").status_code == 405


def test_an_outsider_cannot_ask_or_read_runs(outsider, project):
    run = RunFactory(session__project=project)

    assert outsider.post(f"/api/v1/sessions/{run.session_id}/query", {"question": "x"}).status_code == 404
    assert outsider.get(f"/api/v1/runs/{run.pk}/").status_code == 404


def test_run_detail_lists_steps_in_order(api, project):
    run = RunFactory(session__project=project)
    StepFactory(run=run, ordinal=1, kind="code", content="x = 1")
    StepFactory(run=run, ordinal=2, kind="answer", content="42")

    body = api.get(f"/api/v1/runs/{run.pk}/").json()

    assert [s["kind"] for s in body["steps"]] == ["code", "answer"]
    assert {"status", "question", "answer", "error", "model", "tokens_in", "tokens_out", "cost"} <= set(body)


def test_cancelling_a_queued_run_ends_it_at_once(api, project):
    run = RunFactory(session__project=project, status=Run.Status.QUEUED)

    response = api.post(f"/api/v1/runs/{run.pk}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_events_replay_a_finished_run_and_honour_last_event_id(api, project):
    run = RunFactory(session__project=project)
    StepFactory(run=run, ordinal=1, kind="thought", content="look")
    StepFactory(run=run, ordinal=2, kind="answer", content="42")

    response = api.get(f"/api/v1/runs/{run.pk}/events", HTTP_LAST_EVENT_ID="1")
    body = async_to_sync(_collect)(response)

    assert response["Content-Type"] == "text/event-stream"
    assert "id: 2\nevent: step" in body and "id: 1\n" not in body
    assert 'event: done\ndata: {"status": "succeeded"' in body


def test_events_answer_the_accept_header_of_standard_sse_clients(api, project):
    run = RunFactory(session__project=project)
    StepFactory(run=run, ordinal=1, kind="answer", content="42")

    response = api.get(f"/api/v1/runs/{run.pk}/events", HTTP_ACCEPT="text/event-stream")
    body = async_to_sync(_collect)(response)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert "id: 1\nevent: step" in body and "event: done" in body


def test_events_answer_a_browser_like_accept_list(api, project):
    run = RunFactory(session__project=project)
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"

    response = api.get(f"/api/v1/runs/{run.pk}/events", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"


def test_events_of_another_users_run_are_a_404_an_sse_client_can_read(outsider, project):
    run = RunFactory(session__project=project)

    response = outsider.get(f"/api/v1/runs/{run.pk}/events", HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 404
    assert response.content.decode().startswith("event: error\ndata: {")


def test_events_refuse_post_with_405(api, project):
    run = RunFactory(session__project=project)

    assert api.post(f"/api/v1/runs/{run.pk}/events").status_code == 405


async def _collect(response) -> str:
    return b"".join([chunk async for chunk in response.streaming_content]).decode()
