"""Red team: reaching interpreter internals, os/sys/builtins, or pickle from user code."""

from __future__ import annotations

import os
import zipfile

import pytest

from analysis.tests.sandbox.redteam import MARK, PWN, Evil, assert_escape_failed, evil_pickles_written

P = f"print('{MARK}')"

ESCAPES = {
    "class_subclasses": f"x = ().__class__.__bases__[0].__subclasses__()\n{P}",
    "getattr_dunder_string": f"x = getattr((), '__cla' + 'ss__')\n{P}",
    "catch_warnings_builtins": (
        "c = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]\n"
        f"c()._module.__builtins__['__import__']('os')\n{P}"
    ),
    "function_globals": f"f = lambda: 0\ng = f.__globals__\n{P}",
    "generator_frame": f"g = (x for x in [1])\nfr = g.gi_frame.f_back\n{P}",
    "generator_frame_getattr": f"g = (x for x in [1])\nfr = getattr(g, 'gi_' + 'frame')\n{P}",
    "coroutine_frame": f"async def f():\n    pass\nc = f()\nfr = c.cr_frame\n{P}",
    "traceback_frame": f"try:\n    1/0\nexcept Exception as e:\n    fr = e.__traceback__.tb_frame.f_globals\n{P}",
    "traceback_frame_getattr": (
        f"try:\n    1/0\nexcept Exception as e:\n    tb = getattr(e, '__trace' + 'back__')\n    fr = tb.tb_frame\n{P}"
    ),
    "format_string_attribute": f"s = '{{0.__class__.__mro__}}'.format(1)\n{P}",
    "format_map_attribute": f"s = '{{a.__class__.__init__.__globals__}}'.format_map({{'a': 1}})\n{P}",
    "unbound_str_format": f"s = str.format('{{0.__class__.__base__}}', 1)\n{P}",
    "fstring_dunder": f"s = f'{{(1).__class__.__subclasses__}}'\n{P}",
    "eval_builtin": f"eval('__import__(\"os\")')\n{P}",
    "exec_builtin": f"exec('import os')\n{P}",
    "compile_builtin": f"c = compile('1', 'x', 'eval')\n{P}",
    "globals_builtins": f"b = globals()['__builtins__']\nb['__import__']('os')\n{P}",
    "vars_builtin": f"v = vars()\n{P}",
    "dunder_import": f"__import__('os')\n{P}",
    "builtin_self_is_builtins_module": f"m = print.__self__\nm.open\n{P}",
    "getattr_self_via_getattr": f"m = getattr(len, '__self__')\n{P}",
    "type_subclasses_unbound": f"x = type.__subclasses__(object)\n{P}",
    "reduce_ex_reaches_copyreg": f"r = (1).__reduce_ex__(2)\n{P}",
    "operator_attrgetter_dunder": f"import operator\nc = operator.attrgetter('__class__')(1)\n{P}",
    "class_getattribute_override": (
        "class A:\n    def __getattribute__(self, n):\n        return object.__getattribute__(self, n)\n"
        f"A().__dict__\n{P}"
    ),
    "sys_getframe": f"import sys\nsys._getframe(0)\n{P}",
    "inspect_currentframe": f"import inspect\ninspect.currentframe()\n{P}",
    "gc_get_objects": f"import gc\ngc.get_objects()\n{P}",
}

MODULE_ROUTES = {
    "import_os": f"import os\n{P}",
    "from_os_import": f"from os import system\n{P}",
    "importlib": f"import importlib\nimportlib.import_module('os')\n{P}",
    "pandas_io_common_os": f"import pandas as pd\no = pd.io.common.os\no.getcwd()\n{P}",
    "from_pandas_io_common_import_os": f"from pandas.io.common import os\n{P}",
    "pandas_core_common_builtins": f"import pandas as pd\nb = pd.core.common.builtins\nb.exec('1')\n{P}",
    "numpy_ctypeslib_ctypes": f"import numpy as np\nc = np.ctypeslib.ctypes\nc.CDLL(None)\n{P}",
    "numpy_f2py_subprocess": f"import numpy as np\ns = np.f2py.subprocess\ns.run(['id'])\n{P}",
    "matplotlib_os": f"import matplotlib\no = matplotlib.os\no.getcwd()\n{P}",
    "pyplot_sys": f"import matplotlib.pyplot as plt\ns = plt.sys\ns.modules\n{P}",
    "seaborn_utils_os": f"import seaborn as sns\no = sns.utils.os\n{P}",
    "json_codecs_sys": f"import json\ns = json.codecs.sys\n{P}",
    "statistics_sys": f"import statistics\ns = statistics.sys\n{P}",
    "scipy_stats_module_globals": f"import scipy.stats as st\ng = st.norm.__class__.__init__.__globals__\n{P}",
    "pandas_function_globals": f"import pandas as pd\ng = pd.read_csv.__globals__\n{P}",
    "numpy_function_module_dict": f"import numpy as np\nm = np.load.__module__\nimport sys\n{P}",
    "type_of_module": f"import math\nM = type(math)\nM('x').__dict__\n{P}",
    "sklearn_base_platform": f"import sklearn.base\np = sklearn.base.platform\np.uname()\n{P}",
}

PICKLE_CASES = {
    "pickle_loads": "import pickle\npickle.loads(PAYLOAD)\n" + P,
    "pandas_read_pickle": "import pandas as pd\npd.read_pickle('evil.pkl')\n" + P,
    "pandas_read_pickle_gzip": "import pandas as pd\npd.read_pickle('evil.pkl.gz', compression='gzip')\n" + P,
    "numpy_load_allow_pickle": "import numpy as np\nnp.load('evil.npy', allow_pickle=True)\n" + P,
    "numpy_load_npz_allow_pickle": "import numpy as np\nnp.load('evil.npz', allow_pickle=True)['a']\n" + P,
    "statsmodels_load_pickle": "from statsmodels.iolib.smpickle import load_pickle\nload_pickle('evil.pkl')\n" + P,
    "marshal_loads": "import marshal\nmarshal.loads(b'')\n" + P,
    "shelve_open": "import shelve\nshelve.open('evil')\n" + P,
}


@pytest.mark.parametrize("code", ESCAPES.values(), ids=ESCAPES.keys())
def test_interpreter_escape_is_refused(sandbox, forkserver, code):
    assert_escape_failed(sandbox, forkserver, code)


@pytest.mark.parametrize("code", MODULE_ROUTES.values(), ids=MODULE_ROUTES.keys())
def test_reaching_os_sys_or_builtins_through_modules_is_refused(sandbox, forkserver, code):
    assert_escape_failed(sandbox, forkserver, code)


@pytest.mark.parametrize("code", PICKLE_CASES.values(), ids=PICKLE_CASES.keys())
def test_unpickling_is_refused(sandbox, forkserver, workspace, code):
    import numpy as np

    payload = evil_pickles_written(workspace)
    # Written with numpy's format module and plain files: np.save may be wrapped process-wide by
    # the policy tests (harden_libraries) when they run in the same pytest process.
    evil_array = np.array([Evil()], dtype=object)
    with open(os.path.join(workspace, "evil.npy"), "wb") as f:
        np.lib.format.write_array(f, evil_array, allow_pickle=True)
    with zipfile.ZipFile(os.path.join(workspace, "evil.npz"), "w") as archive, archive.open("a.npy", "w") as f:
        np.lib.format.write_array(f, evil_array, allow_pickle=True)

    assert_escape_failed(sandbox, forkserver, code.replace("PAYLOAD", repr(payload)))

    assert not os.path.exists(os.path.join(workspace, PWN))
