"""Red team, language and library surface, in real kernels with every OS layer on (as the product
runs). Each payload, if its escape step worked, would use what it reached to create PWNED in the
workspace (which the OS layers allow), print MARK, or write into the kernel's protocol socket; the
tests assert none of that happened and the kernel still serves. Issue 8's cases, closed by class.
"""

from __future__ import annotations

import json
import os

import pytest

from analysis.sandbox import Limits, Sandbox
from analysis.tests.sandbox.redteam import MARK, PWN, TOKEN, assert_still_serves, evil_pickles_written, leaked

# Holding the real `os`, `sys` or builtins is the escape: a payload prints MARK once it has one.
WITH_OS = f"print({MARK!r})"
# An expression that acts inside pandas' evaluator: creates PWNED through the real os.open.
OPEN_PWN = ".io.common.os.open('PWNED', 65)"

EXPRESSION_EVALUATION = {
    "pd_eval_at_local_python_engine": f'import pandas as pd\npd.eval("@pd{OPEN_PWN}", engine="python")\n{WITH_OS}',
    "pd_eval_at_local_default_engine": f'import pandas as pd\npd.eval("@pd{OPEN_PWN}")\n{WITH_OS}',
    "pd_eval_numexpr_engine": f'import pandas as pd\npd.eval("@pd{OPEN_PWN}", engine="numexpr")\n{WITH_OS}',
    "pd_eval_hands_out_os": f"import pandas as pd\no = pd.eval('@pd.io.common.os', engine='python')\n{WITH_OS}",
    "pd_eval_real_builtins": (
        "import pandas as pd\nb = pd.eval(\"@pd.io.common.os.sys.modules['builtins']\", engine='python')\n"
        f"o = b.__import__('os')\n{WITH_OS}"
    ),
    "dataframe_eval_assignment": (
        "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf2 = df.eval('b = @pd.io.common.os.getpid()')\n"
        f"print({MARK!r})"
    ),
    "dataframe_query_at_local": (
        "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\n"
        "df.query('@pd.io.common.os.open(\"PWNED\", 65) > 0')\n"
        f"print({MARK!r})"
    ),
    "pd_eval_local_dict": f'import pandas as pd\npd.eval("m{OPEN_PWN}", local_dict={{"m": pd}})\n{WITH_OS}',
    "pd_eval_global_dict": f'import pandas as pd\npd.eval("m{OPEN_PWN}", global_dict={{"m": pd}})\n{WITH_OS}',
    "pd_eval_resolvers": f'import pandas as pd\npd.eval("m{OPEN_PWN}", resolvers=({{"m": pd}},))\n{WITH_OS}',
    "pd_eval_level_into_kernel_frames": (
        "import pandas as pd\nfor k in range(1, 12):\n    try:\n        pd.eval(\"os.open('PWNED', 65)\", level=k)\n"
        f"        print({MARK!r})\n    except Exception:\n        pass\n0/0"
    ),
    "scope_level_into_kernel_globals": (
        "import pandas as pd\nScope = pd.core.computation.scope.Scope\nfound = None\n"
        "for k in range(1, 12):\n    try:\n        found = Scope(level=k).scope\n    except Exception:\n        continue\n"
        "    if 'os' in found:\n        break\n"
        f"o = found['os']\n{WITH_OS}"
    ),
    "scope_from_callback_under_sandbox_wrappers": (
        "import io\nimport pandas as pd\nhits = []\ndef probe(x):\n    for k in range(1, 20):\n        try:\n"
        "            s = pd.core.computation.scope.Scope(level=k).scope\n        except Exception:\n            continue\n"
        "        if 'os' in s or 'builtins' in s:\n            hits.append(k)\n    return x\n"
        "pd.DataFrame({'a': [1]})['a'].apply(probe)\npd.read_csv(io.StringIO('a\\n1'), converters={'a': probe})\n"
        f"if hits:\n    print({MARK!r})\n0/0"
    ),
    "patsy_eval_environment_namespace": (
        "import patsy\nfound = None\nfor k in range(0, 20):\n    try:\n"
        "        ns = patsy.EvalEnvironment.capture(k).namespace\n    except Exception:\n        continue\n"
        "    if 'os' in ns:\n        found = ns['os']\n"
        f"if found is not None:\n    print({MARK!r})\n0/0"
    ),
    "scope_object_from_an_expression": (
        f"import pandas as pd\nx = 1\ne = pd.core.computation.expr.Expr('x + 1', level=0)\nenv = e.env\nprint({MARK!r})"
    ),
    "ensure_scope_level": (
        f"import pandas as pd\ns = pd.core.computation.scope.ensure_scope(6)\no = s.resolve('os', False)\n{WITH_OS}"
    ),
    "patsy_eval_env_into_kernel_frames": (
        "import patsy\nimport pandas as pd\nfor k in range(1, 12):\n    try:\n"
        "        patsy.dmatrix(\"os.open('PWNED', 65)\", pd.DataFrame({'x': [1.0]}), eval_env=k)\n"
        f"    except Exception:\n        pass\nprint({MARK!r} if 0 else 'done')\n0/0"
    ),
    "statsmodels_formula_private": (
        "import pandas as pd\nimport statsmodels.formula.api as smf\ndf = pd.DataFrame({'x': [1.0, 2.0], 'y': [1.0, 2.0]})\n"
        f"smf.ols('y ~ x.__class__', data=df).fit()\nprint({MARK!r})"
    ),
}

