"""Attempts are visible: what the sandbox policy refused during a cell, caught or not, is recorded on the code
step, shown on the page and in the live push, told to the model, and never exported as runnable code."""

from __future__ import annotations

import io
import zipfile

import nbformat
import pytest
from django.urls import reverse
from pydantic_ai.messages import ModelResponse, TextPart

from analysis.models import Run, Step
from analysis.streaming import push
from analysis.tests.test_agent import _run_with, _tool_returns, code_call, script
from exports.document import export_context_build
from exports.renderers import export_render, pdf_html

pytestmark = pytest.mark.django_db

# The example: the refusal is caught, so the cell "succeeds"; outside the sandbox it ran as root.
CAUGHT = (
    "import pandas as pd\n"
    "try:\n"
    '    getattr(pd.io.common, "os").system("id > pwned.txt")\n'
    "except Exception:\n"
    "    pass\n"
    "final_result = 1"
)
WARNING = "This code tried to reach outside the sandbox"


@pytest.fixture
def refused_run(session, sales, alice):
    seen = {}

    def answer(messages):
        seen["observation"] = _tool_returns(messages)[-1]
        return ModelResponse(parts=[TextPart("Done.")])

    run = _run_with(script(code_call(CAUGHT), answer), session, alice)
    return run, seen["observation"]


def test_a_caught_refusal_is_recorded_on_the_code_step(refused_run):
    run, _ = refused_run

    code = run.steps.get(kind=Step.Kind.CODE)
    output = run.steps.get(kind=Step.Kind.OUTPUT)

    assert run.status == Run.Status.SUCCEEDED
    assert code.data["refusals"] == ["module 'os'"]
    assert (output.data["refusals"], output.data["refused_code_step"]) == (code.data["refusals"], code.pk)


def test_the_model_is_told_its_code_was_stopped(refused_run):
    _, observation = refused_run

    assert "status: ok" in observation
    assert "note: this code tried to reach outside the sandbox (" in observation


def test_the_page_shows_the_warning_on_the_code_step(refused_run, client, alice):
    run, _ = refused_run
    code = run.steps.get(kind=Step.Kind.CODE)
    client.force_login(alice)

    html = client.get(reverse("analysis:session-detail", args=[run.session_id])).content.decode()

    slot = html.split(f'id="step-{code.pk}-refusals"', 1)[1].split("</div>", 1)[0]
    assert WARNING in slot and "and was stopped." in slot


def test_the_live_push_fills_the_code_steps_warning_with_the_same_partial(refused_run):
    run, _ = refused_run
    code = run.steps.get(kind=Step.Kind.CODE)

    message = push.render_step_message(step=run.steps.get(kind=Step.Kind.OUTPUT))

    assert f'hx-swap-oob="innerHTML:#step-{code.pk}-refusals"' in message
    assert WARNING in message.split("</div>", 1)[0]


def test_clean_code_records_no_refusals(session, sales, alice):
    run = _run_with(script(code_call("final_result = 2"), ModelResponse(parts=[TextPart("Two.")])), session, alice)

    code = run.steps.get(kind=Step.Kind.CODE)
    message = push.render_step_message(step=run.steps.get(kind=Step.Kind.OUTPUT))

    assert "refusals" not in code.data
    assert 'hx-swap-oob="innerHTML' not in message


def test_the_notebook_never_carries_refused_code_as_a_code_cell(refused_run):
    run, _ = refused_run

    _, _, body = export_render(target=run.session, fmt="ipynb")

    nb = nbformat.reads(body.decode(), as_version=4)
    nbformat.validate(nb)
    assert not [c for c in nb.cells if c.cell_type == "code" and "pd.io.common" in c.source]
    kept = [c for c in nb.cells if c.cell_type == "markdown" and "pd.io.common" in c.source]
    assert len(kept) == 1 and WARNING in kept[0].source and "```text" in kept[0].source


def test_the_notebook_begins_by_saying_a_model_wrote_the_code_and_where_it_ran(refused_run):
    run, _ = refused_run

    _, _, body = export_render(target=run.session, fmt="ipynb")

    first = nbformat.reads(body.decode(), as_version=4).cells[0]
    assert first.cell_type == "markdown"
    assert "written by a language model (`scripted`)" in first.source
    assert "CodingAgent's sandbox" in first.source and "without that sandbox" in first.source


def test_markdown_and_pdf_exports_show_the_warning(refused_run):
    run, _ = refused_run

    _, _, archive = export_render(target=run.session, fmt="md")
    report = pdf_html(export_context_build(target=run.session), {})

    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        text = z.read(next(n for n in z.namelist() if n.endswith(".md"))).decode()
    assert "**Warning:** This code tried to reach outside the sandbox (`module 'os'`) and was stopped." in text
    assert "```text\nimport pandas as pd" in text
    assert "This code tried to reach outside the sandbox (module &#x27;os&#x27;) and was stopped." in report
