"""Turn what a run produced into JSON-safe data. Runs inside the worker, under its limits,
so a pathological figure or repr can only hurt the worker, never the host."""

from __future__ import annotations

import base64
import io
import json
import math
import mimetypes
import os
import sys
import traceback
from typing import Any

from analysis.sandbox import provenance

CELL = "<cell>"
TABLE_ROWS = 50
REPR_CHARS = 10_000
MAX_FILES_SCANNED = 2_000
MAX_FILE_ARTIFACTS = 100
PRIVATE_PREFIX = "."  # dot-entries (the kernel's private temp dir among them) are not artifacts


class CappedWriter(io.TextIOBase):
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        room = self.limit - self.size
        if room > 0:
            kept = s[:room]
            self.parts.append(kept)
            self.size += len(kept)
            self.dropped += len(s) - len(kept)
        else:
            self.dropped += len(s)
        return len(s)

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[output truncated: {self.dropped} more characters not shown]"
        return text


# --- JSON safety ------------------------------------------------------------------------


def json_safe(value: Any, depth: int = 0) -> Any:
    """Convert common scalar/container types to JSON; raise TypeError for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise TypeError("integer too large for JSON")
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 20:
        raise TypeError("nested too deeply")
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        return json_safe(value.item(), depth + 1)
    if np is not None and isinstance(value, np.ndarray) and value.size <= 10_000:
        return json_safe(value.tolist(), depth + 1)
    if hasattr(value, "isoformat") and type(value).__module__ in ("datetime", "pandas._libs.tslibs.timestamps"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def short_repr(value: Any, limit: int = REPR_CHARS) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a hostile or broken __repr__
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more characters]"
    return text


def final_result_value(value: Any, max_bytes: int) -> Any:
    """The JSON value of `final_result` if it has one of reasonable size, else its repr."""
    try:
        converted = json_safe(value)
        if len(json.dumps(converted, allow_nan=False)) <= max_bytes:
            return converted
    except (TypeError, ValueError, RecursionError):
        pass
    return short_repr(value)


# --- artifacts ----------------------------------------------------------------------------


def table_artifact(obj: Any) -> dict[str, Any]:
    """A DataFrame/Series as columns + rows, its row labels (index levels) as the leading columns.

    Only the default 0..n-1 RangeIndex stays hidden: describe()'s count/mean/std, a groupby's groups and
    isna().sum()'s column names are the labels that give the numbers their meaning.
    """
    pd = sys.modules["pandas"]
    group_sizes = provenance.group_sizes_of(obj)
    if isinstance(obj, pd.Series):
        obj = obj.to_frame(name="value" if obj.name is None else obj.name)
    head = obj.head(TABLE_ROWS)
    rows = _json_rows(head)
    labels: list[str] = []
    if not _is_default_index(obj.index, pd):
        levels = pd.DataFrame({i: head.index.get_level_values(i) for i in range(head.index.nlevels)})
        labels = ["" if name is None else _label(name) for name in obj.index.names]
        rows = [lead + row for lead, row in zip(_json_rows(levels), rows, strict=True)]
    level_dtypes = {label: str(obj.index.get_level_values(i).dtype) for i, label in enumerate(labels)}
    return {
        "kind": "table",
        "columns": labels + [_label(c) for c in obj.columns],
        "index_columns": len(labels),
        "rows": rows,
        "shape": list(obj.shape),
        "dtypes": {**level_dtypes, **{_label(c): str(t) for c, t in obj.dtypes.items()}},
        **({"group_sizes": group_sizes} if group_sizes else {}),
    }


def _json_rows(frame: Any) -> list[list[Any]]:
    return json.loads(frame.to_json(orient="values", date_format="iso", default_handler=str))


def _is_default_index(index: Any, pd: Any) -> bool:
    return isinstance(index, pd.RangeIndex) and index.name is None and index.start == 0 and index.step == 1


def _label(name: Any) -> str:
    """A column label as text; a MultiIndex column ("revenue", "sum") reads "revenue / sum"."""
    if isinstance(name, tuple):
        return " / ".join(str(part) for part in name if str(part) != "")
    return str(name)


def plotly_artifact(fig: Any) -> dict[str, Any]:
    return {"kind": "plotly", "json": fig.to_json()}


def matplotlib_artifacts() -> list[dict[str, Any]]:
    """PNGs of the figures left open, which are then closed."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    artifacts = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        label = fig.get_label() or f"figure-{num}"
        artifacts.append(
            {
                "kind": "image",
                "mime": "image/png",
                "name": f"{label}.png",
                "data": base64.b64encode(buf.getvalue()).decode(),
            }
        )
    plt.close("all")
    return artifacts


