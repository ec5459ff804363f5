"""Run workers registered but none alive (they died): a question is refused with a clear message (API 503, a
message in the composer), never queued for nobody. With a live worker, or before any worker ever registered (a
fresh install whose worker is starting), it is accepted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis import services
from analysis.models import Run, WorkerProcess

pytestmark = pytest.mark.django_db


def _dead_worker() -> None:
    services.worker_register(worker_id="host:7:dead00", hostname="host", pid=7, concurrency=16)
    WorkerProcess.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=5))


def test_the_api_refuses_a_question_with_503_while_no_run_worker_is_alive(api, session):
    _dead_worker()

    response = api.post(f"/api/v1/sessions/{session.pk}/query", {"question": "mean revenue?"}, format="json")

    assert response.status_code == 503
    assert "No run worker is running" in response.json()["detail"]
    assert not Run.objects.filter(session=session).exists()


def test_the_api_accepts_a_question_while_a_run_worker_is_alive(api, session):
    _dead_worker()
    services.worker_register(worker_id="host:1:abcdef", hostname="host", pid=1, concurrency=16)

    response = api.post(f"/api/v1/sessions/{session.pk}/query", {"question": "mean revenue?"}, format="json")

    assert response.status_code == 202
    assert Run.objects.get(session=session).status == Run.Status.QUEUED


def test_the_page_says_no_worker_is_running_and_keeps_the_question_in_the_composer(client, alice, session):
    _dead_worker()
    client.force_login(alice)

    response = client.post(
        reverse("analysis:run-create", args=[session.pk]), {"question": "mean revenue?"}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "No run worker is running right now" in html
    assert "mean revenue?" in html
    assert not Run.objects.filter(session=session).exists()


def test_a_fresh_install_queues_the_question_for_the_worker_that_is_starting(api, session):
    response = api.post(f"/api/v1/sessions/{session.pk}/query", {"question": "mean revenue?"}, format="json")

    assert response.status_code == 202