NAME_RESOLUTION = {
    "get_type_hints_class_in_boot_globals": (
        "import typing\nclass A:\n    x: 'sys'\no = typing.get_type_hints(A)['x']\n" + WITH_OS
    ),
    "get_type_hints_function_string": (
        "import typing\ndef f(x: 'os'):\n    pass\no = typing.get_type_hints(f)['x']\n" + WITH_OS
    ),
    "singledispatch_annotation": (
        "import functools\n@functools.singledispatch\ndef f(x):\n    pass\n"
        f"@f.register\ndef g(x: '().__class__'):\n    pass\nprint({MARK!r})"
    ),
}

REFLECTION = {
    "type_of_type_is_not_real_type": (
        "T = type(int)\nfh = open('f.txt', 'w')\nR = T(fh.buffer.raw)\nR('PWNED', 'w').close()\n" + f"print({MARK!r})"
    ),
    "type_of_type_builds_classes": f"T = type(int)\nC = T('C', (), {{}})\nprint({MARK!r})",
    "type_of_function_builds_functions": (f"F = type(lambda: 0)\ng = F((lambda: 0).__code__, {{}})\nprint({MARK!r})"),
    "type_of_function_called": f"F = type(lambda: 0)\ng = F(None, {{}})\nprint({MARK!r})",
    "type_of_module_builds_modules": f"import math\nM = type(math)\nm = M('os')\nprint({MARK!r})",
    "type_of_file_buffer_raw": f"fh = open('f.txt', 'w')\nR = type(fh.buffer.raw)\nprint({MARK!r})",
    "str_subclass_lies_to_checks": (
        "class S(str):\n    def startswith(self, *a):\n        return False\n    def __eq__(self, o):\n        return False\n"
        "    def __hash__(self):\n        return 1\n"
        f"c = getattr(1, S('__class__'))\nsubs = c.__base__.__subclasses__()\nprint({MARK!r})"
    ),
    "str_subclass_in_attrgetter": (
        "import operator\nclass S(str):\n    def split(self, *a):\n        return ['real']\n"
        f"c = operator.attrgetter(S('__class__'))(1)\nif c != 1:\n    print({MARK!r})\n0/0"
    ),
    "metaclass_prepare_seeds_guard": (
        "import pandas as pd\nclass M(type):\n    def __prepare__(n, b):\n        return {'__sb_write__': lambda o: o}\n"
        f"class A(metaclass=M):\n    pd.read_csv = print\nprint({MARK!r})"
    ),
}

