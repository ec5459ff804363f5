"""The settings module as a deployment sees it: fresh processes with a controlled environment."""

import os
import secrets
import subprocess
import sys

import pytest

from codingagent.tests.support import REPO_ROOT


def _clean_env(tmp_path, **extra: str) -> dict[str, str]:
    # Nothing from the test run (DATABASE_URL, REDIS_URL, S3_*, SECRET_KEY) leaks into the child.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "DATA_DIR": str(tmp_path / "data")}
    env.update(extra)
    return env


def test_the_app_refuses_to_start_with_the_default_secret_key_when_debug_is_off(tmp_path):
    code = "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'codingagent.settings'; django.setup()"

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=_clean_env(tmp_path), capture_output=True, text=True
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_the_app_starts_with_debug_on_and_no_secret_key(tmp_path):
    code = (
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'codingagent.settings'; django.setup();"
        "from django.conf import settings; print(settings.DEBUG)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=_clean_env(tmp_path, DEBUG="1"), capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_a_junk_boolean_stops_the_app_with_a_clear_message(tmp_path):
    code = "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'codingagent.settings'; django.setup()"

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=_clean_env(tmp_path, DEBUG="sometimes"),
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "DEBUG='sometimes' is not a boolean" in result.stderr


@pytest.mark.timeout(120)
def test_check_deploy_is_clean_with_debug_off_a_strong_key_and_allowed_hosts(tmp_path):
    env = _clean_env(tmp_path, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="codingagent.example.com")

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
