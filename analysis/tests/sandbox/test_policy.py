"""The sandbox language policy: what analysis code may do, and every escape class it refuses.

The policy is applied in this process (fast, precise errors), so every test runs in a child
forked from pytest (see conftest.RUN_EACH_TEST_FORKED) and the patching dies with it.
"""

import importlib
import os
import textwrap

import pytest

from analysis.sandbox import libraries
from analysis.sandbox.policy import (
    FAST_ATTRS,
    NOTHING,
    PolicyError,
    harden_libraries,
    restricted_exec,
    restricted_run,
)

RUN_EACH_TEST_FORKED = True
# Imported once here, so each forked test starts with the libraries loaded (unpatched).
PRELOADED = [
    importlib.import_module(m)
    for m in ("numpy", "pandas", "matplotlib.pyplot", "plotly.graph_objects", "plotly.express", "scipy.stats")
    + ("sklearn.linear_model", "statsmodels.formula.api", "patsy", "seaborn")
]
libraries.preload()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    harden_libraries(str(tmp_path))
    return tmp_path


def run(source: str, **namespace):
    restricted_exec(textwrap.dedent(source), namespace)
    return namespace


# ---------------------------------------------------------------- ordinary analysis code works
def test_augmented_assignment_on_a_dataframe_column_works(workspace):
    ns = run("""
        import pandas as pd
        df = pd.DataFrame({"x": [1, 2, 3]})
        df["x"] += 1
        df["y"] = df["x"] * 2
        total = int(df["y"].sum())
    """)

    assert ns["total"] == 18


def test_item_assignment_on_a_numpy_array_works(workspace):
    ns = run("""
        import numpy as np
        arr = np.zeros(3)
        for i in range(3):
            arr[i] = i * 1.5
        arr[0] += 10
    """)

    assert ns["arr"].tolist() == [10.0, 1.5, 3.0]


def test_user_classes_with_methods_attributes_and_super_work(workspace):
    ns = run("""
        class Base:
            def __init__(self, n):
                self.n = n
        class Counter(Base):
            step = 1
            def __init__(self, n):
                super().__init__(n)
                self.seen = []
            def __repr__(self):
                return f"Counter({self.n})"
            def bump(self):
                self.n += self.step
                self.seen.append(self.n)
                return self
        Counter.step = 2
        c = Counter(1).bump().bump()
        text = repr(c)
        name = type(c).__name__
    """)

    assert (ns["text"], ns["name"], ns["c"].seen) == ("Counter(5)", "Counter", [3, 5])


def test_lambdas_comprehensions_fstrings_try_and_with_work(workspace):
    ns = run("""
        square = lambda v: v * v
        squares = [square(v) for v in range(4) if v]
        table = {k: v for k, v in zip("abc", squares)}
        label = f"{sum(squares):>5.1f}|{table!r}"
        try:
            1 / 0
        except ZeroDivisionError as exc:
            caught = type(exc).__name__
        with open("notes.txt", "w") as fh:
            fh.write("ok")
        with open("notes.txt") as fh:
            back = fh.read()
    """)

    assert ns["squares"] == [1, 4, 9]
    assert ns["label"] == " 14.0|{'a': 1, 'b': 4, 'c': 9}"
    assert (ns["caught"], ns["back"]) == ("ZeroDivisionError", "ok")


def test_underscore_local_names_are_allowed(workspace):
    ns = run("""
        _ = 1
        _tmp = [_ for _ in range(3)]
        def _helper(_x):
            return _x + 1
        result = _helper(len(_tmp))
    """)

    assert ns["result"] == 4


@pytest.mark.parametrize(
    "source, expected",
    [
        ("'{:.2f}'.format(3.14159)", "3.14"),
        ("'{name}-{0}'.format(1, name='n')", "n-1"),
        ("'{a[k]}'.format_map({'a': {'k': 'v'}})", "v"),
        ("str.format('{}!', 'hi')", "hi!"),
    ],
)
def test_plain_format_strings_work(workspace, source, expected):
    assert restricted_run(source, {}) == expected


