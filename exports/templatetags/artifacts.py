"""The thumbnail card tag (the artifact view tag is ``analysis_tags.artifact_view``)."""

from __future__ import annotations

from typing import Any

from django import template

from analysis.models import Artifact
from exports.artifacts import artifact_thumb_build

register = template.Library()


@register.simple_tag
def artifact_thumb(artifact: Artifact) -> dict[str, Any]:
    return artifact_thumb_build(artifact=artifact)
