"""File storage: whatever backend the settings configure, and S3 through our own settings' OPTIONS."""

import runpy
import urllib.request

import boto3
import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.utils.module_loading import import_string
from storages.backends.s3 import S3Storage

from codingagent.tests.support import REPO_ROOT


def test_default_storage_saves_reads_and_deletes_a_file_with_the_configured_backend():
    configured_backend = import_string(django_settings.STORAGES["default"]["BACKEND"])
    payload = "région,revenue\nNorth,1200.50\n".encode()

    name = default_storage.save("codingagent-tests/roundtrip.csv", ContentFile(payload))
    with default_storage.open(name, "rb") as fh:
        read_back = fh.read()
    size = default_storage.size(name)
    default_storage.delete(name)

    assert type(storages["default"]) is configured_backend
    assert read_back == payload
    assert size == len(payload)
    assert not default_storage.exists(name)


@pytest.fixture
def s3_options_from_settings(monkeypatch, moto_endpoint, tmp_path):
    """Evaluate codingagent/settings.py as a deployment with S3_* set would, and return its storage OPTIONS."""
    env = {
        "DEBUG": "1",
        "DATA_DIR": str(tmp_path),
        "S3_BUCKET": "codingagent-settings-test",
        "S3_ENDPOINT_URL": moto_endpoint,
        "S3_ACCESS_KEY": "moto-access",
        "S3_SECRET_KEY": "moto-secret",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace = runpy.run_path(str(REPO_ROOT / "codingagent" / "settings.py"))
    boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="moto-access",
        aws_secret_access_key="moto-secret",
        region_name="us-east-1",
    ).create_bucket(Bucket="codingagent-settings-test")
    return namespace["STORAGES"]["default"]


def test_settings_select_s3storage_when_s3_bucket_is_set(s3_options_from_settings):
    assert s3_options_from_settings["BACKEND"] == "storages.backends.s3.S3Storage"
    assert s3_options_from_settings["OPTIONS"]["bucket_name"] == "codingagent-settings-test"


def test_s3storage_with_our_options_round_trips_a_file_through_a_real_s3_server(s3_options_from_settings):
    storage = S3Storage(**s3_options_from_settings["OPTIONS"])
    payload = b"date,revenue\n2024-01-01,10.5\n"

    name = storage.save("projects/1/datasets/sales.csv", ContentFile(payload))
    with storage.open(name, "rb") as fh:
        read_back = fh.read()
    with urllib.request.urlopen(storage.url(name), timeout=10) as response:  # a presigned URL
        downloaded = response.read()
    storage.delete(name)

    assert read_back == payload
    assert downloaded == payload
    assert not storage.exists(name)


def test_s3storage_with_our_options_never_overwrites_an_existing_file(s3_options_from_settings):
    storage = S3Storage(**s3_options_from_settings["OPTIONS"])

    first = storage.save("exports/report.md", ContentFile(b"first"))
    second = storage.save("exports/report.md", ContentFile(b"second"))

    assert first != second
    assert storage.open(first).read() == b"first"
    assert storage.open(second).read() == b"second"
