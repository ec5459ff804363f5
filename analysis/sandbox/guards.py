"""Runtime guards the policy's rewritten code calls, and the builtins it sees.

Only attribute loads that can reach something dangerous pay for a guard call; the rules are
in policy.py. Everything here must stay cheap: `guarded_getattr` is on the hot path of every
attribute load the compiler could not prove harmless.
"""

import _string
import builtins
import string
import sys
import types
from functools import lru_cache

ModuleType = types.ModuleType


class PolicyError(SyntaxError):
    """Code, or a value it reached, is outside the sandbox policy. Messages are short and say
    what to do instead, because the reader is usually an LLM agent that will retry."""


PRIVATE_HINT = "names starting with '_' are private. Use the public API instead."

# Import roots user code may import (plus their submodules, minus DENIED_MODULES). `string`,
# `io`, `operator` and `yaml` are served as safe proxies (see libraries.py), not the real ones.
ALLOWED_ROOTS = frozenset(
    [
        "pandas",
        "numpy",
        "scipy",
        "sklearn",
        "statsmodels",
        "plotly",
        "matplotlib",
        "mpl_toolkits",
        "seaborn",
        "patsy",
        "math",
        "cmath",
        "statistics",
        "datetime",
        "json",
        "re",
        "collections",
        "itertools",
        "functools",
        "random",
        "decimal",
        "fractions",
        "string",
        "textwrap",
        "io",
        "time",
        "warnings",
        "operator",
        "copy",
        "heapq",
        "bisect",
        "calendar",
        "typing",
        "dataclasses",
        "numbers",
        "enum",
        "zoneinfo",
        "pprint",
        "difflib",
        "unicodedata",
        "array",
        "abc",
        "contextlib",
        "__future__",
        "yaml",
    ]
)
# Where the callables of allowed modules may come from (their C accelerators included).
CALLABLE_ROOTS = ALLOWED_ROOTS | frozenset(
    [
        "_functools",
        "_heapq",
        "_bisect",
        "_collections",
        "_collections_abc",
        "_json",
        "_datetime",
        "_pydatetime",
        "_decimal",
        "_pydecimal",
        "_random",
        "_statistics",
        "_sre",
        "_strptime",
        "_struct",
        "_warnings",
        "_abc",
        "_contextvars",
        "_zoneinfo",
        "dateutil",
        "pytz",
        "tzdata",
        "cycler",
        "pyparsing",
        "kiwisolver",
        "contourpy",
        "PIL",
        "narwhals",
        "joblib",
        "threadpoolctl",
        "__main__",
        "builtins",
    ]
) - {"io", "operator", "string"}
# Submodules of allowed roots that are code execution or raw memory in disguise.
DENIED_MODULES = (
    "numpy.ctypeslib",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing._private",
    "pandas.io.clipboard",
    "pandas.io.clipboards",
    "pandas.compat.pickle_compat",
    "pandas.io.pickle",
    "pandas.util._tester",
    "matplotlib.testing",
    "scipy._lib",
    "statsmodels.iolib.smpickle",
    "sklearn.externals",
    "sklearn.utils._testing",
    # hand out the real globals and locals of stack frames (their modules hold `os`, `sys`, ...):
    # pandas' Scope (`Scope(level=k).scope`) and patsy's EvalEnvironment (`capture(k).namespace`)
    "pandas.core.computation.scope",
    "patsy.eval",
)
# joblib is allowed as a *callable* origin (sklearn re-exports delayed/Parallel), never as a
# module, and its pickle loader is refused by name.
DENIED_CALLABLES = {"joblib": {"load", "dump"}}

# Frame, generator, coroutine, traceback and code internals: refused at compile time.
DENIED_ATTRS = frozenset(
    [
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "gi_running",
        "gi_suspended",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "cr_running",
        "ag_frame",
        "ag_code",
        "ag_await",
        "ag_running",
        "tb_frame",
        "tb_next",
        "tb_lasti",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "f_lasti",
        "func_globals",
        "func_code",
        "mro",
        "ctypes",
        "tofile",
        "from_custom_template",
        "template_html",
        "template_html_table",
        "template_html_style",
        "template_latex",
        "template_string",
        "warn_explicit",
        "print_png",
        "print_jpg",
        "print_jpeg",
        "print_pdf",
        "print_svg",
        "print_svgz",
        "print_ps",
        "print_eps",
        "print_raw",
        "print_rgba",
        "print_tif",
        "print_tiff",
        "print_webp",
        "print_pgf",
        "print_gif",
    ]
) | frozenset(n for n in dir(types.CodeType) if n.startswith("co_"))
# Read-only dunders that only ever hold strings.
SAFE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__"})