def test_pandas_numpy_and_sklearn_snippets_work(workspace):
    ns = run("""
        import numpy as np
        import pandas as pd
        from sklearn.linear_model import LinearRegression
        from scipy import stats
        df = pd.DataFrame({"x": np.arange(10.0), "k": list("ab") * 5})
        df["y"] = 3 * df["x"] + 1
        model = LinearRegression().fit(df[["x"]], df["y"])
        slope = round(float(model.coef_[0]), 6)
        means = df.groupby("k")["y"].agg(["mean", "max"]).round(1).to_dict()
        q = df.query("x > 7 and k == 'b'").shape[0]
        r = stats.pearsonr(df["x"], df["y"]).statistic
        summary = df.describe().loc["mean", "x"]
    """)

    assert ns["slope"] == 3.0
    assert ns["means"]["mean"] == {"a": 13.0, "b": 16.0}
    assert (ns["q"], round(ns["r"], 6), ns["summary"]) == (1, 1.0, 4.5)


def test_guarded_getattr_family_works_on_public_names(workspace):
    ns = run("""
        class Box:
            pass
        b = Box()
        setattr(b, "size", 3)
        has = hasattr(b, "size"), hasattr(b, "missing")
        size = getattr(b, "size")
        fallback = getattr(b, "missing", 7)
        delattr(b, "size")
        names = dir([])
    """)

    assert (ns["has"], ns["size"], ns["fallback"]) == ((True, False), 3, 7)
    assert "append" in ns["names"] and not any(n.startswith("_") for n in ns["names"])


def test_safe_stdlib_proxies_cover_common_uses(workspace):
    ns = run("""
        import io, operator, string, json, collections, itertools, math
        import pandas as pd
        df = pd.read_csv(io.StringIO("a,b\\n1,2\\n3,4"))
        second = sorted([(1, "b"), (0, "a")], key=operator.itemgetter(0))
        upper = operator.attrgetter("real")(3 + 4j)
        letters = string.ascii_lowercase[:3]
        counts = collections.Counter("abca").most_common(1)
        pairs = list(itertools.combinations([1, 2, 3], 2))
        dumped = json.dumps({"x": math.floor(2.5)})
    """)

    assert ns["df"]["b"].sum() == 6
    assert (ns["second"][0], ns["upper"], ns["letters"]) == ((0, "a"), 3.0, "abc")
    assert (ns["counts"], len(ns["pairs"]), ns["dumped"]) == ([("a", 2)], 3, '{"x": 2}')


def test_restricted_run_returns_the_trailing_expression(workspace):
    ns = {}

    value = restricted_run("x = 20\nx + 1", ns)
    nothing = restricted_run("y = 1", ns)

    assert (value, nothing, ns["x"]) == (21, NOTHING, 20)


def test_runtime_errors_point_at_the_cell_filename(workspace):
    with pytest.raises(ZeroDivisionError) as info:
        restricted_exec("a = 1\nb = a / 0", {})

    frames = [f for f in info.traceback if str(f.path) == "<cell>"]
    assert frames and frames[-1].lineno + 1 == 2


def test_refusals_are_policy_errors_with_a_location(workspace):
    with pytest.raises(PolicyError) as info:
        restricted_exec("x = 1\ny = x.__class__", {})

    assert info.value.lineno == 2 and info.value.filename == "<cell>"
    assert "'__class__' is not allowed" in str(info.value)


# ---------------------------------------------------------------- escapes are refused
@pytest.mark.parametrize(
    "source, message",
    [
        ("().__class__", "names starting with '_' are private"),
        ("(lambda: 1).__globals__", "names starting with '_' are private"),
        ("obj._private", "names starting with '_' are private"),
        ("def g():\n    yield 1\ng().gi_frame", "'gi_frame' is not allowed"),
        ("int.mro()", "'mro' is not allowed"),
        ("x.tb_frame", "'tb_frame' is not allowed"),
        ("x.f_back", "'f_back' is not allowed"),
        ("(lambda: 1).co_code", "'co_code' is not allowed"),
        ("x.cr_frame", "'cr_frame' is not allowed"),
        ("x.ag_frame", "'ag_frame' is not allowed"),
        ("__builtins__", "'__builtins__' is not allowed"),
        ("__import__('os')", "'__import__' is not allowed"),
        ("class A:\n    __match_args__ = ('x',)", "'__match_args__' is not allowed"),
        ("match x:\n    case object(__class__=c):\n        pass", "'__class__' is not allowed"),
        ("from . import x", "Relative imports are not allowed"),
        ("from numpy import _core", "names starting with '_' are private"),
        ("import pandas._libs", "private or unsafe submodule"),
        ("import numpy.ctypeslib", "private or unsafe submodule"),
        ("x = 1\nx.__dict__ = {}", "names starting with '_' are private"),
    ],
)
def test_private_and_interpreter_internals_are_refused_at_compile_time(workspace, source, message):
    with pytest.raises(PolicyError, match=message):
        restricted_exec(source, {"x": 1, "obj": object()})


