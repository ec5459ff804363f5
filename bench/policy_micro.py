"""Micro-benchmark: restricted_exec vs plain exec in the same process.

cd /work/main && PYTHONPATH=. .venv/bin/python bench/policy_micro.py
"""

import os
import tempfile
import timeit

from analysis.sandbox.policy import compile_cell, restricted_exec

CASES = {
    "loop": "s = 0\nfor i in range(1_000_000):\n    s += i % 7\n",
    "get-comprehension": "t = sum(d.get('a', 0) for d in rows)\n",
    "attributes": "t = 0\nfor p in points:\n    t += p.real * p.imag\n",
    "guarded-attributes": "t = 0\nfor p in points:\n    t += p.conjugate().real\n",
    "pandas": "g = df.groupby('k')['v'].agg(['mean', 'sum'])\nz = (df['v'] * 2).cumsum().iloc[-1]\n",
}


def setup_ns():
    import numpy as np
    import pandas as pd

    rows = [{"a": i, "b": 2} for i in range(100_000)]
    points = [complex(i, 1) for i in range(200_000)]
    df = pd.DataFrame({"k": np.arange(1_000_000) % 100, "v": np.random.rand(1_000_000)})
    return {"rows": rows, "points": points, "df": df}


def main():
    os.chdir(tempfile.mkdtemp())
    base = setup_ns()
    restricted_exec("x = 1", {})  # harden once, outside the timings
    for name, src in CASES.items():
        plain_code = compile(src, "<cell>", "exec")
        compile_cell(src, "<cell>", False)
        plain = min(timeit.repeat(lambda: exec(plain_code, dict(base)), number=3, repeat=5))  # noqa: B023
        sandboxed = min(timeit.repeat(lambda: restricted_exec(src, dict(base)), number=3, repeat=5))  # noqa: B023
        print(
            f"{name:18s} plain {plain / 3 * 1000:8.2f} ms  sandbox {sandboxed / 3 * 1000:8.2f} ms  ratio {sandboxed / plain:.2f}x"
        )


if __name__ == "__main__":
    main()