GUARD_NAMES = {
    "class_body_defines_write_guard": (
        "import pandas as pd\nclass A:\n    def __sb_write__(o):\n        return o\n    pd.read_csv = print\n"
        f"print({MARK!r})"
    ),
    "class_body_defines_getattr_guard": (
        "import pandas as pd\nclass A:\n    def __sb_getattr__(o, n):\n        return 0\n    x = pd.io.common.os\n"
        f"print({MARK!r})"
    ),
    "class_body_assigns_guard": (
        "import pandas as pd\nclass A:\n    __sb_write__ = lambda o: o\n    pd.read_csv = print\n" + f"print({MARK!r})"
    ),
    "module_assigns_guard": f"__sb_getattr__ = lambda o, n: 0\nprint({MARK!r})",
    "for_target_binds_guard": f"for __sb_write__ in [lambda o: o]:\n    pass\nprint({MARK!r})",
    "import_as_guard": f"import math as __sb_special__\nprint({MARK!r})",
    "walrus_binds_guard": f"(__sb_write__ := (lambda o: o))\nprint({MARK!r})",
    "except_as_guard": f"try:\n    1/0\nexcept Exception as __sb_write__:\n    pass\nprint({MARK!r})",
    "function_argument_named_guard": f"def f(__sb_getattr__):\n    return 1\nprint({MARK!r})",
}

FORMAT_STRINGS = {
    "str_format_module_chain": f"import pandas as pd\ns = '{{0.io.common.os.environ}}'.format(pd)\nprint({MARK!r})",
    "format_map_module_chain": f"import pandas as pd\ns = '{{p.io.common.os}}'.format_map({{'p': pd}})\nprint({MARK!r})",
    "unbound_str_format_chain": f"import pandas as pd\ns = str.format('{{0.io.common.os}}', pd)\nprint({MARK!r})",
    "nested_spec_chain": f"import pandas as pd\ns = '{{0:{{1.io.common.os}}}}'.format(1, pd)\nprint({MARK!r})",
    "styler_format_chain": (
        "import pandas as pd\nh = pd.DataFrame({'a': [pd]}).style.format('{0.io.common.os.environ}').to_html()\n"
        f"print({MARK!r})"
    ),
    "styler_format_dunder": (
        "import pandas as pd\nh = pd.DataFrame({'a': [1]}).style.format('{0.__class__.__mro__}').to_html()\n"
        f"print({MARK!r})"
    ),
    "styler_format_index_chain": (
        "import pandas as pd\nh = pd.DataFrame({'a': [1]}).style.format_index('{0.__class__}').to_html()\n"
        f"print({MARK!r})"
    ),
    "matplotlib_str_method_formatter": (
        "import matplotlib.ticker as mt\nf = mt.StrMethodFormatter('{x.__class__.__mro__}')\n"
        f"s = f(1.0)\nprint({MARK!r})"
    ),
    "axis_formatter_string": (
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.xaxis.set_major_formatter('{x.__class__}')\n"
        f"fig.canvas.draw()\nprint({MARK!r})"
    ),
    "seaborn_heatmap_fmt_spec": (
        "import seaborn as sns\nimport numpy as np\nsns.heatmap(np.ones((2, 2)), annot=True, fmt='{0.__class__}')\n"
        f"print({MARK!r})"
    ),
    "fstring_conversion_cannot_reach": f"import pandas as pd\ns = f'{{pd.io.common.os!r}}'\nprint({MARK!r})",
}

DESCRIPTORS = {
    "open_numpy_int": "import numpy as np\nfd = np.int64(FD)",
    "open_bool": "fd = bool(FD)",
    "open_intenum": "import enum\nclass E(enum.IntEnum):\n    A = FD\nfd = E.A",
    "open_index_object": "class I:\n    def __index__(self):\n        return FD\nfd = I()",
    "open_int_subclass": "class J(int):\n    pass\nfd = J(FD)",
}

