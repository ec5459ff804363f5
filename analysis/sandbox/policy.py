"""The sandbox's language policy: compile user code so it can only reach the analysis libraries.

Cells are compiled with RestrictedPython (`compile_restricted` and `SandboxPolicy`, a subclass of
its `RestrictingNodeTransformer`; the class docstring lists what it changes). Refused statically:

- attributes starting with `_` (but `__name__`, `__qualname__`, `__doc__` may be read), and the
  frame/generator/traceback/code internals in `guards.DENIED_ATTRS`;
- names starting with `__` (plain locals like `_` or `_tmp` are fine), except dunder methods
  defined in a class body and `super().__init__(...)`-style calls; the guard names the
  compiler emits (`__sb_*`) in every scope, class bodies included;
- relative imports, imports outside `guards.ALLOWED_ROOTS`, `from x import _y`.

What stays is rewritten only where a value could lead outside the sandbox:

- `obj.name` loads become `__sb_getattr__(obj, "name")`, which refuses foreign modules, their
  functions and frames; names in `FAST_ATTRS` (dict/list/str/array plumbing such as `get`,
  `append`, `shape`) stay raw because no dangerous module or object exposes them;
- `obj.name = v` / `del obj.name` become `__sb_write__(obj).name = v` (no modules, library
  classes or library functions);
- subscripts, iteration, unpacking and `+=` are left alone: with attributes guarded they cannot
  reach anything new, and guarding them costs 1.7-1.9x on loops.

Builtins are replaced (see `guards.build_safe_builtins`): `__import__` checks the allowlist and
every `from x import y` name, `open` is confined to the workspace, exec/eval/compile/globals/
vars/... raise PolicyError with a hint.
"""

import ast
import builtins
import functools
import os
import sys
import types
import weakref
from functools import lru_cache

import RestrictedPython.compile as _rp_compile_module
from RestrictedPython import compile_restricted
from RestrictedPython.transformer import RestrictingNodeTransformer

from analysis.sandbox import guards, libraries
from analysis.sandbox.guards import PolicyError, module_allowed, refuse
from analysis.sandbox.libraries import harden_libraries as _harden_library_io

__all__ = [
    "restricted_exec",
    "restricted_run",
    "take_refusals",
    "PolicyError",
    "NOTHING",
    "harden_libraries",
    "compile_cell",
]


class _Nothing:
    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


NOTHING = _Nothing()

# Attribute names loaded without a guard. None of them is an attribute of os, sys, subprocess,
# builtins, shutil, io, importlib, pickle, socket, ... (a test pins this), so reaching them
# cannot hand out anything the guarded path would refuse.
FAST_ATTRS = frozenset(
    [
        "get",
        "items",
        "keys",
        "values",
        "append",
        "extend",
        "add",
        "update",
        "setdefault",
        "discard",
        "insert",
        "startswith",
        "endswith",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "lower",
        "upper",
        "isdigit",
        "isalpha",
        "shape",
        "dtype",
        "ndim",
        "size",
        "T",
        "iloc",
        "loc",
        "at",
        "iat",
        "columns",
        "real",
        "imag",
        "x",
        "y",
    ]
)
# Dunder methods `super().<name>(...)` may call from a user's class.
SUPER_DUNDERS = frozenset(
    [
        "__init__",
        "__new__",
        "__repr__",
        "__str__",
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__hash__",
        "__len__",
        "__getitem__",
        "__setitem__",
        "__delitem__",
        "__iter__",
        "__contains__",
        "__enter__",
        "__exit__",
        "__call__",
        "__init_subclass__",
        "__post_init__",
        "__setattr__",
        "__getattr__",
        "__delattr__",
    ]
)
CLASS_BODY_DUNDERS = frozenset({"__slots__", "__hash__", "__doc__"})
READABLE_DUNDER_NAMES = frozenset({"__name__"})

GETATTR, SPECIAL, WRITE = "__sb_getattr__", "__sb_special__", "__sb_write__"
# Every name the compiler emits. User code may bind none of them, in any scope (a class body
# defining `def __sb_write__(o): return o` would otherwise shadow the guard for that body).
RESERVED_PREFIX = "__sb_"
EMITTED_NAMES = frozenset({GETATTR, SPECIAL, WRITE})
# `__prepare__` would let a metaclass seed a class body's namespace with any name, guards included.
DENIED_CLASS_DUNDERS = frozenset({"__prepare__"})

# RestrictedPython 9.0 calls compile() without dont_inherit, so cells inherited the
# `from __future__ import annotations` of its own module (every annotation became a string).
_rp_compile_module.compile = functools.partial(builtins.compile, dont_inherit=True)


class SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer with the sandbox's rules. What it changes, and why:

    - `error` raises PolicyError at once, with the location and a message that says what to do
      instead (RestrictedPython collects strings; our reader is an agent that retries);
    - names: plain locals may start with one `_`; `__` names are reserved except dunder methods
      in class bodies; the names the compiler emits (`__sb_*`) are refused everywhere;
    - attribute loads outside FAST_ATTRS become `__sb_getattr__(obj, "name")` (RestrictedPython
      guards every load, which costs loops 1.7-1.9x); writes become `__sb_write__(obj).name`;
    - subscripts, iteration, unpacking, `*args` calls and augmented assignment stay unwrapped
      (RestrictedPython refuses `df["x"] += 1`): with attributes guarded they reach nothing new;
    - no print collector, no `__metaclass__` injection: stdout is captured by the kernel, and
      classes are built by the real `__build_class__` (the `metaclass=` keyword stays refused);
    - `match`, `nonlocal`, annotated assignments and `from x import *` are allowed (names checked).
    Inherited unchanged: the node allowlist (a node type without a visitor is refused, so new
    syntax needs a review), the refusal of `except*`, async code, lazy imports and starred
    comprehension unpacking, and the simple-target rule of `:=`.
    """

    filename = "<cell>"
    lines: tuple = ()
    extra_names: frozenset = frozenset()  # reserved names an evaluating library adds (formulaic)

    def __init__(self, errors=None, warnings=None, used_names=None):
        super().__init__(errors, warnings, used_names)
        self.class_depth = [False]  # is the innermost scope a class body?

    # ---------------------------------------------------------------- errors
    def error(self, node, info: str):
        guards.record(info if len(info) <= 80 else info[:77] + "...")
        lineno = getattr(node, "lineno", 1) or 1
        col = (getattr(node, "col_offset", 0) or 0) + 1
        text = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        raise PolicyError(info, (self.filename, lineno, col, text))

    def check_name(self, node, name, allow_magic_methods: bool = False):
        if name is None:
            return
        if name in EMITTED_NAMES or name.startswith(RESERVED_PREFIX):
            self.error(node, f"The name '{name}' is not allowed: it is reserved for the sandbox.")
        if name.startswith("__") and not allow_magic_methods and name not in self.extra_names:
            self.error(node, f"The name '{name}' is not allowed: names starting with '__' are reserved.")

    def check_attr(self, node, name: str, *, load: bool):
        if name.startswith("_") and not (load and name in guards.SAFE_DUNDERS):
            self.error(node, f"Access to '{name}' is not allowed: {guards.PRIVATE_HINT}")
        if name in guards.DENIED_ATTRS:
            self.error(node, f"Access to '{name}' is not allowed: it exposes interpreter or template internals.")

    # ---------------------------------------------------------------- names and scopes
    def visit_Module(self, node):
        # RestrictedPython compiles the tree as visited: the nodes we add need locations
        return ast.fix_missing_locations(self.node_contents_visit(node))

    visit_Expression = visit_Interactive = visit_Module

    def visit_Name(self, node):
        in_class = self.class_depth[-1]
        allowed = (isinstance(node.ctx, ast.Load) and node.id in READABLE_DUNDER_NAMES) or (
            in_class and isinstance(node.ctx, ast.Store) and node.id in CLASS_BODY_DUNDERS
        )
        self.check_name(node, node.id, allow_magic_methods=allowed)
        return node

    def _in_scope(self, node, is_class: bool):
        self.class_depth.append(is_class)
        try:
            return self.node_contents_visit(node)
        finally:
            self.class_depth.pop()

    def visit_FunctionDef(self, node):
        in_class = self.class_depth[-1]
        if in_class and node.name in DENIED_CLASS_DUNDERS:
            self.error(node, f"Defining '{node.name}' is not allowed in the sandbox.")
        self.check_name(node, node.name, allow_magic_methods=in_class)
        return self._in_scope(node, False)

    def visit_Lambda(self, node):
        return self._in_scope(node, False)

    def visit_ClassDef(self, node):
        self.check_name(node, node.name)
        if any(k.arg == "metaclass" for k in node.keywords):
            self.error(node, "The keyword argument 'metaclass' is not allowed: subclass a library class instead.")
        # decorators, bases and keywords are evaluated in the enclosing scope
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        self.class_depth.append(True)
        try:
            node.body = [self.visit(s) for s in node.body]
        finally:
            self.class_depth.pop()
        return node

    def visit_arg(self, node):
        self.check_name(node, node.arg)
        return self.node_contents_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            self.check_name(node, name)
        return node

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node):
        self.check_name(node, node.name)
        return self.node_contents_visit(node)

    # ---------------------------------------------------------------- fast paths (no wrapping)
    def _contents_only(self, node):
        """Visit the node's children, wrapping nothing at the node itself."""
        return self.node_contents_visit(node)

    visit_Subscript = visit_For = visit_comprehension = visit_Assign = visit_AugAssign = _contents_only
    visit_AnnAssign = _contents_only  # RestrictedPython 9.0 has no visitor for `x: int = 1`
    visit_Call = visit_With = _contents_only

    # ---------------------------------------------------------------- match statements
    visit_Match = visit_match_case = visit_MatchValue = visit_MatchSingleton = _contents_only
    visit_MatchSequence = visit_MatchOr = _contents_only

    def visit_MatchAs(self, node):
        self.check_name(node, node.name)
        return self.node_contents_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node):
        self.check_name(node, node.rest)
        return self.node_contents_visit(node)

    def visit_MatchClass(self, node):
        for name in node.kwd_attrs:
            self.check_attr(node, name, load=True)
        return self.node_contents_visit(node)

    # ---------------------------------------------------------------- imports
    def _check_module(self, node, module: str):
        if not module_allowed(module):
            root = module.split(".", 1)[0]
            if root in guards.ALLOWED_ROOTS:
                self.error(node, f"Importing '{module}' is not allowed: private or unsafe submodule.")
            self.error(
                node,
                f"Importing '{module}' is not allowed. Allowed: pandas, numpy, scipy, sklearn, statsmodels, "
                "matplotlib, seaborn, plotly and safe standard modules (math, statistics, datetime, json, re, "
                "collections, itertools, functools, random, ...).",
            )

    def check_import_names(self, node):
        if getattr(node, "is_lazy", 0):
            self.error(node, "Lazy import statements are not allowed.")
        if isinstance(node, ast.ImportFrom):
            if node.level:
                self.error(node, "Relative imports are not allowed in the sandbox.")
            self._check_module(node, node.module or "")
        for alias in node.names:
            if isinstance(node, ast.Import):
                self._check_module(node, alias.name)
            elif alias.name != "*" and alias.name.startswith("_") and node.module != "__future__":
                self.error(node, f"Importing '{alias.name}' is not allowed: {guards.PRIVATE_HINT}")
            self.check_name(node, alias.asname)
        return node

    # ---------------------------------------------------------------- attributes
    def visit_Attribute(self, node):
        name = node.attr
        if isinstance(node.ctx, ast.Load) and self._is_super_dunder(node):
            return node
        self.check_attr(node, name, load=isinstance(node.ctx, ast.Load))
        node.value = self.visit(node.value)
        if not isinstance(node.ctx, ast.Load):
            node.value = self._call(WRITE, node, [node.value])
            return node
        if name in FAST_ATTRS or name in guards.SAFE_DUNDERS:
            return node
        guard = SPECIAL if name in guards.SPECIAL_ATTRS else GETATTR
        return self._call(guard, node, [node.value, ast.Constant(name)])

    def _is_super_dunder(self, node) -> bool:
        v = node.value
        return (
            node.attr in SUPER_DUNDERS
            and isinstance(v, ast.Call)
            and isinstance(v.func, ast.Name)
            and v.func.id == "super"
            and not v.args
            and not v.keywords
        )

    @staticmethod
    def _call(guard: str, node, args):
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=args, keywords=[])
        return ast.copy_location(call, node)


