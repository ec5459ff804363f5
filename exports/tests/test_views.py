"""Artifact pages and fragments: rendering, paging, downloads, pinning, permissions, hostile content."""

import json

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from analysis.artifact_views import table_preview_meta
from analysis.models import Artifact
from analysis.tests.factories import AnalysisSessionFactory
from exports.artifacts import artifact_view_build
from exports.tests.conftest import HOSTILE, artifact_make, plotly_json, table_json
from projects.models import ProjectMember
from projects.tests.factories import ProjectMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(project):
    return AnalysisSessionFactory(project=project, title="Review")


@pytest.fixture
def chart(project, session):
    return artifact_make(project=project, session=session, kind="plotly", body=plotly_json(), title=f"Chart {HOSTILE}")


@pytest.fixture
def table(project, session):
    rows = [[f"row{i}", i * 1000.5, None] for i in range(60)]
    body = table_json(rows=rows, columns=["name", "amount", HOSTILE])
    return artifact_make(project=project, session=session, kind="table", body=body, title="Big table")


@pytest.fixture
def image(project, session, png):
    return artifact_make(project=project, session=session, kind="image", body=png, title="Histogram")


@pytest.fixture
def viewer(project):
    from accounts.tests.factories import UserFactory

    user = UserFactory(email="vera@example.com")
    ProjectMemberFactory(project=project, user=user, role=ProjectMember.Role.VIEWER)
    return user


# --- the partials (also pushed over the websocket: rendered from `artifact` alone) --------------------------


def _full(artifact):
    """The artifact carrying the detail page's view (figure embedded, table page read from its file)."""
    artifact.view = artifact_view_build(artifact=artifact)
    return artifact


def test_plotly_partial_embeds_the_figure_as_inert_json_without_request_context(chart):
    html = render_to_string("_partials/artifact.html", {"artifact": _full(chart)})

    assert f'id="artifact-{chart.pk}"' in html
    assert f'<script id="artifact-{chart.pk}-figure" type="application/json">' in html
    assert HOSTILE not in html
    assert "\\u003Cimg src=x onerror=alert(1)\\u003E" in html
    assert reverse("exports:plotly-js") in html


def test_plotly_partial_from_the_row_alone_fetches_the_figure_instead_of_embedding_it(chart):
    html = render_to_string("_partials/artifact.html", {"artifact": chart})

    assert f'data-figure-src="/artifacts/{chart.pk}/download/?format=json&amp;inline=1"' in html
    assert "<script" not in html


def test_table_partial_from_the_row_alone_is_a_placeholder_of_its_size_that_loads_when_scrolled_into_view(table):
    table.meta = {"shape": [1234, 3], "preview": table_preview_meta(json.loads(table.file.read()))}

    html = render_to_string("_partials/artifact.html", {"artifact": table})

    assert f'hx-get="/artifacts/{table.pk}/" hx-trigger="intersect once, load-table"' in html
    assert f'id="artifact-{table.pk}-table"' in html
    assert "1,234 rows × 3 columns" in html and 'style="--rows: 25"' in html
    assert f'<a href="/artifacts/{table.pk}/">Open the table</a>' in html  # without JavaScript
    assert "<td" not in html and "<script" not in html


def test_a_short_tables_placeholder_is_as_tall_as_its_rows(project, session):
    body = table_json(rows=[["North"]], columns=["region"])
    meta = {"shape": [1, 1], "preview": table_preview_meta(json.loads(body))}
    short = artifact_make(project=project, session=session, kind="table", body=body, meta=meta)

    html = render_to_string("_partials/artifact.html", {"artifact": short})

    assert "1 row × 1 column" in html and 'style="--rows: 1"' in html


def test_a_table_without_a_known_shape_gets_a_full_page_placeholder(table):
    html = render_to_string("_partials/artifact.html", {"artifact": table})

    assert 'style="--rows: 25"' in html and " rows × " not in html


