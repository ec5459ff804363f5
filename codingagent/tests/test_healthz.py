"""/healthz answers 200 when every part works and 503 naming the part that really fails."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis import services
from analysis.models import Run, WorkerProcess
from analysis.tests.factories import RunFactory
from codingagent.tests.support import free_port

pytestmark = pytest.mark.django_db


def _closed_loopback_url() -> str:
    # A port that was free a moment ago: connections to it are refused at once.
    return f"http://127.0.0.1:{free_port()}"


def test_healthz_reports_database_channel_layer_and_storage_ok(client):
    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "channel_layer": "ok", "storage": "ok", "workers": "ok"}
    assert body["failing"] == []


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


def _worker(worker_id: str, *, silent_for: float = 0.0, kernels: int = 0, kernel_pss_mb: float = 0.0) -> None:
    services.worker_register(worker_id=worker_id, hostname="host-a", pid=4242, concurrency=16)
    services.worker_heartbeat(
        worker_id=worker_id, runs_active=1, kernels=kernels, kernel_pss_mb=kernel_pss_mb, worker_pss_mb=180.0
    )
    WorkerProcess.objects.filter(pk=worker_id).update(heartbeat_at=timezone.now() - timedelta(seconds=silent_for))


def _queued(seconds_ago: float) -> Run:
    run = RunFactory(status=Run.Status.QUEUED)
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=seconds_ago))
    return run


def test_healthz_reports_live_workers_their_kernels_and_the_oldest_queued_run(client):
    _worker("host-a:4242:aaaaaa", kernels=3, kernel_pss_mb=412.5)
    _worker("host-a:4343:bbbbbb", silent_for=120)  # dead: its heartbeat is older than RUN_STALE_SECONDS
    _queued(seconds_ago=42)

    response = client.get(reverse("healthz"))

    workers = response.json()["workers"]
    assert response.status_code == 200
    assert (workers["alive"], workers["runs_queued"], workers["kernels"]) == (1, 1, 3)
    assert workers["kernel_pss_mb"] == 412.5
    assert 42 <= workers["oldest_queued_seconds"] < 100
    assert "processes" not in workers  # per-process details are for staff


def test_healthz_answers_503_when_runs_are_queued_and_no_worker_is_alive(client):
    _worker("host-a:4343:bbbbbb", silent_for=120)
    _queued(seconds_ago=7)

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"].startswith("error: 1 run(s) queued and no run worker is alive")
    assert body["workers"]["alive"] == 0


def test_healthz_is_200_without_workers_while_nothing_waits(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["workers"]["alive"] == 0


def test_healthz_shows_each_worker_process_to_staff(client, admin_user):
    _worker("host-a:4242:aaaaaa", kernels=2, kernel_pss_mb=300.0)
    client.force_login(admin_user)

    response = client.get(reverse("healthz"))

    [process] = response.json()["workers"]["processes"]
    assert (process["id"], process["pid"], process["kernels"]) == ("host-a:4242:aaaaaa", 4242, 2)
    assert process["heartbeat_age_seconds"] < 10
