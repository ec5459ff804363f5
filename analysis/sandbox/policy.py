"""The sandbox's language policy: compile user code so it can only reach the analysis libraries.

The compiler (an `ast.NodeTransformer` in RestrictedPython's spirit, but rewriting far less so
loops and pandas code run at native speed) refuses statically what is never needed:

- attributes starting with `_` (but `__name__`, `__qualname__`, `__doc__` may be read), and the
  frame/generator/traceback/code internals in `guards.DENIED_ATTRS`;
- names starting with `__` (plain locals like `_` or `_tmp` are fine), except dunder methods
  defined in a class body and `super().__init__(...)`-style calls;
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
import os
import sys
import weakref
from functools import lru_cache

from analysis.sandbox import guards, libraries
from analysis.sandbox.guards import PolicyError, module_allowed, refuse
from analysis.sandbox.libraries import harden_libraries as _harden_library_io

__all__ = ["restricted_exec", "restricted_run", "PolicyError", "NOTHING", "harden_libraries", "compile_restricted"]


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


class PolicyTransformer(ast.NodeTransformer):
    def __init__(self, source: str, filename: str, extra_names: frozenset = frozenset()):
        self.lines = source.splitlines()
        self.filename = filename
        self.extra_names = extra_names  # reserved names an evaluating library adds (formulaic)
        self.class_depth = [False]  # is the innermost scope a class body?

    # ---------------------------------------------------------------- errors
    def error(self, node, message: str):
        lineno = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        text = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        raise PolicyError(message, (self.filename, lineno, col, text))

    def check_name(self, node, name: str, *, allow_dunder: bool = False):
        if name.startswith("__") and not allow_dunder and name not in self.extra_names:
            self.error(node, f"The name '{name}' is not allowed: names starting with '__' are reserved.")

    def check_attr(self, node, name: str, *, load: bool):
        if name.startswith("_") and not (load and name in guards.SAFE_DUNDERS):
            self.error(node, f"Access to '{name}' is not allowed: {guards.PRIVATE_HINT}")
        if name in guards.DENIED_ATTRS:
            self.error(node, f"Access to '{name}' is not allowed: it exposes interpreter or template internals.")

    # ---------------------------------------------------------------- names and scopes
    def visit_Name(self, node):
        in_class = self.class_depth[-1]
        allowed = (isinstance(node.ctx, ast.Load) and node.id in READABLE_DUNDER_NAMES) or (
            in_class and isinstance(node.ctx, ast.Store) and node.id in CLASS_BODY_DUNDERS
        )
        self.check_name(node, node.id, allow_dunder=allowed)
        return node

    def _visit_function(self, node):
        self.check_name(node, node.name, allow_dunder=self.class_depth[-1])
        self.class_depth.append(False)
        try:
            return self.generic_visit(node)
        finally:
            self.class_depth.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_function

    def visit_Lambda(self, node):
        self.class_depth.append(False)
        try:
            return self.generic_visit(node)
        finally:
            self.class_depth.pop()

    def visit_ClassDef(self, node):
        self.check_name(node, node.name)
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
        return self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            self.check_name(node, name)
        return node

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node):
        if node.name:
            self.check_name(node, node.name)
        return self.generic_visit(node)

    def visit_MatchAs(self, node):
        if node.name:
            self.check_name(node, node.name)
        return self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node):
        if node.rest:
            self.check_name(node, node.rest)
        return self.generic_visit(node)

    def visit_MatchClass(self, node):
        for name in node.kwd_attrs:
            self.check_attr(node, name, load=True)
        return self.generic_visit(node)

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

    def visit_Import(self, node):
        for alias in node.names:
            self._check_module(node, alias.name)
            if alias.asname:
                self.check_name(node, alias.asname)
        return node

    def visit_ImportFrom(self, node):
        if node.level:
            self.error(node, "Relative imports are not allowed in the sandbox.")
        self._check_module(node, node.module or "")
        for alias in node.names:
            if alias.name != "*" and alias.name.startswith("_") and node.module != "__future__":
                self.error(node, f"Importing '{alias.name}' is not allowed: {guards.PRIVATE_HINT}")
            if alias.asname:
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


# ------------------------------------------------------------------------ compile and run
@lru_cache(maxsize=256)
def compile_restricted(source: str, filename: str = "<cell>", split_last: bool = False):
    """(body_code, last_expression_code_or_None); cached because agents re-run similar cells."""
    tree = ast.parse(source, filename, "exec")
    tree = PolicyTransformer(source, filename).visit(tree)
    last = None
    if split_last and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
        ast.fix_missing_locations(last)
        last = compile(last, filename, "eval", dont_inherit=True)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", dont_inherit=True), last


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
    module = __import__(name, None, None, (), 0)  # noqa: the real import, on an allowed name
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
    tree = PolicyTransformer(text, filename, _FORMULAIC_NAMES).visit(tree)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, mode, flags & ~ast.PyCF_ONLY_AST, True)


def _policy_eval(code, globals=None, locals=None):
    if isinstance(code, str):
        code = _policy_compile(code, "<string>", "eval")
    scope = dict(globals or {})
    scope["__builtins__"] = SAFE_BUILTINS
    return eval(code, scope, locals if locals is not None else scope)


_EVALUATOR_MODULES = ("patsy.eval", "formulaic.utils.stateful_transforms")
_user_codes: "weakref.WeakSet" = weakref.WeakSet()  # ForwardRef code compiled from user strings


def _is_user_namespace(ns) -> bool:
    return isinstance(ns, dict) and ns.get("__builtins__") is SAFE_BUILTINS


def _typing_eval(code, globals=None, locals=None):
    if code in _user_codes:
        return _policy_eval(code, globals, locals)
    if _is_user_namespace(globals) or _is_user_namespace(locals):
        # a library (functools.singledispatch) made the ForwardRef from a user annotation
        ref = sys._getframe(1).f_locals.get("self")
        arg = getattr(ref, "__forward_arg__", None)
        if not isinstance(arg, str):
            refuse("Evaluating this annotation is not allowed in the sandbox.")
        return _policy_eval(_policy_compile(arg, "<annotation>", "eval"), globals, locals)
    return eval(code, globals, locals)


def _created_by_user() -> bool:
    frame = sys._getframe(2)
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


def _harden_evaluators() -> None:
    for name in _EVALUATOR_MODULES:
        module = sys.modules.get(name)
        if module is not None and module.__dict__.get("eval") is not _policy_eval:
            module.compile = _policy_compile
            module.eval = _policy_eval


def harden_libraries(workspace: str) -> None:
    """Idempotent, process-wide: library file I/O confined to `workspace`, evaluators policed."""
    _harden_library_io(workspace)
    _harden_typing()
    _harden_evaluators()


def _prepare(namespace: dict) -> None:
    if not libraries.is_hardened():
        harden_libraries(os.getcwd())
    namespace["__builtins__"] = SAFE_BUILTINS


def restricted_exec(source: str, namespace: dict, filename: str = "<cell>") -> None:
    """Compile `source` under the policy (PolicyError if refused) and run it in `namespace`."""
    code, _ = compile_restricted(source, filename, False)
    _prepare(namespace)
    exec(code, namespace)


def restricted_run(source: str, namespace: dict, filename: str = "<cell>"):
    """Like restricted_exec, but returns the value of a trailing expression (else NOTHING)."""
    code, last = compile_restricted(source, filename, True)
    _prepare(namespace)
    exec(code, namespace)
    return NOTHING if last is None else eval(last, namespace)
