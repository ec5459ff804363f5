"""Fixtures for the analysis tests: datasets on storage, sessions, a worker with the real sandbox."""

from __future__ import annotations

import io

import pandas as pd
import pydantic_ai.models
import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from analysis.tests.factories import AnalysisSessionFactory
from analysis.worker import Worker
from projects.models import Dataset

# Only the loopback test may talk HTTP to a model; it flips this back on for itself.
pydantic_ai.models.ALLOW_MODEL_REQUESTS = False

SALES = pd.DataFrame(
    {
        "order_date": pd.date_range("2024-01-01", periods=24, freq="7D").strftime("%Y-%m-%d"),
        "Region": ["North", "South", "East", "West"] * 6,
        "product": ["Widget", "Gadget", "Doohickey"] * 8,
        "Unit Price": [10.0, 12.5, 8.0, 15.0, 11.0, 9.5, 14.0, 7.5] * 3,
        "quantity": [3, 5, 2, 7, 1, 4, 6, 8, 2, 3, 5, 9, 4, 2, 6, 1, 7, 3, 5, 2, 8, 4, 3, 6],
    }
)
SALES["revenue"] = SALES["Unit Price"] * SALES["quantity"]

PENGUINS = pd.DataFrame(
    {
        "species": ["Adelie", "Gentoo", "Chinstrap", "Adelie", "Gentoo", "Adelie", "Chinstrap", "Gentoo", "Adelie",
                    "Gentoo"],
        "island": ["Torgersen", "Biscoe", "Dream", "Dream", "Biscoe", "Biscoe", "Dream", "Biscoe", "Torgersen",
                   "Biscoe"],
        "bill_length_mm": [39.1, 46.1, 46.5, None, 50.0, 38.9, 49.0, 47.3, 36.7, 48.7],
        "body_mass_g": [3750, 4500, 3500, 3450, 5700, 3625, 3950, 5200, 3450, None],
        "flipper_length_mm": [181, 211, 192, 186, 230, 190, 196, 214, 187, 222],
    }
)  # fmt: skip


def dataset_make(*, project, name: str, frame: pd.DataFrame) -> Dataset:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    raw = buffer.getvalue().encode()
    profile = {
        "columns": [
            {"name": str(c), "dtype": str(frame[c].dtype), "missing": int(frame[c].isna().sum())} for c in frame
        ],
        "preview": {
            "columns": list(map(str, frame.columns)),
            "rows": frame.head(5).astype(object).where(frame.head(5).notna(), None).values.tolist(),
        },
    }
    dataset = Dataset(
        project=project,
        name=name,
        original_filename=name,
        size=len(raw),
        format="csv",
        row_count=len(frame),
        column_count=frame.shape[1],
        profile=profile,
    )
    dataset.file.save(name, ContentFile(raw), save=False)
    dataset.save()
    return dataset


@pytest.fixture
def sales(project):
    return dataset_make(project=project, name="sales.csv", frame=SALES)


@pytest.fixture
def penguins(project):
    return dataset_make(project=project, name="penguins.csv", frame=PENGUINS)


@pytest.fixture
def session(project, alice):
    return AnalysisSessionFactory(project=project, user=alice, title="Revenue questions")


@pytest.fixture
def worker():
    """A worker using the real sandbox; closed (kernels stopped) after the test."""
    w = Worker(worker_id="test-worker")
    yield w
    w.close()


@pytest.fixture
def api(alice):
    """An API client authenticated as alice."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def offline_only(settings):
    """The built-in offline analyst answers, whatever model the environment configures."""
    settings.OPENROUTER_API_KEY = ""
    settings.LLM_BASE_URL = ""


@pytest.fixture(scope="module")
def shared_worker(request):
    """One run worker (and its fork server) for a whole test module."""
    worker = Worker(worker_id=f"{request.module.__name__.rsplit('.', 1)[-1]}-worker")
    yield worker
    worker.close()


@pytest.fixture
def demo_sales(project, alice):
    """The demo's projects/sample_data/sales.csv uploaded to the project."""
    from analysis.tests.offline_support import SAMPLE_SALES, upload

    return upload(project, alice, "sales.csv", SAMPLE_SALES.read_bytes())
