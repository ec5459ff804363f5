"""The deployment files agree with the settings: every variable documented, no secret in compose."""

import re

import pytest
import yaml

from codingagent.tests.support import REPO_ROOT


def _settings_env_vars() -> set[str]:
    source = (REPO_ROOT / "codingagent" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|list|secret)\(\s*"([A-Z0-9_]+)"', source))


def _documented_env_vars() -> set[str]:
    text = (REPO_ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "compose.yml").read_text())


def test_env_example_documents_every_variable_that_settings_read():
    missing = _settings_env_vars() - _documented_env_vars()

    assert len(_settings_env_vars()) > 20
    assert missing == set()


def test_compose_runs_postgres_redis_minio_web_and_two_workers(compose):
    services = compose["services"]

    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["python", "manage.py", "run_worker"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_compose_reads_configuration_from_env_file_and_holds_no_secret(compose):
    app_services = {name: svc for name, svc in compose["services"].items() if "build" in svc or "<<" in svc}
    inline_env = [
        f"{name}: {key}"
        for name, svc in compose["services"].items()
        for key in (svc.get("environment") or {})
        if re.search(r"PASSWORD|SECRET|KEY|TOKEN", key)
    ]

    assert {svc["env_file"] for svc in app_services.values()} == {".env"}
    assert inline_env == []


def test_dockerfile_builds_from_python_slim_and_runs_as_a_non_root_user():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()

    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    assert re.search(r"^USER (?!root|0)\w+", dockerfile, flags=re.MULTILINE)


def test_makefile_has_the_documented_targets():
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.MULTILINE))

    assert {"install", "run", "test", "lint", "migrations-check", "worker", "bench", "format"} <= targets
