"""`manage.py seed_demo`: the demo account and project that `make run` starts with."""

import csv
import io
import re
import runpy

import pytest
from django.core.management import call_command

from accounts.models import User
from codingagent.tests.support import REPO_ROOT
from projects.models import Dataset, Project

pytestmark = pytest.mark.django_db
SAMPLE_DIR = REPO_ROOT / "projects" / "sample_data"


def _seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _printed_password(output: str) -> str:
    return re.search(r"password: (\S+)", output).group(1)


def test_seed_demo_creates_an_admin_who_can_log_in_with_the_printed_password(client):
    output = _seed()

    password = _printed_password(output)
    user = User.objects.get(email="demo@codingagent.local")
    assert user.is_admin
    assert client.login(username="demo@codingagent.local", password=password)


def test_seed_demo_creates_the_demo_project_with_the_profiled_sales_dataset():
    _seed()

    project = Project.objects.get(name="Demo: sales 2024")
    dataset = Dataset.objects.get(project=project)
    assert project.owner.email == "demo@codingagent.local"
    assert dataset.original_filename == "sales.csv"
    assert (dataset.row_count, dataset.column_count) == (500, 6)


def test_seed_demo_run_twice_creates_nothing_new_and_prints_the_same_credentials():
    first = _seed()

    second = _seed()

    assert _printed_password(first) == _printed_password(second)
    assert (User.objects.count(), Project.objects.count(), Dataset.objects.count()) == (1, 1, 1)


def test_seed_demo_with_a_password_sets_it(client):
    _seed()

    output = _seed("--password", "a-chosen-demo-password")

    assert _printed_password(output) == "a-chosen-demo-password"
    assert client.login(username="demo@codingagent.local", password="a-chosen-demo-password")


def test_the_committed_sample_csv_is_what_the_generator_produces():
    generator = runpy.run_path(str(SAMPLE_DIR / "generate.py"))

    expected = [{key: str(value) for key, value in row.items()} for row in generator["sales_rows"]()]
    with (SAMPLE_DIR / "sales.csv").open(newline="") as fh:
        committed = list(csv.DictReader(fh))

    assert committed == expected
    assert list(committed[0]) == ["date", "region", "product", "units", "price", "revenue"]