def _policy_for(source: str, filename: str, extra_names: frozenset = frozenset()) -> type:
    """RestrictedPython instantiates the policy itself, so the cell's context rides on a subclass."""
    attrs = {"filename": filename, "lines": tuple(source.splitlines()), "extra_names": extra_names}
    return type("CellPolicy", (SandboxPolicy,), attrs)


# ------------------------------------------------------------------------ compile and run
@lru_cache(maxsize=256)
def compile_cell(source: str, filename: str = "<cell>", split_last: bool = False):
    """(body_code, last_expression_code_or_None); cached because agents re-run similar cells.

    Parsed here so syntax errors keep Python's own message and location."""
    tree = ast.parse(source, filename, "exec")
    policy = _policy_for(source, filename)
    last = None
    if split_last and tree.body and isinstance(tree.body[-1], ast.Expr):
        expression = ast.Expression(tree.body.pop().value)
        last = compile_restricted(expression, filename, "eval", policy=policy)
    return compile_restricted(tree, filename, "exec", policy=policy), last


def _safe_import(name, globals=None, locals=None, fromlist=(), level=0):
    if type(fromlist) is list:
        # PyImport_Import (C code such as numpy's lazy imports, run while a cell's frame is on
        # top) passes a list; import statements pass None or a tuple, and user code cannot
        # name __import__. The module goes to the C caller, never to the user.
        return __import__(name, globals, locals, fromlist, level)
    if level:
        refuse("Relative imports are not allowed in the sandbox.")
    if not module_allowed(name):
        refuse(f"Importing '{name}' is not allowed in the sandbox.")
    proxy = libraries.PROXIES.get(name.split(".", 1)[0])
    if proxy is not None:
        module = proxy()
        for item in fromlist or ():
            if item != "*":
                guards.check_attr_name(item)
        return module
    module = __import__(name, None, None, (), 0)  # the real import, on an allowed name
    libraries.harden_new_modules()
    _harden_evaluators()
    if fromlist:
        target = sys.modules[name]
        for item in fromlist:
            _check_from_item(target, name, item)
    return __import__(name, globals, locals, fromlist, 0) if fromlist else module