_DANGEROUS_TYPES = {types.FrameType, types.TracebackType, types.CodeType}
# Classes of the sandbox's own whose instances user code legitimately holds (set below).
_HANDED_OUT: tuple = ()
_DANGEROUS_TYPE_ROOTS = ("jinja2", "subprocess", "socket", "ctypes", "_ctypes", "multiprocessing")


# What the running cell tried and was refused, as short descriptions ("import of 'os'"); the
# kernel takes them after each cell, caught refusals included (policy.take_refusals).
REFUSALS: list = []
MAX_REFUSALS = 50


def record(what: str) -> None:
    if len(REFUSALS) < MAX_REFUSALS and what not in REFUSALS:
        REFUSALS.append(what)


def refuse(message: str, what: str | None = None) -> None:
    record(what or message)
    raise PolicyError(message)


@lru_cache(maxsize=4096)
def module_allowed(name: str) -> bool:
    if not isinstance(name, str):
        return False
    if name.split(".", 1)[0] not in ALLOWED_ROOTS:
        return False
    if any(part.startswith("_") for part in name.split(".")[1:]) and not name.startswith("__future__"):
        return False
    return not any(name == d or name.startswith(d + ".") for d in DENIED_MODULES)


def _module_origin_allowed(module_name) -> bool:
    if module_name is None:
        return True
    if not isinstance(module_name, str):
        return False
    root = module_name.split(".", 1)[0]
    return root in CALLABLE_ROOTS and not any(
        module_name == d or module_name.startswith(d + ".") for d in DENIED_MODULES
    )


_DANGEROUS_BUILTINS = {
    getattr(builtins, n)
    for n in [
        "exec",
        "eval",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "vars",
        "globals",
        "locals",
        "breakpoint",
        "input",
        "help",
        "exit",
        "quit",
    ]
    if hasattr(builtins, n)
}


def _check_callable(v, name: str):
    """A function or class reached through an attribute: must come from an allowed library."""
    try:
        origin = v.__module__
    except Exception:
        return v
    if origin == "builtins":
        if v in _DANGEROUS_BUILTINS:
            refuse(
                f"Access to '{name}' is not allowed: it is a builtin the sandbox replaces. Use the plain name.",
                f"builtin '{name}'",
            )
        return v
    if not _module_origin_allowed(origin):
        refuse(
            f"Access to '{name}' is not allowed: it comes from module '{origin}', which the sandbox blocks.",
            f"'{name}' from module '{origin}'",
        )
    denied = DENIED_CALLABLES.get(origin.split(".", 1)[0] if isinstance(origin, str) else "")
    if denied and getattr(v, "__name__", None) in denied:
        refuse(f"Access to '{name}' is not allowed: loading or dumping pickles is blocked.", f"pickle loader '{name}'")
    return v


def _check_module(m, name: str):
    if not module_allowed(m.__name__):
        refuse(
            f"Access to module '{m.__name__}' (as '{name}') is not allowed in the sandbox.", f"module '{m.__name__}'"
        )
    return m


# Kinds of attribute results, cached per type so the common case is one dict lookup.
_OK, _MODULE, _FUNC, _BUILTIN, _CLASS, _BAD = range(6)
_kind: dict = {
    int: _OK,
    float: _OK,
    str: _OK,
    bool: _OK,
    list: _OK,
    dict: _OK,
    tuple: _OK,
    type(None): _OK,
    types.MethodType: _OK,
    types.ModuleType: _MODULE,
    types.FunctionType: _FUNC,
    types.BuiltinFunctionType: _BUILTIN,
}


def _classify(t) -> int:
    module = getattr(t, "__module__", None)
    module = module if type(module) is str else ""
    if t in _DANGEROUS_TYPES:
        k = _BAD
    elif module.split(".", 1)[0] == "analysis" and not issubclass(t, _HANDED_OUT):
        k = _BAD  # instances of the sandbox's own machinery (the kernel, its writers, ...)
    elif module.split(".", 1)[0] in ALLOWED_ROOTS and not _module_origin_allowed(module):
        k = _BAD  # instances of classes from a denied submodule (pandas' Scope holds frames' globals)
    elif issubclass(t, ModuleType):
        k = _MODULE
    elif issubclass(t, type):
        k = _CLASS
    elif str(getattr(t, "__module__", "")).split(".", 1)[0] in _DANGEROUS_TYPE_ROOTS:
        k = _BAD
    elif callable(t) and t.__name__ in ("_ArrayFunctionDispatcher", "ufunc", "partial"):
        k = _FUNC
    else:
        k = _OK
    _kind[t] = k
    return k


