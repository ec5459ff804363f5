import pandas as pd
import pytest
from django.urls import reverse
from rest_framework.pagination import PageNumberPagination

from projects.models import Dataset, Project, ProjectMember
from projects.tests.conftest import frame_bytes, upload
from projects.tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

PROJECTS = reverse("api-v1:project-list")


def _detail(project):
    return reverse("api-v1:project-detail", args=[project.pk])


# --- projects --------------------------------------------------------------------------------------


def test_list_shows_my_projects_with_role_and_counts(api_as, project, bob, charlie, dataset):
    ProjectFactory(owner=charlie)

    response = api_as(bob).get(PROJECTS)

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 1
    assert body["results"][0]["my_role"] == "editor"
    assert body["results"][0]["dataset_count"] == 1
    assert body["results"][0]["owner"]["email"] == "alice@example.com"


def test_list_is_paginated(api_as, alice, monkeypatch):
    ProjectFactory.create_batch(3, owner=alice)
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)

    first = api_as(alice).get(PROJECTS)

    assert first.json()["count"] == 3
    assert len(first.json()["results"]) == 2
    assert first.json()["next"].endswith("?page=2")


def test_create_project_returns_201_and_makes_me_owner(api_as, alice):
    response = api_as(alice).post(PROJECTS, {"name": "Churn", "description": "d"}, format="json")

    assert response.status_code == 201
    assert response.json()["my_role"] == "owner"
    assert Project.objects.get().memberships.get().user == alice