def is_plotly_figure(value: Any) -> bool:
    mod = sys.modules.get("plotly.basedatatypes")
    return mod is not None and isinstance(value, mod.BaseFigure)


def is_pandas_table(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, (pd.DataFrame, pd.Series))


class PlotlyShows:
    """Replaces plotly's show() so a shown figure becomes an artifact instead of a browser tab."""

    def __init__(self) -> None:
        self.figures: list[Any] = []

    def install(self) -> None:
        try:
            import plotly.basedatatypes
            import plotly.io
        except ImportError:
            return
        shows = self

        def show(fig: Any, *args: Any, **kwargs: Any) -> None:
            shows.figures.append(fig)

        # It stands in for plotly's own show(), and the policy only lets user code call library functions.
        show.__module__ = "plotly.io"
        show.__qualname__ = "show"

        plotly.basedatatypes.BaseFigure.show = show
        plotly.io.show = show

    def drain(self) -> list[Any]:
        figures, self.figures = self.figures, []
        return figures


PLOTLY_SHOWS = PlotlyShows()  # installed once in the fork server's template


def workspace_snapshot(root: str = ".") -> dict[str, tuple[int, int]]:
    """{relative path: (mtime_ns, size)} of regular files, skipping dot-entries and symlinks."""
    found: dict[str, tuple[int, int]] = {}
    stack = [""]
    while stack and len(found) < MAX_FILES_SCANNED:
        rel = stack.pop()
        try:
            entries = os.scandir(os.path.join(root, rel) if rel else root)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith(PRIVATE_PREFIX) or entry.is_symlink():
                    continue
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found[path] = (st.st_mtime_ns, st.st_size)
    return found


def file_artifacts(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    changed = sorted(path for path, stamp in after.items() if before.get(path) != stamp)
    return [
        {
            "kind": "file",
            "name": path,
            "size": after[path][1],
            "mime": mimetypes.guess_type(path)[0] or "application/octet-stream",
        }
        for path in changed[:MAX_FILE_ARTIFACTS]
    ]


# --- errors -------------------------------------------------------------------------------


def error_dict(exc: BaseException, source: str) -> dict[str, str]:
    """Type, message and a traceback reduced to the user's own `<cell>` frames."""
    lines = source.splitlines()
    out = ["Traceback (most recent call last):"]
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename != CELL:
            continue
        out.append(f"  Cell line {frame.lineno}, in {frame.name}")
        if frame.lineno and 0 < frame.lineno <= len(lines):
            out.append(f"    {lines[frame.lineno - 1].strip()}")
    if isinstance(exc, SyntaxError) and exc.lineno:
        out.append(f"  Cell line {exc.lineno}")
        if exc.text:
            out.append(f"    {exc.text.strip()}")
    message = short_repr(exc, 2_000) if not str(exc) else str(exc)[:2_000]
    out.append(f"{type(exc).__name__}: {message}")
    return {"type": type(exc).__name__, "message": message, "traceback": "\n".join(out)}


def internal_error_dict(exc: BaseException) -> dict[str, str]:
    """An error inside the sandbox's own code: the full traceback helps whoever maintains it."""
    text = "".join(traceback.format_exception(exc))[-5_000:]
    return {"type": "SandboxInternalError", "message": f"{type(exc).__name__}: {exc}", "traceback": text}
