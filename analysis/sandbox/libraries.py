"""The analysis libraries' dangerous surface, wrapped process-wide.

`harden_libraries(workspace)` replaces file-reading/writing functions of pandas, numpy,
matplotlib, plotly (and, once imported, scipy.io, sklearn.datasets) with wrappers whose path
arguments must resolve inside the workspace (symlinks resolved). URLs and fsspec protocols are
refused, and so is everything that unpickles (`pd.read_pickle`, `np.load(allow_pickle=True)`,
`np.lib.format.read_array(allow_pickle=True)`, sklearn `fetch_*` caches), or spawns programs
(clipboard, ffmpeg/imagemagick animation writers, `text.usetex`). pandas `eval`/`query` stay
(both engines only evaluate pandas' own expression grammar), but their expression may not name
anything starting with `_`, which is how that grammar would otherwise reach private attributes.

A wrapper replaces the original in *every* loaded module that holds it, so
`pd.io.parsers.readers.read_csv` is the wrapper too; modules imported later are handled by
`harden_new_modules()`, which the sandbox's `__import__` calls.
"""

import ast
import builtins
import copy
import functools
import inspect
import io
import operator
import os
import re
import site
import string
import sys
import sysconfig
import types

from analysis.sandbox import isolation
from analysis.sandbox.guards import (
    TRUSTED_MODULES,
    PolicyError,
    check_attr_name,
    check_library_format,
    check_value,
    exact_str,
    guarded_getattr,
    record,
    refuse,
    safe_getattr,
)

_state = {"workspace": None, "seen": set(), "done_roots": set()}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://|^file:|::")
PATH_PARAMS = (
    "path",
    "path_or_buf",
    "path_or_buffer",
    "filepath_or_buffer",
    "io",
    "fname",
    "file",
    "filename",
    "stylesheet",
    "excel_writer",
    "buf",
    "fp",
    "frame",
    "container_path",
    "f",
    "file_name",
    "data_home",
)


def is_hardened() -> bool:
    return _state["workspace"] is not None


def workspace() -> str:
    return _state["workspace"]


def _integer_like(value) -> bool:
    """int, bool, IntEnum, np.int64, anything with __index__: what open() takes as a descriptor."""
    if isinstance(value, int):
        return True
    try:
        operator.index(value)
    except Exception:
        return False
    return True


def _refuse_descriptor() -> None:
    refuse("Opening file descriptors is not allowed: open a file in the workspace by name.", "a file descriptor")


def confine(path):
    """The resolved path if it lies inside the workspace; file objects pass through."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        if _integer_like(path):
            _refuse_descriptor()
        return path
    path = exact_str(path)
    if _URL.search(path):
        refuse(
            f"URLs are not allowed in the sandbox ({path[:60]!r}): there is no network; use workspace files.",
            f"URL {path[:60]!r}",
        )
    ws = _state["workspace"] or os.path.realpath(os.getcwd())
    full = os.path.realpath(os.path.join(ws, os.path.expanduser(path)))
    if not _inside(full, ws):
        refuse(
            f"Path {path!r} is outside the workspace: only files in the working directory can be used.",
            f"path {path[:80]!r}",
        )
    return full


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def safe_open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
    if opener is not None or not closefd:
        refuse("open() with opener/closefd is not allowed in the sandbox.", "open() with an opener")
    path = confine(file)
    if not isinstance(path, str):
        refuse("open() takes the name of a file in the workspace.", "open() of a non-path")
    return builtins.open(path, mode, buffering, encoding, errors, newline)


# ------------------------------------------------------------------------ wrappers
def _confined(func, params=PATH_PARAMS, check=None):
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        sig = None
    names = [p for p in (sig.parameters if sig else ()) if p in params]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if sig is None:
            return func(*args, **kwargs)
        try:
            bound = sig.bind_partial(*args, **kwargs)
        except TypeError:
            return func(*args, **kwargs)  # let the library report the bad call
        if check is not None:
            check(bound.arguments)
            _skip_own_frame(sig, bound)
        for name in names:
            if name in bound.arguments:
                bound.arguments[name] = confine(bound.arguments[name])
        return func(*bound.args, **bound.kwargs)

    wrapper.__sandboxed__ = True
    return wrapper


def _skip_own_frame(sig, bound) -> None:
    """pandas eval/query find `@local` variables `level` frames up: count the wrapper's frame."""
    params = sig.parameters
    if "level" in params:
        bound.arguments["level"] = bound.arguments.get("level", 0) + 1
        return
    varkw = next((p.name for p in params.values() if p.kind is p.VAR_KEYWORD), None)
    if varkw is not None and "expr" in params:
        extra = bound.arguments.setdefault(varkw, {})
        extra["level"] = extra.get("level", 0) + 1


