from __future__ import annotations

import json

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from analysis import claims
from analysis.artifact_views import ArtifactView, artifact_view_for
from codingagent.lib.markdown import highlight_python, render_markdown

register = template.Library()


@register.simple_tag
def artifact_view(artifact) -> ArtifactView:
    """The view a selector or view precomputed (``artifact.view``), else one built from the row (no file read)."""
    view = getattr(artifact, "view", None)
    return view if isinstance(view, ArtifactView) else artifact_view_for(artifact)


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


@register.filter(name="answer_html")
def answer_html(step) -> SafeString:
    """The answer step as sanitized Markdown with each number marked: verified ones show their source on hover or
    focus and lead to it on click (static/js/claims.js); unverified ones are flagged, with a note under the answer."""
    found = (step.data or {}).get("claims") or []
    html = render_markdown(claims.mark_claims(step.content or "", found))
    html = claims.marks_replace(
        html, found, lambda claim, index, text: _claim_mark(claim, f"claim-{step.pk}-{index}", text)
    )
    return mark_safe(html + _claims_note(found))  # noqa: S308 - sanitized Markdown; marks built with format_html


def _claim_mark(claim: dict, tip_id: str, text: str) -> str:
    location = claim.get("location") or {}
    state = "verified" if claim.get("verified") else "unverified"
    classes = f"claim claim-{state}" + (" claim-small-sample" if claim.get("warning") else "")
    attributes = {
        "data-claim-step": claim.get("step"),
        "data-claim-source": claim.get("source"),
        "data-claim-row": location.get("row"),
        "data-claim-column": location.get("column"),
        "data-claim-line": location.get("line"),
    }
    data = format_html_join("", ' {}="{}"', ((k, v) for k, v in attributes.items() if v is not None))
    label = claims.claim_source_label(claim)
    tip = f"From {label}" if claim.get("verified") else label[:1].upper() + label[1:]
    return format_html(
        '<span class="{}" tabindex="0" aria-describedby="{}"{}>{}<span class="claim-tip" role="tooltip" id="{}">{}</span></span>',
        classes, tip_id, data, text, tip_id, tip,
    )  # fmt: skip


def _claims_note(found: list[dict]) -> str:
    notes = [claims.unverified_note(found)]
    small = [claim for claim in found if claim.get("warning")]
    if small:
        listed = "; ".join(f"{claim['text']} is {claim['warning']}" for claim in small)
        notes.append(f"Small samples: {listed} (fewer than {claims.SMALL_GROUP_ROWS}).")
    return "".join(format_html('<p class="claims-note" role="note">{}</p>', note) for note in notes if note)