def test_the_lazy_table_block_is_404_for_an_outsider(client, charlie, table):
    client.force_login(charlie)

    response = client.get(reverse("exports:artifact-detail", args=[table.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 404


def test_the_lazy_table_block_is_shown_to_a_viewer(client, viewer, table):
    client.force_login(viewer)

    response = client.get(reverse("exports:artifact-detail", args=[table.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "row24" in response.content.decode() and "Page 1 / 3" in response.content.decode()


def test_table_partial_shows_the_first_page_escaped_with_numbers_right_aligned(table):
    html = render_to_string("_partials/artifact.html", {"artifact": _full(table)})

    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<td class="num">1,000.50</td>' in html
    assert '<td class="null">null</td>' in html
    assert "row24" in html and "row25" not in html
    assert "Page 1 / 3" in html


def test_image_partial_links_to_the_full_size_view(image):
    html = render_to_string("_partials/artifact.html", {"artifact": image})

    assert f'href="{reverse("exports:artifact-detail", args=[image.pk])}"' in html
    assert "format=png&amp;inline=1" in html


def test_thumb_partial_has_a_stable_id_and_escapes_the_title(chart):
    html = render_to_string("_partials/artifact_thumb.html", {"artifact": chart})

    assert f'id="artifact-thumb-{chart.pk}"' in html
    assert HOSTILE not in html
    assert "Chart &lt;img" in html


def test_a_missing_file_renders_a_message_instead_of_failing(table):
    table.file.storage.delete(table.file.name)

    html = render_to_string("_partials/artifact.html", {"artifact": _full(table)})

    assert "could not be read" in html


# --- artifact detail and table paging -------------------------------------------------------------------------


def test_artifact_detail_page_shows_the_artifact_full_size(client, alice, chart):
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-detail", args=[chart.pk]))

    assert response.status_code == 200
    assert b"artifact-full" in response.content
    assert HOSTILE.encode() not in response.content


def test_the_artifact_page_marks_its_project_current_in_the_projects_sidebar(client, alice, chart):
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-detail", args=[chart.pk]))

    assert f'<li id="project-{chart.project_id}" class="current">'.encode() in response.content


def test_htmx_table_request_returns_only_the_requested_sorted_page(client, bob, table):
    client.force_login(bob)

    response = client.get(
        reverse("exports:artifact-detail", args=[table.pk]), {"page": 2, "sort": "-1"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<div class="artifact-table" id="artifact-{table.pk}-table"')
    assert "<html" not in html
    assert "row34" in html and "row59" not in html  # descending by amount: page 2 holds rows 34..10
    assert "Page 2 / 3" in html


def test_artifact_detail_is_404_for_an_outsider(client, charlie, chart):
    client.force_login(charlie)

    assert client.get(reverse("exports:artifact-detail", args=[chart.pk])).status_code == 404


def test_artifact_detail_refuses_post(client, alice, chart):
    client.force_login(alice)

    assert client.post(reverse("exports:artifact-detail", args=[chart.pk])).status_code == 405


def test_artifact_detail_needs_a_login(client, chart):
    response = client.get(reverse("exports:artifact-detail", args=[chart.pk]))

    assert response.status_code == 302


# --- downloads ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "fmt", "content_type", "magic"),
    [
        ("chart", "png", "image/png", b"\x89PNG"),
        ("chart", "svg", "image/svg+xml", b"<?xml"),
        ("chart", "json", "application/json", b'{"data"'),
        ("image", "png", "image/png", b"\x89PNG"),
        ("table", "csv", "text/csv; charset=utf-8", "\ufeffname,amount".encode()),
        ("table", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK"),
        ("table", "json", "application/json", b'{"columns"'),
    ],
)
def test_artifact_downloads_in_each_offered_format(client, bob, request, fixture, fmt, content_type, magic):
    artifact = request.getfixturevalue(fixture)
    client.force_login(bob)

    response = client.get(reverse("exports:artifact-download", args=[artifact.pk]), {"format": fmt})

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    assert response.content.startswith(magic)


def test_table_csv_neutralises_spreadsheet_formulas(client, alice, project, session):
    body = table_json(rows=[['=HYPERLINK("http://evil")', 1]], columns=["name", "n"])
    artifact = artifact_make(project=project, session=session, kind="table", body=body, title="t")
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[artifact.pk]), {"format": "csv"})

    assert "'=HYPERLINK" in response.content.decode("utf-8-sig")


def test_table_xlsx_holds_every_stored_row(client, alice, table):
    from io import BytesIO

    from openpyxl import load_workbook

    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[table.pk]), {"format": "xlsx"})

    sheet = load_workbook(BytesIO(response.content)).active
    assert sheet.max_row == 61
    assert sheet.cell(row=2, column=1).value == "row0"


def test_plotly_png_is_rendered_once_and_reused(client, alice, chart):
    client.force_login(alice)

    first = client.get(reverse("exports:artifact-download", args=[chart.pk]), {"format": "png"})
    chart.refresh_from_db()
    second = client.get(reverse("exports:artifact-download", args=[chart.pk]), {"format": "png"})

    assert chart.meta["rendition_png"].endswith(".png")
    assert first.content == second.content


def test_unknown_download_format_is_a_clear_400(client, alice, image):
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[image.pk]), {"format": "svg"})

    assert response.status_code == 400
    assert "Choose one of: png" in response.content.decode()


def test_file_artifacts_are_always_downloaded_never_shown_inline(client, alice, project, session):
    artifact = artifact_make(
        project=project, session=session, kind="file", body=b"<script>alert(1)</script>", mime="text/html",
        title="report.html", meta={"name": "report.html"},
    )  # fmt: skip
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[artifact.pk]), {"inline": "1"})

    assert response["Content-Disposition"] == 'attachment; filename="report.html"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_inline_png_is_shown_inline_for_img_tags(client, alice, image):
    client.force_login(alice)

    response = client.get(reverse("exports:artifact-download", args=[image.pk]), {"format": "png", "inline": "1"})

    assert response["Content-Disposition"].startswith("inline")