def check_value(v, name: str):
    """Refuse values that reach outside the sandbox: foreign modules, their functions, frames."""
    t = type(v)
    k = _kind.get(t)
    if k is None:
        k = _classify(t)
    if k == _OK:
        return v
    if k == _MODULE:
        return _check_module(v, name)
    if k == _BUILTIN:
        owner = v.__self__
        if owner is None or type(owner) is ModuleType:
            return _check_callable(v, name)
        return v
    if k == _BAD:
        refuse(
            f"Access to '{name}' is not allowed: {t.__name__} objects are internals the sandbox hides.",
            f"'{name}' ({t.__name__} object)",
        )
    if k == _CLASS:
        if v is type:
            return safe_type
        if v in CONSTRUCTOR_TYPES:
            refuse(f"Access to '{name}' is not allowed: it builds interpreter objects.", f"class '{v.__name__}'")
    return _check_callable(v, name)


def guarded_getattr(obj, name):
    """`obj.name` for names the compiler could not prove harmless."""
    if type(obj) is ModuleType:
        if obj in TRUSTED_MODULES:
            return getattr(obj, name)
        if not module_allowed(obj.__name__):
            refuse(
                f"Access to '{name}' of module '{obj.__name__}' is not allowed in the sandbox.",
                f"module '{obj.__name__}'",
            )
    v = getattr(obj, name)
    k = _kind.get(type(v))  # inlined fast path of check_value: one dict lookup for data and methods
    if k == _OK:
        return v
    if k == _BUILTIN and type(obj) is not ModuleType and v.__self__ is obj:
        return v  # a C method bound to the very object we read it from
    return check_value(v, name)


TRUSTED_MODULES: set = set()  # the hand-made stdlib proxies (libraries.PROXIES)


def exact_str(value) -> str:
    """A str subclass can override startswith/__eq__/__hash__ to pass a check and still name
    `__class__` for getattr: every check works on an exact copy."""
    return value if type(value) is str else str.__str__(value)


def check_attr_name(name) -> str:
    """The name as an exact str, or PolicyError."""
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    name = exact_str(name)
    if name.startswith("_") and name not in SAFE_DUNDERS:
        refuse(f"Access to '{name}' is not allowed: {PRIVATE_HINT}", f"attribute '{name}'")
    if name in DENIED_ATTRS:
        refuse(
            f"Access to '{name}' is not allowed: it exposes interpreter or template internals.", f"attribute '{name}'"
        )
    return name


_MISSING = object()


def safe_getattr(obj, name, default=_MISSING):
    name = check_attr_name(name)
    try:
        if name in SPECIAL_ATTRS:
            return special_getattr(obj, name)
        return guarded_getattr(obj, name)
    except AttributeError:
        if default is _MISSING:
            raise
        return default


def safe_hasattr(obj, name) -> bool:
    try:
        safe_getattr(obj, name)
    except AttributeError:
        return False
    return True


# --------------------------------------------------------------- writes
def guarded_write(obj):
    """Target of `obj.x = ...` / `del obj.x`: never a module, a library class or a builtin."""
    t = type(obj)
    if t is ModuleType or isinstance(obj, ModuleType):
        refuse("Setting attributes on modules is not allowed in the sandbox.", "setting a module attribute")
    if isinstance(obj, type) and not _is_user_class(obj):
        refuse(
            f"Setting attributes on library class '{obj.__name__}' is not allowed; subclass it instead.",
            f"patching class '{obj.__name__}'",
        )
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)) and not _is_user_function(
        obj
    ):
        refuse("Setting attributes on library functions is not allowed in the sandbox.", "patching a library function")
    return obj


def _is_library(module_name) -> bool:
    if not isinstance(module_name, str) or module_name == "__main__":
        return False
    root = module_name.split(".", 1)[0]
    return root in CALLABLE_ROOTS or root in ALLOWED_ROOTS or module_name in sys.builtin_module_names


def _is_user_class(cls) -> bool:
    return not _is_library(getattr(cls, "__module__", None))


def _is_user_function(f) -> bool:
    return isinstance(f, types.FunctionType) and not _is_library(f.__module__)


