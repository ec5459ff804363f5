"""Session and project exports in every format: structure, schema, hostile content, permissions, query counts."""

import gc
import io
import json
import re
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest
from django.urls import reverse
from pypdf import PdfReader

from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.document import export_context_build
from exports.renderers import export_render, pdf_html
from exports.tests.conftest import HOSTILE, SCRIPT, artifact_make, plotly_json
from projects.models import Dataset

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "export-v1.json").read_text())
FORMATS = ["md", "json", "pdf", "ipynb"]


@pytest.fixture
def dataset(project):
    profile = {
        "columns": [
            {"name": "region", "dtype": "object", "missing": 0, "stats": {"unique": 3}},
            {"name": HOSTILE, "dtype": "float64", "missing": 2, "stats": {"mean": 12.5, "max": 40}},
        ],
        "preview": {"columns": ["region"], "rows": [["North"]]},
    }
    return Dataset.objects.create(
        project=project, name="sales.csv", original_filename="sales.csv", file="x.csv", size=10,
        format="csv", row_count=1200, column_count=2, profile=profile,
    )  # fmt: skip


def _pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def _pdf_image_count(body: bytes) -> int:
    """Distinct embedded images (weasyprint shares one resource dictionary between pages)."""
    import hashlib

    return len(
        {hashlib.sha1(image.data).hexdigest() for page in PdfReader(io.BytesIO(body)).pages for image in page.images}
    )


def _zip_markdown(body: bytes) -> tuple[str, list[str]]:
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = archive.namelist()
    md_name = next(n for n in names if n.endswith(".md"))
    return archive.read(md_name).decode(), names


# --- Markdown -------------------------------------------------------------------------------------------------


def test_markdown_export_is_a_zip_with_headings_code_outputs_answer_and_linked_images(rich_session, dataset):
    filename, content_type, body = export_render(target=rich_session, fmt="md")

    text, names = _zip_markdown(body)
    images = re.findall(r"!\[[^\]]*\]\((images/[^)]+\.png)\)", text)
    assert content_type == "application/zip" and filename.endswith(".zip")
    assert text.startswith("# Quarterly review")
    assert "## Datasets" in text and "### sales.csv — 1,200 rows × 2 columns" in text
    assert "## 1. Which region sells most?" in text
    assert "```python\ntotals = {'North': 10, 'South': 20}\nfinal_result" in text
    assert "Output:\n\n```text\nNorth" in text
    assert "**Error** (the agent saw this and continued)" in text
    assert "### Answer\n\n**North** wins." in text
    assert "| North | 1,234,567.89 | 2024-01-05 |" in text
    assert len(images) == 2
    assert all(any(n.endswith(path) for n in names) for path in images)


def test_markdown_export_never_carries_raw_html_from_model_user_or_data(rich_session, dataset):
    _, _, body = export_render(target=rich_session, fmt="md")

    text, _ = _zip_markdown(body)
    assert "<img" not in text and "<script" not in text
    assert "&lt;img src=x onerror=alert(1)>" in text


# --- JSON -----------------------------------------------------------------------------------------------------


def test_json_export_validates_against_the_published_schema(rich_session, dataset):
    _, content_type, body = export_render(target=rich_session, fmt="json")

    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert content_type == "application/json"
    assert document["schema_version"] == 1
    assert [s["kind"] for s in document["sessions"][0]["runs"][0]["steps"]][:3] == ["thought", "code", "error"]
    assert {a["content"]["type"] for a in document["sessions"][0]["runs"][0]["artifacts"]} == {
        "plotly",
        "image",
        "table",
    }


def test_json_export_keeps_hostile_values_as_data(rich_session):
    _, _, body = export_render(target=rich_session, fmt="json")

    document = json.loads(body)
    table = next(a for a in document["sessions"][0]["runs"][0]["artifacts"] if a["kind"] == "table")
    assert table["content"]["rows"][0][3] == HOSTILE
    assert document["sessions"][0]["runs"][0]["answer"].endswith(SCRIPT)


def test_project_json_export_has_every_session_the_datasets_and_project_pins(project, rich_session, dataset, png):
    AnalysisSessionFactory(project=project, title="Empty one")
    artifact_make(project=project, kind="image", body=png, title="Pinned", pinned=True)

    _, _, body = export_render(target=project, fmt="json")

    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert document["scope"] == "project"
    assert {s["title"] for s in document["sessions"]} == {rich_session.title, "Empty one"}
    assert document["datasets"][0]["profile"]["columns"][1]["name"] == HOSTILE
    assert [a["title"] for a in document["pinned_artifacts"]] == ["Pinned"]


