"""Red team: reading or writing files outside the workspace, by any library route."""

from __future__ import annotations

import os
import secrets
import sysconfig

import pytest

from analysis.tests.sandbox.redteam import TOKEN, assert_still_serves, leaked

READS = {
    "open_absolute": "open(SECRET).read()",
    "open_relative_traversal": "open(RELSECRET).read()",
    "open_proc_self_root": "open('/proc/self/root' + SECRET).read()",
    "open_symlink_in_workspace": "open('link.txt').read()",
    "open_symlinked_dir_in_workspace": "open('outdir/secret.txt').read()",
    "pandas_read_csv": "import pandas as pd\npd.read_csv(SECRET)",
    "pandas_read_csv_file_url": "import pandas as pd\npd.read_csv('file://' + SECRET)",
    "pandas_read_fwf": "import pandas as pd\npd.read_fwf(SECRET)",
    "pandas_read_table_via_symlink": "import pandas as pd\npd.read_table('link.txt')",
    "numpy_loadtxt": "import numpy as np\nnp.loadtxt(SECRET, dtype=str, delimiter=',')",
    "numpy_genfromtxt": "import numpy as np\nnp.genfromtxt(SECRET, dtype=str, delimiter=',')",
    "numpy_fromfile": "import numpy as np\nbytes(np.fromfile(SECRET, dtype='uint8'))",
    "numpy_memmap": "import numpy as np\nbytes(np.memmap(SECRET, dtype='uint8', mode='r'))",
    "csv_reader": "import csv\nlist(csv.reader(open(SECRET)))",
    "matplotlib_imread": "import matplotlib.pyplot as plt\nplt.imread(SECRET)",
    "host_environment_via_proc": "open('/proc/HOSTPID/environ').read()",
    "kernel_environment": "import os\nos.environ",
    "etc_shadow": "open('/etc/shadow').read()",
}

WRITES = {
    "open_absolute": "open(TARGET, 'w').write('x')",
    "open_relative_traversal": "open(RELTARGET, 'w').write('x')",
    "open_through_symlinked_dir": "open('outdir/target.txt', 'w').write('x')",
    "pandas_to_csv": "import pandas as pd\npd.DataFrame({'a': [1]}).to_csv(TARGET)",
    "pandas_to_json": "import pandas as pd\npd.DataFrame({'a': [1]}).to_json(TARGET)",
    "numpy_save": "import numpy as np\nnp.save(TARGET, np.ones(2))",
    "numpy_savetxt": "import numpy as np\nnp.savetxt(TARGET, np.ones(2))",
    "numpy_tofile": "import numpy as np\nnp.ones(2).tofile(TARGET)",
    "matplotlib_savefig": "import matplotlib.pyplot as plt\nplt.plot([1])\nplt.savefig(TARGET, format='png')",
    "plotly_write_html": "import plotly.express as px\npx.line(x=[1], y=[1]).write_html(TARGET)",
    "dev_shm": "open('/dev/shm/' + NAME, 'w').write('x')",
    "site_packages_persistence": "open(SITE + '/' + NAME, 'w').write('x')",
    "private_tmp_traversal": "open('.sandbox-tmp/../../' + NAME, 'w').write('x')",
}


def _setup(workspace, outside):
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(workspace, "link.txt"))
    os.symlink(outside, os.path.join(workspace, "outdir"))


def _fill(code, workspace, outside, target):
    secret = os.path.join(outside, "secret.txt")
    return (
        code.replace("RELSECRET", repr(os.path.relpath(secret, workspace)))
        .replace("SECRET", repr(secret))
        .replace("RELTARGET", repr(os.path.relpath(target, workspace)))
        .replace("TARGET", repr(target))
        .replace("HOSTPID", str(os.getpid()))
        .replace("SITE", repr(sysconfig.get_paths()["purelib"]))
        .replace("NAME", repr(os.path.basename(target)))
    )


@pytest.mark.parametrize("code", READS.values(), ids=READS.keys())
def test_reading_outside_the_workspace_never_reveals_the_canary(sandbox, forkserver, workspace, outside, code):
    _setup(workspace, outside)

    result = sandbox.run(_fill(code, workspace, outside, os.path.join(outside, "unused")))

    assert not result.ok
    assert not leaked(result, TOKEN)
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("code", WRITES.values(), ids=WRITES.keys())
def test_writing_outside_the_workspace_creates_no_file(sandbox, forkserver, workspace, outside, code):
    _setup(workspace, outside)
    name = "target-" + secrets.token_hex(4) + ".txt"
    target = os.path.join(outside, name)
    candidates = [
        target,
        target + ".npy",
        os.path.join(outside, "target.txt"),
        os.path.join("/dev/shm", name),
        os.path.join(sysconfig.get_paths()["purelib"], name),
        os.path.join(os.path.dirname(workspace), name),
    ]

    result = sandbox.run(_fill(code, workspace, outside, target))

    assert not result.ok
    assert [path for path in candidates if os.path.lexists(path)] == []
    assert_still_serves(sandbox, forkserver)


def test_the_workspace_is_the_working_directory_and_writable(sandbox, workspace):
    with open(os.path.join(workspace, "sales.csv"), "w") as f:
        f.write("a\n1\n")

    result = sandbox.run("import pandas as pd\npd.read_csv('sales.csv').to_csv('copy.csv', index=False)")

    assert result.ok, result.error
    with open(os.path.join(workspace, "copy.csv")) as f:
        assert f.read() == "a\n1\n"
