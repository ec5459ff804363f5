"""Export speed and memory: a session with 50 questions, 50 charts and 20 tables, in every format.

Each export runs in a fresh ``multiprocessing`` spawn child (Django set up, then one export), which
reports its wall time and its own peak RSS (``ru_maxrss``), so formats never share a heap. Charts are
plotly figures (scatter, line, bar, histogram, box, pie, heatmap in turn): the worst case, since Markdown,
PDF and the thumbnails need them as PNG. "cold" clears the stored PNG renditions first (nothing drawn yet);
"warm" is every later export (the renditions are reused) in a fresh process; "hot" is a second export in the
same process (a long-running web process has already loaded weasyprint, fonts and matplotlib). Targets: PDF < 10 s and < 500 MB; MD/JSON < 1 s.

    .venv/bin/python bench/exports.py [--questions 50] [--charts 50] [--tables 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGETS = {"pdf": (10.0, 500.0), "md": (1.0, None), "json": (1.0, None)}


def django_setup(data_dir: str) -> None:
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codingagent.settings_test")
    import django

    django.setup()


def figure_json(n: int) -> bytes:
    import numpy as np
    import plotly.express as px

    rng = np.random.default_rng(n)
    x = np.arange(300)
    frame = {"x": x, "y": rng.normal(size=300).cumsum(), "group": rng.choice(list("ABCDE"), 300)}
    makers = [
        lambda: px.scatter(frame, x="x", y="y", color="group", title=f"Scatter {n}"),
        lambda: px.line(frame, x="x", y="y", title=f"Trend {n}"),
        lambda: px.bar(frame, x="group", y="y", color="group", title=f"Totals {n}"),
        lambda: px.histogram(frame, x="y", nbins=30, title=f"Distribution {n}"),
        lambda: px.box(frame, x="group", y="y", title=f"Spread {n}"),
        lambda: px.pie(values=[5, 3, 2, 1], names=["a", "b", "c", "d"], title=f"Share {n}"),
        lambda: px.imshow(rng.random((8, 8)), title=f"Correlation {n}"),
    ]
    return makers[n % len(makers)]().to_json().encode()


def table_json(n: int) -> bytes:
    import json

    rows = [[f"item {i}", i * 1234.5678, i % 7, None if i % 11 == 0 else f"2024-01-{i % 28 + 1:02d}T00:00:00", i % 2 == 0, f"note {n}-{i}"] for i in range(50)]  # fmt: skip
    columns = ["name", "amount", "count", "date", "flag", "note"]
    dtypes = {"name": "object", "amount": "float64", "count": "int64", "date": "datetime64[ns]", "flag": "bool", "note": "object"}  # fmt: skip
    return json.dumps(
        {"columns": columns, "rows": rows, "shape": [5000, 6], "dtypes": dtypes, "truncated": True}
    ).encode()


def fixture_create(*, questions: int, charts: int, tables: int) -> int:
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    from accounts.models import User
    from analysis.models import AnalysisSession, Artifact, Run, Step
    from projects.models import Dataset, Project, ProjectMember

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(email="bench@example.com", password="bench-password-1")
    project = Project.objects.create(owner=user, name="Bench project")
    ProjectMember.objects.create(project=project, user=user, role="owner")
    profile = {"columns": [{"name": c, "dtype": "float64", "missing": 3, "stats": {"mean": 1.5, "min": 0, "max": 9}} for c in "abcdef"]}  # fmt: skip
    Dataset.objects.create(project=project, name="sales.csv", original_filename="sales.csv", file="sales.csv", size=1,
                           format="csv", row_count=5000, column_count=6, profile=profile)  # fmt: skip
    session = AnalysisSession.objects.create(project=project, user=user, title="Benchmark session")
    for q in range(questions):
        run = Run.objects.create(session=session, user=user, question=f"Question {q}: how do sales evolve by region?",
                                 status="succeeded", answer=f"**Answer {q}.** Sales grew by {q}% — see the chart.")  # fmt: skip
        steps = [("thought", "I will group the data by region and plot it."),
                 ("code", "df = pd.read_csv('sales.csv')\ntotals = df.groupby('region')['amount'].sum()\nprint(totals)")]  # fmt: skip
        if q % 10 == 0:
            steps += [("error", "KeyError: 'region'"), ("code", "totals = df.groupby('Region')['amount'].sum()")]
        steps += [("output", "region\nNorth    1234.5\nSouth     987.6\n")]
        ordinal = 0
        for kind, content in steps:
            ordinal += 1
            Step.objects.create(run=run, ordinal=ordinal, kind=kind, content=content)
        made = []
        if q < charts:
            made.append(("plotly", figure_json(q), f"Chart {q}", "application/vnd.plotly.v1+json"))
        if q < tables:
            made.append(("table", table_json(q), f"Table {q}", "application/json"))
        for kind, body, title, mime in made:
            ordinal += 1
            step = Step.objects.create(run=run, ordinal=ordinal, kind="artifact", content=title, data={"kind": kind})
            artifact = Artifact(project=project, session=session, run=run, step=step, kind=kind, title=title,
                                mime=mime, size=len(body))  # fmt: skip
            artifact.file.save(f"{kind}-{q}.json", ContentFile(body), save=True)
        Step.objects.create(run=run, ordinal=ordinal + 1, kind="answer", content=run.answer)
    return session.pk


def export_child(data_dir: str, session_pk: int, fmt: str, state: str, out_dir: str, queue) -> None:
    django_setup(data_dir)
    from analysis.models import AnalysisSession, Artifact
    from exports.renderers import export_render

    cold = state == "cold"
    if cold:  # forget the stored PNG renditions so every chart is drawn again
        for artifact in Artifact.objects.filter(kind="plotly"):
            artifact.meta.pop("rendition_png", None)
            Artifact.objects.filter(pk=artifact.pk).update(meta=artifact.meta)
    session = AnalysisSession.objects.get(pk=session_pk)
    if state == "hot":  # a long-running web process: libraries and fonts already loaded by an earlier export
        export_render(target=session, fmt=fmt)
    before = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = before.ru_maxrss / 1024
    started = time.perf_counter()
    filename, _, body = export_render(target=session, fmt=fmt)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds say what the export costs when the machine is shared (wall time includes waiting for a core).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    Path(out_dir, filename).write_bytes(body)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"fmt": fmt, "state": state, "seconds": seconds, "cpu": cpu, "peak_mb": peak, "base_mb": rss_before, "bytes": len(body), "file": filename})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--charts", type=int, default=50)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--keep", help="copy the exported files here")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-exports-")
    out_dir = args.keep or tempfile.mkdtemp(prefix="bench-exports-out-")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    try:
        django_setup(data_dir)
        t0 = time.perf_counter()
        session_pk = fixture_create(questions=args.questions, charts=args.charts, tables=args.tables)
        print(f"fixture: {args.questions} questions, {args.charts} plotly charts, {args.tables} tables "
              f"({time.perf_counter() - t0:.1f} s to create)")  # fmt: skip
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(
            f"{'format':<7}{'state':<6}{'seconds':>9}{'CPU s':>7}{'peak RSS MB':>13}{'(idle MB)':>11}{'size KB':>10}  target"
        )
        for fmt in ("json", "md", "pdf", "ipynb"):
            for state in ("cold", "warm", "hot"):
                queue = ctx.Queue()
                child = ctx.Process(target=export_child, args=(data_dir, session_pk, fmt, state, out_dir, queue))
                child.start()
                result = queue.get(timeout=600)
                child.join()
                limit_s, limit_mb = TARGETS.get(fmt, (None, None))
                verdict = []
                if limit_s:
                    verdict.append(f"{result['seconds'] / limit_s:.2f}× of {limit_s:g} s")
                if limit_mb:
                    verdict.append(f"{result['peak_mb'] / limit_mb:.2f}× of {limit_mb:g} MB")
                print(f"{fmt:<7}{state:<6}{result['seconds']:>9.2f}{result['cpu']:>7.2f}{result['peak_mb']:>13.0f}"
                      f"{result['base_mb']:>11.0f}{result['bytes'] / 1024:>10.0f}  {', '.join(verdict)}")  # fmt: skip
        print(f"files: {out_dir}; load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
