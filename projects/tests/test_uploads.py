"""Bad uploads get a clear message and leave nothing behind: no Dataset row, no stored file."""

import io
import zipfile

import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from projects import services
from projects.models import Dataset
from projects.tests.conftest import frame_bytes, upload

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(64)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX_LIKE = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"})
BROKEN_XLSX = _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"not xml at all"})
PARQUET = frame_bytes(pd.DataFrame({"a": [1, 2]}), "parquet")

BAD_UPLOADS = [
    pytest.param("empty.csv", b"", "The file is empty", id="empty"),
    pytest.param("image.csv", PNG, "looks like a PNG image", id="png-renamed-csv"),
    pytest.param("program.csv", ELF, "looks like an executable", id="elf-renamed-csv"),
    pytest.param("report.json", b"%PDF-1.7\n%\xe2\xe3", "looks like a PDF", id="pdf-renamed-json"),
    pytest.param("data.csv", PARQUET, "looks like a Parquet file", id="parquet-renamed-csv"),
    pytest.param("latin1.csv", "name\nnaïve\n".encode("latin-1"), "not a CSV file in UTF-8", id="latin1"),
    pytest.param("utf16.csv", "a,b\n1,2\n".encode("utf-16"), "binary data", id="utf16"),
    pytest.param("nul.tsv", b"a\tb\n1\t\x00\n", "NUL bytes", id="nul-bytes"),
    pytest.param("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "could not be parsed as CSV", id="ragged-csv"),
    pytest.param("quote.csv", b'a,b\n"1,2\n', "could not be parsed as CSV", id="unclosed-quote"),
    pytest.param("header.csv", b"a,b\n", "no data rows", id="header-only"),
    pytest.param("blank.csv", b"\n\n\n", "no columns", id="blank-lines"),
    pytest.param("broken.json", b'{"a": [1, 2', "could not be read as JSON", id="broken-json"),
    pytest.param("fake.xlsx", b"a,b\n1,2\n", "not a valid Excel workbook", id="csv-renamed-xlsx"),
    pytest.param("letter.xlsx", DOCX_LIKE, "not a spreadsheet", id="docx-renamed-xlsx"),
    pytest.param("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "Legacy Excel", id="xls-renamed-xlsx"),
    pytest.param("broken.xlsx", BROKEN_XLSX, "could not be read as Excel", id="corrupt-xlsx"),
    pytest.param("fake.parquet", b"a,b\n1,2\n", "not a valid Parquet file", id="csv-renamed-parquet"),
    pytest.param("cut.parquet", PARQUET[:-10], "not a valid Parquet file", id="truncated-parquet"),
    pytest.param("hollow.parquet", b"PAR1" + bytes(32) + b"PAR1", "could not be read as Parquet", id="corrupt-parquet"),
    pytest.param("notes.txt", b"hello", "not a supported dataset type", id="unsupported-extension"),
    pytest.param("README", b"a,b\n1,2\n", "not a supported dataset type", id="no-extension"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_UPLOADS)
def test_dataset_create_rejects_bad_files_and_stores_nothing(project, alice, stored_files, name, content, message):
    with pytest.raises(ValidationError) as exc:
        services.dataset_create(project=project, uploaded_file=upload(name, content), user=alice)

    assert message in exc.value.message_dict["file"][0]
    assert not Dataset.objects.exists()
    assert stored_files(project) == []


def test_a_file_over_the_size_limit_is_rejected(project, alice, stored_files, settings):
    settings.DATASET_MAX_BYTES = 100

    with pytest.raises(ValidationError) as exc:
        services.dataset_create(project=project, uploaded_file=upload("big.csv", b"a,b\n" + b"1,2\n" * 50), user=alice)

    assert "too large" in exc.value.message_dict["file"][0]
    assert not Dataset.objects.exists()
    assert stored_files(project) == []


@pytest.mark.parametrize(("name", "content", "message"), BAD_UPLOADS[:4] + BAD_UPLOADS[-3:])
def test_the_api_answers_400_with_the_message_for_bad_files(api_as, project, bob, stored_files, name, content, message):
    url = reverse("api-v1:project-dataset-list", args=[project.pk])

    response = api_as(bob).post(url, {"file": upload(name, content)}, format="multipart")

    assert response.status_code == 400
    assert message in response.json()["file"][0]
    assert not Dataset.objects.exists()
    assert stored_files(project) == []


def test_the_api_refuses_a_body_larger_than_the_limit_without_parsing_it(api_as, project, bob, stored_files, settings):
    settings.DATASET_MAX_BYTES = 1000
    url = reverse("api-v1:project-dataset-list", args=[project.pk])

    response = api_as(bob).post(url, {"file": upload("huge.csv", b"a\n" + b"1\n" * 100_000)}, format="multipart")

    assert response.status_code == 400
    assert "too large" in response.json()["file"][0]
    assert not Dataset.objects.exists()
    assert stored_files(project) == []


def test_the_api_stops_keeping_a_streamed_file_once_it_passes_the_limit(api_as, project, bob, stored_files, settings):
    settings.DATASET_MAX_BYTES = 1000
    url = reverse("api-v1:project-dataset-list", args=[project.pk])

    response = api_as(bob).post(url, {"file": upload("big.csv", b"a\n" + b"1\n" * 3000)}, format="multipart")

    assert response.status_code == 400
    assert "too large (5.9 KB)" in response.json()["file"][0]
    assert stored_files(project) == []


def test_the_api_upload_without_a_file_is_400(api_as, project, bob):
    response = api_as(bob).post(reverse("api-v1:project-dataset-list", args=[project.pk]), {}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()


def test_the_page_upload_shows_the_error_inline_for_htmx(client, project, bob, stored_files):
    client.force_login(bob)

    response = client.post(
        reverse("projects:dataset-upload", args=[project.pk]),
        {"file": upload("image.csv", PNG)},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert b'id="upload-errors"' in response.content
    assert b"looks like a PNG image" in response.content
    assert b"<html" not in response.content
    assert stored_files(project) == []


def test_the_page_upload_refuses_an_oversize_file_before_the_csrf_check_reads_it(
    client, project, bob, settings, stored_files
):
    settings.DATASET_MAX_BYTES = 1000
    client.force_login(bob)

    response = client.post(
        reverse("projects:dataset-upload", args=[project.pk]), {"file": upload("big.csv", b"a\n" + b"1\n" * 3000)}
    )

    assert response.status_code == 400
    assert b"too large" in response.content
    assert stored_files(project) == []


def test_the_page_upload_still_checks_csrf(project, bob):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)

    response = client.post(reverse("projects:dataset-upload", args=[project.pk]), {"file": upload("a.csv", b"a\n1\n")})

    assert response.status_code == 403
    assert not Dataset.objects.exists()