def _refused(func, message: str):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        refuse(message)

    wrapper.__sandboxed__ = True
    return wrapper


def _no_pickle(arguments):
    if arguments.get("allow_pickle"):
        refuse("Loading pickles is not allowed in the sandbox: use np.save/np.load without allow_pickle.", "unpickling")


FORMAT_PARAMS = ("formatter", "fmt", "format", "float_format", "formatters", "template")


def _library_formats(arguments):
    for name in FORMAT_PARAMS:
        if name in arguments:
            check_library_format(arguments[name])


_PRIVATE_NAME = re.compile(r"(?<![\w])_|\._")


def _public_expression(arguments):
    expr = arguments.get("expr")
    if isinstance(expr, str) and _PRIVATE_NAME.search(expr):
        refuse("pandas eval/query expressions may not use names starting with '_'.", "a private name in pandas eval")


_EXEC_WRITERS = {"pillow", "html"}


def _animation_writer(arguments):
    writer = arguments.get("writer")
    name = writer if isinstance(writer, str) else type(writer).__name__.lower() if writer is not None else "pillow"
    if not any(w in name.lower() for w in _EXEC_WRITERS):
        refuse(
            "Animation writers that start programs (ffmpeg, imagemagick) are not allowed: use writer='pillow'.",
            "an animation writer that starts programs",
        )


_RC_REFUSED = {"animation.ffmpeg_path", "animation.convert_path", "text.usetex", "ps.usedistiller", "pgf.texsystem"}


def _rc_setitem(original):
    @functools.wraps(original)
    def __setitem__(self, key, val):
        if key in _RC_REFUSED and val and val != sys.modules["matplotlib"].rcParamsDefault.get(key):
            refuse(
                f"rcParams[{key!r}] starts external programs and is not allowed in the sandbox.", f"rcParams[{key!r}]"
            )
        return original(self, key, val)

    return __setitem__


