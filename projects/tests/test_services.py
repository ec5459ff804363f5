import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from projects import services
from projects.models import Dataset, Project, ProjectMember
from projects.selectors import project_editable_qs_for, project_list_for_user, project_owned_qs_for, project_qs_for
from projects.tests.conftest import upload
from projects.tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db

CSV = b"region,price\nnorth,1.5\nsouth,2.5\n"


# --- projects and the permission selectors ------------------------------------------------------


def test_project_create_makes_the_creator_its_owner_member(alice):
    project = services.project_create(owner=alice, name="  Churn  ", description="why")

    assert project.name == "Churn"
    assert project.memberships.get().role == ProjectMember.Role.OWNER
    assert project.memberships.get().user == alice


def test_project_create_refuses_a_blank_name(alice):
    with pytest.raises(ValidationError):
        services.project_create(owner=alice, name="   ")

    assert not Project.objects.exists()


def test_selectors_scope_projects_by_role(project, alice, bob, charlie, vera):
    assert list(project_qs_for(user=vera)) == [project]
    assert list(project_editable_qs_for(user=vera)) == []
    assert list(project_editable_qs_for(user=bob)) == [project]
    assert list(project_owned_qs_for(user=bob)) == []
    assert list(project_owned_qs_for(user=alice)) == [project]
    assert list(project_qs_for(user=charlie)) == []


def test_project_list_annotates_the_callers_role_and_dataset_count(project, bob, dataset):
    listed = project_list_for_user(user=bob).get()

    assert listed.my_role == ProjectMember.Role.EDITOR
    assert listed.dataset_count == 1


def test_project_update_changes_name_and_description(project):
    services.project_update(project=project, data={"name": "Renamed", "description": "New"})

    project.refresh_from_db()
    assert (project.name, project.description) == ("Renamed", "New")


def test_project_delete_removes_its_dataset_files_after_commit(project, alice, django_capture_on_commit_callbacks):
    dataset = services.dataset_create(project=project, uploaded_file=upload("a.csv", CSV), user=alice)
    name = dataset.file.name

    with django_capture_on_commit_callbacks(execute=True):
        services.project_delete(project=project)

    assert not Project.objects.filter(pk=project.pk).exists()
    assert not default_storage.exists(name)


# --- members ---------------------------------------------------------------------------------


def test_member_add_finds_the_user_by_email_case_insensitively(project, charlie):
    member = services.member_add(project=project, email="CHARLIE@example.com", role=ProjectMember.Role.VIEWER)

    assert member.user == charlie
    assert list(project_qs_for(user=charlie)) == [project]


def test_member_add_refuses_an_unknown_email(project):
    with pytest.raises(ValidationError) as exc:
        services.member_add(project=project, email="nobody@example.com", role=ProjectMember.Role.VIEWER)

    assert "No active user" in exc.value.message_dict["email"][0]


def test_member_add_refuses_an_existing_member(project, bob):
    with pytest.raises(ValidationError) as exc:
        services.member_add(project=project, email=bob.email, role=ProjectMember.Role.VIEWER)

    assert "already a member" in exc.value.message_dict["email"][0]


def test_member_add_refuses_an_unknown_role(project, charlie):
    with pytest.raises(ValidationError):
        services.member_add(project=project, email=charlie.email, role="superhero")

    assert not project.memberships.filter(user=charlie).exists()


def test_member_update_changes_a_role(project, bob):
    member = project.memberships.get(user=bob)

    services.member_update(member=member, role=ProjectMember.Role.VIEWER)

    assert list(project_editable_qs_for(user=bob)) == []


def test_the_creators_owner_membership_cannot_be_demoted(project, alice):
    with pytest.raises(ValidationError):
        services.member_update(member=project.memberships.get(user=alice), role=ProjectMember.Role.VIEWER)

    assert project.memberships.get(user=alice).role == ProjectMember.Role.OWNER


def test_the_creators_owner_membership_cannot_be_removed(project, alice):
    with pytest.raises(ValidationError):
        services.member_remove(member=project.memberships.get(user=alice))

    assert project.memberships.filter(user=alice, role=ProjectMember.Role.OWNER).exists()