PATH_TAKING = {
    "text_file_reader": "import pandas as pd\nr = pd.io.parsers.TextFileReader(SECRET).read()\nprint(r)",
    "get_handle": "import pandas as pd\nprint(pd.io.common.get_handle(SECRET, 'r').handle.read())",
    "style_use_path": "import matplotlib.pyplot as plt\nplt.style.use(SECRET)\nprint(dict(plt.rcParams))",
    "rc_params_from_file": "import matplotlib as mpl\nprint(mpl.rc_params_from_file(SECRET))",
    "style_context_path": "import matplotlib.pyplot as plt\nwith plt.style.context(SECRET):\n    pass",
    "read_csv_via_open_handle": "import pandas as pd\nprint(pd.read_csv(pd.io.common.get_handle(SECRET, 'r').handle))",
    "numpy_datasource": "import numpy as np\nprint(np.lib.npyio.DataSource().open(SECRET).read())",
    "mpl_cbook_open": "import matplotlib.cbook as cb\nprint(cb.to_filehandle(SECRET).read())",
    "font_manager_path": "import matplotlib.font_manager as fm\nprint(fm.FontProperties(fname=SECRET).get_name())",
    "image_open_path": "import matplotlib.image as mi\nprint(mi.imread(SECRET))",
}


UNPICKLING = {
    "statsmodels_results_load": (
        "import statsmodels.api as sm\nsm.regression.linear_model.RegressionResults.load('evil.pkl')"
    ),
    "statsmodels_load_pickle": "import statsmodels.api as sm\nsm.load_pickle('evil.pkl')",
    "statsmodels_iolib_load": "import statsmodels.iolib.api as io\nio.load_pickle('evil.pkl')",
    "pandas_read_pickle": "import pandas as pd\npd.read_pickle('evil.pkl')",
    "pandas_read_pickle_gzip": "import pandas as pd\npd.read_pickle('evil.pkl.gz', compression='gzip')",
    "pandas_pickle_compat": "import pandas as pd\npd.compat.pickle_compat.loads(open('evil.pkl', 'rb').read())",
    "numpy_load_allow_pickle": "import numpy as np\nnp.load('evil.pkl', allow_pickle=True)",
    "numpy_npyio_load": "import numpy as np\nnp.lib.npyio.load('evil.pkl', allow_pickle=True)",
    "numpy_format_read_array": (
        "import numpy as np\nnp.lib.format.read_array(open('evil.pkl', 'rb'), allow_pickle=True)"
    ),
    "sklearn_joblib_reexport": "import sklearn.utils\nsklearn.utils.parallel.joblib.load('evil.pkl')",
    "pipeline_memory_cache": (
        "from sklearn.pipeline import Pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
        "from sklearn.linear_model import LinearRegression\n"
        "p = Pipeline([('s', StandardScaler()), ('m', LinearRegression())], memory='cache')\n"
        "import numpy as np\np.fit(np.ones((4, 1)), np.ones(4))\np.fit(np.ones((4, 1)), np.ones(4))\n0/0"
    ),
}


def _run_checked(sandbox, forkserver, workspace, code):
    result = sandbox.run(code)
    assert MARK not in result.stdout
    assert not os.path.exists(os.path.join(workspace, PWN))
    assert_still_serves(sandbox, forkserver)
    return result


@pytest.mark.parametrize("code", EXPRESSION_EVALUATION.values(), ids=EXPRESSION_EVALUATION.keys())
def test_pandas_and_formula_expressions_run_through_the_policy(sandbox, forkserver, workspace, code):
    result = _run_checked(sandbox, forkserver, workspace, code)

    assert not result.ok


@pytest.mark.parametrize("code", NAME_RESOLUTION.values(), ids=NAME_RESOLUTION.keys())
def test_no_name_resolves_in_the_kernels_real_globals(sandbox, forkserver, workspace, code):
    result = _run_checked(sandbox, forkserver, workspace, code)

    assert not result.ok


@pytest.mark.parametrize("code", REFLECTION.values(), ids=REFLECTION.keys())
def test_type_and_string_reflection_hand_out_nothing_the_policy_refuses(sandbox, forkserver, workspace, code):
    result = _run_checked(sandbox, forkserver, workspace, code)

    assert not result.ok


