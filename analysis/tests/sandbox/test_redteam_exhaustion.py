"""Red team: exhausting CPU, memory, output, stack, file descriptors or disk.

Short limits keep the suite fast; each attack must end in a clear error, and the sandbox must
serve the next run (in a fresh kernel when the old one was killed).
"""

from __future__ import annotations

import os

import pytest

from analysis.sandbox import Limits, Sandbox
from analysis.tests.sandbox.redteam import assert_still_serves

LIMITS = Limits(timeout=2, memory_mb=1024, file_size_mb=16, output_bytes=20_000)

# (code, accepted outcomes: killed_reason values or error types)
ATTACKS = {
    "cpu_loop": ("while True:\n    pass", {"timeout", "cpu"}),
    "sleep": ("import time\ntime.sleep(60)", {"timeout"}),
    "bytearray_bomb": ("x = bytearray(10**10)", {"memory"}),
    "list_growth": ("l = []\nwhile True:\n    l.append(' ' * 10**6)", {"memory", "timeout"}),
    "numpy_bomb": ("import numpy as np\nnp.ones((10**5, 10**5))", {"memory"}),
    "pandas_bomb": ("import pandas as pd\npd.DataFrame(index=range(10**9), columns=range(10))", {"memory"}),
    "huge_integer": ("x = 10**10**8", {"timeout", "cpu", "memory", "PolicyError"}),
    "huge_integer_str": ("x = str(10**100000)", {"ValueError", "PolicyError"}),
    "huge_string": ("s = 'x' * 10**10", {"memory"}),
    "set_bomb": ("s = set(range(10**9))", {"memory", "timeout"}),
    "deep_recursion": ("def f():\n    return f()\nf()", {"RecursionError"}),
    "deep_json": ("import json\njson.loads('[' * 10**6 + ']' * 10**6)", {"RecursionError", "crashed"}),
    # Building the million-deep list may outlast the 2 s limit on a loaded machine: a timeout is as clear an end.
    "deep_nested_repr": (
        "a = []\nfor i in range(10**6):\n    a = [a]\nrepr(a)",
        {"RecursionError", "crashed", "timeout", "cpu"},
    ),
    "many_open_files": ("fs = [open(f'f{i}.txt', 'w') for i in range(10**5)]", {"OSError"}),
    "huge_file": ("with open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'x' * 10**6)", {"OSError"}),
    "endless_small_files": (
        "i = 0\nwhile True:\n    open(f'f{i}.txt', 'w').close()\n    i += 1",
        {"timeout", "cpu", "OSError"},
    ),
}


@pytest.fixture
def sandbox(forkserver, workspace):
    with Sandbox(workspace, LIMITS, server=forkserver) as sb:
        yield sb


def _outcome(result):
    return result.killed_reason or result.error["type"]


@pytest.mark.parametrize(("code", "outcomes"), ATTACKS.values(), ids=ATTACKS.keys())
def test_resource_exhaustion_ends_in_a_clear_error(sandbox, forkserver, workspace, code, outcomes):
    result = sandbox.run(code)

    assert not result.ok
    assert _outcome(result) in outcomes, result.error
    assert result.duration < LIMITS.timeout + 5  # slack for a loaded machine
    assert (
        sum(os.path.getsize(os.path.join(workspace, n)) for n in os.listdir(workspace) if n.endswith(".bin"))
        <= 16 * 2**20
    )
    assert len(result.artifacts) <= 100
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize(
    "code",
    ["while True:\n    print('x' * 1000)", "print('x' * 10**8)", "import sys\nprint('y' * 10**7, file=sys.stderr)"],
)
def test_output_flood_is_capped(sandbox, forkserver, code):
    result = sandbox.run(code)

    assert len(result.stdout) <= LIMITS.output_bytes + 100
    assert len(result.stderr) <= LIMITS.output_bytes + 100
    assert_still_serves(sandbox, forkserver)


def test_huge_final_result_is_reduced_to_a_capped_repr(forkserver, workspace):
    # Its own, longer time limit: the point is the cap on the result, not how fast 50 MB are built when loaded.
    with Sandbox(workspace, Limits(timeout=20, memory_mb=1024), server=forkserver) as sb:
        result = sb.run("final_result = 'x' * 50_000_000")

        assert result.ok
        assert len(result.final_result) < 20_000
        assert_still_serves(sb, forkserver)


def test_too_large_result_is_refused_by_the_kernel(forkserver, workspace):
    code = "import matplotlib.pyplot as plt\nimport numpy as np\nfor i in range(5):\n    plt.figure(); plt.imshow(np.random.rand(400, 400))"
    with Sandbox(workspace, Limits(timeout=10, result_bytes=100_000), server=forkserver) as sb:
        result = sb.run(code)

        assert result.error["type"] == "ResultTooLarge"
        assert result.artifacts == []
        assert_still_serves(sb, forkserver)
