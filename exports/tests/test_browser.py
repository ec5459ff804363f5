"""Artifacts in a real Chromium: plotly draws from the embedded JSON with the local plotly.js, follows the
theme, and table pages/sorts swap in through htmx."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from analysis.tests.factories import AnalysisSessionFactory
from exports.tests.conftest import artifact_make, plotly_json, table_json

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the Debian chromium package"),
]


@pytest.fixture
def open_page(live_server, client, alice, settings):
    """Opens a path as alice. Call it after creating data: sync Playwright runs an event loop in this thread,
    and Django refuses ORM calls from a thread with a running loop."""
    from playwright.sync_api import sync_playwright

    settings.SESSION_COOKIE_SECURE = False
    client.force_login(alice)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    manager = sync_playwright()
    started = []

    def open_(path: str):
        playwright = manager.start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        started.append(browser)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        page.goto(live_server.url + path)
        return page

    yield open_
    for browser in started:
        browser.close()
    if started:
        manager.__exit__(None, None, None)


@pytest.fixture
def session(project):
    return AnalysisSessionFactory(project=project)


def test_plotly_chart_is_interactive_and_follows_the_theme(open_page, project, session):
    chart = artifact_make(project=project, session=session, kind="plotly", body=plotly_json(), title="Sales")
    page = open_page(reverse("exports:artifact-detail", args=[chart.pk]))
    page.wait_for_selector(f"#artifact-{chart.pk} .plotly-chart .main-svg", timeout=15000)
    light = page.evaluate(f"document.querySelector('#artifact-{chart.pk} .plotly-chart').layout.font.color")

    page.click("[data-theme-toggle]")
    # Arrow functions, not expression strings: Playwright eval()s those in the page, which the CSP forbids.
    page.wait_for_function(
        f"() => document.querySelector('#artifact-{chart.pk} .plotly-chart').layout.font.color !== {light!r}",
        timeout=5000,
    )

    dark = page.evaluate(f"document.querySelector('#artifact-{chart.pk} .plotly-chart').layout.font.color")
    assert light != dark
    assert page.evaluate("typeof window.Plotly.newPlot") == "function"


def test_table_pages_and_sorts_in_place_through_htmx(open_page, project, session):
    rows = [[f"row{i}", i] for i in range(40)]
    table = artifact_make(project=project, session=session, kind="table", title="T",
                          body=table_json(rows=rows, columns=["name", "n"]))  # fmt: skip
    url = reverse("exports:artifact-detail", args=[table.pk])
    page = open_page(url)

    page.click(f"#artifact-{table.pk}-table .pager a:has-text('Next')")
    page.wait_for_selector(f"#artifact-{table.pk}-table :text('Page 2 / 2')")
    page.click(f"#artifact-{table.pk}-table th:nth-child(2) a")
    page.wait_for_selector(f"#artifact-{table.pk}-table th[aria-sort='ascending']")
    page.click(f"#artifact-{table.pk}-table th:nth-child(2) a")
    page.wait_for_selector(f"#artifact-{table.pk}-table th[aria-sort='descending']")

    first = page.inner_text(f"#artifact-{table.pk}-table tbody tr:first-child td:first-child")
    assert first == "row39"
    assert page.url.endswith(url)  # swapped in place, no navigation


def test_gallery_renders_thumbnails(open_page, project, session, png, tmp_path):
    chart = artifact_make(project=project, session=session, kind="plotly", body=plotly_json(), title="Sales")
    artifact_make(project=project, session=session, kind="image", body=png, title="Hist", pinned=True)

    page = open_page(reverse("exports:project-gallery", args=[project.pk]))
    page.wait_for_function(
        f"() => document.querySelector('#artifact-thumb-{chart.pk} img').naturalWidth > 0", timeout=15000
    )

    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)  # kept for eyeballing with --basetemp
    assert page.locator(".artifact-thumb").count() == 2


def test_the_export_menu_shows_progress_then_saves_the_file(open_page, project, session):
    artifact_make(project=project, session=session, kind="plotly", body=plotly_json(), title="Sales")
    page = open_page(reverse("analysis:session-detail", args=[session.pk]))

    page.click(".export-menu > summary")
    with page.expect_download(timeout=60000) as download_info:
        page.click(".export-menu a[data-export='PDF report']")
        page.wait_for_selector(".export-status[data-state='busy']", timeout=5000)
    download = download_info.value

    assert download.suggested_filename.endswith(".pdf")
    assert Path(download.path()).read_bytes().startswith(b"%PDF")
    page.wait_for_selector(".export-status[data-state='done']", timeout=5000)
    assert page.inner_text(".export-status").startswith("Saved ")