@pytest.mark.parametrize(
    "module",
    [
        "os",
        "sys",
        "subprocess",
        "ctypes",
        "importlib",
        "builtins",
        "shutil",
        "socket",
        "pickle",
        "marshal",
        "multiprocessing",
        "threading",
        "signal",
        "gc",
        "inspect",
        "code",
        "pty",
        "urllib",
        "http",
        "requests",
        "pathlib",
        "tempfile",
    ],
)
def test_unsafe_modules_cannot_be_imported(workspace, module):
    with pytest.raises(PolicyError, match=f"Importing '{module}' is not allowed"):
        restricted_exec(f"import {module}", {})


@pytest.mark.parametrize(
    "source",
    [
        "from pandas.io.common import os",
        "from matplotlib.cbook import sys",
        "from numpy.ma.core import builtins",
        "import pandas as pd\npd.io.common.os",
        "import numpy as np\nnp.ma.core.builtins",
        "import matplotlib.cbook\nmatplotlib.cbook.sys",
        "import pandas as pd\ngetattr(pd.io.common, 'os')",
        "import numpy as np\nnp.ctypeslib",
    ],
)
def test_module_attributes_leading_to_unsafe_modules_are_refused(workspace, source):
    with pytest.raises(PolicyError, match="is not allowed"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source",
    [
        "'{0.__class__}'.format(1)",
        "'{x.__init__.__globals__}'.format_map({'x': 1})",
        "str.format('{0.__class__}', 1)",
        "'{0:{1.__class__}}'.format(1, 2)",
        "f = 'a{0.__doc__._x}'.format\nf(1)",
    ],
)
def test_format_string_escapes_are_refused(workspace, source):
    with pytest.raises(PolicyError, match="Format field"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source, message",
    [
        ("exec('1')", "'exec' is not allowed"),
        ("eval('1')", "'eval' is not allowed"),
        ("compile('1', 'f', 'exec')", "'compile' is not allowed"),
        ("globals()", "'globals' is not allowed"),
        ("vars()", "'vars' is not allowed"),
        ("breakpoint()", "'breakpoint' is not allowed"),
        ("type('X', (), {})", "three arguments"),
        ("getattr(1, '__class__')", "names starting with '_' are private"),
        ("setattr(obj, '_x', 1)", "names starting with '_' are private"),
        ("import operator\noperator.attrgetter('__class__')(1)", "names starting with '_' are private"),
        ("import operator\noperator.methodcaller('__reduce__')(1)", "names starting with '_' are private"),
        ("import string\nstring.Formatter", "AttributeError"),
        ("fh = open('f.txt', 'w')\ntype(fh.buffer.raw)('/etc/passwd')", "module '_io'"),
    ],
)
def test_dangerous_builtins_and_reflection_are_refused(workspace, source, message):
    with pytest.raises((PolicyError, AttributeError), match=message.replace("AttributeError", "Formatter")):
        restricted_exec(source, {"obj": type("Obj", (), {})()})


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd\npd.read_csv = print",
        "import numpy as np\nnp.anything = 1",
        "import pandas as pd\npd.DataFrame.to_csv = print",
        "import pandas as pd\ndel pd.DataFrame.to_csv",
    ],
)
def test_library_modules_and_classes_cannot_be_patched(workspace, source):
    with pytest.raises(PolicyError, match="not allowed"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd\npd.DataFrame({'a': [1]}).style.env",
        "import pandas as pd\npd.DataFrame({'a': [1]}).style.template_html",
        "import pandas as pd\npd.io.formats.style.Styler.from_custom_template('.')",
        "import pandas as pd\npd.DataFrame({'a': [1]}).style.loader",
    ],
)
def test_template_engines_behind_library_objects_are_refused(workspace, source):
    with pytest.raises(PolicyError, match="is not allowed"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source",
    [
        "df.query('a.__class__ == 1')",
        "df.eval('@_secret')",
        "pd.eval('df.a._mgr')",
        "df.agg('__class__')",
        "df['a'].apply('_constructor')",
    ],
)
def test_pandas_string_evaluation_cannot_reach_private_names(workspace, source):
    ns = run("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})\n_secret = 1")

    with pytest.raises(PolicyError, match="'_'"):
        restricted_exec(source, ns)


