"""/healthz answers 200 when every part works and 503 naming the part that really fails."""

import pytest
from django.urls import reverse

from codingagent.tests.support import free_port

pytestmark = pytest.mark.django_db


def _closed_loopback_url() -> str:
    # A port that was free a moment ago: connections to it are refused at once.
    return f"http://127.0.0.1:{free_port()}"


def test_healthz_reports_database_channel_layer_and_storage_ok(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok", "storage": "ok"},
        "failing": [],
    }


def test_healthz_needs_no_login_and_is_never_cached(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_healthz_rejects_post_with_405(client):
    response = client.post(reverse("healthz"))

    assert response.status_code == 405


def test_healthz_answers_503_naming_storage_when_the_media_folder_cannot_be_created(client, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": blocker / "media"},
        },
    }

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["storage"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"].startswith("error: ")


def test_healthz_answers_503_naming_storage_when_s3_is_unreachable(client, settings):
    from botocore.config import Config

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "codingagent-missing",
                "endpoint_url": _closed_loopback_url(),
                "access_key": "test",
                "secret_key": "test",
                "region_name": "us-east-1",
                "addressing_style": "path",
                # Fail fast: the endpoint refuses connections; retrying would only slow the test down.
                "client_config": Config(connect_timeout=2, read_timeout=2, retries={"max_attempts": 1}),
            },
        },
    }

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["storage"]
    assert "Could not connect" in body["checks"]["storage"]


@pytest.mark.timeout(60)
def test_healthz_answers_503_naming_the_channel_layer_when_redis_is_down(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["channel_layer"]
    assert body["checks"]["storage"] == "ok"
