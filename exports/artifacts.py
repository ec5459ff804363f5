"""What an artifact offers in the exports app: its downloads, the thumbnail card and the detail page's view.

The page view model itself lives next to ``Artifact`` (``analysis/artifact_views.py``) and is imported here.
"""

from __future__ import annotations

from typing import Any

from analysis.artifact_views import (  # noqa: F401  (re-exported: the exports app's callers import them from here)
    EMBED_FIGURE_MAX_BYTES,
    FORMAT_LABELS,
    FORMATS_BY_KIND,
    ArtifactView,
    DownloadLink,
    artifact_download_url,
    artifact_figure_read,
    artifact_formats,
    artifact_full_view,
    artifact_json_read,
    artifact_title,
)
from analysis.models import Artifact
from analysis.tables import TablePage, table_data_normalise, table_data_read, table_page_build
from codingagent.lib.urls import reverse_pk


def artifact_view_build(*, artifact: Artifact, page: Any = 1, sort: str = "") -> ArtifactView:
    """The detail page's view (figure embedded, the requested table page); never raises for a broken file."""
    return artifact_full_view(artifact, page=page, sort=sort)


def artifact_table_page(*, artifact: Artifact, page: Any = 1, sort: str = "") -> TablePage:
    """One page of a table (the session page's lazy blocks, pager and header clicks). A table whose stored
    preview holds all its rows is paged from that (no storage read); any other reads its file once."""
    preview = artifact.meta.get("preview") if isinstance(artifact.meta, dict) else None
    if isinstance(preview, dict) and preview.get("truncated") is False:
        data = table_data_normalise(preview)
    else:
        data = table_data_read(artifact=artifact)
    return table_page_build(data=data, page=page, sort=sort)


def artifact_thumb_build(*, artifact: Artifact) -> dict[str, Any]:
    """The side-panel/gallery card: a small picture for charts and images, a summary otherwise."""
    shape = artifact.meta.get("shape") if isinstance(artifact.meta, dict) else None
    summary = ""
    if artifact.kind == Artifact.Kind.TABLE and isinstance(shape, list) and len(shape) == 2:
        summary = f"{shape[0]:,} × {shape[1]:,}"
    elif artifact.kind == Artifact.Kind.FILE:
        summary = _human_size(artifact.size or 0)
    picture = ""
    if artifact.kind in (Artifact.Kind.PLOTLY, Artifact.Kind.IMAGE):
        picture = artifact_download_url(artifact=artifact, fmt="png", inline=True)
    return {
        "title": artifact_title(artifact=artifact),
        "detail_url": reverse_pk("exports:artifact-detail", artifact.pk),
        "pin_url": reverse_pk("exports:artifact-pin", artifact.pk),
        "picture": picture,
        "summary": summary,
        "downloads": [
            DownloadLink(FORMAT_LABELS[f], artifact_download_url(artifact=artifact, fmt=f))
            for f in artifact_formats(artifact=artifact)
        ],
    }


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
