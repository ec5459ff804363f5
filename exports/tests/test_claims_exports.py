"""Claims in exports: unverified numbers marked, a "Where the numbers come from" section per question, JSON claims."""

import io
import json
import zipfile
from pathlib import Path

import jsonschema
import pytest
from pypdf import PdfReader

from analysis.models import Step
from analysis.services import answer_step_create
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.renderers import export_render
from exports.tests.conftest import _artifact_step, table_json

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "export-v1.json").read_text())
ANSWER = "Total revenue is 1,490.25; North sold 1.2M units and margins were 37.5%."


@pytest.fixture
def claimed_session(project):
    session = AnalysisSessionFactory(project=project, title="Revenue review")
    run = RunFactory(session=session, question="What is the total revenue?", answer=ANSWER)
    StepFactory(run=run, ordinal=1, kind=Step.Kind.CODE, content="final_result = {'total': 1490.25}")
    StepFactory(run=run, ordinal=2, kind=Step.Kind.OUTPUT, content="", data={"final_result": {"total": 1490.25}})
    _artifact_step(run, 3, kind="table", body=table_json(), title="Units by region")
    answer_step_create(run=run, answer=ANSWER)
    return session


def _markdown(session) -> str:
    _name, _type, body = export_render(target=session, fmt="md")
    archive = zipfile.ZipFile(io.BytesIO(body))
    return archive.read(next(n for n in archive.namelist() if n.endswith(".md"))).decode()


def test_markdown_marks_the_unverified_number_and_lists_every_source(claimed_session):
    text = _markdown(claimed_session)

    assert "margins were 37.5% **(unverified)**" in text
    assert "1,490.25 **(unverified)**" not in text
    assert "**Where the numbers come from**" in text
    assert "- 1,490.25 — step 2, final\\_result['total']" in text
    assert "- 1.2M — step 3, table “Units by region”, row 1, column sales" in text
    assert "- 37.5% — not found in any computed output" in text
    assert "1 number in this answer was not found in any computed output." in text


def test_pdf_marks_the_unverified_number_and_lists_every_source(claimed_session):
    _name, _type, body = export_render(target=claimed_session, fmt="pdf")

    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)

    assert "37.5% (unverified)" in " ".join(text.split())
    assert "Where the numbers come from" in text
    assert "step 3, table “Units by region”, row 1, column sales" in " ".join(text.split())
    assert "1 number in this answer was not found in any computed output." in " ".join(text.split())


def test_json_export_carries_the_claims_and_validates(claimed_session):
    _name, _type, body = export_render(target=claimed_session, fmt="json")
    document = json.loads(body)

    jsonschema.validate(document, SCHEMA)
    claims = document["sessions"][0]["runs"][0]["claims"]
    assert [(c["text"], c["verified"], c["source"]) for c in claims] == [
        ("1,490.25", True, "final_result"),
        ("1.2M", True, "table"),
        ("37.5%", False, None),
    ]