def _check_from_item(target, name: str, item: str) -> None:
    if item == "*":
        names = getattr(target, "__all__", None) or [n for n in dir(target) if not n.startswith("_")]
        for n in names:
            _check_from_item(target, name, n)
        return
    guards.check_attr_name(item)
    if hasattr(target, item):
        guards.check_value(getattr(target, item), item)
    elif not module_allowed(f"{name}.{item}"):
        refuse(f"Importing '{name}.{item}' is not allowed in the sandbox.")


SAFE_BUILTINS = guards.build_safe_builtins(_safe_import, libraries.safe_open)
SAFE_BUILTINS.update({GETATTR: guards.guarded_getattr, SPECIAL: guards.special_getattr, WRITE: guards.guarded_write})


# ------------------------------------------------------------------------ evaluators in libraries
# typing (string annotations / ForwardRef, reached e.g. through functools.singledispatch), patsy
# and formulaic (statsmodels formulas) compile and eval strings with the real builtins. Their
# module-level `compile`/`eval` are swapped for ones that apply this policy.
_FORMULAIC_NAMES = frozenset(
    {"__FORMULAIC_CONTEXT__", "__FORMULAIC_METADATA__", "__FORMULAIC_STATE__", "__FORMULAIC_SPEC__"}
)


def _policy_compile(source, filename="<string>", mode="eval", flags=0, dont_inherit=False, *args, **kwargs):
    tree = source if isinstance(source, ast.AST) else ast.parse(source, filename, mode)
    text = source if isinstance(source, str) else ast.unparse(tree)
    return compile_restricted(tree, filename, mode, policy=_policy_for(text, filename, _FORMULAIC_NAMES))


class _GuardedNames(dict):
    """The names an evaluated string sees: its own, then the library's mappings, each value
    through the policy's value check. The mappings may come from frames the library walked to
    (patsy's eval_env, typing's module globals), so a module such as `os` found there is refused."""

    def __init__(self, *maps):
        super().__init__()
        self.maps = [m for m in maps if m is not None]

    def __missing__(self, key):
        for mapping in self.maps:
            try:
                value = mapping[key]
            except KeyError:
                continue
            return guards.check_value(value, key)
        raise KeyError(key)


def _policy_eval(code, globals=None, locals=None):
    if isinstance(code, str):
        code = _policy_compile(code, "<string>", "eval")
    return eval(code, {"__builtins__": SAFE_BUILTINS}, _GuardedNames(locals, globals))


_EVALUATOR_MODULES = ("patsy.eval", "formulaic.utils.stateful_transforms")
_user_codes: "weakref.WeakSet" = weakref.WeakSet()  # ForwardRef code compiled from user strings


def _is_user_namespace(ns) -> bool:
    return isinstance(ns, dict) and ns.get("__builtins__") is SAFE_BUILTINS


def _typing_eval(code, globals=None, locals=None):
    if code in _user_codes:
        return _policy_eval(code, globals, locals)
    if _is_user_namespace(globals) or _is_user_namespace(locals):
        # a library (functools.singledispatch) made the ForwardRef from a user annotation
        ref = _real_getframe(1).f_locals.get("self")
        arg = getattr(ref, "__forward_arg__", None)
        if not isinstance(arg, str):
            refuse("Evaluating this annotation is not allowed in the sandbox.")
        return _policy_eval(_policy_compile(arg, "<annotation>", "eval"), globals, locals)
    return eval(code, globals, locals)


