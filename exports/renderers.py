"""Export renderers: Markdown (zip), JSON, PDF and Jupyter notebook of a session or a project.

Each ``render_*`` returns ``(filename, content_type, bytes)``; filenames are ``<slugified title>-<YYYY-MM-DD>``.
weasyprint is imported only here.

Format decisions:
- Markdown is a **zip** (``<name>/<name>.md`` + ``<name>/images/artifact-<id>.png``, relative links), not
  data URIs: 50 charts inline would make a multi-megabyte .md that editors and diff tools choke on.
- JSON follows ``exports/schema/export-v1.json`` (``"schema_version": 1``) and carries every artifact's content.
- PDF: title page with counts and a table of contents (page numbers via ``target-counter``), per-question
  sections, highlighted code, table heads (first ``PDF_TABLE_ROWS`` rows), charts as PNG (plotly drawn
  offline through matplotlib, see ``exports.charts``), page numbers via ``@page`` counters.
- Notebook: dataset loading cell first, failed code kept as Markdown with its error (so it runs top to bottom).
- Built synchronously in the request: a 50-question session is a few MB and the PDF has to be built whole
  anyway; plotly PNGs are drawn once and stored (renditions), so only the first export pays for them.

Everything the model, the user or a dataset wrote is untrusted: HTML is escaped by the template engine or
sanitized by ``render_markdown``; Markdown sources get ``sanitize_markdown_source``; notebook HTML outputs
are built from escaped cells; the PDF engine fetches nothing: it gets the export's own PNGs from memory.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import nbformat
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from analysis import claims
from analysis.models import AnalysisSession, Artifact
from codingagent.lib.markdown import highlight_python, pygments_css, render_markdown
from exports.document import (
    Block,
    CodeBlock,
    ExportContext,
    export_context_build,
    run_blocks,
    sanitize_markdown_source,
)
from exports.services import EXPORT_FORMATS, UnknownFormat, artifact_png_bytes
from exports.tables import cell_format, column_decimals
from projects.models import Project
from projects.profile_display import profile_tables, shape_text

Rendered = tuple[str, str, bytes]
MAX_TABLE_ROWS = 200  # per table in Markdown/notebook; the JSON export keeps every stored row
PDF_TABLE_ROWS = 12  # a report shows the head of each table; table layout is most of the PDF time


def export_render(*, target: AnalysisSession | Project, fmt: str) -> Rendered:
    """Validate the format first (cheap), then collect the content once and render it."""
    renderer = _RENDERERS.get((fmt or "").lower())
    if renderer is None:
        raise UnknownFormat(f"Unknown export format {fmt!r}. Choose one of: {', '.join(EXPORT_FORMATS)}.")
    return renderer(export_context_build(target=target))


# --- shared helpers ---------------------------------------------------------------------------------------


def table_cells(content: dict[str, Any], limit: int = MAX_TABLE_ROWS) -> tuple[list[str], list[list[Any]], int]:
    """(column names, formatted cells, rows left out) of a table artifact's content."""
    columns, rows, dtypes = content.get("columns") or [], content.get("rows") or [], content.get("dtypes") or {}
    shown = rows[:limit]
    decimals = [column_decimals([r[i] for r in shown if i < len(r)]) for i in range(len(columns))]
    cells = [
        [cell_format(r[i] if i < len(r) else None, decimals=decimals[i], dtype=dtypes.get(c, "")) for i, c in enumerate(columns)]
        for r in shown
    ]  # fmt: skip
    return columns, cells, max(0, len(rows) - len(shown))


def dataset_heading(dataset: dict[str, Any]) -> str:
    """ "2,000 rows × 8 columns", or "3 sheets" for a workbook (each sheet then has its own shape)."""
    sheets = (dataset.get("profile") or {}).get("sheets") or []
    if len(sheets) > 1:
        return f"{len(sheets)} sheets"
    return shape_text(dataset.get("row_count"), dataset.get("column_count"))


