"""Red team, drawing: a chart made by model-written code is drawn as a static image outside the web and worker
processes, within CPU and memory limits; one too expensive to draw gets a placeholder saying why (kept, so it
is not tried again on every view), and the run worker never waits for drawing before the next question."""

from __future__ import annotations

import io
import json
import resource
import time

import numpy as np
import plotly.graph_objects as go
import pytest
from django.urls import reverse
from PIL import Image
from pydantic_ai.messages import UserPromptPart
from pydantic_ai.models.function import FunctionModel

from analysis.models import Artifact, Run
from analysis.services import run_start
from analysis.tests.factories import AnalysisSessionFactory, RunFactory
from analysis.tests.test_agent import _tool_returns, code_call
from analysis.worker import Worker
from exports import receivers, services
from exports.drawing import ChartDrawer, DrawFailed
from exports.tests.conftest import artifact_make

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTOGRAM = go.Figure(go.Histogram(x=[0, 1, 2], nbinsx=100000)).to_json().encode()
# Half a million markers joined by a line: seconds of CPU for matplotlib, whatever the bins logic does.
HEAVY = go.Figure(go.Scatter(x=np.arange(500_000.0), y=np.arange(500_000.0) % 7, mode="lines+markers")).to_json()


@pytest.fixture
def drawer(settings):
    """A fresh process-wide drawer per test, so each test's limits apply."""
    services._drawer = None
    yield
    if services._drawer is not None:
        services._drawer.close()
    services._drawer = None


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.django_db
def test_the_44_second_histogram_is_drawn_in_bounded_time_outside_this_process(drawer, project):
    chart = artifact_make(project=project, kind="plotly", body=HISTOGRAM, title="bins")
    services.chart_drawer().draw(json.dumps({"data": []}).encode())  # helper started and warm
    before = _rss_mb()

    started = time.monotonic()
    body = services.artifact_png_bytes(artifact=chart)
    seconds = time.monotonic() - started

    assert body.startswith(PNG_MAGIC)
    assert seconds < 50  # 10 s of CPU at most, on a loaded 2-core machine
    assert _rss_mb() - before < 50, "the drawing grew this process"
    chart.refresh_from_db()
    assert chart.meta["rendition_png"]


@pytest.mark.django_db
def test_a_chart_over_the_cpu_limit_gets_a_placeholder_that_says_why_and_is_kept(drawer, project, settings):
    settings.CHART_DRAW_CPU_SECONDS = 1
    chart = artifact_make(project=project, kind="plotly", body=HEAVY.encode(), title="heavy")

    body = services.artifact_png_bytes(artifact=chart)
    chart.refresh_from_db()
    started = time.monotonic()
    again = services.artifact_png_bytes(artifact=chart)

    assert "1 s of CPU time" in chart.meta["rendition_error"]
    assert "Open the interactive chart" in chart.meta["rendition_error"]
    assert Image.open(io.BytesIO(body)).size == (770, 433)
    assert again == body and time.monotonic() - started < 1  # read back, not drawn again


def test_a_chart_over_the_memory_limit_gets_a_placeholder_and_the_next_chart_is_drawn():
    drawer_ = ChartDrawer(cpu_seconds=60, memory_mb=400)  # the helper needs ~270 MB of address space to start
    # 3.8M values parse into ~200 MB of Python objects before numpy and matplotlib copy them.
    n = 1_900_000
    huge = json.dumps({"data": [{"type": "scatter", "x": list(range(n)), "y": [0.5] * n}]})
    try:
        with pytest.raises(DrawFailed, match="memory"):
            drawer_.draw(huge.encode())
        body = drawer_.draw(json.dumps({"data": [{"type": "bar", "x": ["a"], "y": [1]}]}).encode())
    finally:
        drawer_.close()

    assert body.startswith(PNG_MAGIC)


