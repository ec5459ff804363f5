"""The schema every artifact a kernel reports must meet before the host stores it (host side, no Django).

A kernel is untrusted: its artifacts are checked here field by field and normalised, so that what reaches
storage is exactly what the pages, downloads and exports know how to read. `artifact_check` returns a
`CheckedArtifact` or raises `ArtifactInvalid` with a message a user (and the model) can act on.

    image   {"kind": "image", "data": <base64 PNG>, "name"?: str, "mime"?: "image/png", "title"?: str}
    plotly  {"kind": "plotly", "json": <figure JSON text or object>, "title"?: str}
            figure: {"data": [trace objects, "type" a string], "layout"?: object, "frames"?: list}
    table   {"kind": "table", "columns": [str], "rows": [[cell] * len(columns)], "shape"?: [rows, cols],
             "dtypes"?: {str: str}, "index_columns"?: int, "truncated"?: bool, "title"?: str}
    file    {"kind": "file", "name": <relative path in the workspace>, "data"?: <base64>, "mime"?: str}
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from analysis.sandbox import protocol
from analysis.sandbox.result import group_sizes_clean

KINDS = ("image", "plotly", "table", "file")
MAX_TITLE_CHARS = 255
MAX_NAME_CHARS = 255
MAX_IMAGE_SIDE = 16_384
MAX_IMAGE_PIXELS = 40_000_000  # a PDF export decodes each image whole: 40 Mpx is 160 MB of RGBA
MAX_TRACES = 2_000
MAX_FIGURE_DEPTH = 64
MAX_FIGURE_VALUES = 4_000_000
MAX_TABLE_COLUMNS = 5_000
MAX_TABLE_ROWS = 10_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MIME = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")


class ArtifactInvalid(ValueError):
    """The artifact does not meet the schema; the message says what is wrong."""


@dataclass
class CheckedArtifact:
    kind: str
    mime: str
    filename: str  # the stored file's name
    title: str
    meta: dict[str, Any] = field(default_factory=dict)
    body: bytes | None = None  # None for a file still to be read from the workspace
    path: str = ""  # for a file artifact: its normalised path relative to the workspace
    content: dict[str, Any] | None = None  # for a table: the checked body (what is stored)


def artifact_check(payload: object) -> CheckedArtifact:
    if not isinstance(payload, dict):
        raise ArtifactInvalid(f"an artifact must be an object, not {type(payload).__name__}")
    kind = payload.get("kind")
    checker = _CHECKERS.get(kind) if isinstance(kind, str) else None
    if checker is None:
        raise ArtifactInvalid(f"unknown artifact kind {_short(kind)}; expected one of {', '.join(KINDS)}")
    checked = checker(payload)
    title = payload.get("title")
    if title is not None and not isinstance(title, str):
        raise ArtifactInvalid(f"the {kind}'s title must be text, not {type(title).__name__}")
    checked.title = (title or checked.title)[:MAX_TITLE_CHARS]
    return checked


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _base64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ArtifactInvalid(f"the {what} has no base64 data")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ArtifactInvalid(f"the {what}'s data is not valid base64") from None


def _name(value: object, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ArtifactInvalid(f"an artifact name must be text, not {type(value).__name__}")
    name = value.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "")
    return name[:MAX_NAME_CHARS] or default


# --- image ------------------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ArtifactInvalid when it is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise ArtifactInvalid("the image is not a PNG file")
    width, height = struct.unpack("!II", data[16:24])
    return width, height


def _check_image(payload: dict[str, Any]) -> CheckedArtifact:
    mime = payload.get("mime") or "image/png"
    if mime != "image/png":
        raise ArtifactInvalid(f"images must be PNG, not {_short(mime)}")
    data = _base64(payload.get("data"), "image")
    width, height = png_size(data)
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE) or width * height > MAX_IMAGE_PIXELS:
        raise ArtifactInvalid(
            f"the image is {width}×{height} pixels; images may be at most {MAX_IMAGE_SIDE} pixels a side "
            f"and {MAX_IMAGE_PIXELS // 1_000_000} megapixels. Save the figure at a lower dpi or size."
        )
    name = _name(payload.get("name"), "figure.png")
    return CheckedArtifact("image", "image/png", name, name, {"name": name, "width": width, "height": height}, data)


# --- plotly -----------------------------------------------------------------------------------------------


def figure_check(figure: object) -> dict[str, Any]:
    """A plotly figure as the exports read it: `data` a list of trace objects, `layout` an object."""
    if not isinstance(figure, dict):
        raise ArtifactInvalid(f"a plotly figure must be an object, not {type(figure).__name__}")
    data = figure.get("data", [])
    if not isinstance(data, list):
        raise ArtifactInvalid(f"the figure's 'data' must be a list of traces, not {type(data).__name__}")
    if len(data) > MAX_TRACES:
        raise ArtifactInvalid(f"the figure has {len(data):,} traces; at most {MAX_TRACES:,} can be shown")
    for number, trace in enumerate(data, 1):
        if not isinstance(trace, dict):
            raise ArtifactInvalid(f"trace {number} of the figure must be an object, not {type(trace).__name__}")
        if not isinstance(trace.get("type", "scatter"), str):
            raise ArtifactInvalid(f"trace {number} of the figure has a 'type' that is not text")
    layout = figure.get("layout", {})
    if not isinstance(layout, dict):
        raise ArtifactInvalid(f"the figure's 'layout' must be an object, not {type(layout).__name__}")
    if not isinstance(figure.get("frames", []), list):
        raise ArtifactInvalid("the figure's 'frames' must be a list")
    return figure


def figure_title(figure: dict[str, Any]) -> str:
    title = (figure.get("layout") or {}).get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return title if isinstance(title, str) else ""


def _check_plotly(payload: dict[str, Any]) -> CheckedArtifact:
    raw = payload.get("json")
    if isinstance(raw, str):
        try:
            figure = protocol.loads_bounded(raw, max_depth=MAX_FIGURE_DEPTH, max_values=MAX_FIGURE_VALUES)
        except protocol.ProtocolError as exc:
            raise ArtifactInvalid(f"the figure is not usable JSON: {exc}") from None
        body = raw.encode("utf-8", "replace")
    elif isinstance(raw, dict):
        figure = raw
        try:
            body = json.dumps(raw, allow_nan=False, separators=(",", ":")).encode()
        except (ValueError, TypeError, RecursionError) as exc:
            raise ArtifactInvalid(f"the figure is not usable JSON: {str(exc)[:200]}") from None
    else:
        raise ArtifactInvalid(f"a plotly artifact needs the figure's JSON, not {type(raw).__name__}")
    figure_check(figure)
    title = figure_title(figure)
    return CheckedArtifact("plotly", "application/vnd.plotly.v1+json", "figure.json", title, {"title": title}, body)


# --- table ------------------------------------------------------------------------------------------------


def _nonneg_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _check_table(payload: dict[str, Any]) -> CheckedArtifact:
    columns, rows = payload.get("columns"), payload.get("rows")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ArtifactInvalid("a table's 'columns' must be a list of column names (text)")
    if len(columns) > MAX_TABLE_COLUMNS:
        raise ArtifactInvalid(f"the table has {len(columns):,} columns; at most {MAX_TABLE_COLUMNS:,} are stored")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ArtifactInvalid("a table's 'rows' must be a list of rows (lists of cells)")
    if len(rows) > MAX_TABLE_ROWS:
        raise ArtifactInvalid(f"the table has {len(rows):,} rows; at most {MAX_TABLE_ROWS:,} are stored")
    for number, row in enumerate(rows, 1):
        if len(row) != len(columns):
            raise ArtifactInvalid(f"row {number} of the table has {len(row)} cells for {len(columns)} columns")
    shape = payload.get("shape") or [len(rows), len(columns)]
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or not all(_nonneg_int(n) for n in shape):
        raise ArtifactInvalid("a table's 'shape' must be [rows, columns] (whole numbers)")
    shape = [shape[0], shape[1] if len(shape) == 2 else len(columns)]
    dtypes = payload.get("dtypes") or {}
    if not isinstance(dtypes, dict) or not all(isinstance(v, str) for v in dtypes.values()):
        raise ArtifactInvalid("a table's 'dtypes' must map column names to type names")
    index_columns = payload.get("index_columns") or 0
    if not _nonneg_int(index_columns) or index_columns > len(columns):
        raise ArtifactInvalid("a table's 'index_columns' must count some of its leading columns")
    truncated = payload.get("truncated", len(rows) < shape[0])
    if not isinstance(truncated, bool):
        raise ArtifactInvalid("a table's 'truncated' must be true or false")
    body = {
        "columns": columns,
        "rows": rows,
        "shape": shape,
        "dtypes": {str(k)[:MAX_NAME_CHARS]: v[:100] for k, v in dtypes.items()},
        "index_columns": index_columns,  # leading columns that are row labels
        "group_sizes": group_sizes_clean(payload.get("group_sizes")),  # rows per group of a groupby result
        "truncated": truncated,
    }
    try:
        encoded = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError, RecursionError) as exc:
        raise ArtifactInvalid(f"the table's cells are not usable JSON: {str(exc)[:200]}") from None
    title = "Table {}×{}".format(*shape)
    meta = {"shape": shape, "columns": columns}
    return CheckedArtifact("table", "application/json", "table.json", title, meta, encoded, content=body)


# --- file -------------------------------------------------------------------------------------------------


def relative_path(value: object) -> str:
    """A workspace-relative path with no way out: no absolute path, '..', empty or hidden parts, NUL."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise ArtifactInvalid("a file artifact needs the file's path in the workspace")
    parts = value.split("/")
    if value.startswith("/") or "\x00" in value or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ArtifactInvalid(f"{_short(value)} is not a path inside the workspace")
    if any(len(p) > MAX_NAME_CHARS for p in parts):
        raise ArtifactInvalid("a part of the file's path is longer than 255 characters")
    return value


def _check_file(payload: dict[str, Any]) -> CheckedArtifact:
    path = relative_path(payload.get("name"))
    name = path.rsplit("/", 1)[-1]
    mime = payload.get("mime")
    if not isinstance(mime, str) or not _MIME.match(mime) or len(mime) > 100:
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    body = _base64(payload["data"], "file") if payload.get("data") is not None else None
    return CheckedArtifact("file", mime, name, name, {"name": name, "path": path}, body, path)


_CHECKERS = {"image": _check_image, "plotly": _check_plotly, "table": _check_table, "file": _check_file}
