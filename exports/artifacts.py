"""What an artifact offers: its download formats and the precomputed view a partial renders.

Partials that show artifacts are rendered by page views, htmx fragments and websocket
pushes alike, from ``artifact`` alone (no request), so everything they need is built here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from analysis.models import Artifact
from analysis.sandbox import artifact_schema, protocol
from exports.tables import TablePage, table_data_read, table_page_build

log = logging.getLogger(__name__)

# Figures up to this size are embedded in the page (json_script); bigger ones are fetched lazily.
EMBED_FIGURE_MAX_BYTES = 1_500_000

FORMATS_BY_KIND: dict[str, tuple[str, ...]] = {
    Artifact.Kind.PLOTLY: ("png", "svg", "json"),
    Artifact.Kind.IMAGE: ("png",),
    Artifact.Kind.TABLE: ("csv", "xlsx", "json"),
    Artifact.Kind.FILE: ("file",),
}
FORMAT_LABELS = {"png": "PNG", "svg": "SVG", "json": "JSON", "csv": "CSV", "xlsx": "Excel", "file": "File"}


@dataclass(frozen=True)
class DownloadLink:
    label: str
    url: str


def artifact_formats(*, artifact: Artifact) -> tuple[str, ...]:
    return FORMATS_BY_KIND.get(artifact.kind, ("file",))


def artifact_download_url(*, artifact: Artifact, fmt: str, inline: bool = False) -> str:
    url = reverse("exports:artifact-download", args=[artifact.pk])
    query = f"?format={fmt}" if fmt != "file" else ""
    if inline:
        query += ("&" if query else "?") + "inline=1"
    return url + query


def artifact_title(*, artifact: Artifact) -> str:
    return artifact.title or str(artifact.meta.get("title") or artifact.meta.get("name") or "") or str(artifact)


def artifact_json_read(*, artifact: Artifact) -> Any:
    """The artifact's stored JSON, parsed with the same bounds as kernel messages (depth, values, no NaN).
    Raises ValueError for a missing-in-meaning or hostile file, which callers show as a message."""
    with artifact.file.open("rb") as fh:
        raw = fh.read()
    try:
        return protocol.loads_bounded(
            raw,
            max_depth=artifact_schema.MAX_FIGURE_DEPTH,
            max_values=artifact_schema.MAX_FIGURE_VALUES,
            nan_as_null=True,  # older figures may hold a stray NaN; the exports have always read it as a gap
        )
    except protocol.ProtocolError as exc:
        raise ValueError(f"artifact {artifact.pk}'s file is not usable JSON: {exc}") from None


def artifact_figure_read(*, artifact: Artifact) -> dict[str, Any]:
    """The stored plotly figure; ValueError when it does not meet the artifact schema (stored before the host
    checked figures, or damaged since), so no page, download or export ever draws it."""
    figure = artifact_json_read(artifact=artifact)
    if isinstance(figure, str):  # tolerate a figure stored as a JSON-encoded string
        try:
            figure = protocol.loads_bounded(figure, max_depth=artifact_schema.MAX_FIGURE_DEPTH)
        except protocol.ProtocolError as exc:
            raise ValueError(f"artifact {artifact.pk}'s figure is not usable JSON: {exc}") from None
    return artifact_schema.figure_check(figure)


def artifact_view_build(*, artifact: Artifact, page: Any = 1, sort: str = "") -> dict[str, Any]:
    """Everything ``_partials/artifact.html`` shows, precomputed; never raises for a broken file."""
    view: dict[str, Any] = {
        "title": artifact_title(artifact=artifact),
        "detail_url": reverse("exports:artifact-detail", args=[artifact.pk]),
        "downloads": [
            DownloadLink(FORMAT_LABELS[f], artifact_download_url(artifact=artifact, fmt=f))
            for f in artifact_formats(artifact=artifact)
        ],
        "figure": None,
        "figure_id": f"artifact-{artifact.pk}-figure",
        "table": None,
        "error": "",
        "image_url": "",
        # Thumbnails and exports show a placeholder instead of this chart's static image; say why here too.
        "rendition_note": str((artifact.meta or {}).get("rendition_error") or "")
        if isinstance(artifact.meta, dict)
        else "",
    }
    try:
        if artifact.kind == Artifact.Kind.PLOTLY:
            view["json_url"] = artifact_download_url(artifact=artifact, fmt="json", inline=True)
            if (artifact.size or 0) <= EMBED_FIGURE_MAX_BYTES:
                view["figure"] = artifact_figure_read(artifact=artifact)
        elif artifact.kind == Artifact.Kind.IMAGE:
            view["image_url"] = artifact_download_url(artifact=artifact, fmt="png", inline=True)
        elif artifact.kind == Artifact.Kind.TABLE:
            view["table"] = artifact_table_page(artifact=artifact, page=page, sort=sort)
    except (OSError, ValueError) as exc:  # a missing or corrupt file shows a message, not a 500
        log.warning("artifact %s unreadable: %s", artifact.pk, exc)
        view["error"] = "This artifact's file could not be read."
    return view


def artifact_table_page(*, artifact: Artifact, page: Any = 1, sort: str = "") -> TablePage:
    return table_page_build(data=table_data_read(artifact=artifact), page=page, sort=sort)


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
        "detail_url": reverse("exports:artifact-detail", args=[artifact.pk]),
        "pin_url": reverse("exports:artifact-pin", args=[artifact.pk]),
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
