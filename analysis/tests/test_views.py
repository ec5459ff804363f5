"""Session pages and fragments: happy paths, wrong methods, outsiders, viewers, pinned query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import AnalysisSession, Run, Step
from analysis.streaming import push
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from projects.models import ProjectMember
from projects.tests.factories import ProjectMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(project, alice):
    return AnalysisSessionFactory(project=project, user=alice, title="Revenue")


def _runs_with_steps(session, n: int) -> None:
    for _ in range(n):
        run = RunFactory(session=session, answer="42")
        for i, kind in enumerate(["thought", "code", "output", "error", "answer"], start=1):
            StepFactory(run=run, ordinal=i, kind=kind, content=f"**{kind}** <script>alert(1)</script>")


def test_the_session_page_shows_questions_answers_and_the_composer(client, alice, session):
    _runs_with_steps(session, 1)
    client.force_login(alice)

    html = client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode()

    assert 'id="question-input"' in html and "data-focus-shortcut" in html
    assert f'ws-connect="/ws/sessions/{session.pk}/"' in html
    assert 'id="artifact-panel"' in html
    assert "<script>alert(1)</script>" not in html  # model text is sanitized markdown


def test_the_session_page_is_a_constant_number_of_queries(client, alice, session, django_assert_max_num_queries):
    _runs_with_steps(session, 1)
    client.force_login(alice)
    client.get(reverse("analysis:session-detail", args=[session.pk]))  # warm the session/user caches
    _runs_with_steps(session, 6)

    with django_assert_max_num_queries(14):
        response = client.get(reverse("analysis:session-detail", args=[session.pk]))

    assert response.status_code == 200


def test_a_pushed_step_fragment_renders_without_queries(django_assert_num_queries, session):
    run = RunFactory(session=session)
    step = StepFactory(run=run, ordinal=1, kind="code", content="x = 1")
    step = Step.objects.select_related("run").prefetch_related("artifacts").get(pk=step.pk)

    with django_assert_num_queries(0):  # the worker/tailer load the run and artifacts with the step
        html = push.render_step_message(step=step)

    assert f'hx-swap-oob="beforeend:#run-{run.pk}-work"' in html
    assert f'id="step-{step.pk}"' in html


def test_an_outsider_gets_404_for_the_session_page(client, charlie, session):
    client.force_login(charlie)

    assert client.get(reverse("analysis:session-detail", args=[session.pk])).status_code == 404


def test_the_session_page_refuses_post_with_405(client, alice, session):
    client.force_login(alice)

    assert client.post(reverse("analysis:session-detail", args=[session.pk])).status_code == 405


def test_asking_from_the_page_queues_a_run_and_returns_the_busy_composer(client, alice, session):
    client.force_login(alice)

    response = client.post(
        reverse("analysis:run-create", args=[session.pk]), {"question": "mean?"}, HTTP_HX_REQUEST="true"
    )

    run = Run.objects.get(session=session)
    html = response.content.decode()
    assert run.status == Run.Status.QUEUED
    assert "Stop" in html and f'id="run-{run.pk}"' in html


def test_a_second_question_while_one_runs_gets_an_inline_message(client, alice, session):
    RunFactory(session=session, status=Run.Status.RUNNING)
    client.force_login(alice)

    response = client.post(
        reverse("analysis:run-create", args=[session.pk]), {"question": "again"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "already being answered" in response.content.decode()
    assert Run.objects.filter(session=session).count() == 1


def test_renaming_without_htmx_saves_the_title_and_reloads_the_page(client, alice, session):
    client.force_login(alice)

    response = client.post(reverse("analysis:session-update", args=[session.pk]), {"title": "Margins"})

    session.refresh_from_db()
    assert response.status_code == 302 and response["Location"] == session.get_absolute_url()
    assert session.title == "Margins"


def test_a_rename_over_htmx_that_fails_reloads_the_page_to_show_why(client, alice, session):
    client.force_login(alice)

    response = client.post(
        reverse("analysis:session-update", args=[session.pk]), {"title": "x" * 201}, HTTP_HX_REQUEST="true"
    )

    session.refresh_from_db()
    assert response.status_code == 200 and response["HX-Redirect"] == session.get_absolute_url()
    assert session.title == "Revenue"


def test_renaming_is_404_for_outsiders_and_405_for_get(client, alice, charlie, session):
    client.force_login(charlie)
    outsider = client.post(reverse("analysis:session-update", args=[session.pk]), {"title": "Mine"})
    client.force_login(alice)
    got = client.get(reverse("analysis:session-update", args=[session.pk]))

    session.refresh_from_db()
    assert (outsider.status_code, got.status_code, session.title) == (404, 405, "Revenue")


def test_a_viewer_can_read_but_not_ask(client, project, session, django_user_model):
    viewer = django_user_model.objects.create_user("viewer@example.com", "pw-for-tests-1")
    ProjectMemberFactory(project=project, user=viewer, role=ProjectMember.Role.VIEWER)
    client.force_login(viewer)

    page = client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode()
    asked = client.post(reverse("analysis:run-create", args=[session.pk]), {"question": "x"})

    assert 'id="question-input"' not in page
    assert asked.status_code == 403


def test_the_project_sessions_fragment_lists_sessions_with_their_last_status(client, alice, project, session):
    RunFactory(session=session, status=Run.Status.FAILED)
    client.force_login(alice)

    html = client.get(reverse("analysis:project-sessions", args=[project.pk])).content.decode()

    assert "Revenue" in html and "status-failed" in html
    assert reverse("analysis:session-create", args=[project.pk]) in html


def test_the_project_sessions_fragment_is_404_for_outsiders(client, charlie, project):
    client.force_login(charlie)

    assert client.get(reverse("analysis:project-sessions", args=[project.pk])).status_code == 404


def test_the_recent_sessions_fragment_lists_visible_sessions_only(client, bob, session):
    AnalysisSessionFactory(title="Somebody else's")
    client.force_login(bob)

    html = client.get(reverse("analysis:recent-sessions")).content.decode()

    assert "Revenue" in html and "Somebody else" not in html


def test_creating_a_session_from_the_project_page_redirects_to_it(client, alice, project):
    client.force_login(alice)

    response = client.post(reverse("analysis:session-create", args=[project.pk]), {"title": "New one"})

    session = AnalysisSession.objects.get(title="New one")
    assert response.status_code == 302 and response["Location"] == session.get_absolute_url()


def test_session_create_refuses_get_with_405(client, alice, project):
    client.force_login(alice)

    assert client.get(reverse("analysis:session-create", args=[project.pk])).status_code == 405


def test_stopping_from_the_page_cancels_a_queued_run(client, alice, session):
    run = RunFactory(session=session, status=Run.Status.QUEUED)
    client.force_login(alice)

    response = client.post(reverse("analysis:run-cancel", args=[run.pk]), HTTP_HX_REQUEST="true")

    run.refresh_from_db()
    assert response.status_code == 204 and run.status == Run.Status.CANCELLED


def test_an_outsider_cannot_stop_a_run(client, charlie, session):
    run = RunFactory(session=session, status=Run.Status.QUEUED)
    client.force_login(charlie)

    assert client.post(reverse("analysis:run-cancel", args=[run.pk])).status_code == 404
