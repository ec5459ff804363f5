"""The in-process policy tests leave nothing patched behind (they run forked, see conftest)."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd

from analysis.sandbox import libraries

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ORIGINAL_GETFRAME = sys._getframe


def test_the_pytest_process_has_no_policy_patches():
    assert not libraries.is_hardened()
    assert not getattr(pd.read_csv, "__sandboxed__", False)
    assert not getattr(pd.DataFrame.to_csv, "__sandboxed__", False)
    assert sys._getframe is ORIGINAL_GETFRAME


def test_policy_tests_leave_no_patches_behind():
    tests = [
        "analysis/tests/sandbox/test_policy.py::test_files_inside_the_workspace_can_be_read_and_written",
        "analysis/tests/sandbox/test_policy.py::test_pandas_query_still_sees_local_variables",
        "analysis/tests/sandbox/test_policy_isolation.py::test_the_pytest_process_has_no_policy_patches",
    ]

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *tests],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
