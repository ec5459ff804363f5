"""What a page shows of an artifact, built next to ``Artifact`` from its row alone (no storage read).

The session page, htmx fragments and websocket pushes render ``_partials/artifact.html`` from an
``ArtifactView``. Building one never opens the artifact's file: a chart is fetched by the browser from its JSON
download (``json_url``), a table is a placeholder of its size that loads its first page over htmx when it
scrolls into view (the artifact detail URL answers htmx with the table block). So a session page costs the same
number of storage reads (none) and about the same bytes whatever its tables hold; only the artifact detail page
reads a file, once (``artifact_full_view``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.template.defaultfilters import pluralize

from analysis.models import Artifact
from analysis.sandbox import artifact_schema, protocol
from analysis.tables import PAGE_SIZE, TablePage, table_data_normalise, table_data_read, table_page_build
from codingagent.lib.urls import reverse_fixed, reverse_pk

log = logging.getLogger(__name__)

# Figures up to this size are embedded in the detail page (json_script); bigger ones are fetched lazily.
EMBED_FIGURE_MAX_BYTES = 1_500_000
# A table's first page is kept in meta["preview"] when its JSON stays under this size.
TABLE_PREVIEW_MAX_BYTES = 64_000

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


@dataclass
class ArtifactView:
    """Everything ``_partials/artifact.html`` shows, precomputed (templates only test and loop)."""

    title: str
    detail_url: str
    downloads: list[DownloadLink]
    figure_id: str
    json_url: str = ""  # plotly: where the browser fetches the figure when it is not embedded
    plotly_js_url: str = ""  # plotly: the library artifacts.js loads before drawing
    figure: dict[str, Any] | None = None  # plotly: embedded figure (detail page only)
    image_url: str = ""
    table: TablePage | None = None  # the detail page's table page; pages listing artifacts load it lazily
    table_src: str = ""  # where the lazy table's block loads from over htmx
    table_size: str = ""  # "1,234 rows × 5 columns" (the original frame's shape, when known)
    table_skeleton_rows: int = 1  # rows of the first page, so the placeholder has the loaded table's height
    error: str = ""
    rendition_note: str = ""  # why thumbnails and exports show a placeholder instead of this chart's image


def artifact_formats(*, artifact: Artifact) -> tuple[str, ...]:
    return FORMATS_BY_KIND.get(artifact.kind, ("file",))


def artifact_download_url(*, artifact: Artifact, fmt: str, inline: bool = False) -> str:
    url = reverse_pk("exports:artifact-download", artifact.pk)
    query = f"?format={fmt}" if fmt != "file" else ""
    if inline:
        query += ("&" if query else "?") + "inline=1"
    return url + query


def artifact_title(*, artifact: Artifact) -> str:
    return artifact.title or str(artifact.meta.get("title") or artifact.meta.get("name") or "") or str(artifact)


def artifact_view_for(artifact: Artifact) -> ArtifactView:
    """The page view of one artifact from its database row alone: never opens its file."""
    detail_url = reverse_pk("exports:artifact-detail", artifact.pk)
    view = ArtifactView(
        title=artifact_title(artifact=artifact),
        detail_url=detail_url,
        downloads=[
            DownloadLink(FORMAT_LABELS[f], artifact_download_url(artifact=artifact, fmt=f))
            for f in artifact_formats(artifact=artifact)
        ],
        figure_id=f"artifact-{artifact.pk}-figure",
    )
    if artifact.kind == Artifact.Kind.PLOTLY:
        view.json_url = artifact_download_url(artifact=artifact, fmt="json", inline=True)
        view.plotly_js_url = reverse_fixed("exports:plotly-js")
        view.rendition_note = (
            str((artifact.meta or {}).get("rendition_error") or "") if isinstance(artifact.meta, dict) else ""
        )
    elif artifact.kind == Artifact.Kind.IMAGE:
        view.image_url = artifact_download_url(artifact=artifact, fmt="png", inline=True)
    elif artifact.kind == Artifact.Kind.TABLE:
        view.table_src = detail_url
        view.table_size, view.table_skeleton_rows = table_placeholder_shape(meta=artifact.meta)
    return view


def table_placeholder_shape(*, meta: Any) -> tuple[str, int]:
    """The size line and first-page row count of a table's placeholder, from its meta (shape, else preview)."""
    meta = meta if isinstance(meta, dict) else {}
    preview = meta.get("preview") if isinstance(meta.get("preview"), dict) else {}
    shape = meta.get("shape") or preview.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(n, int) and n >= 0 for n in shape)):
        return "", PAGE_SIZE
    rows, columns = shape
    first_page = len(preview["rows"]) if isinstance(preview.get("rows"), list) else min(rows, PAGE_SIZE)
    size = f"{rows:,} row{pluralize(rows)} × {columns:,} column{pluralize(columns)}"
    return size, max(1, min(first_page, PAGE_SIZE))  # an empty table shows one "No rows" row


def artifact_full_view(artifact: Artifact, *, page: Any = 1, sort: str = "") -> ArtifactView:
    """The detail page's view: the figure embedded and the requested table page (one storage read)."""
    view = artifact_view_for(artifact)
    try:
        if artifact.kind == Artifact.Kind.PLOTLY and (artifact.size or 0) <= EMBED_FIGURE_MAX_BYTES:
            view.figure = artifact_figure_read(artifact=artifact)
        elif artifact.kind == Artifact.Kind.TABLE:
            view.table, view.table_src = (
                table_page_build(data=table_data_read(artifact=artifact), page=page, sort=sort),
                "",
            )
    except (OSError, ValueError) as exc:  # a missing or corrupt file shows a message, not a 500
        log.warning("artifact %s unreadable: %s", artifact.pk, exc)
        view.error = "This artifact's file could not be read."
    return view


def table_preview_meta(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first page of a table body, kept in ``meta`` so pages show it without reading the file."""
    data = table_data_normalise(body)
    preview = {**data, "rows": data["rows"][:PAGE_SIZE]}
    preview["truncated"] = data["truncated"] or len(data["rows"]) > PAGE_SIZE
    import json

    return preview if len(json.dumps(preview, default=str)) <= TABLE_PREVIEW_MAX_BYTES else None


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