def test_a_second_owner_can_be_demoted(project, bob):
    services.member_update(member=project.memberships.get(user=bob), role=ProjectMember.Role.OWNER)

    services.member_update(member=project.memberships.get(user=bob), role=ProjectMember.Role.VIEWER)

    assert project.memberships.get(user=bob).role == ProjectMember.Role.VIEWER


def test_member_remove_revokes_access(project, bob):
    services.member_remove(member=project.memberships.get(user=bob))

    assert list(project_qs_for(user=bob)) == []


# --- datasets: storing and naming ---------------------------------------------------------------


def test_dataset_create_stores_the_file_and_its_profile(project, alice, stored_files):
    dataset = services.dataset_create(project=project, uploaded_file=upload("sales.csv", CSV), user=alice)

    assert (dataset.name, dataset.format, dataset.size) == ("sales.csv", "csv", len(CSV))
    assert (dataset.row_count, dataset.column_count) == (2, 2)
    assert dataset.uploaded_by == alice
    assert stored_files(project) == [dataset.file.name.rsplit("/", 1)[-1]]
    with dataset.file.open("rb") as fh:
        assert fh.read() == CSV


def test_dataset_names_are_unique_per_project(project, alice):
    first = services.dataset_create(project=project, uploaded_file=upload("sales.csv", CSV), user=alice)
    second = services.dataset_create(project=project, uploaded_file=upload("sales.csv", CSV), user=alice)
    third = services.dataset_create(project=project, uploaded_file=upload("SALES.csv", CSV), user=alice)
    fourth = services.dataset_create(project=project, uploaded_file=upload("sales.csv", CSV), user=alice)

    assert [first.name, second.name, third.name, fourth.name] == [
        "sales.csv",
        "sales-2.csv",
        "SALES.csv",
        "sales-3.csv",
    ]
    assert first.file.name != second.file.name


def test_the_same_name_is_free_in_another_project(project, alice):
    other = services.project_create(owner=alice, name="Other")
    services.dataset_create(project=project, uploaded_file=upload("sales.csv", CSV), user=alice)

    dataset = services.dataset_create(project=other, uploaded_file=upload("sales.csv", CSV), user=alice)

    assert dataset.name == "sales.csv"


@pytest.mark.parametrize(
    ("uploaded_name", "stored_name"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("C:\\Users\\me\\Desktop\\report.CSV", "report.csv"),
        ("my sales (2024).csv", "my_sales_2024.csv"),
        ("Überblick café.tsv", "Uberblick_cafe.tsv"),
        (".hidden.csv", "hidden.csv"),
        ("<img src=x onerror=alert(1)>.csv", "img_src_x_onerror_alert_1.csv"),
        ("???.csv", "dataset.csv"),
        ("a..b.csv", "a.b.csv"),
    ],
)
def test_dataset_file_names_are_sanitized(project, alice, uploaded_name, stored_name):
    dataset = services.dataset_create(project=project, uploaded_file=upload(uploaded_name, CSV), user=alice)

    assert dataset.name == stored_name
    assert uploaded_name.endswith(dataset.original_filename)
    assert "/" not in dataset.file.name.removeprefix(f"projects/{project.pk}/datasets/")


def test_a_very_long_name_is_shortened_but_keeps_its_extension(project, alice):
    dataset = services.dataset_create(project=project, uploaded_file=upload("x" * 300 + ".csv", CSV), user=alice)

    assert dataset.name == "x" * 100 + ".csv"


def test_dataset_delete_removes_the_row_and_then_the_file(
    project, alice, stored_files, django_capture_on_commit_callbacks
):
    dataset = services.dataset_create(project=project, uploaded_file=upload("sales.csv", CSV), user=alice)

    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_delete(dataset=dataset)

    assert not Dataset.objects.exists()
    assert stored_files(project) == []


def test_dataset_factory_rows_are_scoped_like_uploads(project, charlie):
    DatasetFactory(project=project)

    assert not Dataset.objects.filter(project__in=project_qs_for(user=charlie)).exists()
