"""Template tags that hand artifact partials their precomputed view (they get ``artifact`` only)."""

from __future__ import annotations

from typing import Any

from django import template

from analysis.models import Artifact
from exports.artifacts import artifact_thumb_build, artifact_view_build

register = template.Library()


@register.simple_tag
def artifact_view(artifact: Artifact, page: Any = 1, sort: str = "") -> dict[str, Any]:
    return artifact_view_build(artifact=artifact, page=page, sort=sort or "")


@register.simple_tag
def artifact_thumb(artifact: Artifact) -> dict[str, Any]:
    return artifact_thumb_build(artifact=artifact)