# What to wrap, as (module, dotted attribute, kind, extra). Missing ones are skipped, so the
# table survives library version drift.
_CONFINE = "confine"
_REFUSE = "refuse"
_TARGETS = {
    "pandas": [
        *[
            ("pandas", n, _CONFINE, None)
            for n in (
                "read_csv",
                "read_table",
                "read_fwf",
                "read_excel",
                "read_json",
                "read_html",
                "read_xml",
                "read_parquet",
                "read_feather",
                "read_orc",
                "read_stata",
                "read_sas",
                "read_spss",
                "read_hdf",
            )
        ],
        *[
            ("pandas", n, _REFUSE, "pickles can run code; save data as CSV or parquet instead.")
            for n in ("read_pickle",)
        ],
        *[
            ("pandas", n, _REFUSE, "there is no clipboard, database or network in the sandbox.")
            for n in ("read_clipboard", "read_sql", "read_sql_query", "read_sql_table", "read_iceberg", "read_gbq")
        ],
        *[
            ("pandas.core.generic", f"NDFrame.{n}", _CONFINE, None)
            for n in ("to_csv", "to_excel", "to_json", "to_hdf", "to_pickle", "to_latex", "to_xarray")
        ],
        *[
            ("pandas.core.frame", f"DataFrame.{n}", _CONFINE, None)
            for n in ("to_parquet", "to_feather", "to_orc", "to_stata", "to_html", "to_string", "to_markdown", "to_xml")
        ],
        *[("pandas.core.series", f"Series.{n}", _CONFINE, None) for n in ("to_string", "to_markdown")],
        *[
            ("pandas.core.generic", f"NDFrame.{n}", _REFUSE, "there is no clipboard or database in the sandbox.")
            for n in ("to_clipboard", "to_sql")
        ],
        ("pandas.core.frame", "DataFrame.to_iceberg", _REFUSE, "there is no catalog in the sandbox."),
        ("pandas.io.excel._base", "ExcelWriter.__init__", _CONFINE, None),
        ("pandas.io.excel._base", "ExcelFile.__init__", _CONFINE, None),
        ("pandas.io.pytables", "HDFStore.__init__", _CONFINE, None),
        ("pandas.core.computation.eval", "eval", "check", _public_expression),
        ("pandas.core.frame", "DataFrame.query", "check", _public_expression),
        *[
            ("pandas.io.formats.style", f"Styler.{n}", "check", _library_formats)
            for n in ("format", "format_index", "format_index_names")
        ],
        *[("pandas.core.generic", f"NDFrame.{n}", "confine+check", _library_formats) for n in ("to_csv", "to_latex")],
        ("pandas.core.frame", "DataFrame.to_string", "confine+check", _library_formats),
        ("pandas.core.frame", "DataFrame.to_html", "confine+check", _library_formats),
    ],
    "statsmodels": [
        ("statsmodels.iolib.smpickle", "load_pickle", _REFUSE, "pickles can run code; refit the model instead."),
    ],
    "joblib": [
        ("joblib", "load", _REFUSE, "pickles can run code."),
        ("joblib.numpy_pickle", "load", _REFUSE, "pickles can run code."),
    ],
    "numpy": [
        ("numpy", "load", "confine+check", _no_pickle),
        *[
            ("numpy", n, _CONFINE, None)
            for n in ("save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile", "fromregex")
        ],
        ("numpy.lib.format", "read_array", "check", _no_pickle),
        ("numpy.lib.format", "open_memmap", _CONFINE, None),
        ("numpy", "memmap.__new__", _CONFINE, None),
        ("numpy.lib._datasource", "DataSource.open", _CONFINE, None),
        ("numpy.lib._datasource", "DataSource.exists", _CONFINE, None),
    ],
    "matplotlib": [
        ("matplotlib.figure", "Figure.savefig", _CONFINE, None),
        ("matplotlib.backend_bases", "FigureCanvasBase.print_figure", _CONFINE, None),
        ("matplotlib.image", "imread", _CONFINE, None),
        ("matplotlib.image", "imsave", _CONFINE, None),
        ("matplotlib", "rc_file", _CONFINE, None),
        ("matplotlib.animation", "Animation.save", "confine+check", _animation_writer),
        ("matplotlib.backends.backend_pdf", "PdfPages.__init__", _CONFINE, None),
        ("matplotlib.ticker", "StrMethodFormatter.__init__", "check", _library_formats),
        ("matplotlib.axes", "Axes.bar_label", "check", _library_formats),
        ("matplotlib.contour", "ContourLabeler.clabel", "check", _library_formats),
        ("matplotlib.figure", "FigureBase.colorbar", "check", _library_formats),
        ("matplotlib", "rc_params_from_file", _CONFINE, None),
    ],
    "seaborn": [
        ("seaborn.matrix", "heatmap", "check", _library_formats),
    ],
    "plotly": [
        *[("plotly.io", n, _CONFINE, None) for n in ("write_html", "write_image", "write_json", "read_json")],
        ("plotly.offline", "plot", _CONFINE, None),
    ],
    "scipy": [
        *[
            ("scipy.io", n, _CONFINE, None)
            for n in ("loadmat", "savemat", "mmread", "mmwrite", "readsav", "hb_read", "hb_write")
        ],
        *[("scipy.io.wavfile", n, _CONFINE, None) for n in ("read", "write")],
        ("scipy.io.arff", "loadarff", _CONFINE, None),
    ],
    "sklearn": [
        *[
            ("sklearn.datasets", n, _CONFINE, None)
            for n in (
                "load_files",
                "load_svmlight_file",
                "load_svmlight_files",
                "dump_svmlight_file",
                "get_data_home",
                "clear_data_home",
            )
        ],
    ],
}
_MODULES_FOR_ROOT = {
    "pandas": (
        "pandas",
        "pandas.io.excel._base",
        "pandas.io.pytables",
        "pandas.core.computation.eval",
        "pandas.io.formats.style",  # loaded lazily by DataFrame.style, after the last user import
    ),
    "numpy": ("numpy", "numpy.lib.format", "numpy.lib._datasource"),
    "matplotlib": (
        "matplotlib",
        "matplotlib.figure",
        "matplotlib.backend_bases",
        "matplotlib.image",
        "matplotlib.animation",
        "matplotlib.backends.backend_pdf",
        "matplotlib.pyplot",
    ),
    "plotly": ("plotly.io", "plotly.offline"),
    "scipy": (),
    "sklearn": (),
    "statsmodels": (),
    "joblib": (),
    "seaborn": (),
}
EAGER_ROOTS = ("numpy", "pandas", "matplotlib", "plotly")


def _resolve(module, dotted):
    owner, _, attr = dotted.rpartition(".")
    target = module
    for part in owner.split(".") if owner else ():
        target = getattr(target, part)
    return target, attr


