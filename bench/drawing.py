"""What drawing a chart out of process costs: the same figures drawn in this process (``exports.charts``, as
before) and through ``exports.drawing.ChartDrawer`` (helper processes with limits), interleaved so both see
the same machine load. Prints ms per chart for each and the ratio, the helper's start-up time, and the time and
outcome of the issue's 44 s histogram (`go.Histogram(x=[0, 1, 2], nbinsx=100000)`) with this process's peak
RSS before and after it.

    flock /tmp/cpu.lock .venv/bin/python bench/drawing.py [--charts 21] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.exports import figure_json  # noqa: E402  (the export bench's seven chart types)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--charts", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from exports.charts import figure_image
    from exports.drawing import ChartDrawer, DrawFailed

    figures = [figure_json(n) for n in range(args.charts)]
    drawer = ChartDrawer(cpu_seconds=10, memory_mb=1024, processes=1)
    started = time.perf_counter()
    drawer.draw(b'{"data": []}')
    print(f"helper start-up: {time.perf_counter() - started:.2f} s (once per process)")
    inside, outside = [], []
    for _ in range(args.rounds):
        for raw in figures:
            t0 = time.perf_counter()
            figure_image(json.loads(raw), fmt="png")
            t1 = time.perf_counter()
            drawer.draw(raw)
            t2 = time.perf_counter()
            inside.append(t1 - t0)
            outside.append(t2 - t1)
    mean_in, mean_out = statistics.mean(inside) * 1000, statistics.mean(outside) * 1000
    print(f"{len(inside)} charts: in process {mean_in:.0f} ms, out of process {mean_out:.0f} ms per chart "
          f"(ratio {mean_out / mean_in:.2f}x, +{mean_out - mean_in:.0f} ms)")  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    histogram = b'{"data":[{"type":"histogram","x":[0,1,2],"nbinsx":100000}]}'
    t0 = time.perf_counter()
    try:
        drawer.draw(histogram)
        outcome = "drawn"
    except DrawFailed as exc:
        outcome = f"placeholder: {exc}"
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"histogram nbinsx=100000: {time.perf_counter() - t0:.1f} s, {outcome}; "
          f"this process's peak RSS {rss:.0f} -> {after:.0f} MB")  # fmt: skip
    t0 = time.perf_counter()
    drawer.draw(figures[0])
    print(f"next chart after it: {time.perf_counter() - t0:.2f} s (includes a new helper if the old one died)")
    drawer.close()
    print(f"load average: {__import__('os').getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
