import io

import pandas as pd
import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import UserFactory
from projects.models import ProjectMember
from projects.tests.factories import DatasetFactory, ProjectMemberFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def vera(project):
    """A viewer of alice's project: may read everything in it, change nothing."""
    user = UserFactory(email="vera@example.com", full_name="Vera Viewer")
    ProjectMemberFactory(project=project, user=user, role=ProjectMember.Role.VIEWER)
    return user


@pytest.fixture
def dataset(project, alice):
    return DatasetFactory(project=project, uploaded_by=alice, name="sales.csv")


@pytest.fixture
def api_as():
    """An API client that authenticates as ``user`` with a real bearer token."""

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        return client

    return make


@pytest.fixture
def stored_files():
    """The file names stored for a project's datasets (through the storage API, so S3 works too)."""

    def list_for(project) -> list[str]:
        try:
            return default_storage.listdir(f"projects/{project.pk}/datasets")[1]
        except FileNotFoundError:
            return []

    return list_for


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def frame_bytes(frame: pd.DataFrame, fmt: str, **kwargs) -> bytes:
    """``frame`` written in one of the dataset formats."""
    buffer = io.BytesIO()
    if fmt == "xlsx":
        frame.to_excel(buffer, index=False)
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False, **kwargs)
    elif fmt == "json":
        buffer.write(frame.to_json(orient="records", date_format="iso").encode())
    elif fmt == "tsv":
        buffer.write(frame.to_csv(index=False, sep="\t").encode())
    else:
        buffer.write(frame.to_csv(index=False).encode())
    return buffer.getvalue()
