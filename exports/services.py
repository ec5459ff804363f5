"""Artifact downloads, pinning and session/project exports (the views and API call these)."""

from __future__ import annotations

import atexit
import csv
import io
import json
import threading
from pathlib import Path
from typing import Any

import plotly
from django.conf import settings
from django.core.files.base import ContentFile
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.utils.text import slugify

from accounts.models import AuditEvent
from accounts.services import audit_record
from analysis.models import AnalysisSession, Artifact
from analysis.services import db_retry
from exports.artifacts import artifact_title
from exports.drawing import ChartDrawer, DrawFailed, placeholder_png, placeholder_svg, placeholder_text
from exports.tables import table_data_read
from projects.models import Project

EXPORT_FORMATS = ("md", "json", "pdf", "ipynb")
# Only these may be shown inline (in <img> or fetched by scripts); everything else is forced to download,
# so an uploaded HTML/SVG "file" artifact can never run script on our origin.
INLINE_SAFE_TYPES = frozenset({"image/png", "application/json"})
_CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class UnknownFormat(ValueError):
    """A format the target cannot be exported/downloaded in; the message says which ones exist."""


def plotly_js_path() -> Path:
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def attachment_response(*, filename: str, content_type: str, body: Any, inline: bool = False) -> HttpResponse:
    """An HttpResponse (bytes) or StreamingHttpResponse (iterator) carrying a safe Content-Disposition."""
    response_class = HttpResponse if isinstance(body, bytes | str) else StreamingHttpResponse
    response = response_class(body, content_type=content_type)
    response.headers["Content-Disposition"] = _content_disposition(filename, inline=inline)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _content_disposition(filename: str, *, inline: bool) -> str:
    return content_disposition_header(not inline, filename) or "attachment"


# --- artifacts -------------------------------------------------------------------------------------------


def artifact_filename(*, artifact: Artifact, ext: str) -> str:
    base = slugify(artifact_title(artifact=artifact))[:80] or f"artifact-{artifact.pk}"
    return f"{base}.{ext}"


def artifact_download_build(*, artifact: Artifact, fmt: str) -> tuple[str, str, bytes]:
    """``(filename, content_type, bytes)`` of one artifact in one format; raises UnknownFormat with the choices."""
    fmt = (fmt or "").lower()
    builders = _DOWNLOADS.get(artifact.kind, {})
    if fmt in ("", "file") and artifact.kind == Artifact.Kind.FILE:
        fmt = "file"
    elif fmt == "" and builders:
        fmt = next(iter(builders))
    if fmt not in builders:
        choices = ", ".join(builders) or "none"
        hint = " SVG is only offered for interactive charts; images are stored as PNG." if fmt == "svg" else ""
        raise UnknownFormat(f"Unknown format {fmt!r} for a {artifact.kind} artifact. Choose one of: {choices}.{hint}")
    return builders[fmt](artifact)


def _raw(artifact: Artifact) -> bytes:
    with artifact.file.open("rb") as fh:
        return fh.read()


def _plotly_image(fmt: str):
    def build(artifact: Artifact) -> tuple[str, str, bytes]:
        if fmt == "png":
            return artifact_filename(artifact=artifact, ext="png"), "image/png", artifact_png_bytes(artifact=artifact)
        return artifact_filename(artifact=artifact, ext=fmt), "image/svg+xml", _rendition(artifact=artifact, fmt=fmt)

    return build


def _csv_safe(value: Any) -> Any:
    # Spreadsheet apps evaluate text starting with = + - @ as a formula; quote it so it stays text.
    if isinstance(value, str) and value.startswith(_CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def table_csv_bytes(*, data: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_csv_safe(c) for c in data["columns"]])
    writer.writerows([["" if v is None else _csv_safe(v) for v in row] for row in data["rows"]])
    return buffer.getvalue().encode("utf-8-sig")  # BOM: Excel opens UTF-8 correctly