def _make_wrapper(func, kind, extra):
    if kind == _REFUSE:
        return _refused(func, f"'{func.__name__}' is not allowed: {extra}")
    if kind == "check":
        return _confined(func, params=(), check=extra)
    if kind == "confine+check":
        return _confined(func, check=extra)
    return _confined(func)


def _harden_root(root: str) -> dict:
    replaced = {}
    for mod_name, dotted, kind, extra in _TARGETS.get(root, ()):
        module = sys.modules.get(mod_name)
        if module is None:
            continue
        try:
            owner, attr = _resolve(module, dotted)
            try:
                original = inspect.getattr_static(owner, attr)
            except AttributeError:
                original = getattr(owner, attr)  # lazily loaded module attribute (plotly.io)
        except (AttributeError, ImportError):
            continue
        func = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        if getattr(func, "__sandboxed__", False):
            continue
        wrapper = _make_wrapper(func, kind, extra)
        if isinstance(original, staticmethod):
            wrapper = staticmethod(wrapper)
        elif isinstance(original, classmethod):
            wrapper = classmethod(wrapper)
        setattr(owner, attr, wrapper)
        replaced[id(func)] = (func, wrapper)
    if root == "matplotlib" and "matplotlib" in sys.modules:
        rc = sys.modules["matplotlib"].RcParams
        if not getattr(rc.__setitem__, "__sandboxed__", False):
            rc.__setitem__ = _rc_setitem(rc.__setitem__)
            rc.__setitem__.__sandboxed__ = True
    if root == "pandas":
        _harden_pandas_eval()
    if root == "sklearn" and "sklearn.datasets" in sys.modules:
        ds = sys.modules["sklearn.datasets"]
        for name in [n for n in dir(ds) if n.startswith("fetch_")]:
            func = getattr(ds, name)
            if not getattr(func, "__sandboxed__", False):
                wrapper = _refused(func, f"'{name}' is not allowed: there is no network; its caches are pickles.")
                setattr(ds, name, wrapper)
                replaced[id(func)] = (func, wrapper)
    return replaced


def _replace_aliases(replaced: dict, module_names) -> None:
    """Point every module attribute that still holds an original at its wrapper."""
    if not replaced:
        return
    for name in module_names:
        module = sys.modules.get(name)
        d = getattr(module, "__dict__", None)
        if not d:
            continue
        for key, value in list(d.items()):
            hit = replaced.get(id(value))
            if hit is not None and hit[0] is value:
                d[key] = hit[1]


_all_replaced: dict = {}


def _root_loaded(root: str) -> bool:
    return any(m in sys.modules for m in _MODULES_FOR_ROOT.get(root, ())) or root in sys.modules


def harden_new_modules() -> None:
    """Wrap roots imported since the last call and re-point aliases in new modules."""
    if _state["workspace"] is None:
        return
    new = [n for n in list(sys.modules) if n not in _state["seen"]]
    if not new:
        return
    _state["seen"].update(new)
    for root in _TARGETS:
        if root in sys.modules:
            _all_replaced.update(_harden_root(root))
    # scipy.io / sklearn.datasets may load after their root: re-run on any new submodule
    _replace_aliases(_all_replaced, new)


def preload() -> None:
    """Import the modules harden_libraries wraps, without wrapping anything."""
    for root in EAGER_ROOTS:
        try:
            __import__(root)
            for m in _MODULES_FOR_ROOT[root]:
                __import__(m)
        except ImportError:
            continue


def harden_libraries(workspace: str) -> None:
    """Idempotent and process-wide; a later call with another workspace re-targets the wrappers."""
    _state["workspace"] = os.path.realpath(workspace)
    preload()
    for root in _TARGETS:
        if root in sys.modules:
            _all_replaced.update(_harden_root(root))
    _state["seen"].update(sys.modules)
    _replace_aliases(
        _all_replaced,
        [n for n in list(sys.modules) if n.split(".", 1)[0] in _TARGETS or n == "seaborn" or n == "statsmodels"],
    )