def dataset_tables(dataset: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, str, str, str]]]]:
    """(sheet name or "", shape, [(column, type, missing, summary)]) per table, formatted as the dataset page does."""
    return [
        (t.sheet, t.shape, [(c.name, c.type_label, c.missing, c.summary_text) for c in t.columns])
        for t in profile_tables(dataset.get("profile"))
    ]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def _fence(text: str, lang: str = "") -> str:
    """A fenced block that the content cannot close early (longer fence than any backtick run inside)."""
    longest = max((len(m) for m in re.findall(r"`+", text or "")), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{(text or '').rstrip()}\n{fence}"


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def _png_of(context: ExportContext, artifact_id: int) -> bytes | None:
    artifact = context.artifacts.get(artifact_id)
    if artifact is None or artifact.kind not in (Artifact.Kind.PLOTLY, Artifact.Kind.IMAGE):
        return None
    try:
        return artifact_png_bytes(artifact=artifact)
    except (OSError, ValueError):
        return None


def _artifact_docs(context: ExportContext) -> dict[int, dict[str, Any]]:
    docs = {a["id"]: a for a in context.document["pinned_artifacts"]}
    for session in context.document["sessions"]:
        for run in session["runs"]:
            docs.update({a["id"]: a for a in run["artifacts"]})
    return docs


# --- JSON -------------------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """NaN/Infinity are not JSON: a stray one (e.g. inside a figure) becomes null instead of failing the export."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def render_json(context: ExportContext) -> Rendered:
    # Compact on purpose: with ``indent`` the stdlib falls back to its pure-Python encoder (~5x slower).
    options = {"ensure_ascii": False, "default": str, "allow_nan": False, "separators": (",", ":")}
    try:
        body = json.dumps(context.document, **options)
    except ValueError:
        body = json.dumps(_finite(context.document), **options)
    return f"{context.filename_base}.json", "application/json", body.encode()


# --- Markdown (a zip: the .md plus images/) ---------------------------------------------------------------


def _md_table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        text = value.text if hasattr(value, "text") else str(value)
        return _one_line(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;") or " "

    if not columns:
        return "_(empty table)_"
    aligns = ["---:" if rows and all(getattr(r[i], "css", "") in ("num", "null") for r in rows) else "---"
              for i in range(len(columns))]  # fmt: skip
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_artifact(doc: dict[str, Any], context: ExportContext, images: dict[str, bytes]) -> str:
    title = sanitize_markdown_source(_one_line(doc["title"])).replace("]", "\\]")
    content = doc.get("content") or {}
    if doc["kind"] in (Artifact.Kind.PLOTLY, Artifact.Kind.IMAGE):
        png = _png_of(context, doc["id"])
        if png is None:
            return f"_Chart “{title}” could not be rendered._"
        path = f"images/artifact-{doc['id']}.png"
        images[path] = png
        return f"![{title}]({path})\n\n*Figure: {title}*"
    if doc["kind"] == Artifact.Kind.TABLE and content.get("type") == "table":
        columns, cells, left_out = table_cells(content)
        more = f"\n\n_{left_out:,} more rows in the JSON export._" if left_out else ""
        shape = content.get("shape") or []
        note = f"\n\n_Showing {len(cells):,} of {shape[0]:,} rows._" if shape and shape[0] > len(cells) else ""
        return f"**{title}**\n\n{_md_table(columns, cells)}{more}{note}"
    name = sanitize_markdown_source(str((doc.get("meta") or {}).get("name") or title))
    return f"_File: {name} ({doc['size']:,} bytes)_"


def _md_refusal_warning(code: CodeBlock) -> str:
    """The warning in Markdown, each refusal in a code span (they hold names like `__globals__`)."""
    spans = "; ".join(f"`{r.replace('`', chr(39))}`" for r in code.refusals)
    return f"**Warning:** This code tried to reach outside the sandbox ({spans}) and was stopped."


def _md_block(block: Block, context: ExportContext, docs: dict, images: dict, level: int) -> list[str]:
    if block.type == "thought":
        return ["> " + sanitize_markdown_source(block.text).replace("\n", "\n> ")]
    if block.type == "answer":
        text = claims.spans_replace(block.text, block.claims, _md_claim)
        return [f"{'#' * level} Answer", sanitize_markdown_source(text), *_md_claim_sources(block.claims)]
    parts: list[str] = []
    code = block.code
    if block.type == "code" and code is not None:
        if code.refusals:
            parts.append(_md_refusal_warning(code) + " Do not run it outside CodingAgent.")
        if code.code:
            parts.append(_fence(code.code, "text" if code.refusals else "python"))
        if code.outputs or code.displays:
            parts.append("Output:\n\n" + _fence("\n".join(code.outputs + code.displays), "text"))
        if code.stderr:
            parts.append("Warnings:\n\n" + _fence("\n".join(code.stderr), "text"))
        if code.errors:
            parts.append("**Error** (the agent saw this and continued):\n\n" + _fence("\n".join(code.errors), "text"))
    ids = code.artifact_ids if code is not None else block.artifact_ids
    parts += [_md_artifact(docs[i], context, images) for i in ids if i in docs]
    return parts


def _md_claim(claim: dict[str, Any], index: int, text: str) -> str:
    return text if claim.get("verified") else f"{text} **(unverified)**"


def _md_claim_sources(found: list[dict[str, Any]]) -> list[str]:
    """The answer's "Where the numbers come from" section: each number with its step and place, or the flag."""
    if not found:
        return []
    lines = [f"- {_md_escape(c['text'])} — {_md_escape(claims.claim_source_label(c))}" for c in found]
    note = claims.unverified_note(found)
    return ["**Where the numbers come from**", "\n".join(lines) + (f"\n\n_{note}_" if note else "")]


def _md_escape(text: str) -> str:
    return sanitize_markdown_source(text).replace("*", "\\*").replace("_", "\\_")


def markdown_document(context: ExportContext, images: dict[str, bytes]) -> str:
    doc = context.document
    docs = _artifact_docs(context)
    project_scope = doc["scope"] == "project"
    out = [f"# {sanitize_markdown_source(_one_line(context.title))}"]
    out.append(
        f"_Project: {sanitize_markdown_source(_one_line(doc['project']['name']))} · "
        f"exported {doc['exported_at'][:16].replace('T', ' ')} UTC · CodingAgent export v{doc['schema_version']}_"
    )
    if project_scope and doc["project"]["description"]:
        out.append(sanitize_markdown_source(doc["project"]["description"]))
    if doc["datasets"]:
        out.append("## Datasets")
        for dataset in doc["datasets"]:
            out.append(f"### {sanitize_markdown_source(_one_line(dataset['name']))} — {dataset_heading(dataset)}")
            for sheet, shape, rows in dataset_tables(dataset):
                if sheet:
                    out.append(f"**Sheet {sanitize_markdown_source(_one_line(sheet))}** — {shape}")
                if rows:
                    out.append(_md_table(["Column", "Type", "Missing", "Summary"], [list(r) for r in rows]))
    for session in doc["sessions"]:
        level = 2
        if project_scope:
            out.append(f"## Session: {sanitize_markdown_source(_one_line(session['title']))}")
            level = 3
        if not session["runs"]:
            out.append("_No questions were asked in this session._")
        for number, run in enumerate(session["runs"], start=1):
            out.append(f"{'#' * level} {number}. {sanitize_markdown_source(_one_line(run['question']))[:200]}")
            if "\n" in run["question"].strip() or len(run["question"]) > 200:
                out.append("**Question:** " + sanitize_markdown_source(run["question"]))
            if run["status"] != "succeeded":
                out.append(
                    f"_Status: {run['status']}_"
                    + (f" — {sanitize_markdown_source(run['error'])}" if run["error"] else "")
                )
            for block in run_blocks(run):
                out += _md_block(block, context, docs, images, level + 1)
    if doc["pinned_artifacts"]:
        out.append("## Pinned to the project")
        out += [_md_artifact(a, context, images) for a in doc["pinned_artifacts"]]
    return "\n\n".join(out) + "\n"


def render_markdown_zip(context: ExportContext) -> Rendered:
    """A zip holding ``<name>.md`` and ``images/*.png`` (relative links), so any Markdown viewer shows the charts."""
    images: dict[str, bytes] = {}
    text = markdown_document(context, images)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            f"{context.filename_base}/{context.filename_base}.md", text, compress_type=zipfile.ZIP_DEFLATED
        )
        for path, png in images.items():
            archive.writestr(f"{context.filename_base}/{path}", png, compress_type=zipfile.ZIP_STORED)
    return f"{context.filename_base}.zip", "application/zip", buffer.getvalue()


# --- PDF --------------------------------------------------------------------------------------------------


_PDF_IMAGE_SCHEME = "export-image"


def _pdf_image_url(artifact_id: int, png: bytes, images: dict[str, bytes]) -> str:
    """A short URL the PDF fetcher answers from ``images``: base64 data URIs made the HTML ~2 MB, and the parser
    and weasyprint's data: handler (header parsing of each URI) spent about a second on them. One URL per
    artifact, so a chart shown twice (in its run and among the pinned ones) is embedded once."""
    url = f"{_PDF_IMAGE_SCHEME}:{artifact_id}"
    images[url] = png
    return url


def _pdf_artifact(doc: dict[str, Any], context: ExportContext, images: dict[str, bytes]) -> dict[str, Any]:
    view: dict[str, Any] = {"kind": doc["kind"], "title": doc["title"], "id": doc["id"]}
    content = doc.get("content") or {}
    if doc["kind"] in (Artifact.Kind.PLOTLY, Artifact.Kind.IMAGE):
        png = _png_of(context, doc["id"])
        view["image"] = _pdf_image_url(doc["id"], png, images) if png else ""
    elif doc["kind"] == Artifact.Kind.TABLE and content.get("type") == "table":
        columns, cells, left_out = table_cells(content, limit=PDF_TABLE_ROWS)
        view.update(columns=columns, rows=cells, left_out=left_out, shape=content.get("shape") or [])
    else:
        view["name"] = str((doc.get("meta") or {}).get("name") or doc["title"])
        view["size"] = doc["size"]
    return view


_SPAN_RE = re.compile(r'<span class="([\w-]+)">([^<]*)</span>')


@functools.cache
def _styled_code_classes() -> frozenset[str]:
    return frozenset(re.findall(r"^\.highlight \.([\w-]+) \{", pygments_css(), flags=re.M))


def _pdf_code_html(code: str) -> SafeString:
    """Highlighted code without the spans no CSS rule styles (names, punctuation: most of them). Each span is an
    inline box weasyprint styles, lays out and draws, so they were a fifth of the report's elements for nothing.
    Pygments spans are flat and hold escaped text, so unwrapping one keeps the text (and the escaping) as is."""
    styled = _styled_code_classes()
    html = _SPAN_RE.sub(lambda m: m[0] if m[1] in styled else m[2], highlight_python(code))
    return mark_safe(html)  # noqa: S308 - Pygments output with some <span> wrappers removed


def _pdf_block(block: Block, context: ExportContext, docs: dict, images: dict[str, bytes]) -> dict[str, Any]:
    if block.type == "answer":
        html = render_markdown(claims.mark_claims(block.text, block.claims))
        return {
            "type": "answer",
            "html": mark_safe(claims.marks_replace(html, block.claims, _pdf_claim)),  # noqa: S308 - sanitized above
            "claims": [{"text": c["text"], "verified": c.get("verified"), "source": claims.claim_source_label(c)}
                       for c in block.claims],
            "claims_note": claims.unverified_note(block.claims),
        }  # fmt: skip
    if block.type == "thought":
        return {"type": block.type, "html": render_markdown(block.text)}
    code = block.code
    ids = code.artifact_ids if code is not None else block.artifact_ids
    return {
        "type": block.type,
        "code_html": _pdf_code_html(code.code) if code and code.code else "",
        "refusal_warning": code.refusal_warning if code else "",
        "output": "\n".join((code.outputs + code.displays) if code else []).strip(),
        "stderr": "\n".join(code.stderr if code else []).strip(),
        "error": "\n".join(code.errors if code else []).strip(),
        "artifacts": [_pdf_artifact(docs[i], context, images) for i in ids if i in docs],
    }


def _pdf_claim(claim: dict[str, Any], index: int, text: str) -> str:
    # `text` is already escaped by the Markdown renderer; numbers hold no markup characters anyway.
    return text if claim.get("verified") else f'<span class="unverified">{text}</span>'


def pdf_html(context: ExportContext, images: dict[str, bytes]) -> str:
    """The report's HTML; the PNG bytes its <img> tags point at are put in ``images`` (URL -> bytes)."""
    doc = context.document
    docs = _artifact_docs(context)
    sessions = []
    for session in doc["sessions"]:
        runs = []
        for number, run in enumerate(session["runs"], start=1):
            anchor = f"q-{session['id']}-{run['id']}"
            blocks = [_pdf_block(b, context, docs, images) for b in run_blocks(run)]
            runs.append({"number": number, "anchor": anchor, "run": run, "blocks": blocks})
        sessions.append({"session": session, "runs": runs})
    counts = {"questions": sum(len(s["runs"]) for s in doc["sessions"]), "charts": 0, "tables": 0}
    for artifact in docs.values():
        if artifact["kind"] in ("plotly", "image"):
            counts["charts"] += 1
        elif artifact["kind"] == "table":
            counts["tables"] += 1
    context_vars = {
        "doc": doc,
        "title": context.title,
        "sessions": sessions,
        "datasets": [
            {"dataset": d, "heading": dataset_heading(d), "tables": dataset_tables(d)} for d in doc["datasets"]
        ],
        "pinned": [_pdf_artifact(a, context, images) for a in doc["pinned_artifacts"]],
        "counts": counts,
        "exported_at": doc["exported_at"][:16].replace("T", " "),
        "pygments_css": pygments_css(),
    }
    return render_to_string("exports/report.html", context_vars)


def render_pdf(context: ExportContext) -> Rendered:
    import logging

    # Quiet before the import: weasyprint logs progress while parsing its own stylesheets, and every refused
    # URL (expected here) as a warning.
    for name in ("weasyprint", "weasyprint.progress"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class MemoryFetcher(URLFetcher):
        """Answers only the images this export put in ``images``: a hostile <img src="http://..."> (or file:,
        data:) can never make the server fetch or read anything."""

        def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
            if url not in images:
                raise ValueError(f"Only the export's own images are fetched, not {url[:80]!r}")
            return URLFetcherResponse(url, images[url], {"Content-Type": "image/png"})

    images: dict[str, bytes] = {}
    html = pdf_html(context, images)  # outside the pause: drawing missing charts makes matplotlib cycles
    with _cyclic_gc_paused():
        body = HTML(string=html, url_fetcher=MemoryFetcher(), base_url="about:blank").write_pdf()
    return f"{context.filename_base}.pdf", "application/pdf", body


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during the render, then one pass over what the render left.

    weasyprint allocates millions of objects, so the collector ran hundreds of times, and each full pass walked
    the whole process heap (Django, plotly, matplotlib...): 15-20% of the PDF time. The render makes little
    cyclic garbage (peak RSS unchanged), and reference counting still frees everything else as usual.
    ``freeze`` keeps the older heap out of the closing pass, so it only walks the render's leftovers; without
    that pass, the next render would freeze them in and a long-running process would keep growing.
    Process-wide, but harmless if two renders overlap: the first to finish restores normal collection.
    """
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
        gc.unfreeze()


# --- Jupyter notebook -------------------------------------------------------------------------------------

_READERS = {
    "csv": "pd.read_csv({path!r})",
    "tsv": "pd.read_csv({path!r}, sep='\\t')",
    "xlsx": "pd.read_excel({path!r})",
    "parquet": "pd.read_parquet({path!r})",
    "json": "pd.read_json({path!r})",
}


def _variable_name(name: str, taken: set[str]) -> str:
    stem = re.sub(r"\W+", "_", name.rsplit(".", 1)[0]).strip("_").lower() or "data"
    if stem[0].isdigit() or stem in {"pd", "np", "plt", "px", "go", "final_result"}:
        stem = f"df_{stem}"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _loading_cell(datasets: list[dict[str, Any]]) -> str:
    lines = [
        "# Setup: the libraries the agent used, and the project's datasets.",
        "# Put the dataset files in the same folder as this notebook.",
        "import numpy as np",
        "import pandas as pd",
    ]
    taken: set[str] = set()
    for dataset in datasets:
        reader = _READERS.get(dataset["format"], _READERS["csv"]).format(path=dataset["name"])
        lines.append(f"{_variable_name(dataset['name'], taken)} = {reader}")
    return "\n".join(lines)


def _html_table(columns: list[str], cells: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{escape(c.css)}">{escape(c.text)}</td>' for c in row) + "</tr>" for row in cells
    )
    return f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _text_table(columns: list[str], cells: list[list[Any]]) -> str:
    grid = [columns] + [[c.text for c in row] for row in cells]
    widths = [min(30, max(len(str(r[i])) for r in grid)) for i in range(len(columns))]
    return "\n".join("  ".join(str(v)[:30].rjust(w) for v, w in zip(r, widths, strict=False)) for r in grid)


def _nb_output(doc: dict[str, Any], context: ExportContext):
    content = doc.get("content") or {}
    if doc["kind"] == Artifact.Kind.IMAGE and content.get("type") == "image":
        data = {"image/png": content["base64"], "text/plain": f"<Figure: {doc['title']}>"}
    elif doc["kind"] == Artifact.Kind.PLOTLY and content.get("type") == "plotly":
        data = {"application/vnd.plotly.v1+json": content["figure"], "text/plain": f"<Plotly figure: {doc['title']}>"}
    elif doc["kind"] == Artifact.Kind.TABLE and content.get("type") == "table":
        columns, cells, _ = table_cells(content)
        data = {"text/html": _html_table(columns, cells), "text/plain": _text_table(columns, cells)}
    else:
        data = {"text/plain": f"<File: {(doc.get('meta') or {}).get('name') or doc['title']}>"}
    return nbformat.v4.new_output("display_data", data=data)


def _nb_code_cells(block: Block, context: ExportContext, docs: dict, counter: list[int]) -> list:
    code = block.code
    artifacts = [_nb_output(docs[i], context) for i in (code.artifact_ids if code else block.artifact_ids) if i in docs]
    if code is None or not code.code:
        if not artifacts:
            return []
        return [nbformat.v4.new_code_cell("# (outputs recorded without code)", outputs=artifacts)]
    if code.refusals:
        # Never runnable: this code tried to reach outside the sandbox, and outside it nothing stops it.
        text = _md_refusal_warning(code) + " It is kept here as text only; do not run it.\n\n"
        text += _fence(code.code, "text")
        return [nbformat.v4.new_markdown_cell(text)]
    if code.failed:
        # Kept for the record but not as code: the notebook must run top to bottom.
        text = "**This code failed** and the agent continued from the error:\n\n" + _fence(code.code, "python")
        text += "\n\n" + _fence("\n".join(code.errors), "text")
        return [nbformat.v4.new_markdown_cell(text)]
    counter[0] += 1
    outputs = []
    if code.outputs:
        outputs.append(nbformat.v4.new_output("stream", name="stdout", text="".join(code.outputs)))
    if code.stderr:
        outputs.append(nbformat.v4.new_output("stream", name="stderr", text="".join(code.stderr)))
    outputs += artifacts
    if code.displays:
        outputs.append(
            nbformat.v4.new_output(
                "execute_result", data={"text/plain": "\n".join(code.displays)}, execution_count=counter[0]
            )
        )
    return [nbformat.v4.new_code_cell(code.code, outputs=outputs, execution_count=counter[0])]


def _provenance(doc: dict[str, Any]) -> str:
    """The notebook's opening words: where its code came from and where it ran."""
    models = sorted({run.get("model") or "" for session in doc["sessions"] for run in session["runs"]} - {""})
    named = ", ".join(f"`{m}`" for m in models) if models else "an unrecorded model"
    return (
        f"> **The code in this notebook was written by a language model ({named})** and ran in CodingAgent's "
        "sandbox, which limits what it can reach. Running it here runs it without that sandbox: read it before "
        "you run it.\n\n"
    )


def notebook_build(context: ExportContext) -> nbformat.NotebookNode:
    doc = context.document
    docs = _artifact_docs(context)
    md = sanitize_markdown_source
    cells = [
        nbformat.v4.new_markdown_cell(
            _provenance(doc)
            + f"# {md(_one_line(context.title))}\n\nProject **{md(_one_line(doc['project']['name']))}**, "
            f"exported {doc['exported_at'][:16].replace('T', ' ')} UTC from CodingAgent.\n\n"
            "Run it next to the dataset files: the first cell loads them. Code that failed during the analysis "
            "is kept as text (with its error), so the notebook runs top to bottom."
        ),
        nbformat.v4.new_code_cell(_loading_cell(doc["datasets"])),
    ]
    counter = [0]
    for session in doc["sessions"]:
        if doc["scope"] == "project":
            cells.append(nbformat.v4.new_markdown_cell(f"## Session: {md(_one_line(session['title']))}"))
        for number, run in enumerate(session["runs"], start=1):
            cells.append(nbformat.v4.new_markdown_cell(f"### {number}. Question\n\n{md(run['question'])}"))
            for block in run_blocks(run):
                if block.type == "thought":
                    cells.append(nbformat.v4.new_markdown_cell(md(block.text)))
                elif block.type == "answer":
                    cells.append(nbformat.v4.new_markdown_cell(f"**Answer**\n\n{md(block.text)}"))
                else:
                    cells += _nb_code_cells(block, context, docs, counter)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["codingagent"] = {"schema_version": doc["schema_version"], "scope": doc["scope"]}
    return nb


def render_ipynb(context: ExportContext) -> Rendered:
    nb = notebook_build(context)
    nbformat.validate(nb)
    return f"{context.filename_base}.ipynb", "application/x-ipynb+json", nbformat.writes(nb).encode()


_RENDERERS: dict[str, Callable[[ExportContext], Rendered]] = {
    "md": render_markdown_zip,
    "json": render_json,
    "pdf": render_pdf,
    "ipynb": render_ipynb,
}