def test_matplotlib_settings_that_start_programs_are_refused(workspace):
    with pytest.raises(PolicyError, match="starts external programs"):
        restricted_exec("import matplotlib\nmatplotlib.rcParams['animation.ffmpeg_path'] = '/bin/sh'", {})


# ---------------------------------------------------------------- files stay in the workspace
def test_files_inside_the_workspace_can_be_read_and_written(workspace):
    ns = run("""
        import pandas as pd
        import numpy as np
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        df = pd.DataFrame({"a": [1, 2]})
        df.to_csv("out.csv", index=False)
        back = pd.read_csv("out.csv")
        np.save("arr.npy", np.arange(3))
        arr = np.load("arr.npy")
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        fig.savefig("plot.png")
        plt.savefig("sub/../plot2.png")
        plt.close("all")
    """)

    assert ns["back"]["a"].tolist() == [1, 2] and ns["arr"].tolist() == [0, 1, 2]
    assert (workspace / "plot.png").exists() and (workspace / "plot2.png").exists()


@pytest.mark.parametrize(
    "source",
    [
        "open('/etc/passwd')",
        "open('../outside.txt', 'w')",
        "open('~/.bashrc')",
        "open(0)",
        "import pandas as pd\npd.read_csv('/etc/passwd')",
        "import pandas as pd\npd.DataFrame({'a': [1]}).to_csv('/tmp/escape.csv')",
        "import numpy as np\nnp.savetxt('/tmp/escape.txt', np.arange(3))",
        "import numpy as np\nnp.loadtxt('/etc/hostname')",
        "import matplotlib.pyplot as plt\nplt.savefig('/tmp/escape.png')",
        "import plotly.graph_objects as go\ngo.Figure().write_html('/tmp/escape.html')",
        "open('link/secret')",
    ],
)
def test_paths_outside_the_workspace_are_refused(workspace, source):
    (workspace / "link").symlink_to("/etc")

    with pytest.raises(PolicyError, match="outside the workspace|file descriptors"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd\npd.read_csv('https://example.com/a.csv')",
        "import pandas as pd\npd.read_json('s3://bucket/key.json')",
        "import pandas as pd\npd.read_csv('file:///etc/passwd')",
        "import numpy as np\nnp.loadtxt('ftp://example.com/x.txt')",
        "open('http://example.com')",
    ],
)
def test_urls_are_refused(workspace, source):
    with pytest.raises(PolicyError, match="URLs are not allowed"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source, message",
    [
        ("import pandas as pd\npd.read_pickle('x.pkl')", "pickles can run code"),
        ("import numpy as np\nnp.load('x.npy', allow_pickle=True)", "Loading pickles is not allowed"),
        ("import numpy as np\nnp.lib.format.read_array(open('x.npy', 'rb'), allow_pickle=True)", "Loading pickles"),
        ("import pandas as pd\npd.read_clipboard()", "no clipboard"),
        ("import numpy as np\nnp.arange(3).dump('x.pkl')", "ndarray.dump is not allowed"),
        ("import numpy as np\nnp.arange(3).tofile('x.bin')", "'tofile' is not allowed"),
    ],
)
def test_pickle_loading_and_side_channels_are_refused(workspace, source, message):
    (workspace / "x.npy").write_bytes(b"")

    with pytest.raises(PolicyError, match=message):
        restricted_exec(source, {})


def test_fast_attribute_names_are_not_attributes_of_unsafe_modules():
    import builtins
    import importlib
    import io
    import pickle
    import shutil
    import socket
    import subprocess
    import sys

    unsafe = {n for m in (os, sys, subprocess, shutil, builtins, io, importlib, pickle, socket) for n in dir(m)}

    assert FAST_ATTRS.isdisjoint(unsafe)


@pytest.mark.parametrize(
    "source",
    [
        "import typing\ndef f(x: '().__class__'): pass\ntyping.get_type_hints(f)",
        "import typing\nT = typing.List['().__class__']\ndef f(x: T): pass\ntyping.get_type_hints(f)",
        "import functools\n@functools.singledispatch\ndef f(x): pass\n@f.register\ndef g(x: '().__class__'): pass",
        "import statsmodels.formula.api as smf\nsmf.ols('y ~ x.__class__', data=df).fit()",
        "import patsy\npatsy.dmatrix('x.__class__', df)",
    ],
)
def test_libraries_that_evaluate_strings_apply_the_policy(workspace, source):
    ns = run("import pandas as pd\ndf = pd.DataFrame({'x': [1.0, 2.0, 3.0], 'y': [2.0, 4.1, 6.2]})")

    with pytest.raises(Exception, match="'__class__' is not allowed|got '[(][)].__class__'"):
        restricted_exec(source, ns)


