"""Static images of plotly figures, drawn with matplotlib from the figure's own data.

No kaleido/Chrome: the common trace types (scatter/line, bar, histogram, box, pie,
heatmap) are redrawn with matplotlib's object API (no pyplot global state, so it is
safe in threads). Anything else becomes a clear placeholder text, never a blank box.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.category import StrCategoryFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter
from PIL import Image

# Renditions are drawn at the A4 text width (210 mm - 2 x 16 mm margins = 7 in) so the PDF shows them 1:1: fonts
# keep their point size and the page gets 110 dpi. Larger images only cost decoding and re-encoding in the PDF engine.
PNG_WIDTH_IN, PNG_HEIGHT_IN, PNG_DPI = 7.0, 3.9375, 110
SUPPORTED_TRACES = ("scatter", "scattergl", "bar", "histogram", "box", "pie", "heatmap")
_DTYPES = {"i1": "<i1", "u1": "<u1", "i2": "<i2", "u2": "<u2", "i4": "<i4", "u4": "<u4", "f4": "<f4", "f8": "<f8"}
# What plotly's axis autotype reads as a date: 2024, 2024-03, 2024-03-05, with an optional time and zone.
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
MAX_CATEGORY_TICKS = 12
_TICK_PT = (
    10.0  # matplotlib's default tick label size, in points  # more category labels than this overlap into a solid bar
)
_PALETTE = [
    "#636efa",
    "#EF553B",
    "#00cc96",
    "#ab63fa",
    "#FFA15A",
    "#19d3f3",
    "#FF6692",
    "#B6E880",
    "#FF97FF",
    "#FECB52",
]


def plotly_array(value: Any) -> list | np.ndarray | None:
    """A trace array as plotly stores it: a list, or (plotly >= 6) a base64 typed array {"dtype", "bdata", "shape"}."""
    if value is None:
        return None
    if isinstance(value, dict) and "bdata" in value:
        dtype = _DTYPES.get(str(value.get("dtype", "f8")), "<f8")
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=dtype)
        shape = value.get("shape")
        if shape:
            dims = [int(p) for p in str(shape).split(",") if p.strip()]
            if math.prod(dims) == array.size:
                array = array.reshape(dims)
        return array
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _text(value: Any) -> str:
    """A title may be a string or {"text": ...}."""
    if isinstance(value, dict):
        value = value.get("text")
    return str(value) if value not in (None, "") else ""


def _numeric(values: Any) -> np.ndarray | None:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None


def _dates(values: Any) -> np.ndarray | None:
    """datetime64 values when every non-empty value is a date string (as plotly writes pandas datetimes)."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return values
    if isinstance(values, np.ndarray) or not len(values):
        return None
    parsed = []
    for value in values:
        if value is None or value == "":
            parsed.append(np.datetime64("NaT"))
            continue
        if not isinstance(value, str) or not _DATE.match(value.strip()):
            return None
        text = value.strip()
        text = text + "-01" if len(text) == 7 else text  # "2024-03": a month
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        parsed.append(np.datetime64(moment.replace(tzinfo=None), "ms"))
    return np.array(parsed, dtype="datetime64[ms]")


def _axis_values(values: Any, axis_type: str = "") -> np.ndarray | list[str]:
    """Dates as datetime64, numbers (numeric strings too) as floats, anything else as text categories.

    Drawing dates as categories put every date under the axis as its own label: a solid black bar.
    """
    if axis_type != "category":
        dates = _dates(values) if axis_type in ("", "-", "date") else None
        if dates is not None:
            return dates
        numbers = _numeric(values)
        if numbers is not None:
            return numbers
    return ["" if v is None else str(v) for v in values]


def _xy(values: Any) -> list | np.ndarray:
    return _axis_values(values)


def _color(trace: dict, index: int, key: str = "marker") -> str:
    color = (trace.get(key) or {}).get("color") if isinstance(trace.get(key), dict) else None
    return color if isinstance(color, str) else _PALETTE[index % len(_PALETTE)]


def _draw_scatter(ax, trace: dict, index: int, types: tuple[str, str] = ("", "")) -> None:
    x, y = plotly_array(trace.get("x")), plotly_array(trace.get("y"))
    if y is None and x is None:
        return
    if y is None:
        y, x = x, list(range(len(x)))
    if x is None:
        x = list(range(len(y)))
    mode = str(trace.get("mode") or ("lines" if len(y) > 20 else "lines+markers"))
    color = _color(trace, index, "line" if "lines" in mode and "markers" not in mode else "marker")
    label = trace.get("name") or None
    xs, ys = _axis_values(x, types[0]), _axis_values(y, types[1])
    if "lines" in mode:
        ax.plot(xs, ys, color=color, label=label, marker="o" if "markers" in mode else None, markersize=3)
    else:
        ax.scatter(xs, ys, color=color, label=label, s=14, alpha=0.8)


