"""A table's row labels (its index) reach every rendition: the page, CSV, Excel, Markdown and PDF."""

from __future__ import annotations

import csv
import io
import zipfile

import pandas as pd
import pytest
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from analysis.models import Step
from analysis.sandbox.capture import table_artifact
from analysis.services import artifact_create_from_sandbox
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.renderers import export_render

pytestmark = pytest.mark.django_db


@pytest.fixture
def described(project):
    """What the kernel captures for ``df.describe()``, stored the way a run stores it."""
    frame = pd.DataFrame({"units": [1, 2, 3, 10], "price": [2.5, 4.0, 8.0, 1.0]})
    run = RunFactory(session=AnalysisSessionFactory(project=project), question="describe the data")
    step = StepFactory(run=run, ordinal=1, kind=Step.Kind.ARTIFACT, content="table")
    artifact = artifact_create_from_sandbox(run=run, step=step, payload=table_artifact(frame.describe()))
    Step.objects.filter(pk=step.pk).update(data={"kind": "table", "artifact_id": artifact.pk})
    return artifact


def test_the_page_table_shows_the_statistics_as_row_headers(client, alice, described):
    client.force_login(alice)

    html = client.get(reverse("exports:artifact-detail", args=[described.pk])).content.decode()

    assert '<th scope="row">count</th>' in html
    assert '<th scope="row">std</th>' in html


def test_the_csv_download_keeps_the_row_labels_as_its_first_column(client, alice, described):
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[described.pk]), {"format": "csv"})

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["", "units", "price"]
    assert [row[0] for row in rows[1:]] == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]


def test_the_excel_download_keeps_the_row_labels(client, alice, described):
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[described.pk]), {"format": "xlsx"})

    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, max_row=3, values_only=True)] == ["count", "mean"]


def test_the_markdown_export_table_starts_with_the_row_labels(described):
    _name, _type, body = export_render(target=described.session, fmt="md")

    archive = zipfile.ZipFile(io.BytesIO(body))
    markdown = archive.read(next(n for n in archive.namelist() if n.endswith(".md"))).decode()
    assert "| count | 4.000 | 4.000 |" in markdown
    assert "| max | 10.000 | 8.000 |" in markdown


def test_the_pdf_export_table_shows_the_row_labels(described):
    _name, _type, body = export_render(target=described.session, fmt="pdf")

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    assert "count" in text and "std" in text and "75%" in text
