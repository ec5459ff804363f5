"""render_markdown / highlight_python: hostile model text never yields markup that executes."""

from __future__ import annotations

import pytest

from codingagent.lib.markdown import highlight_python, render_markdown


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src='https://evil.example'></iframe>",
        "<svg onload=alert(1)>",
        '<p style="background:url(javascript:alert(1))">x</p>',
    ],
)
def test_hostile_markdown_is_neutralised(hostile):
    html = str(render_markdown(f"Answer: **42**\n\n{hostile}"))

    assert "<strong>42</strong>" in html
    assert "<script" not in html and "onerror" not in html and "onload" not in html
    assert "javascript:" not in html and "<iframe" not in html and "style=" not in html


def test_markdown_keeps_tables_lists_and_code():
    html = str(render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n```\nx = 1\n```"))

    assert "<table>" in html and "<li>one</li>" in html and "<code>x = 1" in html


def test_python_is_highlighted_with_classes_and_escaped():
    html = str(highlight_python("import pandas as pd\ns = '<b>'"))

    assert 'class="highlight"' in html and '<span class="kn">import</span>' in html
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_a_list_right_after_a_line_of_text_renders_as_a_list():
    html = str(render_markdown("Revenue by region:\n- North: **1,234**\n- South: 567"))

    assert "<p>Revenue by region:</p>" in html
    assert "<ul>\n<li>North: <strong>1,234</strong></li>\n<li>South: 567</li>\n</ul>" in html
    assert "- North" not in html


def test_a_numbered_list_and_a_table_right_after_text_render_as_blocks():
    html = str(render_markdown("Steps:\n1. load\n2. plot\n\nTotals:\n| a | b |\n|---|---|\n| 1 | 2 |"))

    assert "<ol>\n<li>load</li>" in html
    assert "<table>" in html and "<td>1</td>" in html


def test_dashes_inside_fenced_code_stay_code():
    html = str(render_markdown("Run:\n```\nx = 1\n- y\n```"))

    assert "<li>" not in html and "- y" in html


def test_a_list_item_with_a_continuation_line_stays_one_tight_list():
    html = str(render_markdown("- a\n  more about a\n- b"))

    assert html.count("<ul>") == 1 and "<p>" not in html
