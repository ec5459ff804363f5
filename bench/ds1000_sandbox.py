"""DS-1000 adapter: run each problem's solution under the sandbox language policy.

The benchmark's own test code runs natively; only its `exec(code, test_env)` (the solution
inside exec_context) goes through `restricted_exec`.
"""

import os
import sys

CORPUS = "/work/shared/corpus/ds1000"
sys.path.insert(0, CORPUS)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from run import run_with_inner_exec  # noqa: E402

from analysis.sandbox.policy import restricted_exec  # noqa: E402


def run(code: str, workdir: str):
    return run_with_inner_exec(code, restricted_exec)


if __name__ == "__main__":
    print(
        "cd /work/shared/corpus/ds1000 && PYTHONPATH=/work/main /work/main/.venv/bin/python run.py "
        "--executor /work/main/bench/ds1000_sandbox.py:run --ids-file plain_pass_ids.json "
        "--out /tmp/ds1000_sandbox.json --details /tmp/ds1000_sandbox.jsonl --workers 2"
    )