def safe_setattr(obj, name, value) -> None:
    name = check_attr_name(name)
    setattr(guarded_write(obj), name, value)


def safe_delattr(obj, name) -> None:
    name = check_attr_name(name)
    delattr(guarded_write(obj), name)


# --------------------------------------------------------------- format strings
_formatter = string.Formatter()


def _fields(fmt: str):
    """(field name, parts after the first) of every replacement field, nested specs included."""
    try:
        parsed = list(_formatter.parse(fmt))
    except ValueError:
        return  # str.format raises the real error
    for _literal, field, spec, _conv in parsed:
        if field is not None:
            try:
                _first, rest = _string.formatter_field_name_split(field)
                yield field, list(rest)
            except ValueError:
                pass
        if spec and "{" in spec:
            yield from _fields(spec)


def check_format_string(fmt) -> bool:
    """Refuse `{0.__class__}`-style fields; True when some field traverses attributes or items."""
    if not isinstance(fmt, str) or "{" not in fmt:
        return False
    traverses = False
    for field, rest in _fields(exact_str(fmt)):
        if any(is_attr and str(key).startswith("_") for is_attr, key in rest):
            refuse(f"Format field '{{{field}}}' is not allowed: {PRIVATE_HINT}", f"format field '{{{field}}}'")
        traverses = traverses or bool(rest)
    return traverses


def check_library_format(fmt) -> None:
    """A format string handed to a library (Styler.format, StrMethodFormatter, heatmap fmt=...),
    which calls the real str.format on it: no attribute or item traversal at all."""
    if isinstance(fmt, str) and "{" in fmt:
        for field, rest in _fields(exact_str(fmt)):
            if rest:
                refuse(
                    f"Format field '{{{field}}}' is not allowed here: use plain fields like '{{:.2f}}'.",
                    f"format field '{{{field}}}'",
                )
    elif isinstance(fmt, dict):
        for value in fmt.values():
            check_library_format(value)
    elif isinstance(fmt, (list, tuple)):
        for value in fmt:
            check_library_format(value)


class _GuardedFormatter(string.Formatter):
    """str.format for fields that traverse: each `.name` goes through the attribute guard."""

    def get_field(self, field_name, args, kwargs):
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = safe_getattr(obj, key) if is_attr else obj[key]
        return obj, first


_guarded_formatter = _GuardedFormatter()


class _SafeFormat:
    """Stands in for `s.format` / `str.format` / `s.format_map`."""

    __slots__ = ("_bound", "_unbound", "_mapping")

    def __init__(self, bound, unbound: bool, mapping: bool = False):
        self._bound = bound
        self._unbound = unbound
        self._mapping = mapping

    def __call__(self, *args, **kwargs):
        if self._unbound:
            if not args:
                return self._bound(*args, **kwargs)
            fmt, args = args[0], args[1:]
        else:
            fmt = getattr(self._bound, "__self__", None)
        if not check_format_string(fmt):
            return self._bound(*args, **kwargs) if not self._unbound else self._bound(fmt, *args, **kwargs)
        fmt = exact_str(fmt)
        if self._mapping:
            return _guarded_formatter.vformat(fmt, (), args[0] if args else {})
        return _guarded_formatter.vformat(fmt, args, kwargs)

    def __repr__(self) -> str:
        return repr(self._bound)


# --------------------------------------------------------------- special attribute names
def _string_args_private(args) -> bool:
    for a in args:
        if isinstance(a, str):
            if exact_str(a).startswith("_"):
                return True
        elif isinstance(a, dict):
            if _string_args_private(a.values()) or _string_args_private(a.keys()):
                return True
        elif isinstance(a, (list, tuple)):  # noqa: SIM102
            if _string_args_private(a):
                return True
    return False


def _by_name_dispatch(method, name: str):
    """pandas `agg("name")`/`apply("name")` look methods up by string: keep them public."""

    def call(*args, **kwargs):
        if _string_args_private(args) or _string_args_private(kwargs.values()):
            refuse(f"'{name}' with a private method name is not allowed: {PRIVATE_HINT}", f"'{name}' of a private name")
        return method(*args, **kwargs)

    return call


_NDARRAY_WRITERS = frozenset({"dump"})
BY_NAME_METHODS = frozenset({"agg", "aggregate", "apply", "transform", "map", "applymap", "pipe", "resample"})
SPECIAL_ATTRS = frozenset({"format", "format_map", "dump"}) | BY_NAME_METHODS


