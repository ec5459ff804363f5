"""Memory of a process and its descendants, read from /proc (Linux). Domain-free.

PSS (proportional set size) charges shared pages to each sharer in proportion, so kernels forked from one fork
server (which share the imported libraries copy-on-write) add up to what they really cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class TreeMemory:
    self_mb: float  # the process itself
    descendants_mb: float  # every process below it (fork server, kernels, spares)
    descendants: int


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    return children


def pss_mb(pid: int) -> float:
    """PSS of one process in MB (RSS when smaps_rollup is unreadable, e.g. another uid without privileges)."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", b"Pss:"), (f"/proc/{pid}/status", b"VmRSS:")):
        try:
            with open(path, "rb") as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            continue
    return 0.0


def descendants(pid: int) -> list[int]:
    children = _children_map()
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def tree_memory(pid: int | None = None) -> TreeMemory:
    pid = pid or os.getpid()
    below = descendants(pid)
    return TreeMemory(self_mb=pss_mb(pid), descendants_mb=sum(pss_mb(p) for p in below), descendants=len(below))