def _bar_values(trace: dict) -> tuple[list[Any], np.ndarray]:
    """(categories, summed values per category) of one bar trace, in first-seen order."""
    x, y = plotly_array(trace.get("x")), plotly_array(trace.get("y"))
    cats, values = (y, x) if trace.get("orientation") == "h" else (x, y)
    if values is None:
        return [], np.zeros(0)
    numbers = _numeric(values)
    numbers = np.nan_to_num(numbers) if numbers is not None else np.zeros(len(values))
    if cats is None:
        cats = list(range(len(numbers)))
    sums: dict[Any, float] = {}
    for cat, value in zip(_plain(cats), numbers, strict=False):
        sums[cat] = sums.get(cat, 0.0) + float(value)
    return list(sums), np.array(list(sums.values()))


def _plain(values: Any) -> list[Any]:
    """Hashable Python values (numpy scalars become int/float/str)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _bar_positions(categories: list[Any], axis_type: str) -> tuple[np.ndarray, float, list[str] | None]:
    """(position per category, slot width, tick labels or None for a date/number axis), as plotly places bars.

    Dates and numbers sit on a continuous axis at their value; text is evenly spaced categories.
    """
    values = _axis_values(categories, axis_type)
    if isinstance(values, list):
        return np.arange(len(categories), dtype=float), 1.0, values
    positions = mdates.date2num(values) if np.issubdtype(values.dtype, np.datetime64) else values.astype(float)
    finite = np.unique(positions[np.isfinite(positions)])
    slot = float(np.min(np.diff(finite))) if len(finite) > 1 else 1.0
    return positions, slot, None


def _draw_bars(ax, bars: list[tuple[int, dict]], *, stacked: bool, layout: dict) -> None:
    """All bar traces on one shared category axis, grouped side by side or stacked."""
    series = [(index, trace, *_bar_values(trace)) for index, trace in bars]
    categories = list(dict.fromkeys(c for _, _, cats, _ in series for c in cats))
    slot_of = {c: i for i, c in enumerate(categories)}
    horizontal = any(t.get("orientation") == "h" for _, t in bars)
    axis_type = _axis_type(layout, "yaxis" if horizontal else "xaxis")
    positions, slot, labels = _bar_positions(categories, axis_type)
    if labels is None and np.issubdtype(_axis_values(categories, axis_type).dtype, np.datetime64):
        _date_axis(ax.yaxis if horizontal else ax.xaxis)
    width = (0.8 if stacked else 0.8 / max(1, len(series))) * slot
    base = np.zeros(len(categories))
    for number, (index, trace, cats, values) in enumerate(series):
        heights = np.zeros(len(categories))
        heights[[slot_of[c] for c in cats]] = values
        offset = 0.0 if stacked else (number - (len(series) - 1) / 2) * width
        kwargs = {"color": _color(trace, index), "label": trace.get("name") or None}
        if horizontal:
            ax.barh(positions + offset, heights, height=width, left=base if stacked else None, **kwargs)
        else:
            ax.bar(positions + offset, heights, width=width, bottom=base if stacked else None, **kwargs)
        if stacked:
            base = base + heights
    if labels is not None:
        _category_ticks(ax.yaxis if horizontal else ax.xaxis, labels, rotate=not horizontal)


def _category_ticks(axis, labels: list[str], *, rotate: bool) -> None:
    """At most MAX_CATEGORY_TICKS evenly spread labels; long or many ones smaller and slanted."""
    step = max(1, math.ceil(len(labels) / MAX_CATEGORY_TICKS))
    ticks = np.arange(len(labels))[::step]
    shown = [label if len(label) <= 20 else label[:19] + "…" for label in labels[::step]]
    if rotate and (len(shown) > 6 or max((len(t) for t in shown), default=0) > 10):
        axis.set_ticks(ticks, shown, rotation=30, ha="right", rotation_mode="anchor", fontsize=8)
    else:
        axis.set_ticks(ticks, shown)


def _date_axis(axis) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axis.set_major_locator(locator)
    axis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _axis_type(layout: dict, name: str) -> str:
    axis = layout.get(name) or {}
    return str(axis.get("type") or "") if isinstance(axis, dict) else ""


def _compact_number(value: float, _position: Any = None) -> str:
    """Tick text that stays short: 950, 12.5k, 3.2M (matplotlib's '1e6' offset is easy to miss)."""
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e4, "k")):
        if magnitude >= limit:
            return f"{value / limit:,.3g}{suffix}"
    return f"{value:,.6g}"