# ------------------------------------------------------------------------ pandas expressions
def _harden_pandas_eval() -> None:
    """pd.eval / DataFrame.eval / DataFrame.query (both engines parse with this visitor): names
    resolved from `@locals`, local_dict, global_dict, resolvers and the caller's frame pass the
    policy's value check, and `a.b` in an expression is the policy's guarded attribute access."""
    expr = sys.modules.get("pandas.core.computation.expr")
    scope = sys.modules.get("pandas.core.computation.scope")
    if expr is None or scope is None or getattr(expr.BaseExprVisitor.visit_Attribute, "__sandboxed__", False):
        return

    def visit_Attribute(self, node, **kwargs):
        attr = check_attr_name(node.attr)
        if not isinstance(node.ctx, ast.Load):
            raise ValueError(f"Invalid Attribute context {type(node.ctx).__name__}")
        visited = self.visit(node.value)
        resolved = visited.value if hasattr(visited, "value") else visited(self.env)
        try:
            value = guarded_getattr(resolved, attr)
        except AttributeError:
            if isinstance(node.value, ast.Name) and node.value.id == attr:
                return resolved  # pandas' own fallback, e.g. datetime.datetime
            raise
        return self.term_type(self.env.add_tmp(value), self.env)

    resolve = scope.Scope.resolve

    def checked_resolve(self, key, is_local):
        return check_value(resolve(self, key, is_local), key)

    visit_Attribute.__sandboxed__ = checked_resolve.__sandboxed__ = True
    expr.BaseExprVisitor.visit_Attribute = visit_Attribute
    scope.Scope.resolve = checked_resolve


# ------------------------------------------------------------------------ the audit hook
# The backstop for every route the wrappers above do not name. While a cell runs, each `open`
# event (builtins, io, os, C extensions) must stay inside the workspace to write, and inside
# the workspace or the interpreter and library trees to read; unpickling anything that names
# a global (`pickle.find_class`: the step every pickle exploit needs) is refused, whoever calls
# pickle. Outside cells the hook does nothing (the fork server, the kernel's own I/O, tests).
_cell = {"depth": 0, "hooked": False, "read_roots": (), "protected_fds": frozenset()}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_SYSTEM_READS = (
    *isolation.SYSTEM_READ_PATHS,
    "/etc/timezone",
    "/etc/mime.types",
    "/dev/urandom",
    "/sys/fs/cgroup",  # CPU quota probes (joblib, threadpoolctl)
    "/sys/devices/system/cpu",
    "/proc/meminfo",
    "/proc/cpuinfo",
)


def _read_roots() -> tuple:
    paths = set(sysconfig.get_paths().values()) | {sys.prefix, sys.base_prefix, sys.exec_prefix}
    paths.update(site.getsitepackages())
    paths.update(_SYSTEM_READS)
    for var in ("MPLCONFIGDIR",):
        if os.environ.get(var):
            paths.add(os.environ[var])
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        paths.update((mpl.get_data_path(), mpl.get_cachedir(), mpl.get_configdir()))
    return tuple(sorted({os.path.realpath(p) for p in paths if p}))


def _open_descriptors() -> frozenset:
    found = set()
    for fd in range(1024):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.add(fd)
    return frozenset(found)


