"""The run worker leaves a static PNG beside every plotly chart, so exports and thumbnails never draw it late."""

from __future__ import annotations

import pytest

from analysis.models import Artifact
from analysis.services import run_claim, run_start
from analysis.tests.conftest import SALES, dataset_make
from analysis.tests.factories import AnalysisSessionFactory
from analysis.worker import Worker
from exports.services import artifact_png_bytes

pytestmark = pytest.mark.django_db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def offline(settings):
    settings.OPENROUTER_API_KEY = ""
    settings.LLM_BASE_URL = ""


def test_a_finished_run_has_a_stored_png_for_each_plotly_chart(offline, project, alice):
    dataset_make(project=project, name="sales.csv", frame=SALES)
    session = AnalysisSessionFactory(project=project, user=alice)
    run = run_start(session=session, user=alice, question="show revenue over time")
    worker = Worker(worker_id="renditions")
    try:
        worker.process(run_claim(worker_id=worker.worker_id))
    finally:
        worker.close()

    chart = Artifact.objects.get(run=run, kind=Artifact.Kind.PLOTLY)
    name = chart.meta.get("rendition_png")
    assert name, "the worker did not store a static image of the chart"
    with chart.file.storage.open(name, "rb") as fh:
        stored = fh.read()
    assert stored.startswith(PNG_MAGIC)

    folder = name.rsplit("/", 1)[0]
    before = chart.file.storage.listdir(folder)[1]
    assert artifact_png_bytes(artifact=chart) == stored
    assert chart.file.storage.listdir(folder)[1] == before, "the export drew the chart again"
