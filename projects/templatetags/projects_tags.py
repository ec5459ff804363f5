"""The projects sidebar that base.html shows on every page of a logged-in user."""

from __future__ import annotations

from typing import Any

from django import template

from projects.selectors import project_sidebar_list_for_user

register = template.Library()

# Where a page's context names the project it is about: a project (project, dataset, gallery and edit pages),
# a session, or an artifact. The first one present is the sidebar's current project.
_CURRENT_PROJECT_SOURCES = (("project", "pk"), ("session", "project_id"), ("artifact", "project_id"))


def _current_project_id(context: template.Context) -> int | None:
    for name, attribute in _CURRENT_PROJECT_SOURCES:
        value = getattr(context.get(name), attribute, None)
        if isinstance(value, int):
            return value
    return None


@register.inclusion_tag("_partials/projects_sidebar.html", takes_context=True)
def projects_sidebar(context: template.Context) -> dict[str, Any]:
    """The projects the page's user can see (one query), the page's own project marked current."""
    return {"sidebar": project_sidebar_list_for_user(user=context["user"], current_pk=_current_project_id(context))}