def special_getattr(obj, name):
    v = guarded_getattr(obj, name)
    if name == "format" or name == "format_map":
        mapping = name == "format_map"
        if isinstance(obj, str):
            return _SafeFormat(v, unbound=False, mapping=mapping)
        if isinstance(obj, type) and issubclass(obj, str):
            return _SafeFormat(v, unbound=True, mapping=mapping)
        return v
    if name in _NDARRAY_WRITERS:
        np = sys.modules.get("numpy")
        if np is not None and (isinstance(obj, np.ndarray) or (isinstance(obj, type) and issubclass(obj, np.ndarray))):
            refuse("ndarray.dump is not allowed: use np.save('name.npy', arr) in the workspace.", "ndarray.dump")
        return v
    if callable(v) and type(obj).__module__.split(".", 1)[0] == "pandas":
        return _by_name_dispatch(v, name)
    return v


# --------------------------------------------------------------- builtins
def _refused_builtin(name: str, hint: str):
    def refused(*args, **kwargs):
        refuse(f"'{name}' is not allowed in the sandbox: {hint}", f"builtin '{name}'")

    refused.__name__ = name
    return refused


# Classes that build interpreter objects from parts (functions from code, modules, frames...):
# type() shows them only as a _TypeView, and attribute access refuses them.
CONSTRUCTOR_TYPES = frozenset(
    {
        types.FunctionType,
        types.LambdaType,
        types.CodeType,
        types.FrameType,
        types.TracebackType,
        types.ModuleType,
        types.MethodType,
        types.CellType,
        types.BuiltinFunctionType,
        types.GeneratorType,
        types.CoroutineType,
        types.AsyncGeneratorType,
        types.MappingProxyType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        types.WrapperDescriptorType,
        types.MethodWrapperType,
        types.MethodDescriptorType,
        types.ClassMethodDescriptorType,
    }
)


class _TypeView:
    """What type(x) returns for a CONSTRUCTOR_TYPES class: its names and equality, not the class."""

    def __init__(self, cls):
        self._cls = cls
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__

    def __eq__(self, other):
        return other is self._cls or (isinstance(other, _TypeView) and other._cls is self._cls)

    def __hash__(self):
        return hash(self._cls)

    def __repr__(self):
        return repr(self._cls)

    def __call__(self, *args, **kwargs):
        refuse(
            f"Creating '{self._cls.__name__}' objects is not allowed in the sandbox.", f"class '{self._cls.__name__}'"
        )


def safe_type(*args):
    if len(args) != 1:
        refuse("type() with three arguments is not allowed: use a class statement.", "type() with three arguments")
    t = type(args[0])
    if t is type:
        return safe_type  # the real `type` would build classes and answer type(x) unguarded
    if t in CONSTRUCTOR_TYPES:
        return _TypeView(t)
    # type(x) must not hand out classes that reach outside, e.g. type(fh.buffer.raw) is FileIO
    return check_value(t, "type")


def safe_dir(*args):
    names = dir(*args) if args else []
    return [n for n in names if not n.startswith("_")]


_SAFE_BUILTIN_NAMES = [
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "print",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "zip",
    "aiter",
    "anext",
    "True",
    "False",
    "None",
    "NotImplemented",
    "Ellipsis",
    "__build_class__",
]


_HANDED_OUT = (PolicyError, _SafeFormat, _TypeView)


def build_safe_builtins(safe_import, safe_open) -> dict:
    b = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES if hasattr(builtins, n)}
    b.update((n, v) for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException))
    b.update(
        __import__=safe_import,
        open=safe_open,
        type=safe_type,
        dir=safe_dir,
        getattr=safe_getattr,
        hasattr=safe_hasattr,
        setattr=safe_setattr,
        delattr=safe_delattr,
        PolicyError=PolicyError,
        __name__="__main__",
    )
    hints = {
        "exec": "run the code directly in the cell",
        "eval": "compute the expression directly",
        "compile": "run the code directly in the cell",
        "globals": "use the variables directly",
        "locals": "use the variables directly",
        "vars": "use the attributes directly",
        "breakpoint": "there is no debugger",
        "input": "there is no interactive input",
        "help": "read the docstring with print(obj.__doc__)",
        "exit": "end the cell instead",
        "quit": "end the cell instead",
        "memoryview": "use bytes or numpy arrays",
    }
    b.update((n, _refused_builtin(n, h)) for n, h in hints.items())
    return b