# --- PDF ------------------------------------------------------------------------------------------------------


def test_pdf_export_has_title_page_sections_code_tables_charts_and_page_numbers(rich_session, dataset):
    filename, content_type, body = export_render(target=rich_session, fmt="pdf")

    text = _pdf_text(body)
    assert content_type == "application/pdf" and filename.endswith(".pdf")
    assert body.startswith(b"%PDF")
    assert "session report" in text.lower()
    assert "1. Which region sells most?" in text
    assert "final_result = max(totals, key=totals.get)" in text
    assert "1,234,567.89" in text
    assert "Page 2 of" in text
    assert _pdf_image_count(body) == 2


def test_pdf_export_prints_hostile_text_literally_and_fetches_nothing(rich_session, dataset):
    _, _, body = export_render(target=rich_session, fmt="pdf")

    text = _pdf_text(body)
    assert "<img src=x onerror=alert(1)>" in text
    assert "North wins." in text and "alert('xss')" not in text  # markdown sanitizer drops script elements
    assert _pdf_image_count(body) == 2  # the hostile <img src=x> is text, not an image


def test_pdf_shows_a_placeholder_for_chart_types_it_cannot_draw(project):
    session = AnalysisSessionFactory(project=project)
    run = RunFactory(session=session, answer="done")
    step = StepFactory(run=run, kind="artifact", ordinal=1)
    sankey = json.dumps({"data": [{"type": "sankey", "node": {"label": ["a"]}}], "layout": {}}).encode()
    artifact_make(project=project, session=session, run=run, step=step, kind="plotly", body=sankey, title="Flows")

    _, _, body = export_render(target=session, fmt="pdf")

    assert _pdf_image_count(body) == 1  # drawn as an image holding the placeholder text, never a blank box


def test_pdf_html_links_images_served_from_memory_and_drops_unstyled_code_spans(rich_session):
    images: dict[str, bytes] = {}

    html = pdf_html(export_context_build(target=rich_session), images)

    assert len(images) == 2  # the chart and the image
    assert all(f'src="{url}"' in html and png.startswith(b"\x89PNG") for url, png in images.items())
    assert "data:image" not in html
    assert '<span class="n">' not in html and '<span class="p">' not in html  # no CSS rule styles them
    assert '<span class="nb">print</span>(final_result)' in html


def test_pdf_export_leaves_garbage_collection_as_it_found_it(rich_session):
    frozen = gc.get_freeze_count()

    export_render(target=rich_session, fmt="pdf")

    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


# --- notebook -------------------------------------------------------------------------------------------------


def test_notebook_export_has_loading_first_questions_answers_and_failed_code_as_text(rich_session, dataset):
    filename, content_type, body = export_render(target=rich_session, fmt="ipynb")

    nb = nbformat.reads(body.decode(), as_version=4)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert filename.endswith(".ipynb") and content_type == "application/x-ipynb+json"
    assert nb.cells[1].cell_type == "code" and 'sales = pd.read_csv("sales.csv")' in nb.cells[1].source.replace(
        "'", '"'
    )
    assert len(code_cells) == 2  # loading + the corrected code; the failed attempt is markdown
    assert any(
        c.cell_type == "markdown" and "print(totals['Nort'])" in c.source and "KeyError" in c.source for c in nb.cells
    )
    assert {o["output_type"] for o in code_cells[1].outputs} == {"stream", "display_data"}
    assert nb.cells[-1].source.startswith("**Answer**")


