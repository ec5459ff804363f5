"""Every main page as a visitor receives it: no template syntax printed, a favicon, friendly error pages,
offline API docs, and (production mode) hashed, compressed static files."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from codingagent.tests.support import REPO_ROOT
from exports.tests.conftest import rich_session  # noqa: F401  (fixture)
from projects.tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


class _VisibleText(HTMLParser):
    """Text a person can see: everything outside <script>, <style> and <template>."""

    HIDDEN = {"script", "style", "template"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


@pytest.fixture
def main_pages(client, alice, project, rich_session):  # noqa: F811
    dataset = DatasetFactory(project=project)
    client.force_login(alice)
    return [
        reverse("projects:dashboard"),
        reverse("projects:project-detail", args=[project.pk]),
        reverse("projects:project-update", args=[project.pk]),
        reverse("projects:dataset-detail", args=[dataset.pk]),
        reverse("analysis:project-sessions", args=[project.pk]),
        reverse("analysis:recent-sessions"),
        reverse("analysis:session-detail", args=[rich_session.pk]),
        reverse("exports:session-artifacts", args=[rich_session.pk]),
        reverse("exports:project-gallery", args=[project.pk]),
        reverse("accounts:password_change"),
        "/no-such-page/",
    ]


def test_no_main_page_prints_template_syntax_as_text(client, main_pages):
    texts = {url: visible_text(client.get(url).content.decode()) for url in main_pages}

    printed = {url: re.findall(r"\{[#%{].{0,40}", text) for url, text in texts.items()}
    assert {url: found for url, found in printed.items() if found} == {}
    assert "Sales analysis" in texts[main_pages[1]]


def test_the_login_page_prints_no_template_syntax(client):
    text = visible_text(client.get(reverse("accounts:login")).content.decode())

    assert "Log in" in text
    assert not re.search(r"\{[#%{]", text)


def test_the_favicon_is_served_from_static_files(client):
    response = client.get("/favicon.ico")
    icon = client.get(response["Location"])

    assert response.status_code == 302
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)


def test_pages_link_the_favicon(client):
    html = client.get(reverse("accounts:login")).content.decode()

    assert 'rel="icon" href="/static/img/favicon.svg"' in html


def test_an_unknown_url_gets_the_friendly_404_page_not_the_url_list(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)

    response = client.get("/projects/999999/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "This page does not exist" in html
    assert "Go to your projects" in html
    assert "URLconf" not in html and "urlpatterns" not in html.lower()


def test_the_500_page_stands_alone_without_a_request_context():
    response = server_error(RequestFactory().get("/boom/"))

    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html
    assert "Traceback" not in html and "<script" not in html


def test_the_api_docs_load_swagger_ui_from_our_own_static_files(client, alice):
    client.force_login(alice)

    page = client.get(reverse("api-v1:docs"))
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    script = client.get(next(a for a in assets if "script=" in a).replace("&amp;", "&"))

    assert page.status_code == 200
    assert "cdn" not in html.lower() and "http" not in " ".join(assets)
    assert "<script>" not in html  # the start-up code is a separate script (CSP)
    static_assets = [a for a in assets if a.startswith("/static/")]
    assert {a.rsplit("/", 1)[-1] for a in static_assets} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    assert all(client.get(a).status_code == 200 for a in static_assets)
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
    assert "/api/v1/schema/" in script.content.decode()


@pytest.mark.timeout(300)
def test_production_mode_serves_hashed_and_compressed_static_files(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
    }
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    probe = (
        "import django, json; django.setup();"
        "from django.test import Client; c = Client();"
        "html = c.get('/accounts/login/').content.decode();"
        "import re; css = re.search(r'href=\"(/static/css/app\\.[0-9a-f]{12}\\.css)\"', html).group(1);"
        "r = c.get(css, HTTP_ACCEPT_ENCODING='br, gzip');"
        "print(json.dumps({'css': css, 'status': r.status_code, 'encoding': r.get('Content-Encoding'),"
        " 'cache': r.get('Cache-Control')}))"
    )
    served = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "codingagent.settings"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert collect.returncode == 0, collect.stderr
    static_root = tmp_path / "data" / "static"
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["css/app.css"]
    assert re.fullmatch(r"css/app\.[0-9a-f]{12}\.css", hashed)
    assert (static_root / f"{hashed}.gz").exists() and (static_root / f"{hashed}.br").exists()
    assert served.returncode == 0, served.stderr
    result = json.loads(served.stdout.strip().splitlines()[-1])
    assert result["css"] == f"/static/{hashed}"
    assert (result["status"], result["encoding"]) == (200, "br")
    assert "immutable" in result["cache"]
