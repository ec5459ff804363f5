"""Red team: network access and starting programs, processes or threads, by any route."""

from __future__ import annotations

import os

import pytest

from analysis.tests.sandbox.redteam import assert_still_serves

NETWORK = {
    "socket_connect": "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1)",
    "urllib_urlopen": "import urllib.request\nurllib.request.urlopen(URL, timeout=1).read()",
    "http_client": "import http.client\nc = http.client.HTTPConnection('127.0.0.1', PORT, timeout=1)\nc.request('GET', '/')",
    "requests_get": "import requests\nrequests.get(URL, timeout=1)",
    "pandas_read_csv_url": "import pandas as pd\npd.read_csv(URL)",
    "pandas_read_json_url": "import pandas as pd\npd.read_json(URL)",
    "pandas_read_html_url": "import pandas as pd\npd.read_html(URL)",
    "numpy_datasource": "import numpy as np\nnp.lib.npyio.DataSource().open(URL)",
    "numpy_loadtxt_url": "import numpy as np\nnp.loadtxt(URL)",
    "matplotlib_imread_url": "import matplotlib.pyplot as plt\nplt.imread(URL)",
    "sklearn_fetch_openml": "from sklearn.datasets import fetch_openml\nfetch_openml(data_id=61, data_home='.')",
}

PROCESSES = {
    "subprocess_run": "import subprocess\nsubprocess.run(['touch', MARKER])",
    "os_system": "import os\nos.system('touch ' + MARKER)",
    "os_fork": "import os\nif os.fork() == 0:\n    open(MARKER, 'w')",
    "os_popen": "import os\nos.popen('touch ' + MARKER).read()",
    "os_execv": "import os\nos.execv('/usr/bin/touch', ['touch', MARKER])",
    "multiprocessing_process": "import multiprocessing\nmultiprocessing.Process(target=print).start()",
    "process_pool": "import concurrent.futures\nconcurrent.futures.ProcessPoolExecutor().submit(print).result()",
    "pty_spawn": "import pty\npty.spawn(['touch', MARKER])",
    "ctypes_system": "import ctypes\nctypes.CDLL(None).system(b'touch ' + MARKER.encode())",
    "threading_thread": "import threading\nthreading.Thread(target=print).start()",
    "thread_module": "import _thread\n_thread.start_new_thread(print, ())",
    "webbrowser_open": "import webbrowser\nwebbrowser.open('http://127.0.0.1:PORT/')",
    "pandas_read_clipboard": "import pandas as pd\npd.read_clipboard()",
    "matplotlib_animation_writer_path": (
        "import matplotlib\n"
        "matplotlib.rcParams['animation.ffmpeg_path'] = SCRIPT\n"
        "import matplotlib.pyplot as plt\n"
        "from matplotlib.animation import FFMpegWriter, FuncAnimation\n"
        "fig, ax = plt.subplots()\n"
        "anim = FuncAnimation(fig, lambda i: [], frames=2)\n"
        "anim.save('out.mp4', writer=FFMpegWriter())"
    ),
    "matplotlib_animation_writer_class": (
        "import matplotlib.pyplot as plt\n"
        "from matplotlib import animation\n"
        "fig, ax = plt.subplots()\n"
        "anim = animation.FuncAnimation(fig, lambda i: [], frames=2)\n"
        "anim.save('out.gif', writer=animation.ImageMagickWriter())"
    ),
    "plotly_browser_renderer": (
        "import plotly.io as pio\nimport plotly.express as px\npio.show(px.line(x=[1], y=[1]), renderer='browser')\n"
        "pio.renderers.default = 'browser'\nraise RuntimeError('renderer changed')"
    ),
    "sklearn_joblib_processes": (
        "from sklearn.datasets import make_classification\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import cross_val_score\n"
        "X, y = make_classification(n_samples=60, random_state=0)\n"
        "cross_val_score(LogisticRegression(), X, y, cv=3, n_jobs=2)\n"
        "raise RuntimeError('finished')"
    ),
}


@pytest.mark.parametrize("code", NETWORK.values(), ids=NETWORK.keys())
def test_network_access_never_reaches_the_host(sandbox, forkserver, listener, code):
    port, received = listener
    before = len(received)

    result = sandbox.run(code.replace("URL", repr(f"http://127.0.0.1:{port}/data.csv")).replace("PORT", str(port)))

    assert not result.ok
    assert len(received) == before
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("code", PROCESSES.values(), ids=PROCESSES.keys())
def test_no_program_or_process_can_be_started(sandbox, forkserver, marker_dir, listener, code):
    marker = os.path.join(marker_dir, "ran")
    filled = code.replace("MARKER", repr(marker)).replace("SCRIPT", repr(os.path.join(marker_dir, "evil.sh")))

    result = sandbox.run(filled.replace("PORT", str(listener[0])))

    assert not result.ok
    assert not os.path.exists(marker)
    assert_still_serves(sandbox, forkserver)