def test_download_is_404_for_an_outsider(client, charlie, image):
    client.force_login(charlie)

    assert client.get(reverse("exports:artifact-download", args=[image.pk]), {"format": "png"}).status_code == 404


def test_download_refuses_post(client, alice, image):
    client.force_login(alice)

    assert client.post(reverse("exports:artifact-download", args=[image.pk])).status_code == 405


# --- pinning --------------------------------------------------------------------------------------------------


def test_an_editor_pins_an_artifact_and_gets_the_updated_thumb(client, bob, chart):
    client.force_login(bob)

    response = client.post(
        reverse("exports:artifact-pin", args=[chart.pk]), {"pinned": "1"}, headers={"HX-Request": "true"}
    )

    chart.refresh_from_db()
    assert chart.pinned is True
    assert f'id="artifact-thumb-{chart.pk}"' in response.content.decode()
    assert "Unpin" in response.content.decode()


def test_unpinning_without_htmx_redirects_to_the_artifact(client, alice, chart):
    Artifact.objects.filter(pk=chart.pk).update(pinned=True)
    client.force_login(alice)

    response = client.post(reverse("exports:artifact-pin", args=[chart.pk]), {"pinned": "0"})

    chart.refresh_from_db()
    assert chart.pinned is False
    assert response.status_code == 302


def test_a_viewer_cannot_pin(client, viewer, chart):
    client.force_login(viewer)

    response = client.post(reverse("exports:artifact-pin", args=[chart.pk]), {"pinned": "1"})

    chart.refresh_from_db()
    assert response.status_code == 403
    assert chart.pinned is False


def test_pin_is_404_for_an_outsider(client, charlie, chart):
    client.force_login(charlie)

    assert client.post(reverse("exports:artifact-pin", args=[chart.pk]), {"pinned": "1"}).status_code == 404


