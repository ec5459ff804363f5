"""The projects sidebar: on every page of a logged-in user, only the projects they can see, the page's project
marked current, in one query however many projects there are."""

import re

import pytest
from django.urls import reverse

from analysis.tests.factories import AnalysisSessionFactory
from projects.selectors import SIDEBAR_PROJECTS
from projects.tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

SIDEBAR = re.compile(rb'<aside class="sidebar" id="projects-sidebar".*?</aside>', re.S)
CURRENT = re.compile(rb'<li id="project-(\d+)" class="current">')


def sidebar_of(response) -> bytes:
    match = SIDEBAR.search(response.content)
    assert match, "the page has no projects sidebar"
    return match.group(0)


@pytest.fixture
def pages(project, dataset, alice):
    session = AnalysisSessionFactory(project=project, user=alice)
    return {
        "dashboard": reverse("projects:dashboard"),
        "project": reverse("projects:project-detail", args=[project.pk]),
        "project edit": reverse("projects:project-update", args=[project.pk]),
        "dataset": reverse("projects:dataset-detail", args=[dataset.pk]),
        "gallery": reverse("exports:project-gallery", args=[project.pk]),
        "session": reverse("analysis:session-detail", args=[session.pk]),
        "account": reverse("accounts:password_change"),
    }


def test_every_page_of_a_member_lists_the_projects_they_see_and_no_others(client, bob, project, charlie, pages):
    ProjectFactory(owner=charlie, name="Charlie's secret")
    ProjectFactory(owner=bob, name="Bob's own")
    client.force_login(bob)

    sidebars = {name: sidebar_of(client.get(url)) for name, url in pages.items()}

    assert [name for name, html in sidebars.items() if b"Sales analysis" not in html] == []
    assert [name for name, html in sidebars.items() if b"Bob&#x27;s own" not in html] == []
    assert [name for name, html in sidebars.items() if b"Charlie" in html] == []


def test_the_pages_project_is_the_current_one_in_the_sidebar(client, alice, project, pages):
    ProjectFactory(owner=alice, name="Another")
    client.force_login(alice)

    current = {name: CURRENT.findall(sidebar_of(client.get(url))) for name, url in pages.items()}

    in_project = [str(project.pk).encode()]
    assert current == {"dashboard": [], "project": in_project, "project edit": in_project, "dataset": in_project,
                       "gallery": in_project, "session": in_project, "account": []}  # fmt: skip


def test_pages_for_visitors_have_no_sidebar(client):
    response = client.get(reverse("accounts:login"))

    assert response.status_code == 200
    assert b'id="projects-sidebar"' not in response.content


def test_the_sidebar_costs_one_query_however_many_projects(client, alice, django_assert_num_queries):
    ProjectFactory.create_batch(60, owner=alice)
    client.force_login(alice)

    # django session + user + the sidebar's project list (the page itself reads nothing)
    with django_assert_num_queries(3):
        response = client.get(reverse("accounts:password_change"))

    assert sidebar_of(response).count(b'<li id="project-') == SIDEBAR_PROJECTS


def test_past_twenty_projects_the_sidebar_lists_the_recent_ones_and_links_to_all(client, alice):
    projects = ProjectFactory.create_batch(SIDEBAR_PROJECTS + 5, owner=alice)
    client.force_login(alice)

    sidebar = sidebar_of(client.get(reverse("projects:dashboard")))

    listed = [int(pk) for pk in re.findall(rb'<li id="project-(\d+)"', sidebar)]
    assert listed == [project.pk for project in reversed(projects)][:SIDEBAR_PROJECTS]
    assert b"All projects" in sidebar


def test_an_older_project_is_listed_and_current_on_its_own_pages(client, alice):
    oldest, *newer = ProjectFactory.create_batch(SIDEBAR_PROJECTS + 5, owner=alice)
    client.force_login(alice)

    sidebar = sidebar_of(client.get(reverse("projects:project-detail", args=[oldest.pk])))

    listed = [int(pk) for pk in re.findall(rb'<li id="project-(\d+)"', sidebar)]
    assert listed == [project.pk for project in reversed(newer)][:SIDEBAR_PROJECTS] + [oldest.pk]
    assert CURRENT.findall(sidebar) == [str(oldest.pk).encode()]


def test_a_recent_current_project_keeps_its_place(client, alice):
    *older, newest = ProjectFactory.create_batch(SIDEBAR_PROJECTS + 5, owner=alice)
    client.force_login(alice)

    sidebar = sidebar_of(client.get(reverse("projects:project-detail", args=[older[-1].pk])))

    listed = [int(pk) for pk in re.findall(rb'<li id="project-(\d+)"', sidebar)]
    assert listed == [newest.pk] + [project.pk for project in reversed(older)][: SIDEBAR_PROJECTS - 1]