def test_notebook_markdown_and_html_outputs_carry_no_raw_html(rich_session):
    _, _, body = export_render(target=rich_session, fmt="ipynb")

    nb = nbformat.reads(body.decode(), as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    html_outputs = "".join(
        o["data"].get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if "data" in o
    )
    assert "<img" not in markdown and "<script" not in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;" in html_outputs
    assert "<img" not in html_outputs


# --- empty session, query counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_session_exports_fine(project, fmt):
    session = AnalysisSessionFactory(project=project, title="Nothing yet")

    filename, _, body = export_render(target=session, fmt=fmt)

    assert filename.startswith("nothing-yet-")
    assert len(body) > 100


def _big_session(project, *, runs: int):
    session = AnalysisSessionFactory(project=project)
    for n in range(runs):
        run = RunFactory(session=session, question=f"q{n}", answer=f"a{n}")
        StepFactory(run=run, ordinal=1, kind="code", content="x = 1")
        step = StepFactory(run=run, ordinal=2, kind="artifact")
        artifact_make(project=project, session=session, run=run, step=step, kind="plotly", body=plotly_json())
    return session


@pytest.mark.parametrize("runs", [1, 6])
def test_collecting_a_session_takes_the_same_number_of_queries_whatever_its_size(
    project, runs, django_assert_num_queries
):
    from exports.document import export_context_build

    session = _big_session(project, runs=runs)

    with django_assert_num_queries(5):  # session+project+user, runs, steps, artifacts, datasets
        export_context_build(target=session)


@pytest.mark.parametrize("sessions", [1, 4])
def test_collecting_a_project_takes_the_same_number_of_queries_whatever_its_size(
    project, sessions, django_assert_num_queries
):
    from exports.document import export_context_build

    for _ in range(sessions):
        _big_session(project, runs=2)

    with django_assert_num_queries(7):  # project+owner, datasets, sessions, runs, steps, artifacts, pins
        export_context_build(target=project)


# --- HTML endpoints -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("md", "application/zip"),
        ("json", "application/json"),
        ("pdf", "application/pdf"),
        ("ipynb", "application/x-ipynb+json"),
    ],
)
def test_session_export_page_link_downloads_with_a_dated_slug_filename(client, bob, rich_session, fmt, content_type):
    client.force_login(bob)

    response = client.get(reverse("exports:session-export", args=[rich_session.pk]), {"format": fmt})

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    ext = "zip" if fmt == "md" else fmt
    assert re.fullmatch(
        rf'attachment; filename="quarterly-review-img-srcx-onerroralert1-\d{{4}}-\d{{2}}-\d{{2}}\.{ext}"',
        response["Content-Disposition"],
    )


def test_project_export_page_link_downloads(client, alice, project, rich_session):
    client.force_login(alice)

    response = client.get(reverse("exports:project-export", args=[project.pk]), {"format": "json"})

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="sales-analysis-')


@pytest.mark.parametrize("name", ["exports:session-export", "exports:project-export"])
def test_export_pages_answer_400_for_an_unknown_format(client, alice, project, rich_session, name):
    pk = rich_session.pk if "session" in name else project.pk
    client.force_login(alice)

    response = client.get(reverse(name, args=[pk]), {"format": "docx"})

    assert response.status_code == 400
    assert "Unknown export format 'docx'. Choose one of: md, json, pdf, ipynb." in response.content.decode()


@pytest.mark.parametrize("name", ["exports:session-export", "exports:project-export"])
def test_export_pages_are_404_for_an_outsider(client, charlie, project, rich_session, name):
    pk = rich_session.pk if "session" in name else project.pk
    client.force_login(charlie)

    assert client.get(reverse(name, args=[pk]), {"format": "json"}).status_code == 404


@pytest.mark.parametrize("name", ["exports:session-export", "exports:project-export"])
def test_export_pages_refuse_post(client, alice, project, rich_session, name):
    pk = rich_session.pk if "session" in name else project.pk
    client.force_login(alice)

    assert client.post(reverse(name, args=[pk]), {"format": "json"}).status_code == 405


# --- API ------------------------------------------------------------------------------------------------------


@pytest.fixture
def api(alice):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.mark.parametrize("fmt", FORMATS)
def test_session_export_api_returns_each_format_as_an_attachment(api, rich_session, fmt):
    response = api.get(f"/api/v1/sessions/{rich_session.pk}/export", {"format": fmt})

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")


def test_project_export_api_returns_a_pdf(api, project, rich_session):
    response = api.get(reverse("api-v1:project-export", args=[project.pk]), {"format": "pdf"})

    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


def test_export_api_answers_400_with_the_choices_for_an_unknown_format(api, rich_session):
    response = api.get(reverse("api-v1:session-export", args=[rich_session.pk]), {"format": "html"})

    assert response.status_code == 400
    assert response.json() == {"detail": "Unknown export format 'html'. Choose one of: md, json, pdf, ipynb."}


@pytest.mark.parametrize("name", ["api-v1:session-export", "api-v1:project-export"])
def test_export_api_is_404_for_an_outsider(charlie, project, rich_session, name):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(charlie)
    pk = rich_session.pk if "session" in name else project.pk

    assert client.get(reverse(name, args=[pk]), {"format": "json"}).status_code == 404


