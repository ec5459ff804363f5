"""Shared fixtures: the personas alice (owner), bob (member) and charlie (outsider)."""

from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from projects.models import ProjectMember
from projects.tests.factories import ProjectFactory, ProjectMemberFactory

PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def _isolated_data_dir(settings, tmp_path):
    """Every test writes files (media, workspaces) under its own temporary folder."""
    settings.DATA_DIR = tmp_path / "data"
    settings.WORKSPACES_DIR = tmp_path / "data" / "workspaces"
    if settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "data" / "media"}},
        }


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", full_name="Alice Owner")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", full_name="Bob Member")


@pytest.fixture
def charlie(db):
    return UserFactory(email="charlie@example.com", full_name="Charlie Outsider")


@pytest.fixture
def admin_user(db):
    return UserFactory(email="admin@example.com", role="admin")


@pytest.fixture
def project(alice, bob):
    """Alice's project, shared with bob as an editor; charlie is not a member."""
    project = ProjectFactory(owner=alice, name="Sales analysis")
    ProjectMemberFactory(project=project, user=bob, role=ProjectMember.Role.EDITOR)
    return project
