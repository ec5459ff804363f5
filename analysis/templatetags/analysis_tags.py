from __future__ import annotations

import json

from django import template
from django.utils.safestring import SafeString

from analysis.artifact_views import ArtifactView, artifact_view_for
from codingagent.lib.markdown import highlight_python, render_markdown

register = template.Library()


@register.simple_tag
def artifact_view(artifact) -> ArtifactView:
    """The view a selector or view precomputed (``artifact.view``), else one built from the row (no file read)."""
    view = getattr(artifact, "view", None)
    return view if isinstance(view, ArtifactView) else artifact_view_for(artifact)


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")


@register.filter(name="python")
def python_filter(code: str) -> SafeString:
    return highlight_python(code or "")


@register.filter(name="pretty_json")
def pretty_json(value) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
