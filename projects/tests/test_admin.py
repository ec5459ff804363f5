import pytest
from django.urls import reverse

from projects.models import Dataset
from projects.tests.conftest import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:projects_project_changelist",
        "admin:projects_project_add",
        "admin:projects_dataset_changelist",
        "admin:projects_dataset_add",
    ],
)
def test_admin_list_and_add_pages_load(admin_client, project, dataset, url_name):
    assert admin_client.get(reverse(url_name)).status_code == 200


def test_project_change_page_shows_member_and_dataset_inlines(admin_client, project, dataset):
    response = admin_client.get(reverse("admin:projects_project_change", args=[project.pk]))

    assert response.status_code == 200
    assert b"bob@example.com" in response.content
    assert b"sales.csv" in response.content


def test_dataset_change_page_loads(admin_client, dataset):
    response = admin_client.get(reverse("admin:projects_dataset_change", args=[dataset.pk]))

    assert response.status_code == 200
    assert b"sales.csv" in response.content


def test_adding_a_dataset_in_the_admin_runs_the_validating_service(admin_client, project, admin_user):
    response = admin_client.post(
        reverse("admin:projects_dataset_add"), {"project": project.pk, "upload": upload("admin.csv", b"a\n1\n2\n")}
    )

    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert (dataset.name, dataset.row_count, dataset.uploaded_by) == ("admin.csv", 2, admin_user)


def test_a_bad_file_added_in_the_admin_shows_the_error(admin_client, project):
    response = admin_client.post(
        reverse("admin:projects_dataset_add"),
        {"project": project.pk, "upload": upload("x.csv", b"\x89PNG\r\n\x1a\nxx")},
    )

    assert response.status_code == 200
    assert b"looks like a PNG image" in response.content
    assert not Dataset.objects.exists()