def _draw_histogram(ax, trace: dict, index: int) -> None:
    values = plotly_array(trace.get("x"))
    horizontal = values is None
    if horizontal:
        values = plotly_array(trace.get("y"))
    if values is None:
        return
    numbers = _numeric(values)
    label = trace.get("name") or None
    if numbers is None:  # categorical histogram = counts per category
        labels, counts = np.unique([str(v) for v in values], return_counts=True)
        ax.bar(labels, counts, color=_color(trace, index), label=label)
        return
    numbers = numbers[np.isfinite(numbers)]
    bins = int(trace.get("nbinsx") or trace.get("nbinsy") or 0) or "auto"
    ax.hist(numbers, bins=bins, color=_color(trace, index), alpha=0.75, label=label,
            orientation="horizontal" if horizontal else "vertical")  # fmt: skip


def _draw_box(ax, trace: dict, index: int, *, position: int) -> None:
    values = plotly_array(trace.get("y"))
    if values is None:
        values = plotly_array(trace.get("x"))
    numbers = _numeric(values) if values is not None else None
    if numbers is None:
        return
    groups = plotly_array(trace.get("x")) if trace.get("y") is not None else None
    if groups is not None and len(groups) == len(numbers) and _numeric(groups) is None:
        names = list(dict.fromkeys(str(g) for g in groups))
        data = [numbers[[str(g) == n for g in groups]] for n in names]
        ax.boxplot(data, tick_labels=names, patch_artist=True,
                   boxprops={"facecolor": _color(trace, index), "alpha": 0.6})  # fmt: skip
        return
    ax.boxplot([numbers[np.isfinite(numbers)]], positions=[position], tick_labels=[trace.get("name") or f"trace {index}"],
               patch_artist=True, boxprops={"facecolor": _color(trace, index), "alpha": 0.6})  # fmt: skip


def _draw_heatmap(fig: Figure, ax, trace: dict) -> None:
    z = plotly_array(trace.get("z"))
    if z is None:
        return
    z = np.asarray(_numeric(z) if _numeric(z) is not None else np.zeros((1, 1)), dtype=float)
    if z.ndim == 1:
        z = z.reshape(1, -1)
    image = ax.imshow(z, aspect="auto", cmap="viridis", origin="upper")
    fig.colorbar(image, ax=ax)
    x, y = plotly_array(trace.get("x")), plotly_array(trace.get("y"))
    if x is not None and len(x) == z.shape[1] and len(x) <= 30:
        ax.set_xticks(range(len(x)), [str(v) for v in x], rotation=45, ha="right")
    if y is not None and len(y) == z.shape[0] and len(y) <= 30:
        ax.set_yticks(range(len(y)), [str(v) for v in y])
    if z.size <= 100:
        for (row, col), value in np.ndenumerate(z):
            ax.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=7, color="white")


def _draw_pie(ax, trace: dict) -> None:
    raw = plotly_array(trace.get("values"))
    values = _numeric(raw if raw is not None else [])
    labels = plotly_array(trace.get("labels"))
    if values is None or not len(values):
        return
    labels = [str(v) for v in labels] if labels is not None and len(labels) == len(values) else None
    hole = float(trace.get("hole") or 0)
    ax.pie(values, labels=labels, autopct="%1.1f%%", startangle=90, colors=_PALETTE,
           wedgeprops={"width": 1 - hole} if hole else None)  # fmt: skip
    ax.axis("equal")


def _placeholder(ax, text: str) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11, color="#5f6b7a",
            bbox={"boxstyle": "round", "facecolor": "#f0f2f5", "edgecolor": "#dfe3e8"})  # fmt: skip