def table_xlsx_bytes(*, data: dict[str, Any], title: str = "Table") -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=(slugify(title)[:31] or "Table"))
    sheet.append([_csv_safe(c) for c in data["columns"]])
    for row in data["rows"]:
        sheet.append([_csv_safe(v) if not isinstance(v, list | dict) else json.dumps(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_DOWNLOADS: dict[str, dict[str, Any]] = {
    Artifact.Kind.PLOTLY: {
        "png": _plotly_image("png"),
        "svg": _plotly_image("svg"),
        "json": lambda a: (artifact_filename(artifact=a, ext="json"), "application/json", _raw(a)),
    },
    Artifact.Kind.IMAGE: {
        "png": lambda a: (artifact_filename(artifact=a, ext="png"), "image/png", _raw(a)),
    },
    Artifact.Kind.TABLE: {
        "csv": lambda a: (
            artifact_filename(artifact=a, ext="csv"),
            "text/csv; charset=utf-8",
            table_csv_bytes(data=table_data_read(artifact=a)),
        ),
        "xlsx": lambda a: (
            artifact_filename(artifact=a, ext="xlsx"),
            _XLSX,
            table_xlsx_bytes(data=table_data_read(artifact=a), title=artifact_title(artifact=a)),
        ),
        "json": lambda a: (artifact_filename(artifact=a, ext="json"), "application/json", _raw(a)),
    },
    Artifact.Kind.FILE: {
        "file": lambda a: (
            Path(str(a.meta.get("name") or a.file.name)).name or f"artifact-{a.pk}",
            a.mime or "application/octet-stream",
            _raw(a),
        ),
    },
}


def rendition_name(*, artifact: Artifact, fmt: str = "png") -> str:
    return f"projects/{artifact.project_id}/artifacts/renditions/artifact-{artifact.pk}.{fmt}"


_drawer: ChartDrawer | None = None
_drawer_lock = threading.Lock()


def chart_drawer() -> ChartDrawer:
    """The process's out-of-process chart drawer (helpers start on first use)."""
    global _drawer
    with _drawer_lock:
        if _drawer is None:
            _drawer = ChartDrawer(
                cpu_seconds=settings.CHART_DRAW_CPU_SECONDS,
                memory_mb=settings.CHART_DRAW_MEMORY_MB,
                processes=settings.CHART_DRAW_PROCESSES,
            )
            atexit.register(_drawer.close)
        return _drawer


def artifact_png_bytes(*, artifact: Artifact) -> bytes:
    """PNG of a chart or image. Plotly charts are drawn once, out of process (``exports.drawing``), and the PNG is
    kept in storage (``meta["rendition_png"]``) so thumbnails and later exports reuse it; a chart that cannot be
    drawn within the limits gets a placeholder saying why (also kept, with ``meta["rendition_error"]``)."""
    if artifact.kind == Artifact.Kind.IMAGE:
        return _raw(artifact)
    if artifact.kind != Artifact.Kind.PLOTLY:
        raise UnknownFormat(f"A {artifact.kind} artifact has no image.")
    return _rendition(artifact=artifact, fmt="png")


def _rendition(*, artifact: Artifact, fmt: str) -> bytes:
    name = (artifact.meta or {}).get(f"rendition_{fmt}")
    if name:
        try:
            with artifact.file.storage.open(name, "rb") as fh:
                return fh.read()
        except OSError:
            pass  # rendition lost (e.g. storage cleaned): draw it again
    return _rendition_draw(artifact=artifact, fmt=fmt)


def _rendition_draw(*, artifact: Artifact, fmt: str) -> bytes:
    error = ""
    try:
        body = chart_drawer().draw(_raw(artifact), fmt=fmt)
    except DrawFailed as exc:
        error = placeholder_text(str(exc))
        body = placeholder_png(error) if fmt == "png" else placeholder_svg(error)
    name = artifact.file.storage.save(rendition_name(artifact=artifact, fmt=fmt), ContentFile(body))
    meta = {**(artifact.meta or {}), f"rendition_{fmt}": name}
    if error:
        meta["rendition_error"] = error
    artifact.meta = meta
    db_retry(lambda: Artifact.objects.filter(pk=artifact.pk).update(meta=meta))
    return body


def artifact_rendition_create(*, artifact: Artifact) -> bytes:
    """Draw the static PNG of a plotly artifact (out of process, within the limits) and remember where it is
    stored. The run worker has it drawn after each run so the first page view and export find it ready."""
    return _rendition_draw(artifact=artifact, fmt="png")


def artifact_pin_set(*, artifact: Artifact, pinned: bool) -> Artifact:
    """Pin to (or unpin from) the project's gallery. Idempotent. Permission is checked by the caller's selector."""
    if artifact.pinned != pinned:
        artifact.pinned = pinned
        artifact.save(update_fields=["pinned"])
    return artifact


# --- exports ---------------------------------------------------------------------------------------------


def export_response(*, target: AnalysisSession | Project, fmt: str, user=None) -> HttpResponse:
    from exports import renderers

    try:
        filename, content_type, body = renderers.export_render(target=target, fmt=fmt)
    except UnknownFormat as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    scope = "session" if isinstance(target, AnalysisSession) else "project"
    audit_record(
        event=AuditEvent.Event.EXPORT,
        user=user,
        target=f"{scope} {target.pk}",
        detail={"format": fmt, "file": filename},
    )
    return attachment_response(filename=filename, content_type=content_type, body=body)
