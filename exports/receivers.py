"""Work the exports app does when the analysis app says something happened."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from analysis.models import Artifact, Run
from analysis.signals import run_finished
from exports.services import artifact_rendition_create

logger = logging.getLogger(__name__)


@receiver(run_finished, dispatch_uid="exports.renditions_warm")
def renditions_warm(sender, *, run: Run, **kwargs) -> None:
    """Draw the static PNG of each plotly chart the run made, so thumbnails and exports never wait for it."""
    for artifact in Artifact.objects.filter(run=run, kind=Artifact.Kind.PLOTLY):
        if (artifact.meta or {}).get("rendition_png"):
            continue
        try:
            artifact_rendition_create(artifact=artifact)
        except Exception:  # a broken figure must not break the worker; the export draws (or explains) it later
            logger.exception("Could not draw the static image of artifact %s", artifact.pk)
