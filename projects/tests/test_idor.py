"""Every project-scoped URL this app owns, walked as an outsider, a viewer, an editor and an anonymous client.

The rule, applied through the permission selectors (``get_object_or_403`` over the visible and the
editable/owned querysets):
- a user who is not a member (charlie) gets 404 for everything, reads and writes alike, so nobody
  learns which ids exist;
- a member who can see the object but whose role does not allow the action gets 403
  (a viewer writing anything; an editor doing an owner-only thing: members, project deletion);
- nothing changes in either case.
"""

from dataclasses import dataclass, field

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from projects.models import Dataset, Project, ProjectMember
from projects.tests.conftest import upload


@dataclass(frozen=True)
class Endpoint:
    transport: str  # "page" (session) or "api" (bearer token)
    method: str
    url_name: str
    target: str  # which object the URL names: project, member or dataset
    write: bool
    owner_only: bool = False
    data: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.transport}-{self.method}-{self.url_name.split(':')[1]}"


def _file() -> dict:
    return {"file": upload("evil.csv", b"a,b\n1,2\n")}


ENDPOINTS = [
    Endpoint("page", "get", "projects:project-detail", "project", write=False),
    Endpoint("page", "get", "projects:project-update", "project", write=True),
    Endpoint("page", "post", "projects:project-update", "project", write=True, data={"name": "Hacked"}),
    Endpoint("page", "post", "projects:project-delete", "project", write=True, owner_only=True),
    Endpoint(
        "page",
        "post",
        "projects:member-add",
        "project",
        write=True,
        owner_only=True,
        data={"email": "charlie@example.com", "role": "owner"},
    ),
    Endpoint("page", "post", "projects:member-remove", "member", write=True, owner_only=True),
    Endpoint("page", "post", "projects:dataset-upload", "project", write=True, data={"file": None}),
    Endpoint("page", "get", "projects:dataset-detail", "dataset", write=False),
    Endpoint("page", "get", "projects:dataset-download", "dataset", write=False),
    Endpoint("page", "post", "projects:dataset-delete", "dataset", write=True),
    Endpoint("api", "get", "api-v1:project-detail", "project", write=False),
    Endpoint("api", "patch", "api-v1:project-detail", "project", write=True, data={"name": "Hacked"}),
    Endpoint("api", "delete", "api-v1:project-detail", "project", write=True, owner_only=True),
    Endpoint("api", "get", "api-v1:project-member-list", "project", write=False),
    Endpoint(
        "api",
        "post",
        "api-v1:project-member-list",
        "project",
        write=True,
        owner_only=True,
        data={"email": "charlie@example.com", "role": "owner"},
    ),
    Endpoint(
        "api", "patch", "api-v1:project-member-detail", "member", write=True, owner_only=True, data={"role": "owner"}
    ),
    Endpoint("api", "delete", "api-v1:project-member-detail", "member", write=True, owner_only=True),
    Endpoint("api", "get", "api-v1:project-dataset-list", "project", write=False),
    Endpoint("api", "post", "api-v1:project-dataset-list", "project", write=True, data={"file": None}),
    Endpoint("api", "get", "api-v1:dataset-detail", "dataset", write=False),
    Endpoint("api", "delete", "api-v1:dataset-detail", "dataset", write=True),
]
WRITES = [e for e in ENDPOINTS if e.write]
OWNER_ONLY = [e for e in ENDPOINTS if e.owner_only]
READS = [e for e in ENDPOINTS if not e.write]


@pytest.fixture
def world(project, bob, vera, dataset):
    """alice owns the project; bob edits; vera views; the project holds one dataset."""
    return {"project": project, "member": project.memberships.get(user=bob), "dataset": dataset}


@pytest.fixture
def call(client, api_as, world):
    def request(endpoint: Endpoint, user):
        target = world[endpoint.target]
        args = [world["project"].pk, target.pk] if endpoint.target == "member" else [target.pk]
        url = reverse(endpoint.url_name, args=args)
        data = {**endpoint.data, **(_file() if "file" in endpoint.data else {})}
        if endpoint.transport == "page":
            if user is not None:
                client.force_login(user)
            return getattr(client, endpoint.method)(url, data)
        api = api_as(user) if user is not None else APIClient()
        fmt = "multipart" if "file" in data else "json"
        return getattr(api, endpoint.method)(url, data, format=fmt)

    return request


@pytest.fixture
def unchanged(world):
    """Asserts that the project, its members and its dataset are exactly as they were."""

    def check() -> None:
        project = Project.objects.get(pk=world["project"].pk)
        assert project.name == "Sales analysis"
        assert dict(project.memberships.values_list("user__email", "role")) == {
            "alice@example.com": ProjectMember.Role.OWNER,
            "bob@example.com": ProjectMember.Role.EDITOR,
            "vera@example.com": ProjectMember.Role.VIEWER,
        }
        assert list(Dataset.objects.values_list("name", flat=True)) == ["sales.csv"]

    return check


pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_an_outsider_gets_404_everywhere_and_changes_nothing(call, charlie, unchanged, endpoint):
    response = call(endpoint, charlie)

    assert response.status_code == 404
    unchanged()


@pytest.mark.parametrize("endpoint", WRITES, ids=str)
def test_a_viewer_gets_403_for_every_write_and_changes_nothing(call, vera, unchanged, endpoint):
    response = call(endpoint, vera)

    assert response.status_code == 403
    unchanged()


@pytest.mark.parametrize("endpoint", OWNER_ONLY, ids=str)
def test_an_editor_gets_403_for_owner_only_actions(call, bob, unchanged, endpoint):
    response = call(endpoint, bob)

    assert response.status_code == 403
    unchanged()


@pytest.mark.parametrize("endpoint", READS, ids=str)
def test_a_viewer_can_read_everything(call, vera, endpoint):
    response = call(endpoint, vera)

    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_anonymous_clients_are_sent_to_login_or_get_401(call, unchanged, endpoint):
    response = call(endpoint, None)

    assert response.status_code == (302 if endpoint.transport == "page" else 401)
    unchanged()