@pytest.mark.parametrize("code", GUARD_NAMES.values(), ids=GUARD_NAMES.keys())
def test_no_scope_can_rebind_the_guard_names(sandbox, forkserver, workspace, code):
    result = _run_checked(sandbox, forkserver, workspace, code)
    after = sandbox.run("import pandas as pd\nprint(pd.read_csv.__name__)")

    assert not result.ok
    assert after.stdout.strip() == "read_csv"


@pytest.mark.parametrize("code", FORMAT_STRINGS.values(), ids=FORMAT_STRINGS.keys())
def test_format_strings_cannot_traverse_refused_attributes(sandbox, forkserver, workspace, code):
    result = _run_checked(sandbox, forkserver, workspace, code)

    assert not result.ok
    assert "environ(" not in json.dumps(result.to_dict())


@pytest.mark.parametrize("code", DESCRIPTORS.values(), ids=DESCRIPTORS.keys())
def test_integer_like_file_descriptors_are_refused(sandbox, forkserver, workspace, code):
    # Every descriptor a kernel could hold; writing garbage into the protocol socket would break
    # the next run. Each attempt is caught, so only what it printed tells.
    probe = "\n".join(
        [
            "opened = []",
            "for FD in range(0, 40):",
            *["    " + line for line in code.splitlines()],
            "    try:",
            "        open(fd, 'wb').write(b'\\x00\\x00\\x00\\x05hello')",
            "        opened.append(FD)",
            "    except Exception:",
            "        pass",
            "print('opened', opened)",
        ]
    )

    result = _run_checked(sandbox, forkserver, workspace, probe)

    assert result.ok, result.error
    assert result.stdout.strip() == "opened []"


@pytest.mark.parametrize("code", PATH_TAKING.values(), ids=PATH_TAKING.keys())
def test_path_taking_library_functions_do_not_read_outside_the_workspace(sandbox, forkserver, outside, code):
    secret = os.path.join(outside, "secret.txt")

    result = sandbox.run(code.replace("SECRET", repr(secret)))

    assert not result.ok
    assert not leaked(result, TOKEN)
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("code", UNPICKLING.values(), ids=UNPICKLING.keys())
def test_no_library_route_unpickles(sandbox, forkserver, workspace, code):
    evil_pickles_written(workspace)

    result = _run_checked(sandbox, forkserver, workspace, code)

    assert not result.ok


ORDINARY = """
import io
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import plotly.express as px
import seaborn as sns
import statsmodels.formula.api as smf
from sklearn.linear_model import LinearRegression
df = pd.DataFrame({"x": np.arange(20.0), "g": list("ab") * 10})
df["y"] = 2 * df["x"] + 1
df.to_csv("out.csv", index=False)
back = pd.read_csv("out.csv")
fit = smf.ols("y ~ np.log1p(x)", data=back).fit()
model = LinearRegression().fit(back[["x"]], back["y"])
top = back.query("x > @fit.nobs / 4").eval("z = y * 2")
label = "{:.2f} {}".format(float(model.coef_[0]), "{0.real}".format(3))
styled = back.head().style.format("{:.1f}", subset=["x", "y"]).to_html()
fig, ax = plt.subplots()
sns.lineplot(data=back, x="x", y="y", hue="g", ax=ax)
px.bar(back, x="g", y="y")
final_result = {"label": label, "rows": len(top)}
"""


def test_ordinary_analysis_code_records_no_refusals(forkserver, workspace):
    with Sandbox(workspace, Limits(timeout=120, memory_mb=2048), server=forkserver) as roomy:
        result = roomy.run(ORDINARY)

    assert result.ok, result.error
    assert result.refusals == []
    assert result.final_result == {"label": "2.00 3", "rows": 14}


def test_a_caught_refusal_is_still_reported_with_the_result(sandbox):
    result = sandbox.run(
        "import pandas as pd\ntry:\n    getattr(pd.io.common, 'os')\nexcept Exception:\n    pass\nx = 1"
    )

    assert result.ok, result.error
    assert result.refusals == ["module 'os'"]
