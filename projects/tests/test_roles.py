"""project_role_for: the one answer to "what may this user do in this project", used by every page and service."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from projects.selectors import project_qs_for, project_role_for

pytestmark = pytest.mark.django_db


def test_the_owner_may_edit_and_manage(alice, project):
    role = project_role_for(alice, project)

    assert (role.role, role.can_view, role.can_edit, role.is_owner) == ("owner", True, True, True)


def test_an_editor_may_edit_but_not_manage(bob, project):
    role = project_role_for(bob, project)

    assert (role.can_edit, role.is_owner) == (True, False)


def test_a_viewer_may_only_read(vera, project):
    role = project_role_for(vera, project)

    assert (role.role, role.can_view, role.can_edit) == ("viewer", True, False)


def test_an_outsider_and_an_anonymous_visitor_may_do_nothing(charlie, project):
    assert not project_role_for(charlie, project).can_view
    assert not project_role_for(AnonymousUser(), project).can_view


def test_a_project_from_project_qs_for_answers_without_a_query(bob, project, django_assert_num_queries):
    fetched = project_qs_for(user=bob).get(pk=project.pk)

    with django_assert_num_queries(0):
        assert project_role_for(bob, fetched).can_edit


def test_a_plain_project_costs_one_query(vera, project, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert not project_role_for(vera, project).can_edit


def test_there_is_one_project_qs_for():
    import analysis.selectors
    import exports.selectors

    assert not hasattr(analysis.selectors, "project_qs_for")
    assert not hasattr(exports.selectors, "project_qs_for")
