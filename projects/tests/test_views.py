import pytest
from django.urls import reverse

from analysis.models import AnalysisSession
from projects.models import Dataset, Project, ProjectMember
from projects.tests.conftest import upload
from projects.tests.factories import DatasetFactory, ProjectFactory, ProjectMemberFactory

pytestmark = pytest.mark.django_db

CSV = b"region,price\nnorth,1.5\nsouth,\n"


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


# --- dashboard -----------------------------------------------------------------------------------


def test_dashboard_requires_login(client):
    response = client.get(reverse("projects:dashboard"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_dashboard_lists_only_my_projects_and_loads_recent_sessions(as_alice, project, charlie):
    ProjectFactory(owner=charlie, name="Charlie's secret")

    response = as_alice.get(reverse("projects:dashboard"))

    assert response.status_code == 200
    assert b"Sales analysis" in response.content
    assert b"Charlie&#x27;s secret" not in response.content
    assert b'id="recent-sessions"' in response.content
    assert b'id="project-create-form"' in response.content


def test_dashboard_wrong_method_is_405(as_alice):
    assert as_alice.post(reverse("projects:dashboard")).status_code == 405


def test_dashboard_queries_stay_constant_with_200_projects_and_2000_sessions(client, alice, django_assert_num_queries):
    projects = ProjectFactory.create_batch(200, owner=alice)
    AnalysisSession.objects.bulk_create(
        AnalysisSession(project=projects[i % 200], user=alice, title=f"Session {i}") for i in range(2000)
    )
    client.force_login(alice)

    # session + user + the annotated project list + the sidebar's project list
    with django_assert_num_queries(4):
        response = client.get(reverse("projects:dashboard"))

    assert response.status_code == 200
    assert response.content.count(b'class="card project-card"') == 200


# --- projects --------------------------------------------------------------------------------------


def test_creating_a_project_redirects_to_it(as_alice, alice):
    response = as_alice.post(reverse("projects:project-create"), {"name": "Churn", "description": "Why users leave"})

    project = Project.objects.get(name="Churn")
    assert response.url == project.get_absolute_url()
    assert project.memberships.get(user=alice).role == ProjectMember.Role.OWNER


def test_creating_a_project_without_a_name_shows_the_error(as_alice):
    response = as_alice.post(reverse("projects:project-create"), {"name": ""})

    assert response.status_code == 400
    assert b"This field is required" in response.content
    assert not Project.objects.exists()


def test_project_create_wrong_method_is_405(as_alice):
    assert as_alice.get(reverse("projects:project-create")).status_code == 405


def test_project_page_shows_datasets_members_sessions_and_upload_for_an_editor(client, project, bob, dataset):
    client.force_login(bob)

    response = client.get(project.get_absolute_url())

    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="datasets"' in content and "sales.csv" in content
    assert 'id="upload-form"' in content and 'hx-encoding="multipart/form-data"' in content
    assert 'id="project-sessions"' in content
    assert "alice@example.com" in content and "bob@example.com" in content
    # Only owners manage members.
    assert 'class="member-form"' not in content


def test_project_page_for_a_viewer_has_no_write_controls(client, project, vera, dataset):
    client.force_login(vera)

    content = client.get(project.get_absolute_url()).content.decode()

    assert "sales.csv" in content
    assert 'id="upload-form"' not in content
    assert reverse("projects:dataset-delete", args=[dataset.pk]) not in content
    assert reverse("projects:project-update", args=[project.pk]) not in content


def test_project_page_for_the_owner_has_member_management(as_alice, project, bob):
    content = as_alice.get(project.get_absolute_url()).content.decode()

    assert 'class="member-form"' in content
    assert reverse("projects:member-remove", args=[project.pk, project.memberships.get(user=bob).pk]) in content
    assert reverse("projects:project-delete", args=[project.pk]) in content


def test_project_page_wrong_method_is_405(as_alice, project):
    assert as_alice.post(project.get_absolute_url()).status_code == 405


def test_editing_a_project(client, project, bob):
    client.force_login(bob)
    url = reverse("projects:project-update", args=[project.pk])

    form_page = client.get(url)
    response = client.post(url, {"name": "Renamed", "description": "New words"})

    project.refresh_from_db()
    assert form_page.status_code == 200
    assert response.url == project.get_absolute_url()
    assert (project.name, project.description) == ("Renamed", "New words")


def test_editing_a_project_with_an_empty_name_keeps_the_old_one(as_alice, project):
    response = as_alice.post(reverse("projects:project-update", args=[project.pk]), {"name": ""})

    project.refresh_from_db()
    assert response.status_code == 400
    assert project.name == "Sales analysis"


def test_deleting_a_project(as_alice, project):
    response = as_alice.post(reverse("projects:project-delete", args=[project.pk]))

    assert response.url == reverse("projects:dashboard")
    assert not Project.objects.exists()


def test_project_delete_wrong_method_is_405(as_alice, project):
    assert as_alice.get(reverse("projects:project-delete", args=[project.pk])).status_code == 405


# --- members ---------------------------------------------------------------------------------------


def test_owner_adds_a_member_and_htmx_gets_the_members_partial(as_alice, project, charlie):
    response = as_alice.post(
        reverse("projects:member-add", args=[project.pk]),
        {"email": charlie.email, "role": "viewer"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert b'id="members"' in response.content and b"<html" not in response.content
    assert b"charlie@example.com" in response.content
    assert project.memberships.get(user=charlie).role == ProjectMember.Role.VIEWER


def test_adding_an_unknown_email_shows_the_error_inline(as_alice, project):
    response = as_alice.post(
        reverse("projects:member-add", args=[project.pk]),
        {"email": "ghost@example.com", "role": "viewer"},
        HTTP_HX_REQUEST="true",
    )

    assert b"No active user" in response.content
    assert project.memberships.count() == 2


def test_owner_removes_a_member(as_alice, project, bob):
    member = project.memberships.get(user=bob)

    response = as_alice.post(reverse("projects:member-remove", args=[project.pk, member.pk]))

    assert response.url == project.get_absolute_url()
    assert not project.memberships.filter(user=bob).exists()


def test_removing_the_creator_is_refused_with_a_message(as_alice, project, alice):
    member = project.memberships.get(user=alice)

    response = as_alice.post(reverse("projects:member-remove", args=[project.pk, member.pk]), HTTP_HX_REQUEST="true")

    assert b"creator cannot be removed" in response.content
    assert project.memberships.filter(user=alice).exists()


@pytest.mark.parametrize("url_name", ["projects:member-add", "projects:member-remove"])
def test_member_endpoints_wrong_method_is_405(as_alice, project, bob, url_name):
    args = [project.pk] if url_name == "projects:member-add" else [project.pk, project.memberships.get(user=bob).pk]

    assert as_alice.get(reverse(url_name, args=args)).status_code == 405


# --- datasets --------------------------------------------------------------------------------------


def test_htmx_upload_swaps_in_the_dataset_list_with_its_profile(client, project, bob):
    client.force_login(bob)

    response = client.post(
        reverse("projects:dataset-upload", args=[project.pk]),
        {"file": upload("prices.csv", CSV)},
        HTTP_HX_REQUEST="true",
    )

    content = response.content.decode()
    dataset = Dataset.objects.get()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section class="card" id="datasets">')
    assert f'id="dataset-{dataset.pk}"' in content
    assert "Uploaded prices.csv: 2 rows × 2 columns." in content
    assert '<td class="null">null</td>' in content


def test_plain_upload_redirects_to_the_project(client, project, bob):
    client.force_login(bob)

    response = client.post(reverse("projects:dataset-upload", args=[project.pk]), {"file": upload("prices.csv", CSV)})

    assert response.url == project.get_absolute_url()
    assert Dataset.objects.get().uploaded_by == bob


def test_upload_wrong_method_is_405(as_alice, project):
    assert as_alice.get(reverse("projects:dataset-upload", args=[project.pk])).status_code == 405


def test_dataset_page_shows_the_full_profile(client, project, vera, dataset):
    client.force_login(vera)

    response = client.get(reverse("projects:dataset-detail", args=[dataset.pk]))

    assert response.status_code == 200
    assert b"profile-columns" in response.content and b"profile-preview" in response.content
    assert reverse("projects:dataset-delete", args=[dataset.pk]).encode() not in response.content


def test_dataset_download_streams_the_stored_file(client, project, vera, dataset):
    client.force_login(vera)

    response = client.get(reverse("projects:dataset-download", args=[dataset.pk]))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="sales.csv"'
    assert b"".join(response.streaming_content) == b"a,b\n1,x\n2,y\n"


@pytest.mark.parametrize("url_name", ["projects:dataset-detail", "projects:dataset-download"])
def test_dataset_read_pages_wrong_method_is_405(as_alice, dataset, url_name):
    assert as_alice.post(reverse(url_name, args=[dataset.pk])).status_code == 405


def test_htmx_dataset_delete_swaps_the_list(client, project, bob, dataset, django_capture_on_commit_callbacks):
    client.force_login(bob)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("projects:dataset-delete", args=[dataset.pk]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert b"No data yet." in response.content and b"Choose a file to upload" in response.content
    assert not Dataset.objects.exists()


def test_dataset_delete_wrong_method_is_405(as_alice, dataset):
    assert as_alice.get(reverse("projects:dataset-delete", args=[dataset.pk])).status_code == 405


@pytest.mark.parametrize("n_datasets", [1, 30])
def test_project_page_queries_do_not_grow_with_datasets_or_members(
    client, project, alice, n_datasets, django_assert_num_queries
):
    DatasetFactory.create_batch(n_datasets, project=project)
    ProjectMemberFactory.create_batch(n_datasets, project=project, role=ProjectMember.Role.VIEWER)
    client.force_login(alice)

    # session + user + project (with my_role) + datasets + members + the sidebar's project list
    with django_assert_num_queries(6):
        response = client.get(project.get_absolute_url())

    assert response.content.count(b'class="dataset-profile"') == n_datasets