def figure_draw(figure: dict[str, Any], *, width: float = PNG_WIDTH_IN, height: float = PNG_HEIGHT_IN) -> Figure:
    """A matplotlib Figure drawing the plotly figure dict (all traces on one axes)."""
    fig = Figure(figsize=(width, height), dpi=100)
    # Fixed margins instead of constrained layout: it costs a second full draw per chart.
    fig.subplots_adjust(left=0.1, right=0.96, bottom=0.17, top=0.88)
    ax = fig.add_subplot()
    traces = [t for t in (figure.get("data") or []) if isinstance(t, dict)]
    layout = figure.get("layout") or {}
    kinds = {str(t.get("type") or "scatter") for t in traces}
    unknown = sorted(kinds - set(SUPPORTED_TRACES))
    if not traces:
        _placeholder(ax, "This chart has no data.")
    elif unknown and not (kinds & set(SUPPORTED_TRACES)):
        _placeholder(ax, f"Chart type {', '.join(unknown)} cannot be drawn as a static image.\n"
                         "Open the interactive chart or download its JSON.")  # fmt: skip
    else:
        _draw_traces(fig, ax, traces, layout)
        _fit_margins(fig, ax)
        if unknown:
            ax.text(0.99, 0.01, f"not drawn: {', '.join(unknown)}", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=8, color="#9a6700")  # fmt: skip
    title = _text(layout.get("title"))
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def _draw_traces(fig: Figure, ax, traces: list[dict], layout: dict) -> None:
    types = (_axis_type(layout, "xaxis"), _axis_type(layout, "yaxis"))
    drawers: dict[str, Callable[[dict, int], None]] = {
        "scatter": lambda t, i: _draw_scatter(ax, t, i, types),
        "scattergl": lambda t, i: _draw_scatter(ax, t, i, types),
        "histogram": lambda t, i: _draw_histogram(ax, t, i),
        "box": lambda t, i: _draw_box(ax, t, i, position=i + 1),
        "heatmap": lambda t, i: _draw_heatmap(fig, ax, t),
        "pie": lambda t, i: _draw_pie(ax, t),
    }
    bars = [(i, t) for i, t in enumerate(traces) if t.get("type") == "bar"]
    if bars:
        _draw_bars(ax, bars, stacked=layout.get("barmode") in ("stack", "relative"), layout=layout)
    for index, trace in enumerate(traces):
        kind = str(trace.get("type") or "scatter")
        if kind in drawers:
            drawers[kind](trace, index)
    if "pie" not in {t.get("type") for t in traces}:
        ax.set_xlabel(_text((layout.get("xaxis") or {}).get("title")))
        ax.set_ylabel(_text((layout.get("yaxis") or {}).get("title")))
        ax.grid(True, alpha=0.3)
        _readable_axes(ax)
    if sum(1 for t in traces if t.get("name") and t.get("showlegend", True) is not False) > 1:
        ax.legend(fontsize=8, title=_text((layout.get("legend") or {}).get("title")) or None)


def _readable_axes(ax) -> None:
    """Dates as concise dates, numbers compact, categories thinned out, on whichever axis holds them.

    Each axis is recognised by the formatter matplotlib's unit converters gave it for the data drawn.
    """
    for axis in (ax.xaxis, ax.yaxis):
        formatter = axis.get_major_formatter()
        if isinstance(formatter, mdates.AutoDateFormatter):
            _date_axis(axis)
        elif isinstance(formatter, StrCategoryFormatter):  # text on a scatter/line axis
            if len(axis.get_major_locator()()) > MAX_CATEGORY_TICKS:
                axis.set_major_locator(MaxNLocator(nbins=MAX_CATEGORY_TICKS, integer=True))
        elif isinstance(formatter, ScalarFormatter):
            axis.set_major_formatter(FuncFormatter(_compact_number))


def _fit_margins(fig: Figure, ax) -> None:
    """Room for the widest y tick label, the y title and slanted x labels (fixed margins clipped them)."""
    low, high = ax.get_ylim()
    locator, formatter = ax.yaxis.get_major_locator(), ax.yaxis.get_major_formatter()
    try:
        ticks = [t for t in locator.tick_values(low, high) if min(low, high) <= t <= max(low, high)]
        labels = formatter.format_ticks(ticks) if ticks else []
    except (TypeError, ValueError):
        labels = []
    width_in, height_in = fig.get_figwidth(), fig.get_figheight()
    widest = max((len(str(label)) for label in labels), default=4)
    left = (widest * 0.6 * _TICK_PT + 6 + (_TICK_PT * 1.9 if ax.get_ylabel() else 0)) / 72 + 0.1  # inches
    bottom = 0.17 * height_in
    slanted = [t for t in ax.get_xticklabels() if t.get_rotation() and t.get_text()]
    if slanted:
        reach = max(len(t.get_text()) for t in slanted) * 0.6 * slanted[0].get_fontsize() / 72 + 0.15
        turn = math.radians(slanted[0].get_rotation())
        bottom = reach * math.sin(turn) + (0.35 if ax.get_xlabel() else 0.1)
        # The first label hangs left of its tick, which sits about half a slot inside the axes.
        left = max(left, reach * math.cos(turn) - 0.5 * (width_in * 0.8) / max(1, len(ax.get_xticks())))
    fig.subplots_adjust(left=min(0.35, max(0.08, left / width_in)), bottom=min(0.45, max(0.12, bottom / height_in)))


def figure_image(
    figure: dict[str, Any], *, fmt: str = "png", width: float = PNG_WIDTH_IN, height: float = PNG_HEIGHT_IN
) -> bytes:
    """PNG (opaque RGB) or SVG bytes of the plotly figure dict, drawn offline with matplotlib."""
    fig = figure_draw(figure, width=width, height=height)
    buffer = io.BytesIO()
    if fmt != "png":
        fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        return buffer.getvalue()
    # matplotlib writes RGBA; the figure is opaque, and an alpha channel makes weasyprint encode a second
    # (mask) image per chart in every PDF export.
    fig.set_dpi(PNG_DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    rgba.convert("RGB").save(buffer, format="PNG", dpi=(PNG_DPI, PNG_DPI))
    return buffer.getvalue()