def _created_by_user(depth: int = 2) -> bool:
    frame = _real_getframe(depth)
    typing_globals = sys.modules["typing"].__dict__
    while frame is not None and frame.f_globals is typing_globals:
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__builtins__") is SAFE_BUILTINS


def _harden_typing() -> None:
    import typing

    init = typing.ForwardRef.__init__
    if getattr(init, "__sandboxed__", False):
        return

    def __init__(self, arg, *args, **kwargs):
        init(self, arg, *args, **kwargs)
        if _created_by_user():
            code = _policy_compile(arg, "<annotation>", "eval")
            _user_codes.add(code)
            self.__forward_code__ = code

    __init__.__sandboxed__ = True
    typing.ForwardRef.__init__ = __init__
    typing.eval = _typing_eval
    get_type_hints = typing.get_type_hints

    @functools.wraps(get_type_hints)
    def checked_get_type_hints(*args, **kwargs):
        hints = get_type_hints(*args, **kwargs)
        if _created_by_user(1):
            # string annotations resolve in module globals the user never sees (the boot module's
            # `sys`): what comes back passes the same check as an attribute would
            hints = {name: guards.check_value(value, name) for name, value in hints.items()}
        return hints

    checked_get_type_hints.__sandboxed__ = True
    typing.get_type_hints = checked_get_type_hints


def _harden_evaluators() -> None:
    for name in _EVALUATOR_MODULES:
        module = sys.modules.get(name)
        if module is not None and module.__dict__.get("eval") is not _policy_eval:
            module.compile = _policy_compile
            module.eval = _policy_eval


# ------------------------------------------------------------------------ the cell's view of the stack
# Libraries find names by walking the stack (pandas eval/query `@x` and `level=`, patsy's
# eval_env, typing's callers): from inside a cell, the stack ends at the cell. `sys._getframe`
# refuses to reach below the frame that started the cell, as if the stack were not deeper, so
# the kernel's and the fork server's frames and globals (`os`, `sys`, sockets) are out of reach.
_real_getframe = sys._getframe
_floors: list = []  # the frame of each running restricted_exec/run, innermost last
_EMPTY_MAIN = types.ModuleType("__main__", "The sandbox's view of __main__: nothing of the host's.")


def _sandbox_getframe(depth=0, /):
    frame = _real_getframe(depth + 1)
    if _floors:
        floor = _floors[-1]
        f = frame
        while f is not None and f is not floor:
            f = f.f_back
        name = frame.f_globals.get("__name__")
        # below the cell, or one of the sandbox's own frames above it (a wrapper's globals hold `os`)
        if f is None or frame is floor or (type(name) is str and name.startswith("analysis.")):
            raise ValueError("call stack is not deep enough")
    return frame


def _harden_frames() -> None:
    if sys._getframe is not _sandbox_getframe:
        sys._getframe = _sandbox_getframe


def harden_libraries(workspace: str) -> None:
    """Idempotent, process-wide: library file I/O confined to `workspace`, evaluators policed."""
    _harden_library_io(workspace)
    _harden_typing()
    _harden_evaluators()
    _harden_frames()


def _prepare(namespace: dict) -> None:
    if not libraries.is_hardened():
        harden_libraries(os.getcwd())
    namespace["__builtins__"] = SAFE_BUILTINS


def take_refusals() -> list[str]:
    """What the last cell tried and was refused (caught or not), and forget it."""
    refusals = list(guards.REFUSALS)
    guards.REFUSALS.clear()
    return refusals


def _run(code, last, namespace: dict):
    """Run a compiled cell with the stack floor (this frame: the cell's is the first one visible),
    the __main__ view and the audit hook of a cell."""
    _prepare(namespace)
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = _EMPTY_MAIN
    _floors.append(_real_getframe(0))
    libraries.enter_cell()
    try:
        exec(code, namespace)
        return NOTHING if last is None else eval(last, namespace)
    finally:
        libraries.leave_cell()
        _floors.pop()
        if main is not None:
            sys.modules["__main__"] = main


def restricted_exec(source: str, namespace: dict, filename: str = "<cell>") -> None:
    """Compile `source` under the policy (PolicyError if refused) and run it in `namespace`."""
    code, _ = compile_cell(source, filename, False)
    _run(code, None, namespace)


def restricted_run(source: str, namespace: dict, filename: str = "<cell>"):
    """Like restricted_exec, but returns the value of a trailing expression (else NOTHING).
    Starts a new list of refusals (take_refusals)."""
    guards.REFUSALS.clear()
    code, last = compile_cell(source, filename, True)
    return _run(code, last, namespace)