def test_create_project_without_a_name_is_400(api_as, alice):
    response = api_as(alice).post(PROJECTS, {"description": "d"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()


def test_projects_api_requires_authentication(client):
    assert client.get(PROJECTS).status_code == 401


def test_project_collection_wrong_method_is_405(api_as, alice):
    assert api_as(alice).delete(PROJECTS).status_code == 405


def test_get_and_patch_a_project(api_as, project, bob):
    client = api_as(bob)

    got = client.get(_detail(project))
    patched = client.patch(_detail(project), {"description": "Updated"}, format="json")

    assert got.json()["name"] == "Sales analysis"
    assert patched.status_code == 200
    assert patched.json()["description"] == "Updated"
    assert patched.json()["name"] == "Sales analysis"


def test_patching_a_blank_name_is_400(api_as, project, alice):
    response = api_as(alice).patch(_detail(project), {"name": " "}, format="json")

    project.refresh_from_db()
    assert response.status_code == 400
    assert project.name == "Sales analysis"


def test_owner_deletes_a_project(api_as, project, alice):
    response = api_as(alice).delete(_detail(project))

    assert response.status_code == 204
    assert not Project.objects.exists()


def test_project_detail_wrong_method_is_405(api_as, project, alice):
    assert api_as(alice).put(_detail(project), {"name": "x"}, format="json").status_code == 405


# --- members ---------------------------------------------------------------------------------------


def test_members_are_listed_for_any_member(api_as, project, vera):
    response = api_as(vera).get(reverse("api-v1:project-member-list", args=[project.pk]))

    assert response.status_code == 200
    assert [m["user"]["email"] for m in response.json()["results"]] == [
        "alice@example.com",
        "bob@example.com",
        "vera@example.com",
    ]


def test_owner_adds_a_member_by_email(api_as, project, alice, charlie):
    response = api_as(alice).post(
        reverse("api-v1:project-member-list", args=[project.pk]),
        {"email": "Charlie@Example.com", "role": "editor"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["role"] == "editor"
    assert project.memberships.get(user=charlie).role == ProjectMember.Role.EDITOR


def test_adding_an_unknown_email_is_400(api_as, project, alice):
    response = api_as(alice).post(
        reverse("api-v1:project-member-list", args=[project.pk]), {"email": "ghost@example.com"}, format="json"
    )

    assert response.status_code == 400
    assert "email" in response.json()


def test_owner_changes_and_removes_a_member(api_as, project, alice, bob):
    url = reverse("api-v1:project-member-detail", args=[project.pk, project.memberships.get(user=bob).pk])
    client = api_as(alice)

    patched = client.patch(url, {"role": "viewer"}, format="json")
    deleted = client.delete(url)

    assert patched.json()["role"] == "viewer"
    assert deleted.status_code == 204
    assert not project.memberships.filter(user=bob).exists()


def test_the_creator_cannot_be_removed_through_the_api(api_as, project, alice):
    url = reverse("api-v1:project-member-detail", args=[project.pk, project.memberships.get(user=alice).pk])

    response = api_as(alice).delete(url)

    assert response.status_code == 400
    assert project.memberships.filter(user=alice).exists()


def test_a_member_of_another_project_is_404_here(api_as, project, alice, charlie):
    other = ProjectFactory(owner=charlie)
    url = reverse("api-v1:project-member-detail", args=[project.pk, other.memberships.get().pk])

    assert api_as(alice).delete(url).status_code == 404


@pytest.mark.parametrize(("method", "detail"), [("delete", False), ("get", True)])
def test_member_endpoints_wrong_method_is_405(api_as, project, alice, method, detail):
    args = [project.pk, project.memberships.get(user=alice).pk] if detail else [project.pk]
    url = reverse("api-v1:project-member-detail" if detail else "api-v1:project-member-list", args=args)

    assert getattr(api_as(alice), method)(url).status_code == 405


# --- datasets --------------------------------------------------------------------------------------


def test_upload_answers_201_with_the_dataset_and_its_profile(api_as, project, bob):
    content = frame_bytes(pd.DataFrame({"a": [1, 2, None]}), "parquet")

    response = api_as(bob).post(
        reverse("api-v1:project-dataset-list", args=[project.pk]),
        {"file": upload("nums.parquet", content)},
        format="multipart",
    )

    body = response.json()
    assert response.status_code == 201
    assert (body["name"], body["format"], body["row_count"], body["column_count"]) == ("nums.parquet", "parquet", 3, 1)
    assert body["profile"]["columns"][0]["missing"] == 1
    assert body["profile"]["preview"]["rows"] == [[1.0], [2.0], [None]]
    assert body["uploaded_by"]["email"] == "bob@example.com"


def test_upload_as_json_body_is_415(api_as, project, bob):
    response = api_as(bob).post(reverse("api-v1:project-dataset-list", args=[project.pk]), {"file": "x"}, format="json")

    assert response.status_code == 415


def test_datasets_are_listed_without_profiles(api_as, project, vera, dataset):
    response = api_as(vera).get(reverse("api-v1:project-dataset-list", args=[project.pk]))

    result = response.json()["results"][0]
    assert response.status_code == 200
    assert result["name"] == "sales.csv"
    assert "profile" not in result
    assert result["download_url"] == reverse("projects:dataset-download", args=[dataset.pk])


def test_dataset_detail_includes_the_profile(api_as, vera, dataset):
    response = api_as(vera).get(reverse("api-v1:dataset-detail", args=[dataset.pk]))

    assert response.status_code == 200
    assert response.json()["profile"]["preview"]["columns"] == ["a", "b"]


def test_editor_deletes_a_dataset(api_as, bob, dataset):
    response = api_as(bob).delete(reverse("api-v1:dataset-detail", args=[dataset.pk]))

    assert response.status_code == 204
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("method", "url_name"), [("delete", "api-v1:project-dataset-list"), ("patch", "api-v1:dataset-detail")]
)
def test_dataset_endpoints_wrong_method_is_405(api_as, project, alice, dataset, method, url_name):
    url = reverse(url_name, args=[project.pk if url_name == "api-v1:project-dataset-list" else dataset.pk])

    assert getattr(api_as(alice), method)(url).status_code == 405


@pytest.mark.parametrize("n_projects", [1, 25])
def test_project_list_api_queries_do_not_grow_with_projects(api_as, alice, n_projects, django_assert_num_queries):
    ProjectFactory.create_batch(n_projects, owner=alice)
    client = api_as(alice)

    # user (bearer token) + count + page
    with django_assert_num_queries(3):
        response = client.get(PROJECTS)

    assert response.json()["count"] == n_projects
