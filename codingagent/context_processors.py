"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest


def csp_nonce(request: HttpRequest) -> dict[str, object]:
    # django-htmx's {% htmx_script %} reads ``csp_nonce``; the nonce is lazy, so a response whose template
    # never uses it sends a policy without one.
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
