"""A stand-in for analysis.sandbox.policy that enforces nothing: plain exec with notebook
semantics (any import, os, ctypes, subprocess), so only the process and OS layers stand.

For red-team testing only: `manage.py sandbox_exec --no-policy` (refused unless DEBUG=1 or
SANDBOX_ALLOW_NO_POLICY=1) and the OS red-team suites start a fork server with this module in
place of the policy. Nothing in the product selects it.
"""

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