def test_pin_refuses_get(client, alice, chart):
    client.force_login(alice)

    assert client.get(reverse("exports:artifact-pin", args=[chart.pk])).status_code == 405


# --- side panel and gallery -----------------------------------------------------------------------------------


def test_session_panel_lists_the_sessions_artifacts_in_constant_queries(
    client, alice, session, chart, table, image, django_assert_num_queries
):
    client.force_login(alice)

    with django_assert_num_queries(5):  # django session, user, the session, can-edit, artifacts
        response = client.get(reverse("exports:session-artifacts", args=[session.pk]))

    html = response.content.decode()
    assert 'id="artifact-list"' in html and 'id="artifact-panel"' not in html  # the page's aside owns that id
    assert html.count('class="artifact-thumb ') == 3
    assert "data-can-edit" in html
    assert HOSTILE not in html


def test_session_panel_hides_pinning_from_viewers(client, viewer, session, chart):
    client.force_login(viewer)

    response = client.get(reverse("exports:session-artifacts", args=[session.pk]))

    assert "data-can-edit" not in response.content.decode()


def test_session_panel_is_404_for_an_outsider(client, charlie, session):
    client.force_login(charlie)

    assert client.get(reverse("exports:session-artifacts", args=[session.pk])).status_code == 404


def test_session_panel_refuses_post(client, alice, session):
    client.force_login(alice)

    assert client.post(reverse("exports:session-artifacts", args=[session.pk])).status_code == 405


def test_gallery_shows_session_artifacts_and_project_pins_but_not_other_projects(client, alice, project, chart, png):
    pinned = artifact_make(project=project, kind="image", body=png, title="Pinned logo", pinned=True)
    loose = artifact_make(project=project, kind="image", body=png, title="Not pinned, no session")
    other = artifact_make(project=AnalysisSessionFactory().project, kind="image", body=png, title="Elsewhere")
    client.force_login(alice)

    html = client.get(reverse("exports:project-gallery", args=[project.pk])).content.decode()

    assert f"artifact-thumb-{chart.pk}" in html
    assert f"artifact-thumb-{pinned.pk}" in html
    assert f"artifact-thumb-{loose.pk}" not in html
    assert f"artifact-thumb-{other.pk}" not in html
    assert "Pinned to the project" in html


def test_gallery_is_constant_queries(client, alice, project, session, png, django_assert_num_queries):
    for n in range(8):
        artifact_make(project=project, session=session, kind="image", body=png, title=f"img {n}")
    client.force_login(alice)

    # django session, user, the project with the caller's role, artifacts, the sidebar's project list
    with django_assert_num_queries(5):
        client.get(reverse("exports:project-gallery", args=[project.pk]))


def test_gallery_is_404_for_an_outsider(client, charlie, project):
    client.force_login(charlie)

    assert client.get(reverse("exports:project-gallery", args=[project.pk])).status_code == 404


def test_gallery_refuses_post(client, alice, project):
    client.force_login(alice)

    assert client.post(reverse("exports:project-gallery", args=[project.pk])).status_code == 405


# --- plotly.js, served locally --------------------------------------------------------------------------------


def test_plotly_js_is_served_locally_and_cached(client):
    response = client.get(reverse("exports:plotly-js"))

    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "max-age=31536000" in response["Cache-Control"]
    assert b"plotly" in body[:2000].lower()


def test_plotly_js_refuses_post(client):
    assert client.post(reverse("exports:plotly-js")).status_code == 405


def test_figure_json_in_the_page_round_trips(chart):
    html = render_to_string("_partials/artifact.html", {"artifact": _full(chart)})
    start = html.index(f'<script id="artifact-{chart.pk}-figure" type="application/json">')
    payload = html[html.index(">", start) + 1 : html.index("</script>", start)]

    assert json.loads(payload)["data"][0]["x"][2] == HOSTILE
