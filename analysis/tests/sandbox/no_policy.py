"""A stand-in for analysis.sandbox.policy that enforces nothing: plain exec with notebook
semantics. Only for test_redteam_os_layers, which shows the OS layers hold on their own."""

from __future__ import annotations

import ast

NOTHING = object()


def harden_libraries(workspace: str) -> None:
    pass


def restricted_run(source: str, namespace: dict, filename: str = "<cell>"):
    tree = ast.parse(source, filename)
    last = ast.Expression(tree.body.pop().value) if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, filename, "exec"), namespace)
    return NOTHING if last is None else eval(compile(last, filename, "eval"), namespace)
