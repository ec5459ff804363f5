from __future__ import annotations

import json

from django import template
from django.utils.safestring import SafeString

from codingagent.lib.markdown import highlight_python, render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")


@register.filter(name="python")
def python_filter(code: str) -> SafeString:
    return highlight_python(code or "")


@register.filter(name="pretty_json")
def pretty_json(value) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