def test_a_drawer_helper_that_overruns_is_replaced_and_the_next_chart_is_drawn():
    drawer_ = ChartDrawer(cpu_seconds=1, wall_seconds=30)
    try:
        with pytest.raises(DrawFailed, match="CPU time|longer than"):
            drawer_.draw(HEAVY.encode())
        body = drawer_.draw(json.dumps({"data": [{"type": "bar", "x": ["a"], "y": [1]}]}).encode())
    finally:
        drawer_.close()

    assert body.startswith(PNG_MAGIC)


@pytest.mark.django_db
def test_svg_download_of_a_figure_that_is_not_one_is_a_placeholder_not_an_error(drawer, client, project, alice):
    chart = artifact_make(project=project, kind="plotly", body=b'{"data": 5, "layout": []}', title="bad")
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[chart.pk]), {"format": "svg"})

    assert response.status_code == 200
    assert b"could not be drawn" in response.content
    assert b"must be a list of traces" in response.content


@pytest.mark.django_db(transaction=True)
def test_the_worker_answers_the_next_users_question_while_a_heavy_chart_is_drawn(drawer, project, alice, bob, settings):
    settings.CHART_DRAW_CPU_SECONDS = 30
    settings.OPENROUTER_API_KEY, settings.LLM_BASE_URL = "", ""
    heavy = "import numpy as np\nimport plotly.graph_objects as go\nn = np.arange(500000.0)\n"
    heavy += "go.Figure(go.Scatter(x=n, y=n % 7, mode='lines+markers'))"
    mine = run_start(session=AnalysisSessionFactory(project=project, user=alice), user=alice, question="plot it")
    theirs = run_start(session=AnalysisSessionFactory(project=project, user=bob), user=bob, question="1+1?")
    code = {"plot it": heavy, "1+1?": "final_result = 1 + 1"}

    def by_question(messages, info):  # the two runs go at once: each gets its own script, whoever asks first
        if _tool_returns(messages):
            return _answer("Done.")
        asked = next(p.content for m in messages for p in getattr(m, "parts", []) if isinstance(p, UserPromptPart))
        return code_call(code[asked])

    worker = Worker(worker_id="drawing", model=FunctionModel(by_question, model_name="scripted"))
    try:
        worker.run_forever(once=True)
        theirs.refresh_from_db()
        chart = Artifact.objects.get(run=mine, kind=Artifact.Kind.PLOTLY)
        drawn_when_theirs_finished = bool(chart.meta.get("rendition_png"))
        assert receivers.renditions_wait(timeout=300)
    finally:
        worker.close()

    assert theirs.status == Run.Status.SUCCEEDED
    assert not drawn_when_theirs_finished, "the worker waited for the chart before the next question"
    chart.refresh_from_db()
    assert chart.meta.get("rendition_png")


def _answer(text):
    from pydantic_ai.messages import ModelResponse, TextPart

    return ModelResponse(parts=[TextPart(text)])


@pytest.mark.django_db
def test_the_page_says_when_a_charts_static_image_is_a_placeholder(drawer, client, project, alice):
    session = AnalysisSessionFactory(project=project, user=alice)
    run = RunFactory(session=session, user=alice)
    chart = artifact_make(project=project, session=session, run=run, kind="plotly", body=b'{"data": 5}', title="bad")
    services.artifact_png_bytes(artifact=chart)
    client.force_login(alice)

    page = client.get(reverse("exports:artifact-detail", args=[chart.pk]))

    assert page.status_code == 200
    assert "static image of this chart could not be drawn" in page.content.decode()


def test_a_helper_draws_chart_after_chart_without_losing_its_cpu_allowance():
    drawer_ = ChartDrawer(cpu_seconds=2, processes=1)
    try:
        for n in range(3):
            drawer_.draw(json.dumps({"data": [{"type": "bar", "x": ["a"], "y": [n]}]}).encode())
        (helper,) = drawer_._idle
        with open(f"/proc/{helper.proc.pid}/limits") as fh:
            cpu = next(line for line in fh if line.startswith("Max cpu time")).split()
    finally:
        drawer_.close()

    # Each chart moves only the soft limit; a hard limit lowered once could never be raised again, and every
    # helper then died a few charts later.
    assert cpu[4] == "unlimited"
    assert cpu[3] != "unlimited"
