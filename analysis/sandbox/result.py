"""Plain data crossing the sandbox boundary: execution limits and the result of one run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # wall-clock seconds per run
    cpu_seconds: float | None = None  # per run; defaults to the timeout
    memory_mb: int = 2048  # address space of the kernel process
    file_size_mb: int = 256  # largest file the kernel may write
    open_files: int = 256
    output_bytes: int = 100_000  # cap for stdout and for stderr, each
    result_bytes: int = 32 * 1024 * 1024  # cap for one serialized result (figures, tables)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Result:
    ok: bool
    stdout: str = ""
    stderr: str = ""
    error: dict[str, str] | None = None  # {type, message, traceback}
    final_result: Any = None
    display: str | None = None  # repr of the last expression's value, if any and not an artifact
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    peak_memory: int = 0
    state_lost: bool = False
    state_lost_reason: str | None = None
    killed_reason: str | None = None  # timeout | cpu | memory | cancelled | crashed | protocol

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_worker(cls, msg: object) -> Result:
        """Build a Result from an untrusted worker message, keeping only well-typed fields."""
        if not isinstance(msg, dict):
            raise ValueError("worker result is not an object")
        error = msg.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ValueError("worker error is not an object")
            error = {k: str(error.get(k, "")) for k in ("type", "message", "traceback")}
        artifacts = msg.get("artifacts") or []
        if not isinstance(artifacts, list) or not all(isinstance(a, dict) for a in artifacts):
            raise ValueError("worker artifacts are not a list of objects")
        killed = msg.get("killed_reason")
        display = msg.get("display")
        return cls(
            ok=bool(msg.get("ok")) and error is None,
            stdout=str(msg.get("stdout", "")),
            stderr=str(msg.get("stderr", "")),
            error=error,
            final_result=msg.get("final_result"),
            display=None if display is None else str(display),
            artifacts=artifacts,
            peak_memory=int(msg.get("peak_memory") or 0),
            killed_reason=None if killed is None else str(killed),
        )