def test_statsmodels_formulas_with_numpy_transforms_still_work(workspace):
    ns = run("""
        import numpy as np
        import pandas as pd
        import statsmodels.formula.api as smf
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.1, 6.2, 7.9]})
        fit = smf.ols("y ~ np.log(x) + I(x ** 2)", data=df).fit()
        n = int(fit.nobs)
    """)

    assert ns["n"] == 4


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nnp.load('x.npy', None, True)",
        "import numpy as np\nnp.memmap('/etc/hostname', mode='r')",
        "import matplotlib.pyplot as plt\nfig = plt.figure()\nfig.canvas.print_figure('/tmp/escape.png')",
    ],
)
def test_less_common_file_entry_points_are_confined_too(workspace, source):
    (workspace / "x.npy").write_bytes(b"")

    with pytest.raises(PolicyError, match="outside the workspace|Loading pickles"):
        restricted_exec(source, {})


def test_pandas_query_still_sees_local_variables(workspace):
    ns = run("""
        import pandas as pd
        df = pd.DataFrame({"c": ["a", "b", "c"], "v": [1, 2, 3]})
        keep = ["a", "c"]
        def pick(frame, wanted):
            return frame.query("c in @wanted")
        top = df.query("c == @keep")["v"].sum()
        inner = pick(df, ["b"])["v"].sum()
        doubled = df.eval("v * 2").sum()
    """)

    assert (ns["top"], ns["inner"], ns["doubled"]) == (4, 2, 12)


def test_c_level_imports_during_a_cell_are_not_refused(workspace):
    ns = run("""
        import numpy as np
        import scipy.spatial
        tree = scipy.spatial.cKDTree(np.array([[0.0, 0.0], [1.0, 1.0]]))
        _, idx = tree.query(np.array([[0.9, 0.9]]))
    """)

    assert ns["idx"].tolist() == [1]


# ---------------------------------------------------------------- built on RestrictedPython
def test_the_policy_is_a_restrictedpython_transformer_whose_node_allowlist_still_applies(workspace):
    from RestrictedPython.transformer import RestrictingNodeTransformer

    from analysis.sandbox.policy import SandboxPolicy

    with pytest.raises(PolicyError, match="TryStar statements are not allowed"):
        restricted_exec("try:\n    pass\nexcept* ValueError:\n    pass", {})

    assert issubclass(SandboxPolicy, RestrictingNodeTransformer)


def test_cells_keep_python_semantics_for_annotations_matches_and_dataclasses(workspace):
    ns = run("""
        import dataclasses
        import typing
        count: int = 3
        def f(x: int) -> str:
            return str(x)
        @dataclasses.dataclass
        class Point:
            x: float
            y: float = 0.0
        match Point(1.0, 2.0):
            case Point(x=1.0, y=y):
                matched = y
        hints = typing.get_type_hints(f)
    """)

    assert ns["hints"] == {"x": int, "return": str}
    assert (ns["count"], ns["matched"], ns["Point"](3.0).y) == (3, 2.0, 0.0)


@pytest.mark.parametrize(
    "source",
    [
        "class A:\n    def __sb_write__(o):\n        return o",
        "class A:\n    __sb_getattr__ = 1",
        "__sb_special__ = 1",
        "def f(__sb_write__):\n    pass",
        "import math as __sb_write__",
        "for __sb_new_helper__ in []:\n    pass",
    ],
)
def test_the_names_the_compiler_emits_cannot_be_bound_anywhere(workspace, source):
    with pytest.raises(PolicyError, match="reserved"):
        restricted_exec(source, {})


def test_a_metaclass_cannot_seed_a_class_body(workspace):
    with pytest.raises(PolicyError, match="'__prepare__' is not allowed"):
        restricted_exec("class M(type):\n    def __prepare__(n, b):\n        return {}", {})


def test_type_of_a_class_is_the_safe_type_and_constructor_types_are_views(workspace):
    ns = run("""
        T = type(int)
        F = type(lambda: 0)
        same = type(1) is int and T(2.5) is float
        name = F.__name__
        try:
            F(None, {})
        except PolicyError as exc:
            refused = str(exc)
    """)

    assert ns["same"] and ns["name"] == "function"
    assert "Creating 'function' objects is not allowed" in ns["refused"]


