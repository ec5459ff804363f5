"""Plain data crossing the sandbox boundary: execution limits and the result of one run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MAX_REFUSALS = 50
REFUSAL_CHARS = 200


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # wall-clock seconds per run
    cpu_seconds: float | None = None  # per run; defaults to the timeout
    memory_mb: int = 2048  # address space of the kernel process
    file_size_mb: int = 256  # largest file the kernel may write
    open_files: int = 256
    disk_mb: int = 1024  # the workspace's disk quota (SANDBOX_DISK_MB), files and datasets together
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
    group_sizes: dict[str, Any] | None = None  # rows per group when final_result is a groupby result (provenance)
    # What the code tried and the policy refused, caught or not ("import of 'os'", "attribute
    # '__globals__'"): short human descriptions, at most MAX_REFUSALS.
    refusals: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_worker(cls, msg: object, limits: Limits | None = None) -> Result:
        """Build a Result from an untrusted kernel message, keeping only well-typed, bounded fields.

        Raises ValueError (the host turns it into a readable run error) when the message is not a result at
        all; oversized text is cut with a note rather than refused, as the kernel would have cut it."""
        if not isinstance(msg, dict):
            raise ValueError("the kernel's result is not an object")
        limits = limits or Limits()
        error = msg.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ValueError("the kernel's error is not an object")
            error = {k: _text(error.get(k, ""), cap) for k, cap in _ERROR_CAPS.items()}
        artifacts = msg.get("artifacts") or []
        if not isinstance(artifacts, list) or not all(isinstance(a, dict) for a in artifacts):
            raise ValueError("the kernel's artifacts are not a list of objects")
        killed = msg.get("killed_reason")
        display = msg.get("display")
        peak = msg.get("peak_memory") or 0
        refusals = msg.get("refusals") or []
        if not isinstance(refusals, list):
            raise ValueError("the kernel's refusals are not a list")
        return cls(
            ok=msg.get("ok") is True and error is None,
            stdout=_text(msg.get("stdout", ""), limits.output_bytes + _NOTE_ROOM),
            stderr=_text(msg.get("stderr", ""), limits.output_bytes + _NOTE_ROOM),
            error=error,
            final_result=msg.get("final_result"),
            display=None if display is None else _text(display, DISPLAY_CHARS),
            artifacts=artifacts,
            peak_memory=peak if isinstance(peak, int) and not isinstance(peak, bool) and 0 <= peak < 2**63 else 0,
            # A kernel reports only the ways it ends itself; anything else it claims is a crash.
            killed_reason=None if killed is None else (killed if killed in KERNEL_KILLED_REASONS else "crashed"),
            group_sizes=group_sizes_clean(msg.get("group_sizes")),
            refusals=[_text(r, REFUSAL_CHARS) for r in refusals[:MAX_REFUSALS]],
        )


KERNEL_KILLED_REASONS = frozenset({"memory", "crashed"})
DISPLAY_CHARS = 10_200  # capture.REPR_CHARS plus its "... [n more characters]" note
_NOTE_ROOM = 200  # the kernel's "[output truncated: ...]" note
_ERROR_CAPS = {"type": 200, "message": 10_000, "traceback": 50_000}


def _text(value: object, cap: int) -> str:
    text = value if isinstance(value, str) else str(value) if isinstance(value, int | float | bool) else ""
    if len(text) > cap:
        text = text[:cap] + f"\n[cut by the host: {len(text) - cap} more characters]"
    return text


def group_sizes_clean(value: object) -> dict[str, Any] | None:
    """Untrusted group sizes ({"levels": n, "sizes": {label: rows}}) kept only when well-typed and bounded."""
    if not isinstance(value, dict) or not isinstance(value.get("sizes"), dict):
        return None
    levels, sizes = value.get("levels"), value["sizes"]
    if not isinstance(levels, int) or isinstance(levels, bool) or not 1 <= levels <= 16 or len(sizes) > 1_000:
        return None
    clean = {
        k[:200]: v for k, v in sizes.items() if isinstance(k, str) and type(v) is int and 0 <= v < 2**63
    }  # fmt: skip
    return {"levels": levels, "sizes": clean}
