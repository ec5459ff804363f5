"""Stored step HTML (analysis/step_html.py): rendered once when saved, never stale, never trusted unsigned."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from analysis import step_html
from analysis.models import Step
from analysis.streaming import push
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from codingagent.lib.markdown import highlight_python, render_markdown
from exports.document import Block
from exports.renderers import _pdf_block

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> [x](javascript:alert(3))'
CLAIMS = [
    {"text": "1,234", "value": 1234, "verified": True, "step": 3, "source": "stdout", "location": {"line": 1},
     "span": [6, 11]},
    {"text": "99", "value": 99, "verified": False, "span": [16, 18]},
]  # fmt: skip


@pytest.fixture
def run(project, alice):
    return RunFactory(session=AnalysisSessionFactory(project=project, user=alice), user=alice)


def _page(client, alice, run) -> str:
    client.force_login(alice)
    html = client.get(reverse("analysis:session-detail", args=[run.session_id])).content.decode()
    return html.split('id="session-stream"')[1]


def test_a_saved_thought_and_code_keep_their_sanitized_html(run):
    thought = StepFactory(run=run, ordinal=1, kind="thought", content=f"**Plan** {HOSTILE}")
    code = StepFactory(run=run, ordinal=2, kind="code", content="x = '<b>'")

    thought.refresh_from_db()
    code.refresh_from_db()

    assert thought.html == render_markdown(f"**Plan** {HOSTILE}") and "<strong>Plan</strong>" in thought.html
    assert "<script" not in thought.html and "onerror" not in thought.html and "javascript:" not in thought.html
    assert code.html == highlight_python("x = '<b>'")
    assert thought.content_html == thought.html and code.content_html == code.html


def test_an_answer_keeps_its_claim_marks_with_its_own_pk(run):
    answer = StepFactory(run=run, ordinal=1, kind="answer", content="Total 1,234 and 99.", data={"claims": CLAIMS})

    answer.refresh_from_db()

    assert f'aria-describedby="claim-{answer.pk}-0"' in answer.html
    assert 'class="claim claim-unverified"' in answer.html and "was not found in any computed output" in answer.html
    assert step_html.step_html_verified(
        pk=answer.pk, kind="answer", content=answer.content, data=answer.data, html=answer.html,
        signature=answer.html_signature,
    )  # fmt: skip


def test_a_text_changed_without_save_is_shown_rendered_afresh(client, alice, run):
    step = StepFactory(run=run, ordinal=1, kind="thought", content="Harmless **plan**")
    Step.objects.filter(pk=step.pk).update(content=f"Changed {HOSTILE}")

    page = _page(client, alice, run)

    assert "Changed" in page and "Harmless" not in page
    assert "<script>alert(1)" not in page and "onerror" not in page and "javascript:alert" not in page


def test_html_written_into_the_row_is_not_trusted(client, alice, run):
    step = StepFactory(run=run, ordinal=1, kind="answer", content="North leads.")
    Step.objects.filter(pk=step.pk).update(html="<script>alert('poisoned')</script>")

    page = _page(client, alice, run)

    assert "poisoned" not in page and "North leads." in page


def test_a_hostile_answer_is_inert_on_the_page(client, alice, run):
    StepFactory(run=run, ordinal=1, kind="answer", content=f"Total 1,234 and 99. {HOSTILE}", data={"claims": CLAIMS})

    page = _page(client, alice, run)

    assert "<script>alert(1)" not in page and "onerror" not in page and "javascript:alert" not in page
    assert page.count('class="claim claim-verified"') == 1 and page.count('class="claim claim-unverified"') == 1


def test_claims_saved_later_change_the_stored_answer(run):
    answer = StepFactory(run=run, ordinal=1, kind="answer", content="Total 1,234 and 99.")
    answer.data = {"claims": CLAIMS}

    answer.save(update_fields=["data"])

    answer.refresh_from_db()
    assert 'class="claim claim-verified"' in answer.html


def test_the_pushed_step_carries_the_stored_html(run):
    step = StepFactory(run=run, ordinal=1, kind="thought", content="- North\n- South")
    step = Step.objects.select_related("run").prefetch_related("artifacts").get(pk=step.pk)

    message = push.render_step_message(step=step)

    assert step.html and step.html in message


def test_the_refresh_renders_missing_and_outdated_html(run, monkeypatch):
    missing = StepFactory(run=run, ordinal=1, kind="thought", content="**a**")
    current = StepFactory(run=run, ordinal=2, kind="code", content="x = 1")
    StepFactory(run=run, ordinal=3, kind="output", content="1")
    other = StepFactory(run=run, ordinal=4, kind="answer", content="North leads.")
    Step.objects.filter(pk__in=[missing.pk, other.pk]).update(html="", html_signature="")

    assert step_html.step_html_refresh(Step.objects.all(), batch_size=1) == 2
    missing.refresh_from_db()
    assert missing.html == render_markdown("**a**")

    monkeypatch.setattr(step_html, "STEP_HTML_VERSION", step_html.STEP_HTML_VERSION + 1)
    current.refresh_from_db()
    assert not step_html.step_html_verified(
        **current._html_source(), html=current.html, signature=current.html_signature
    )
    call_command("step_html_refresh")
    current.refresh_from_db()
    assert step_html.step_html_verified(**current._html_source(), html=current.html, signature=current.html_signature)


def test_the_pdf_export_renders_a_thought_to_the_stored_html(run):
    step = StepFactory(run=run, ordinal=1, kind="thought", content=f"Totals:\n- North\n- South {HOSTILE}")

    block = _pdf_block(Block(type="thought", text=step.content), None, {}, {})

    assert block["html"] == step.html
