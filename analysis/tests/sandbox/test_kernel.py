"""The kernel's contract: state, limits, artifacts, capture, errors, cancel, isolation refusal."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest

from analysis.sandbox import Limits, Sandbox, SandboxIsolationError, isolation_report


def test_variables_persist_between_runs(sandbox):
    sandbox.run("x = 20")

    result = sandbox.run("x + 1")

    assert result.ok
    assert result.display == "21"
    assert not result.state_lost


def test_reset_forgets_variables_without_reporting_a_loss(sandbox):
    sandbox.run("x = 1")

    sandbox.reset()
    result = sandbox.run("x")

    assert result.error["type"] == "NameError"
    assert not result.state_lost


def test_timeout_kills_the_kernel_and_the_next_run_reports_lost_state(forkserver, workspace):
    with Sandbox(workspace, Limits(timeout=1), server=forkserver) as sb:
        sb.run("x = 1")

        killed = sb.run("while True:\n    pass")
        after = sb.run("x")

    assert killed.killed_reason == "timeout"
    assert killed.error["message"] == (
        "Execution exceeded the 1 s time limit; the kernel was restarted and variables were lost"
    )
    assert 1 <= killed.duration < 4
    assert after.state_lost
    assert "time limit" in after.state_lost_reason
    assert after.error["type"] == "NameError"


def test_memory_limit_stops_an_allocation_and_restarts_the_kernel(sandbox):
    killed = sandbox.run("import numpy as np\nbig = np.ones(400_000_000)")
    after = sandbox.run("1 + 1")

    assert killed.killed_reason == "memory"
    assert "1024 MB memory limit" in killed.error["message"]
    assert after.ok
    assert after.state_lost


def test_open_matplotlib_figures_become_png_artifacts_and_are_closed(sandbox):
    result = sandbox.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.title('t')")
    again = sandbox.run("1")

    (image,) = [a for a in result.artifacts if a["kind"] == "image"]
    assert image["mime"] == "image/png"
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    assert again.artifacts == []


def test_plotly_show_and_last_expression_become_plotly_artifacts(sandbox):
    code = "import plotly.express as px\npx.bar(x=['a', 'b'], y=[1, 2]).show()\npx.line(x=[1, 2], y=[3, 4])"

    result = sandbox.run(code)

    kinds = [a["kind"] for a in result.artifacts]
    assert kinds == ["plotly", "plotly"]
    assert json.loads(result.artifacts[0]["json"])["data"][0]["type"] == "bar"
    assert json.loads(result.artifacts[1]["json"])["data"][0]["type"] == "scatter"


def test_dataframe_last_expression_becomes_a_table_artifact(sandbox):
    result = sandbox.run("import pandas as pd\npd.DataFrame({'a': range(100), 'b': [0.5, None] * 50})")

    (table,) = result.artifacts
    assert table["kind"] == "table"
    assert table["columns"] == ["a", "b"]
    assert table["shape"] == [100, 2]
    assert len(table["rows"]) == 50
    assert table["rows"][1] == [1, None]
    assert table["dtypes"] == {"a": "int64", "b": "float64"}


def test_files_written_in_the_workspace_become_file_artifacts(sandbox, workspace):
    with open(os.path.join(workspace, "sales.csv"), "w") as f:
        f.write("region,amount\nnorth,3\nsouth,4\n")

    result = sandbox.run("import pandas as pd\npd.read_csv('sales.csv').to_csv('out.csv')")

    assert result.ok
    assert result.artifacts == [{"kind": "file", "name": "out.csv", "size": 35, "mime": "text/csv"}]


def test_stdout_is_capped_and_marked_truncated(sandbox):
    result = sandbox.run("for i in range(50_000):\n    print('0123456789')")

    assert result.ok
    assert result.stdout.startswith("0123456789\n")
    assert len(result.stdout) < 100_200
    assert "[output truncated: 450000 more characters not shown]" in result.stdout


def test_traceback_is_trimmed_to_cell_lines(sandbox):
    result = sandbox.run("import pandas as pd\n\ndef load():\n    return pd.read_csv('missing.csv')\n\nload()")

    assert result.error["type"] == "FileNotFoundError"
    assert result.error["traceback"].splitlines()[1:5] == [
        "  Cell line 6, in <module>",
        "    load()",
        "  Cell line 4, in load",
        "    return pd.read_csv('missing.csv')",
    ]
    assert "site-packages" not in result.error["traceback"]


def test_final_result_is_returned_as_json_or_repr(sandbox):
    as_json = sandbox.run("import numpy as np\nfinal_result = {'mean': np.float64(2.5), 'n': 3}")
    as_repr = sandbox.run("final_result = {1, 2}")
    untouched = sandbox.run("y = 1")

    assert as_json.final_result == {"mean": 2.5, "n": 3}
    assert as_repr.final_result == "{1, 2}"
    assert untouched.final_result is None
    assert json.loads(json.dumps(as_json.to_dict()))["final_result"] == {"mean": 2.5, "n": 3}


def test_cancel_from_another_thread_kills_the_execution(sandbox):
    timer = threading.Timer(0.3, sandbox.cancel)
    timer.start()

    started = time.monotonic()
    result = sandbox.run("while True:\n    pass")
    after = sandbox.run("1 + 1")

    assert result.killed_reason == "cancelled"
    assert "cancelled" in result.error["message"]
    assert time.monotonic() - started < 5
    assert after.ok and after.state_lost


def test_require_isolation_refuses_with_a_message_naming_the_missing_layer(forkserver, workspace):
    server = _ForkServerWithoutNetns(forkserver)

    with (
        Sandbox(workspace, server=server, require_isolation=True) as sb,
        pytest.raises(SandboxIsolationError, match=r"missing on this machine: network_namespace \(unshare failed"),
    ):
        sb.run("1 + 1")


def test_weak_isolation_is_allowed_when_not_required(forkserver, workspace):
    with Sandbox(workspace, server=_ForkServerWithoutNetns(forkserver)) as sb:
        assert sb.run("1 + 1").ok


class _ForkServerWithoutNetns:
    """A real fork server that reports its network namespace as missing, like a machine without one."""

    def __init__(self, server):
        self._server = server
        self.layers = [{"name": "network_namespace", "active": False, "detail": "unshare failed: EPERM"}]

    def __getattr__(self, name):
        return getattr(self._server, name)


def test_require_isolation_runs_when_every_layer_is_active(forkserver, workspace):
    report = isolation_report(server=forkserver)
    if not report["complete"]:
        pytest.skip(f"this machine lacks {report['missing']}")

    with Sandbox(workspace, server=forkserver, require_isolation=True) as sb:
        assert sb.run("1 + 1").ok


def test_host_refuses_an_oversized_message_before_reading_it():
    import socket
    import struct

    from analysis.sandbox import protocol

    host, worker = socket.socketpair()
    worker.sendall(struct.pack("!I", 2**31) + b"{}")

    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.recv_msg(host, max_bytes=1024)


def test_host_parses_worker_messages_as_json_only():
    import socket
    import struct

    from analysis.sandbox import protocol

    host, worker = socket.socketpair()
    payload = b"cos\nsystem\n(S'id'\ntR."  # a pickle
    worker.sendall(struct.pack("!I", len(payload)) + payload)

    with pytest.raises(protocol.ProtocolError, match="malformed"):
        protocol.recv_msg(host, max_bytes=1024)


def test_worker_results_keep_only_well_typed_fields():
    from analysis.sandbox import Result

    result = Result.from_worker({"ok": True, "stdout": 5, "error": None, "artifacts": [], "state_lost": "x", "evil": 1})

    assert result.stdout == "5"
    assert result.state_lost is False
    assert not hasattr(result, "evil")
    with pytest.raises(ValueError):
        Result.from_worker({"ok": True, "artifacts": "not a list"})


def test_cpu_time_limit_kills_the_kernel(forkserver, workspace):
    with Sandbox(workspace, Limits(timeout=20, cpu_seconds=1), server=forkserver) as sb:
        killed = sb.run("while True:\n    pass")
        after = sb.run("1 + 1")

    assert killed.killed_reason == "cpu"
    assert "CPU time limit" in killed.error["message"]
    assert after.ok and after.state_lost


def test_kernel_temp_dir_lives_in_the_workspace_and_goes_away_with_the_kernel(forkserver, workspace):
    with Sandbox(workspace, server=forkserver) as sb:
        result = sb.run("open('.sandbox-tmp/scratch.txt', 'w').write('x')")
        assert result.ok, result.error
        assert result.artifacts == []  # the private temp dir is not reported as output
        assert os.path.exists(os.path.join(workspace, ".sandbox-tmp", "scratch.txt"))

    assert not os.path.exists(os.path.join(workspace, ".sandbox-tmp"))


def test_library_wrappers_are_bound_to_this_kernels_workspace(forkserver, workspace):
    with open(os.path.join(workspace, "sales.csv"), "w") as f:
        f.write("a\n1\n")
    inside = f"import pandas as pd\npd.read_csv({os.path.join(workspace, 'sales.csv')!r}).shape"
    template_home = f"import pandas as pd\npd.DataFrame().to_csv({os.path.join(forkserver.home, 'x.csv')!r})"

    with Sandbox(workspace, server=forkserver) as sb:
        ok = sb.run(inside)
        refused = sb.run(template_home)

    assert ok.display == "(1, 1)"
    assert refused.error["type"] == "PolicyError"


def test_library_threads_and_n_jobs_work_although_processes_are_blocked(sandbox):
    code = (
        "from sklearn.datasets import make_classification\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.model_selection import cross_val_score\n"
        "X, y = make_classification(n_samples=80, random_state=0)\n"
        "model = RandomForestClassifier(n_estimators=8, n_jobs=-1, random_state=0)\n"
        "len(cross_val_score(model, X, y, cv=2, n_jobs=-1))"
    )

    result = sandbox.run(code)

    assert result.ok, result.error
    assert result.display == "2"
