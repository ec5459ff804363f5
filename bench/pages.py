"""Page speed: server time, bytes and queries for the dashboard, the project page and the session page.

A fresh SQLite database (production settings: cached templates, DEBUG off) holds a user with 100 projects,
one project with 20 datasets and 30 sessions, and a session with 50 answered runs (thought, code, output, a
plotly chart, a table and an answer each). Every page is requested through Django's test client in this
process, so "server time" is the whole request inside Django (middleware, views, templates, queries) without
network or browser. Reported per page: median and p90 server time over ``--repeat`` requests, response bytes
(the session page also without the embedded chart JSON, which is data, not page), and the query count at two
sizes (10 vs 100 projects, 5 vs 50 runs): equal counts mean no N+1. The login page is the baseline, measured
in the same run, so the ratios stay comparable on a busy machine.

Targets: < 50 ms median server time, < 300 KB session page excluding chart data, constant query counts.

    .venv/bin/python bench/pages.py [--repeat 30] [--table-rows 25]

By default each table is a 2-row table stored without the first-page preview the run worker keeps;
``--table-rows N`` stores N-row tables with their preview, as a run does. Either way the session page shows
each table as a placeholder that the browser fills over htmx when it scrolls into view: the "table block"
line measures that request (the first table's first page).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHART_JSON = re.compile(rb'<script id="[^"]*" type="application/json">.*?</script>', re.S)


def django_setup(data_dir: str) -> None:
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codingagent.settings_test")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # 'testserver' allowed, e-mail in memory
    call_command("migrate", verbosity=0)


def figure(n: int) -> bytes:
    regions = ["North", "South", "East", "West"]
    return json.dumps({"data": [{"type": "bar", "x": regions, "y": [n + i for i in range(4)]}],
                       "layout": {"title": {"text": f"Revenue {n}"}}}).encode()  # fmt: skip


def build(*, projects: int, runs: int, table_rows: int = 0):
    from accounts.models import User
    from analysis.artifact_views import table_preview_meta
    from analysis.models import Run, Step
    from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
    from exports.tests.conftest import artifact_make, table_json
    from projects.tests.factories import DatasetFactory, ProjectFactory

    user = User.objects.create_user(f"bench-{projects}-{runs}@example.com", "bench-password-1")
    project = None
    for i in range(projects):
        project = ProjectFactory(owner=user, name=f"Project {i}", description="Quarterly numbers " * 4)
    for _ in range(20):
        DatasetFactory(project=project)
    sessions = [AnalysisSessionFactory(project=project, user=user) for _ in range(30)]
    rows = [[f"Region {i}", 1000.5 * i, "2024-01-05T00:00:00.000", i] for i in range(table_rows)]
    table_body = table_json(rows=rows) if table_rows else table_json()
    session = sessions[0]
    for n in range(runs):
        run = RunFactory(session=session, user=user, question=f"Revenue by region, take {n}?",
                         status=Run.Status.SUCCEEDED, tokens_in=1200, tokens_out=300, answer="**North** leads.")  # fmt: skip
        StepFactory(run=run, ordinal=1, kind=Step.Kind.THOUGHT, content="I will group revenue by region.")
        StepFactory(run=run, ordinal=2, kind=Step.Kind.CODE, content="df.groupby('region')['revenue'].sum()")
        StepFactory(run=run, ordinal=3, kind=Step.Kind.OUTPUT, content="North 24000\nSouth 16000\n")
        for ordinal, (kind, body) in enumerate((("plotly", figure(n)), ("table", table_body)), start=4):
            step = StepFactory(run=run, ordinal=ordinal, kind=Step.Kind.ARTIFACT, content=kind, data={"kind": kind})
            meta = {"preview": table_preview_meta(json.loads(body))} if kind == "table" and table_rows else {}
            artifact = artifact_make(project=project, session=session, run=run, step=step, kind=kind, body=body,
                                     title=f"{kind} {n}", meta=meta)  # fmt: skip
            Step.objects.filter(pk=step.pk).update(data={"kind": kind, "artifact_id": artifact.pk})
        StepFactory(run=run, ordinal=6, kind=Step.Kind.ANSWER, content="**North** leads with 24,000.")
    return user, project, session


def _first_table_url(session) -> str:
    from django.urls import reverse

    return reverse("exports:artifact-detail", args=[session.artifacts.filter(kind="table").earliest("pk").pk])


def measure(client, url: str, repeat: int, headers: dict | None = None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, headers=headers)  # warm caches (templates, URL resolver)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
    body = response.content
    return {
        "median_ms": statistics.median(times),
        "p90_ms": sorted(times)[int(len(times) * 0.9) - 1],
        "bytes": len(body),
        "bytes_without_charts": len(CHART_JSON.sub(b"", body)),
        "queries": len(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--table-rows", type=int, default=0,
                        help="give each table this many rows and the first-page preview a run stores (shown on the "
                             "session page); 0: a 2-row table stored without one, loaded by the browser")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as data_dir:
        django_setup(data_dir)
        from django.test import Client
        from django.urls import reverse

        small_user, small_project, small_session = build(projects=10, runs=5, table_rows=args.table_rows)
        user, project, session = build(projects=100, runs=50, table_rows=args.table_rows)
        pages = {
            "dashboard (100 projects)": (reverse("projects:dashboard"), reverse("projects:dashboard")),
            "project (20 datasets)": (reverse("projects:project-detail", args=[project.pk]),
                                      reverse("projects:project-detail", args=[small_project.pk])),
            "project sessions fragment (30)": (reverse("analysis:project-sessions", args=[project.pk]),
                                               reverse("analysis:project-sessions", args=[small_project.pk])),
            "session (50 runs)": (reverse("analysis:session-detail", args=[session.pk]),
                                  reverse("analysis:session-detail", args=[small_session.pk])),
            "session artifacts panel (100)": (reverse("exports:session-artifacts", args=[session.pk]),
                                              reverse("exports:session-artifacts", args=[small_session.pk])),
            "table block (htmx, lazy load)": (_first_table_url(session), _first_table_url(small_session)),
        }  # fmt: skip
        anonymous = Client()
        baseline = measure(anonymous, reverse("accounts:login"), args.repeat)
        client, small_client = Client(), Client()
        client.force_login(user)
        small_client.force_login(small_user)
        print(f"baseline: login page {baseline['median_ms']:.1f} ms median, {baseline['bytes'] / 1024:.1f} KB")
        print(
            f"{'page':32} {'median':>9} {'p90':>9} {'x login':>8} {'KB':>8} {'KB -charts':>10} {'queries big/small':>18}"
        )
        failures = []
        for name, (url, small_url) in pages.items():
            headers = {"HX-Request": "true"} if name.startswith("table block") else None  # as htmx asks for it
            big = measure(client, url, args.repeat, headers)
            small = measure(small_client, small_url, 3, headers)
            constant = big["queries"] == small["queries"]
            print(f"{name:32} {big['median_ms']:7.1f}ms {big['p90_ms']:7.1f}ms {big['median_ms'] / baseline['median_ms']:7.1f}x "
                  f"{big['bytes'] / 1024:8.1f} {big['bytes_without_charts'] / 1024:10.1f} "
                  f"{big['queries']:>8}/{small['queries']:<8}{'' if constant else ' NOT CONSTANT'}")  # fmt: skip
            if big["median_ms"] >= 50:
                failures.append(f"{name}: {big['median_ms']:.1f} ms median (target < 50 ms)")
            if not constant:
                failures.append(f"{name}: {big['queries']} queries vs {small['queries']} at the small size")
            if name.startswith("session (") and big["bytes_without_charts"] >= 300 * 1024:
                failures.append(f"{name}: {big['bytes_without_charts'] / 1024:.0f} KB without charts (target < 300 KB)")
        print("targets: all met" if not failures else "targets missed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
