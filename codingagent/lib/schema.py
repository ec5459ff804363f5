"""drf-spectacular hooks."""

from __future__ import annotations


def drop_trailing_slash_twins(endpoints: list, **kwargs) -> list:
    """Action URLs answer with and without a trailing slash (two routes, one view); document the bare one only,
    so operation ids do not collide (drf_spectacular.W001 would fail ``check --deploy``)."""
    bare = {(path, method) for path, _regex, method, _view in endpoints if not path.endswith("/")}
    return [
        (path, regex, method, view)
        for path, regex, method, view in endpoints
        if not (path.endswith("/") and (path.rstrip("/"), method) in bare)
    ]
