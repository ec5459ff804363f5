"""Static renditions draw date axes as dates and numeric strings as numbers, with readable ticks.

Each picture test renders the chart, saves the PNG (look at it: tmp_path is printed on failure) and asserts on what
a person sees: the tick labels matplotlib drew and that the band under the x axis is not a solid black bar.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from exports.charts import figure_draw, figure_image

MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}


@pytest.fixture
def daily():
    rng = np.random.default_rng(7)
    dates = pd.date_range("2024-01-01", periods=366, freq="D")
    return pd.DataFrame({"date": dates, "revenue": rng.normal(250_000, 40_000, 366).round(2)})


def _drawn(figure_json: dict):
    fig = figure_draw(figure_json)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return fig, fig.axes[0], canvas.get_renderer()


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def _dark_share_below_axes(png: bytes, ax_bottom_fraction: float) -> float:
    """Share of near-black pixels in the tick-label band under the axes (a category pile-up is ~all black)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    height = image.shape[0]
    top = int(height * (1 - ax_bottom_fraction)) + 4
    band = image[top : top + 14, :]
    return float((band < 80).mean())


def _look(tmp_path, name: str, figure_json: dict) -> bytes:
    png = figure_image(figure_json)
    (tmp_path / f"{name}.png").write_bytes(png)
    return png


def test_a_daily_line_chart_has_a_few_month_ticks_not_a_black_bar(daily, tmp_path):
    figure = json.loads(px.line(daily, x="date", y="revenue", title="Revenue").to_json())

    png = _look(tmp_path, "line", figure)
    fig, ax, _ = _drawn(figure)

    texts = _tick_texts(ax.xaxis)
    assert 3 <= len(texts) <= 10, texts
    assert set(texts) & MONTHS and "2024" in texts
    assert _dark_share_below_axes(png, fig.subplotpars.bottom) < 0.1


def test_a_monthly_bar_chart_puts_its_bars_on_a_date_axis(daily, tmp_path):
    monthly = daily.set_index("date").resample("MS").sum().reset_index()
    figure = json.loads(px.bar(monthly, x="date", y="revenue").to_json())

    png = _look(tmp_path, "bar", figure)
    fig, ax, _ = _drawn(figure)

    texts = _tick_texts(ax.xaxis)
    assert 3 <= len(texts) <= 10 and set(texts) <= MONTHS | {"2024", "2025"}
    assert len(ax.patches) == 12
    assert _dark_share_below_axes(png, fig.subplotpars.bottom) < 0.1


def test_a_daily_bar_chart_stays_readable(daily, tmp_path):
    figure = json.loads(px.bar(daily, x="date", y="revenue").to_json())

    png = _look(tmp_path, "bar-daily", figure)
    fig, ax, _ = _drawn(figure)

    assert 3 <= len(_tick_texts(ax.xaxis)) <= 10
    assert _dark_share_below_axes(png, fig.subplotpars.bottom) < 0.1


def test_a_date_scatter_chart_has_date_ticks(daily, tmp_path):
    figure = json.loads(px.scatter(daily, x="date", y="revenue").to_json())

    png = _look(tmp_path, "scatter", figure)
    fig, ax, _ = _drawn(figure)

    texts = _tick_texts(ax.xaxis)
    assert 3 <= len(texts) <= 10 and set(texts) & MONTHS
    assert _dark_share_below_axes(png, fig.subplotpars.bottom) < 0.1


def test_numeric_strings_are_drawn_as_numbers_in_their_order(tmp_path):
    figure = json.loads(go.Figure(go.Scatter(x=["1", "2", "10", "20"], y=["5", "7", "3", "9"], mode="lines")).to_json())

    _look(tmp_path, "numeric-strings", figure)
    _fig, ax, _ = _drawn(figure)

    assert list(ax.lines[0].get_xdata()) == [1.0, 2.0, 10.0, 20.0]
    assert all(re.fullmatch(r"[\d.,]+", text) for text in _tick_texts(ax.xaxis))


def test_the_y_title_and_big_numbers_fit_inside_the_picture(daily, tmp_path):
    figure = json.loads(px.line(daily, x="date", y="revenue", labels={"revenue": "Revenue (EUR)"}).to_json())

    _look(tmp_path, "y-title", figure)
    _fig, ax, renderer = _drawn(figure)

    assert ax.yaxis.label.get_window_extent(renderer).x0 >= 0
    assert min(t.get_window_extent(renderer).x0 for t in ax.get_yticklabels() if t.get_text()) >= 0
    assert all(text.endswith("k") or text == "0" for text in _tick_texts(ax.yaxis))


def test_many_text_categories_show_at_most_twelve_labels_inside_the_picture(tmp_path):
    names = [f"product number {i}" for i in range(40)]
    figure = json.loads(px.bar(x=names, y=list(range(40))).to_json())

    _look(tmp_path, "categories", figure)
    fig, ax, renderer = _drawn(figure)

    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert 6 <= len(labels) <= 12
    assert min(t.get_window_extent(renderer).x0 for t in labels) >= 0
    assert min(t.get_window_extent(renderer).y0 for t in labels) >= 0


def test_an_explicit_category_axis_keeps_dates_as_labels():
    figure = {
        "data": [{"type": "bar", "x": ["2024-01-01", "2024-06-01"], "y": [1, 2]}],
        "layout": {"xaxis": {"type": "category"}},
    }

    _fig, ax, _ = _drawn(figure)

    assert _tick_texts(ax.xaxis) == ["2024-01-01", "2024-06-01"]
