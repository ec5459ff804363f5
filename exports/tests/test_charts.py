import base64
import io
import json

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import pytest
from PIL import Image

from exports.charts import figure_image, plotly_array

_DF = {"x": [1, 2, 3, 4, 5, 6], "y": [2.0, 1.5, 3.2, 4.1, 2.2, 3.3], "group": ["a", "b", "a", "b", "a", "b"]}


def _figure(fig) -> dict:
    return json.loads(fig.to_json())


def _distinct_colours(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB").resize((200, 112))
    return len(image.getcolors(maxcolors=200 * 112) or [])


@pytest.mark.parametrize(
    "make",
    [
        lambda: px.scatter(_DF, x="x", y="y", color="group"),
        lambda: px.line(_DF, x="x", y="y"),
        lambda: px.bar(_DF, x="group", y="y", color="group"),
        lambda: go.Figure([go.Bar(x=["a", "b"], y=[1, 2]), go.Bar(x=["a", "b"], y=[2, 1])], {"barmode": "stack"}),
        lambda: go.Figure(go.Bar(y=["a", "b"], x=[3, 4], orientation="h")),
        lambda: px.histogram(_DF, x="y"),
        lambda: px.box(_DF, x="group", y="y"),
        lambda: px.pie(_DF, names="group", values="y"),
        lambda: px.imshow(np.arange(12).reshape(3, 4)),
    ],
    ids=["scatter", "line", "bar", "stacked-bar", "horizontal-bar", "histogram", "box", "pie", "heatmap"],
)
def test_common_trace_types_draw_a_non_blank_png(make):
    png = figure_image(_figure(make()))

    assert png.startswith(b"\x89PNG")
    assert _distinct_colours(png) > 20


def test_png_is_opaque_and_as_wide_as_the_a4_text_at_110_dpi():
    image = Image.open(io.BytesIO(figure_image(_figure(px.line(_DF, x="x", y="y")))))

    assert image.mode == "RGB"  # an alpha channel would cost the PDF a second (mask) image per chart
    assert image.size == (770, 433)  # 7 in x 3.94 in: 210 mm page - 2 x 16 mm margins


def test_unknown_trace_types_get_a_placeholder_text_not_a_blank_box():
    svg = figure_image(_figure(go.Figure(go.Sankey(node={"label": ["a", "b"]}))), fmt="svg").decode()

    assert "sankey cannot be drawn" in svg.replace("\n", " ")


def test_svg_output_is_a_standalone_svg_with_the_title():
    svg = figure_image(_figure(px.bar(x=["a", "b"], y=[1, 2], title="Revenue")), fmt="svg").decode()

    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "Revenue" in svg


def test_plotly_typed_arrays_are_decoded_with_their_shape():
    raw = np.arange(6, dtype="<f8").reshape(2, 3)
    encoded = {"dtype": "f8", "bdata": base64.b64encode(raw.tobytes()).decode(), "shape": "2, 3"}

    decoded = plotly_array(encoded)

    assert decoded.shape == (2, 3)
    assert decoded[1, 2] == 5.0


def test_an_empty_figure_says_it_has_no_data():
    svg = figure_image({"data": [], "layout": {}}, fmt="svg").decode()

    assert "no data" in svg