def _check_open(path, mode, flags) -> None:
    if isinstance(path, (str, bytes)):
        name = os.fsdecode(path)
    elif type(path).__module__ == "pathlib":  # the libraries' own Path objects
        name = os.fspath(path)
    elif _integer_like(path):
        if operator.index(path) in _cell["protected_fds"]:
            _refuse_descriptor()  # the kernel's protocol socket and other descriptors it owns
        return
    else:
        refuse("open() takes the name of a file in the workspace.", "open() of a non-path")
    full = os.path.realpath(name)
    writing = bool(mode and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
    if _inside(full, _state["workspace"] or os.path.realpath(os.getcwd())) or full == os.devnull:
        return
    if not writing and any(_inside(full, root) for root in _cell["read_roots"]):
        return
    what = "writing" if writing else "reading"
    record(f"{what} {name[:80]!r}")
    raise PermissionError(13, f"{what.capitalize()} {name!r} is not allowed: only workspace files can be used", name)


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        if _cell["depth"]:
            _check_open(*args)
    elif event == "pickle.find_class" and _cell["depth"]:
        refuse(
            "Unpickling is not allowed in the sandbox: pickles can run code. Save data as CSV, parquet or .npy.",
            f"unpickling '{args[0]}.{args[1]}'",
        )


# Python 3.14's copy.deepcopy returns values of these types before calling id(), as 3.11's returns them
# after: the same copies. With an audit hook installed every id() is an audit event, and plotly and
# matplotlib deep-copy lists of thousands of numbers (plotly's figure build took 2.2x its plain time).
_ATOMIC_TYPES = frozenset(
    {
        type(None),
        type(Ellipsis),
        type(NotImplemented),
        int,
        float,
        bool,
        complex,
        bytes,
        str,
        types.CodeType,
        type,
        range,
        types.BuiltinFunctionType,
        types.FunctionType,
        property,
    }
)


def _deepcopy_skips_atomic() -> None:
    """copy.deepcopy takes the 3.14 fast path, and so does its recursion: the list, tuple, dict and
    reconstruct helpers hold `deepcopy` as a default argument, which is re-bound here."""
    if getattr(copy.deepcopy, "__sandboxed__", False):
        return
    original = copy.deepcopy

    @functools.wraps(original)  # it is copy.deepcopy to analysis code too (which may call it)
    def deepcopy(x, memo=None, _nil=[]):  # noqa: B006 (the signature copy.deepcopy has)
        if type(x) in _ATOMIC_TYPES:
            return x
        return original(x, memo, _nil)

    deepcopy.__sandboxed__ = True
    for helper in vars(copy).values():
        if isinstance(helper, types.FunctionType):
            if helper.__defaults__ and original in helper.__defaults__:
                helper.__defaults__ = tuple(deepcopy if d is original else d for d in helper.__defaults__)
            if helper.__kwdefaults__ and helper.__kwdefaults__.get("deepcopy") is original:
                helper.__kwdefaults__ = {**helper.__kwdefaults__, "deepcopy": deepcopy}
    copy.deepcopy = deepcopy


def enter_cell() -> None:
    """A cell starts running: the audit hook (installed once per process) applies until leave_cell."""
    if not _cell["hooked"]:
        _cell["read_roots"] = _read_roots()
        _cell["protected_fds"] = _open_descriptors()
        _deepcopy_skips_atomic()
        sys.addaudithook(_audit)
        _cell["hooked"] = True
    _cell["depth"] += 1


def leave_cell() -> None:
    _cell["depth"] -= 1


# ------------------------------------------------------------------------ safe stdlib proxies
def _proxy(name: str, attrs: dict) -> types.ModuleType:
    module = types.ModuleType(name, f"Sandbox view of the '{name}' module.")
    module.__dict__.update(attrs)
    TRUSTED_MODULES.add(module)  # its attributes were chosen by hand; proxies are never freed
    return module


def _attrgetter(*names):
    names = [exact_str(n) if isinstance(n, str) else n for n in names]
    for n in names:
        for part in n.split("."):
            check_attr_name(part)

    def get(obj):
        values = []
        for n in names:
            v = obj
            for part in n.split("."):
                v = safe_getattr(v, part)
            values.append(v)
        return values[0] if len(values) == 1 else tuple(values)

    return get


def _methodcaller(name, /, *args, **kwargs):
    name = check_attr_name(name)
    return lambda obj: safe_getattr(obj, name)(*args, **kwargs)


@functools.cache
def _string_proxy():
    keep = [
        "ascii_letters",
        "ascii_lowercase",
        "ascii_uppercase",
        "digits",
        "hexdigits",
        "octdigits",
        "punctuation",
        "printable",
        "whitespace",
        "capwords",
        "Template",
    ]
    return _proxy("string", {k: getattr(string, k) for k in keep})


@functools.cache
def _io_proxy():
    return _proxy(
        "io",
        {
            "StringIO": io.StringIO,
            "BytesIO": io.BytesIO,
            "open": safe_open,
            "TextIOWrapper": io.TextIOWrapper,
            "SEEK_SET": 0,
            "SEEK_CUR": 1,
            "SEEK_END": 2,
        },
    )


@functools.cache
def _operator_proxy():
    attrs = {k: v for k, v in vars(operator).items() if not k.startswith("_")}
    attrs.update(attrgetter=_attrgetter, methodcaller=_methodcaller)
    return _proxy("operator", attrs)


@functools.cache
def _yaml_proxy():
    import yaml

    return _proxy(
        "yaml",
        {
            "safe_load": yaml.safe_load,
            "safe_load_all": yaml.safe_load_all,
            "safe_dump": yaml.safe_dump,
            "safe_dump_all": yaml.safe_dump_all,
            "YAMLError": yaml.YAMLError,
        },
    )


_attrgetter.__module__ = _methodcaller.__module__ = "operator"
PROXIES = {"string": _string_proxy, "io": _io_proxy, "operator": _operator_proxy, "yaml": _yaml_proxy}

__all__ = [
    "harden_libraries",
    "harden_new_modules",
    "confine",
    "safe_open",
    "enter_cell",
    "leave_cell",
    "PROXIES",
    "PolicyError",
]
