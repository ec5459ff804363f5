"""Markdown and Python code rendering shared by the session page, pushes and exports.

Model output is untrusted: markdown is rendered first, then sanitized with nh3
against a small allowlist, so hostile text never yields script or markup that
executes (no ``<script>``, no ``on*`` handlers, no ``javascript:`` URLs, no raw
``<iframe>``/``<style>``). Code highlighting uses Pygments with CSS classes
(no inline styles) so light and dark themes can both style it.
"""

from __future__ import annotations

import re
import threading

import markdown as _markdown
import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions.fenced_code import FencedCodeExtension
from markdown.extensions.nl2br import Nl2BrExtension
from markdown.extensions.sane_lists import SaneListExtension
from markdown.extensions.tables import TableExtension
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "code": {"class"},
    "span": {"class"},
    "th": {"align"},
    "td": {"align"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
# Extension classes, not names: a name is looked up among the installed packages' entry points, which reads
# every package's metadata (over a second in a busy worker, at its first step).
_MARKDOWN_EXTENSIONS = (FencedCodeExtension, TableExtension, SaneListExtension, Nl2BrExtension)
# Content of these tags is dropped entirely, not just unwrapped.
_DROP_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}

_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,3}[.)])\s+\S")
_TABLE_ROW = re.compile(r"^ {0,3}\|")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")

_ENGINES = threading.local()
_PY_LEXER = PythonLexer()
_FORMATTER = HtmlFormatter(cssclass="highlight", nowrap=False, classprefix="")


def markdown_blocks_separated(text: str) -> str:
    """``text`` with a blank line before each list or table that directly follows a paragraph line.

    Models write CommonMark ("Totals:\n- North: 3\n- South: 4"); Python-Markdown (and some viewers) only start a
    list or a table after a blank line, so these lists showed as literal "- " text. Fenced code is left alone.
    """
    out: list[str] = []
    in_fence = in_block = False
    for line in (text or "").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            starts = _LIST_ITEM.match(line) or _TABLE_ROW.match(line)
            if starts and out and out[-1].strip() and not in_block:
                out.append("")
            in_block = bool(line.strip()) and (in_block or bool(starts))
        out.append(line)
    return "\n".join(out)


def _markdown_engine() -> _markdown.Markdown:
    """One converter per thread, reset between texts: building one (its parser and patterns) cost three times
    the conversion itself, on every step of every page. Converters are not thread-safe, hence per thread."""
    engine = getattr(_ENGINES, "engine", None)
    if engine is None:
        engine = _ENGINES.engine = _markdown.Markdown(
            extensions=[ext() for ext in _MARKDOWN_EXTENSIONS], output_format="html"
        )
    return engine


def render_markdown(text: str) -> SafeString:
    """Render untrusted markdown to sanitized HTML; safe to output without escaping."""
    if not text:
        return mark_safe("")
    html = _markdown_engine().reset().convert(markdown_blocks_separated(text))
    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        clean_content_tags=_DROP_CONTENT,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitized by nh3 just above


def highlight_python(code: str) -> SafeString:
    """Highlight Python source as ``<div class="highlight"><pre>…</pre></div>`` with Pygments CSS classes."""
    if not code:
        return mark_safe('<div class="highlight"><pre></pre></div>')
    try:
        return mark_safe(highlight(code, _PY_LEXER, _FORMATTER))  # noqa: S308 - Pygments escapes the source
    except Exception:  # pragma: no cover - Pygments never raises on text, but never lose the code
        return mark_safe(f'<div class="highlight"><pre>{escape(code)}</pre></div>')  # noqa: S308


def pygments_css(*, dark: bool = False) -> str:
    """The CSS rules for highlighted code (scoped to ``.highlight``), for a light or dark theme."""
    style = "github-dark" if dark else "default"
    try:
        return HtmlFormatter(style=style, cssclass="highlight", classprefix="").get_style_defs(".highlight")
    except Exception:  # the style may not ship with this Pygments
        return HtmlFormatter(cssclass="highlight", classprefix="").get_style_defs(".highlight")