@pytest.mark.parametrize(
    "source, expected",
    [("'{0.real}+{0.imag}'.format(3+4j)", "3.0+4.0"), ("'{p.x}'.format_map({'p': P})", "1"), ("f'{P.x!r:>3}'", "  1")],
)
def test_format_fields_may_traverse_public_attributes(workspace, source, expected):
    assert restricted_run(source, {"P": type("P", (), {"x": 1})}) == expected


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd\n'{0.io.common.os}'.format(pd)",
        "import pandas as pd\n'{m.io.common.os}'.format_map({'m': pd})",
        "import pandas as pd\npd.DataFrame({'a': [1]}).style.format('{0.real}')",
        "import matplotlib.ticker as t\nt.StrMethodFormatter('{x.real}')",
    ],
)
def test_format_strings_cannot_reach_what_the_policy_refuses(workspace, source):
    with pytest.raises(PolicyError, match="not allowed"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nopen(np.int64(1), 'w')",
        "open(True, 'w')",
        "class I:\n    def __index__(self):\n        return 1\nopen(I(), 'w')",
        "import enum\nclass E(enum.IntEnum):\n    A = 1\nopen(E.A, 'w')",
        "import numpy as np\nimport pandas as pd\npd.read_csv(np.int64(0))",
    ],
)
def test_integer_like_descriptors_are_refused(workspace, source):
    with pytest.raises(PolicyError, match="file descriptors"):
        restricted_exec(source, {})


@pytest.mark.parametrize(
    "source",
    [
        "import pandas as pd\npd.io.parsers.TextFileReader('/etc/hostname').read()",
        "import pandas as pd\npd.io.common.get_handle('/etc/hostname', 'r')",
        "import matplotlib.pyplot as plt\nplt.style.use('/etc/hostname')",
        "import matplotlib.cbook as cb\ncb.to_filehandle('/etc/hostname')",
    ],
)
def test_any_library_open_outside_the_workspace_is_refused(workspace, source):
    with pytest.raises((PolicyError, PermissionError), match="outside the workspace|only workspace files"):
        restricted_exec(source, {})


def test_while_a_cell_runs_no_caller_can_unpickle_a_global(workspace):
    import pickle

    payload = pickle.dumps(PolicyError("x"))
    libraries.enter_cell()
    try:
        with pytest.raises(PolicyError, match="Unpickling is not allowed"):
            pickle.loads(payload)  # as a library would, outside every named wrapper
        plain = pickle.loads(pickle.dumps({"a": [1, 2]}))
    finally:
        libraries.leave_cell()

    assert plain == {"a": [1, 2]}
    assert pickle.loads(payload).args == ("x",)  # outside cells the kernel's own code is untouched


def test_pandas_expressions_resolve_names_through_the_value_check(workspace):
    ns = run("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3]})\nlimit = 1")

    kept = restricted_run("df.query('a > @limit').eval('b = a * 2')['b'].tolist()", ns)
    with pytest.raises(PolicyError, match="module 'os'"):
        restricted_exec("pd.eval('@pd.io.common.os', engine='python')", ns)

    assert kept == [4, 6]


def test_refusals_are_recorded_even_when_the_cell_catches_them(workspace):
    from analysis.sandbox.policy import take_refusals

    restricted_run("import pandas as pd\ntry:\n    pd.io.common.os\nexcept Exception:\n    pass", {})

    assert take_refusals() == ["module 'os'"]
    assert take_refusals() == []


def test_deep_copies_inside_cells_are_the_same_copies_without_an_audit_event_per_number(workspace):
    import copy
    import sys

    ids = []
    libraries.enter_cell()  # installs the audit hook, which makes every id() an audit event
    sys.addaudithook(lambda event, args: event == "builtins.id" and ids.append(1))
    try:
        shared = [1.5]
        original = {"x": list(range(5_000)), "pair": (shared, shared), "text": "t"}
        copied = copy.deepcopy(original)
    finally:
        libraries.leave_cell()

    assert copied == original and copied["x"] is not original["x"]
    assert copied["pair"][0] is copied["pair"][1] and copied["pair"][0] is not shared  # the memo still works
    assert len(ids) < 50  # one per container, not one per number (5,000 before)
    assert run("import copy\nb = copy.deepcopy(a)\nb[1].append(3)", a=[1, [2]])["b"] == [1, [2, 3]]  # cells use it
