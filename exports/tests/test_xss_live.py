"""Hostile dataset values, titles and model text stay inert where people read them: the session page
(with its artifact panel) and the live websocket step message built by analysis.streaming.push."""

import pytest
from django.urls import reverse

from analysis.models import Step
from analysis.streaming.push import render_step_message
from exports.tests.conftest import SCRIPT

pytestmark = pytest.mark.django_db

DANGEROUS = ("<img src=x", "<script>alert", "onerror=alert(1)>")


def _artifact_steps(session):
    run = session.runs.get()
    return list(run.steps.filter(kind=Step.Kind.ARTIFACT).order_by("ordinal"))


@pytest.mark.parametrize("index", [0, 2], ids=["plotly", "table"])
def test_live_artifact_step_message_escapes_hostile_values(rich_session, index):
    step = _artifact_steps(rich_session)[index]

    html = render_step_message(step=step)

    assert f'id="artifact-{step.artifacts.get().pk}"' in html
    assert f'id="artifact-thumb-{step.artifacts.get().pk}"' in html
    assert not any(bad in html for bad in DANGEROUS)


def test_live_answer_step_message_sanitizes_the_model_answer(rich_session):
    step = rich_session.runs.get().steps.get(kind=Step.Kind.ANSWER)

    html = render_step_message(step=step)

    assert "North" in html
    assert SCRIPT not in html and "<script" not in html


def test_session_page_shows_artifacts_and_answers_without_live_markup(client, bob, rich_session):
    client.force_login(bob)

    html = client.get(reverse("analysis:session-detail", args=[rich_session.pk])).content.decode()

    assert "artifact-table" in html and "plotly-chart" in html
    assert not any(bad in html for bad in DANGEROUS)


def test_session_artifact_panel_escapes_hostile_titles(client, bob, rich_session):
    client.force_login(bob)

    html = client.get(reverse("exports:session-artifacts", args=[rich_session.pk])).content.decode()

    assert html.count("artifact-thumb-") >= 3
    assert not any(bad in html for bad in DANGEROUS)
