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
