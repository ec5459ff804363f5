"""The content of a session/project export, collected once and shared by every format.

``export_document_build`` turns prefetched models into the versioned, JSON-serialisable
document described by ``exports/schema/export-v1.json``; ``run_blocks`` groups a run's
steps into what readers see (thought, code with its outputs and artifacts, answer).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.text import slugify

from analysis import selectors
from analysis.models import AnalysisSession, Artifact, Run, Step
from codingagent.lib.markdown import markdown_blocks_separated
from exports.artifacts import artifact_figure_read, artifact_title
from exports.selectors import project_export_qs, session_export_qs
from exports.tables import table_data_read
from projects.models import Dataset, Project

SCHEMA_VERSION = 1


@dataclass
class ExportContext:
    """The JSON document plus what renderers need beside it (the artifact rows, for images)."""

    document: dict[str, Any]
    artifacts: dict[int, Artifact] = field(default_factory=dict)
    title: str = ""
    filename_base: str = "export"


def export_context_build(*, target: AnalysisSession | Project) -> ExportContext:
    """Reload the target with every relation an export reads (constant query count), then build the document."""
    now = timezone.now()
    if isinstance(target, AnalysisSession):
        session = session_export_qs().get(pk=target.pk)
        project, sessions, pinned = session.project, [session], []
        title = session.title or f"Session {session.pk}"
        datasets = list(project.datasets.all())
    else:
        project = project_export_qs().get(pk=target.pk)
        sessions, pinned = list(project.sessions.all()), list(project.project_pinned_artifacts)
        title = project.name
        datasets = list(project.datasets.all())
    artifacts: dict[int, Artifact] = {a.pk: a for a in pinned}
    session_docs = [_session_doc(s, artifacts) for s in sessions]
    document = {
        "schema_version": SCHEMA_VERSION,
        "generator": "CodingAgent",
        "scope": "session" if isinstance(target, AnalysisSession) else "project",
        "title": title,
        "exported_at": now.isoformat(),
        "project": {
            "id": project.pk,
            "name": project.name,
            "description": project.description,
            "created_at": project.created_at.isoformat(),
        },
        "datasets": [_dataset_doc(d) for d in datasets],
        "sessions": session_docs,
        "pinned_artifacts": [_artifact_doc(a) for a in pinned],
    }
    base = f"{slugify(title)[:60] or document['scope']}-{now:%Y-%m-%d}"
    return ExportContext(document=document, artifacts=artifacts, title=title, filename_base=base)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dataset_doc(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "original_filename": dataset.original_filename,
        "format": dataset.format,
        "size": dataset.size,
        "row_count": dataset.row_count,
        "column_count": dataset.column_count,
        "profile": dataset.profile if isinstance(dataset.profile, dict) else {},
    }


def _session_doc(session: AnalysisSession, artifacts: dict[int, Artifact]) -> dict[str, Any]:
    return {
        "id": session.pk,
        "title": session.title,
        "model": session.model,
        "created_at": _iso(session.created_at),
        "updated_at": _iso(session.updated_at),
        "runs": [_run_doc(run, artifacts) for run in session.runs.all()],
    }


def _run_doc(run: Run, artifacts: dict[int, Artifact]) -> dict[str, Any]:
    run_artifacts = list(run.artifacts.all())
    artifacts.update({a.pk: a for a in run_artifacts})
    ordinals = {s.pk: s.ordinal for s in run.steps.all()}
    return {
        "id": run.pk,
        "question": run.question,
        "status": run.status,
        "answer": run.answer,
        "error": run.error,
        "model": run.model,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "cost": str(run.cost),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "steps": [_step_doc(step) for step in run.steps.all()],
        "artifacts": [_artifact_doc(a, step_ordinals=ordinals) for a in run_artifacts],
        "claims": selectors.run_claims(run=run),
    }


def _step_doc(step: Step) -> dict[str, Any]:
    return {"ordinal": step.ordinal, "kind": step.kind, "content": step.content, "data": step.data or {}}


def _artifact_doc(artifact: Artifact, step_ordinals: dict[int, int] | None = None) -> dict[str, Any]:
    return {
        "id": artifact.pk,
        "kind": artifact.kind,
        "title": artifact_title(artifact=artifact),
        "mime": artifact.mime,
        "size": artifact.size,
        "pinned": artifact.pinned,
        "step_ordinal": (step_ordinals or {}).get(artifact.step_id),
        "meta": artifact.meta if isinstance(artifact.meta, dict) else {},
        "created_at": _iso(artifact.created_at),
        "content": artifact_content(artifact=artifact),
    }


def artifact_content(*, artifact: Artifact) -> dict[str, Any] | None:
    """The artifact itself, so the export stands alone: table rows, figure JSON, PNG bytes (files: metadata only)."""
    try:
        if artifact.kind == Artifact.Kind.TABLE:
            return {"type": "table", **table_data_read(artifact=artifact)}
        if artifact.kind == Artifact.Kind.PLOTLY:
            return {"type": "plotly", "figure": artifact_figure_read(artifact=artifact)}
        if artifact.kind == Artifact.Kind.IMAGE:
            with artifact.file.open("rb") as fh:
                return {"type": "image", "mime": "image/png", "base64": base64.b64encode(fh.read()).decode()}
    except (OSError, ValueError):
        return {"type": "missing"}
    return None


# --- grouping steps into blocks ---------------------------------------------------------------------


@dataclass
class CodeBlock:
    code: str
    outputs: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    displays: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    artifact_ids: list[int] = field(default_factory=list)
    # What the sandbox policy refused while this code ran (the code step's data["refusals"]): such code is
    # never exported as runnable, since outside the sandbox nothing would stop it.
    refusals: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def refusal_warning(self) -> str:
        if not self.refusals:
            return ""
        return f"This code tried to reach outside the sandbox ({'; '.join(self.refusals)}) and was stopped."


@dataclass
class Block:
    type: str  # "thought" | "code" | "answer" | "artifacts"
    text: str = ""
    code: CodeBlock | None = None
    artifact_ids: list[int] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)  # an answer's numbers and their sources


def run_blocks(run_doc: dict[str, Any]) -> list[Block]:
    """Steps grouped for reading: outputs, errors and artifacts attach to the code that produced them."""
    by_ordinal = {a["step_ordinal"]: a["id"] for a in run_doc["artifacts"] if a["step_ordinal"] is not None}
    placed: set[int] = set()
    blocks: list[Block] = []
    current: CodeBlock | None = None
    for step in run_doc["steps"]:
        kind, content, data = step["kind"], step["content"] or "", step["data"] or {}
        if kind == Step.Kind.CODE:
            current = CodeBlock(code=content, refusals=[str(r) for r in data.get("refusals") or []])
            blocks.append(Block(type="code", code=current))
        elif kind in (Step.Kind.OUTPUT, Step.Kind.ERROR, Step.Kind.ARTIFACT) and current is None:
            current = CodeBlock(code="")  # output without code (should not happen): keep it visible
            blocks.append(Block(type="code", code=current))
        if kind == Step.Kind.THOUGHT and content.strip():
            blocks.append(Block(type="thought", text=content))
            current = None
        elif kind == Step.Kind.OUTPUT:
            _output_add(current, content, data)
        elif kind == Step.Kind.ERROR:
            trace = str(data.get("traceback") or "").strip()
            current.errors.append(f"{trace}\n{content}".strip() if trace and content not in trace else trace or content)
        elif kind == Step.Kind.ARTIFACT:
            artifact_id = data.get("artifact_id") or by_ordinal.get(step["ordinal"])
            if artifact_id and artifact_id not in placed:
                current.artifact_ids.append(artifact_id)
                placed.add(artifact_id)
    leftovers = [a["id"] for a in run_doc["artifacts"] if a["id"] not in placed]
    if leftovers:
        blocks.append(Block(type="artifacts", artifact_ids=leftovers))
    answer = run_answer_text(run_doc)
    if answer:
        blocks.append(Block(type="answer", text=answer, claims=run_doc.get("claims") or []))
    return blocks


def _output_add(block: CodeBlock | None, content: str, data: dict[str, Any]) -> None:
    if block is None:
        return
    if content:
        block.outputs.append(content)
    if data.get("stderr"):
        block.stderr.append(str(data["stderr"]))
    display = data.get("display")
    if display not in (None, ""):
        block.displays.append(display if isinstance(display, str) else json.dumps(display, default=str))


def run_answer_text(run_doc: dict[str, Any]) -> str:
    if run_doc.get("answer"):
        return run_doc["answer"]
    answers = [s["content"] for s in run_doc["steps"] if s["kind"] == Step.Kind.ANSWER and s["content"]]
    return answers[-1] if answers else ""


def sanitize_markdown_source(text: str) -> str:
    """Model/user text for Markdown files and notebook cells: no raw HTML, no script links.

    Markdown viewers render inline HTML, so ``<`` outside code is written as ``&lt;`` (it still reads as
    ``<``); code spans and fenced blocks are left untouched because viewers never interpret HTML there.
    """
    text = markdown_blocks_separated(text or "")  # lists right after a line render as lists in every viewer
    parts = re.split(r"(```.*?(?:```|$)|`[^`\n]*`)", text, flags=re.S)
    cleaned = []
    for index, part in enumerate(parts):
        if index % 2:  # a code span or fenced block
            cleaned.append(part)
        else:
            part = part.replace("<", "&lt;")
            part = re.sub(r"\]\(\s*(?:javascript|vbscript|data):[^)]*\)", "](#)", part, flags=re.I)
            cleaned.append(part)
    return "".join(cleaned)