@pytest.mark.parametrize("name", ["api-v1:session-export", "api-v1:project-export"])
def test_export_api_refuses_post(api, project, rich_session, name):
    pk = rich_session.pk if "session" in name else project.pk

    assert api.post(reverse(name, args=[pk]), {"format": "json"}).status_code == 405


def test_export_api_needs_authentication(rich_session):
    from rest_framework.test import APIClient

    response = APIClient().get(reverse("api-v1:session-export", args=[rich_session.pk]), {"format": "json"})

    assert response.status_code == 401


def test_json_export_turns_stray_nan_into_null(project):
    session = AnalysisSessionFactory(project=project)
    run = RunFactory(session=session)
    step = StepFactory(run=run, ordinal=1, kind="artifact")
    body = b'{"data": [{"type": "scatter", "x": [1, 2], "y": [NaN, 3]}], "layout": {}}'
    artifact_make(project=project, session=session, run=run, step=step, kind="plotly", body=body, title="gappy")

    _, _, exported = export_render(target=session, fmt="json")

    figure = json.loads(exported)["sessions"][0]["runs"][0]["artifacts"][0]["content"]["figure"]
    assert figure["data"][0]["y"] == [None, 3]


def test_pdf_shows_the_head_of_a_long_table_and_says_where_the_rest_is(project):
    from exports.tests.conftest import table_json

    session = AnalysisSessionFactory(project=project)
    run = RunFactory(session=session)
    step = StepFactory(run=run, ordinal=1, kind="artifact")
    rows = [[f"row{i}", i] for i in range(40)]
    artifact_make(project=project, session=session, run=run, step=step, kind="table", title="Long",
                  body=table_json(rows=rows, columns=["name", "n"]))  # fmt: skip

    _, _, body = export_render(target=session, fmt="pdf")

    text = _pdf_text(body)
    assert "row11" in text and "row12" not in text
    assert "First 12 rows shown; 28 more in the table's CSV/XLSX download" in text.replace("\n", " ")


def test_answer_lists_are_lists_in_the_pdf_and_the_markdown_export(project):
    run = RunFactory(
        session=AnalysisSessionFactory(project=project), answer="Revenue by region:\n- North: 10\n- South: 20"
    )
    StepFactory(run=run, ordinal=1, kind="answer", content=run.answer)
    context = export_context_build(target=run.session)

    html = pdf_html(context, {})
    _name, _type, body = export_render(target=run.session, fmt="md")

    assert "<ul>\n<li>North: 10</li>\n<li>South: 20</li>\n</ul>" in html
    markdown = (
        zipfile.ZipFile(io.BytesIO(body))
        .read(next(n for n in zipfile.ZipFile(io.BytesIO(body)).namelist() if n.endswith(".md")))
        .decode()
    )
    assert "Revenue by region:\n\n- North: 10\n- South: 20" in markdown


def test_dataset_profiles_in_exports_read_like_the_page(project):
    profile = {
        "rows": 2000,
        "column_count": 3,
        "columns": [
            {"name": "region", "dtype": "str", "kind": "text", "missing": 0,
             "stats": {"count": 2000, "unique": 4, "unique_exact": True, "top": [{"value": "North", "count": 1200}]}},
            {"name": "revenue", "dtype": "float64", "kind": "numeric", "missing": 1500,
             "stats": {"count": 500, "min": 0.5, "max": 1234567.891, "mean": 2500.123, "std": 10.0}},
            {"name": "day", "dtype": "str", "kind": "datetime", "date_format": "%d/%m/%Y", "missing": 0,
             "stats": {"count": 2000, "min": "2024-01-01", "max": "2024-12-31"}},
        ],
    }  # fmt: skip
    Dataset.objects.create(project=project, name="sales.csv", original_filename="sales.csv", file="x.csv", size=10,
                           format="csv", row_count=2000, column_count=3, profile=profile)  # fmt: skip

    pdf = _pdf_text(export_render(target=project, fmt="pdf")[2])
    archive = zipfile.ZipFile(io.BytesIO(export_render(target=project, fmt="md")[2]))
    markdown = archive.read(next(n for n in archive.namelist() if n.endswith(".md"))).decode()

    for text in (pdf, markdown):
        assert "2,000 rows × 3 columns" in text
        assert "4 unique · top: North (1,200)" in text
        assert "max 1,234,567.89" in text and "1,500" in text
        assert "2024-01-01 → 2024-12-31" in text
        assert "unique_exact" not in text and '{"value"' not in text
