import pytest
from django.core.exceptions import ImproperlyConfigured

from codingagent.lib.env import env_bool, env_secret


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True), ("0", False), ("false", False), ("off", False)],
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("CA_TEST_FLAG", raw)

    assert env_bool("CA_TEST_FLAG") is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "tru"])
def test_env_bool_rejects_junk_with_the_variable_name(monkeypatch, raw):
    monkeypatch.setenv("CA_TEST_FLAG", raw)

    with pytest.raises(ImproperlyConfigured, match="CA_TEST_FLAG"):
        env_bool("CA_TEST_FLAG")


def test_env_bool_falls_back_to_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("CA_TEST_FLAG", raising=False)

    assert env_bool("CA_TEST_FLAG", True) is True


def test_env_secret_reads_the_file_named_by_x_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t-from-a-docker-secret\n")
    monkeypatch.setenv("CA_TEST_SECRET", "ignored-when-a-file-is-given")
    monkeypatch.setenv("CA_TEST_SECRET_FILE", str(secret_file))

    assert env_secret("CA_TEST_SECRET") == "s3cr3t-from-a-docker-secret"


def test_env_secret_reads_the_variable_when_no_file_is_given(monkeypatch):
    monkeypatch.delenv("CA_TEST_SECRET_FILE", raising=False)
    monkeypatch.setenv("CA_TEST_SECRET", "plain-value")

    assert env_secret("CA_TEST_SECRET") == "plain-value"
