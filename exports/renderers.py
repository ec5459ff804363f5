"""Export renderers: each returns ``(filename, content_type, body)``. weasyprint is imported only here."""

from __future__ import annotations

from exports.services import EXPORT_FORMATS, UnknownFormat


def export_render(*, target, fmt: str):
    raise UnknownFormat(f"Unknown export format {fmt!r}. Choose one of: {', '.join(EXPORT_FORMATS)}.")
