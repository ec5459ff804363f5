"""Turning a sandbox result into (a) the steps the user sees and (b) the observation text the model reads."""

from __future__ import annotations

import json
from typing import Any

STDOUT_FOR_MODEL = 4000
TRACEBACK_LINES = 12
ARTIFACT_ERRORS_FOR_MODEL = 10


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - limit} characters omitted] …\n{text[-half:]}"


def traceback_trimmed(tb: str) -> str:
    """The last frames only: the model needs the failing line and the error, not the kernel's plumbing."""
    lines = [line for line in (tb or "").splitlines() if line.strip()]
    return "\n".join(lines[-TRACEBACK_LINES:])


def artifact_summary(artifact: dict[str, Any]) -> str:
    kind = artifact.get("kind")
    if kind == "table":
        shape = artifact.get("shape") or ["?", "?"]
        cols = ", ".join(map(str, (artifact.get("columns") or [])[:12]))
        return f"table {shape[0]}×{shape[1]} (columns: {cols})"
    if kind == "plotly":
        return "interactive plotly chart (shown to the user)"
    if kind == "image":
        return f"image {artifact.get('name') or 'figure.png'} (shown to the user)"
    if kind == "file":
        return f"file {artifact.get('name')} ({artifact.get('size', '?')} bytes)"
    return str(kind)


def final_result_json(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)[:STDOUT_FOR_MODEL]
    except (TypeError, ValueError):
        return repr(value)[:STDOUT_FOR_MODEL]


def observation_text(result: dict[str, Any]) -> str:
    """What ``run_python`` returns to the model."""
    parts = ["status: " + ("ok" if result.get("ok") else "error")]
    if result.get("stdout"):
        parts.append("stdout:\n" + _trim(result["stdout"], STDOUT_FOR_MODEL))
    if result.get("stderr"):
        parts.append("stderr:\n" + _trim(result["stderr"], STDOUT_FOR_MODEL // 2))
    error = result.get("error")
    if error:
        parts.append(f"error: {error.get('type')}: {error.get('message')}")
        if error.get("traceback"):
            parts.append("traceback (last lines):\n" + traceback_trimmed(error["traceback"]))
    if result.get("display") and not result.get("artifacts"):
        parts.append("value of the last expression:\n" + _trim(result["display"], STDOUT_FOR_MODEL))
    if result.get("final_result") is not None:
        parts.append("final_result (json): " + final_result_json(result["final_result"]))
    for artifact in result.get("artifacts") or []:
        parts.append("artifact: " + artifact_summary(artifact))
    problems = result.get("artifact_errors") or []
    for problem in problems[:ARTIFACT_ERRORS_FOR_MODEL]:
        parts.append("artifact not stored: " + problem)
    if len(problems) > ARTIFACT_ERRORS_FOR_MODEL:
        parts.append(f"({len(problems) - ARTIFACT_ERRORS_FOR_MODEL} more artifacts not stored)")
    if result.get("refusals"):
        parts.append(
            "note: this code tried to reach outside the sandbox ("
            + "; ".join(map(str, result["refusals"]))
            + ") and was stopped. Use the allowed libraries on workspace files only."
        )
    if result.get("state_lost"):
        reason = result.get("state_lost_reason") or result.get("killed_reason") or "restart"
        parts.append(f"note: the kernel was restarted ({reason}); variables from earlier calls are gone.")
    return "\n".join(parts)
