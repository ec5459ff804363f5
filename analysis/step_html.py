"""The HTML of a step's text, rendered once when the step is saved and kept on its row (``Step.html``).

Thoughts are Markdown, code is highlighted Python, an answer is Markdown with each number marked by its claim
(``analysis/claims.py``); all of it sanitized as ``codingagent.lib.markdown`` does. Rendering them on every
view cost a sixth of a 50-question session page. The page, htmx fragments and websocket pushes all show
``Step.content_html``: the stored HTML only while ``Step.html_signature`` (an HMAC of the text, claims, HTML and
``STEP_HTML_VERSION``) matches. A step whose text changed by a path that skipped ``save()`` (an update(), a
bulk_create), HTML written into the row by anything but this module, or HTML made by older rules is shown
rendered afresh: never stale, never trusted unsigned.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from analysis import claims
from codingagent.lib.markdown import highlight_python, render_markdown

# Bump when the rendering or the sanitizing changes; then `manage.py step_html_refresh` re-renders stored rows
# (until it has run, pages render the stale steps on every view: correct, only slower).
STEP_HTML_VERSION = 2  # 2: the signature sorts the claims' keys
KINDS = ("thought", "code", "answer")


def step_html_signature(*, pk: int | None, kind: str, content: str, data: dict | None, html: str) -> str:
    """An HMAC (SECRET_KEY) of what the step's HTML is made from and of the HTML itself: stored HTML is shown only
    with a matching signature, so neither a changed text nor HTML written into the row behind our back is trusted.
    An answer's marks carry the step's pk in their ids, so its pk is part of it."""
    found = ((data or {}).get("claims") or []) if kind == "answer" else []
    # Keys sorted: PostgreSQL's jsonb gives the claims back with their keys in its own order.
    source = json.dumps(
        [STEP_HTML_VERSION, kind, content, found, pk if kind == "answer" else None, html], default=str, sort_keys=True
    )
    return salted_hmac("analysis.Step.html", source, algorithm="sha256").hexdigest()


def step_html_verified(
    *, pk: int | None, kind: str, content: str, data: dict | None, html: str, signature: str
) -> bool:
    return bool(signature) and constant_time_compare(
        signature, step_html_signature(pk=pk, kind=kind, content=content, data=data, html=html)
    )


def step_html_render(*, pk: int | None, kind: str, content: str, data: dict | None) -> SafeString:
    """The sanitized HTML of a thought, code or answer step ("" for the other kinds)."""
    if kind == "thought":
        return render_markdown(content or "")
    if kind == "code":
        return highlight_python(content or "")
    if kind == "answer":
        return answer_html(pk=pk, content=content, found=(data or {}).get("claims") or [])
    return mark_safe("")


def answer_html(*, pk: int | None, content: str, found: list[dict[str, Any]]) -> SafeString:
    """The answer as sanitized Markdown with each number marked: verified ones show their source on hover or focus
    and lead to it on click (static/js/claims.js); unverified ones are flagged, with a note under the answer."""
    html = render_markdown(claims.mark_claims(content or "", found))
    html = claims.marks_replace(html, found, lambda claim, index, text: _claim_mark(claim, f"claim-{pk}-{index}", text))
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


def step_html_refresh(steps, *, batch_size: int = 500) -> int:
    """Store the HTML of every thought, code and answer step of ``steps`` (a queryset of Step, or of the
    historical Step of a migration) whose stored HTML is missing, stale or unsigned; returns how many.
    Read and written a batch at a time by pk (no cursor left open on the table being written)."""
    rows = steps.filter(kind__in=KINDS).only("pk", "kind", "content", "data", "html", "html_signature").order_by("pk")
    count, after = 0, 0
    while batch := list(rows.filter(pk__gt=after)[:batch_size]):
        stale = []
        for step in batch:
            values = {"pk": step.pk, "kind": step.kind, "content": step.content, "data": step.data}
            if not step_html_verified(**values, html=step.html, signature=step.html_signature):
                step.html = str(step_html_render(**values))
                step.html_signature = step_html_signature(**values, html=step.html)
                stale.append(step)
        steps.model.objects.bulk_update(stale, ["html", "html_signature"])
        count, after = count + len(stale), batch[-1].pk
    return count
