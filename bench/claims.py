"""Claims speed: an answer of 50 numbers against a run with 20 tables of 1,000 rows (target: under 100 ms).

The run is stored the way the product stores it (SQLite in a temporary DATA_DIR, table artifacts as JSON files in
local storage, an output step with a final_result and printed lines). Timed, each median over ``--repeat`` runs:

- "at the answer": what the worker adds when the run ends. The worker gathers each table's numbers while it
  saves the table (the sandbox payload is in memory then), so at the end it only matches the answer's numbers.
- "while saving a table": that gathering, per table (paid during the run, between model calls).
- "recomputed from storage": the fallback path (``selectors.run_value_pool``): read the steps and every table
  file back, gather, match; the baseline beside it is reading and parsing those files alone.

Half the answer's numbers are true (rounded as a model would write them), half invented.

    .venv/bin/python bench/claims.py [--tables 20] [--rows 1000] [--numbers 50] [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 100.0


def django_setup(data_dir: str) -> None:
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codingagent.settings_test")
    import django

    django.setup()


def table_body(index: int, rows: int) -> dict:
    rng = random.Random(index)
    regions = ["North", "South", "East", "West", "Central"]
    data = [
        [f"{regions[r % 5]}-{r}", rng.uniform(0, 1e5), rng.randint(0, 10**6), rng.random(), rng.uniform(-50, 50)]
        for r in range(rows)
    ]
    columns = ["label", "revenue", "units", "share", "change"]
    return {"columns": columns, "rows": data, "shape": [rows, 5], "dtypes": {}, "truncated": False, "index_columns": 1}


def answer_make(bodies: list[dict], numbers: int) -> str:
    rng = random.Random(7)
    parts = []
    for n in range(numbers):
        if n % 2:  # invented
            parts.append(f"another reached {rng.uniform(1e6, 2e6):,.2f}")
        else:
            body = bodies[n % len(bodies)]
            value = body["rows"][rng.randrange(len(body["rows"]))][1]
            parts.append(f"one region reached {value:,.1f}")
    return "; ".join(parts) + "."


def fixture_create(*, tables: int, rows: int) -> tuple[int, list[dict]]:
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    from accounts.models import User
    from analysis.models import AnalysisSession, Artifact, Run, Step
    from projects.models import Project, ProjectMember

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(email="bench@example.com", password="bench-password-1")
    project = Project.objects.create(owner=user, name="Bench project")
    ProjectMember.objects.create(project=project, user=user, role="owner")
    session = AnalysisSession.objects.create(project=project, user=user, title="Claims bench")
    run = Run.objects.create(session=session, user=user, question="How did each region do?", status="running")
    Step.objects.create(run=run, ordinal=1, kind="code", content="...")
    Step.objects.create(
        run=run, ordinal=2, kind="output", content="rows: 20000\nmean: 50123.4\n", data={"final_result": {"n": 20000}}
    )
    bodies = []
    for t in range(tables):
        body = table_body(t, rows)
        bodies.append(body)
        step = Step.objects.create(run=run, ordinal=3 + t, kind="artifact", content=f"Table {t}")
        artifact = Artifact(project=project, session=session, run=run, step=step, kind="table", title=f"Table {t}",
                            mime="application/json", meta={"shape": body["shape"]})  # fmt: skip
        raw = json.dumps(body).encode()
        artifact.size = len(raw)
        artifact.file.save(f"t{t}.json", ContentFile(raw), save=False)
        artifact.save()
    return run.pk, bodies


def timed(fn, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-claims-")
    try:
        django_setup(data_dir)
        from analysis import claims, selectors
        from analysis.models import Run

        run_pk, bodies = fixture_create(tables=args.tables, rows=args.rows)
        run = Run.objects.get(pk=run_pk)
        answer = answer_make(bodies, args.numbers)

        def read_tables():
            return [selectors.table_artifact_body(artifact=a) for a in run.artifacts.all()]

        def recompute():
            pool = selectors.run_value_pool(run=run)
            return claims.claims_match(answer=answer, question=run.question, pool=pool)

        def gather():
            pool = claims.ValuePool()
            for index, body in enumerate(bodies):
                pool.add_table_body(body, step=3 + index, title=f"Table {index}")
            return pool

        def at_answer(pool):
            pool._index = None  # as at the end of a run: the search index is built on the first lookup
            return claims.claims_match(answer=answer, question=run.question, pool=pool)

        recompute()  # warm imports and the storage path once
        gathered = gather()
        baseline_ms, _ = timed(read_tables, args.repeat)
        recompute_ms, _ = timed(recompute, args.repeat)
        gather_ms, _ = timed(gather, args.repeat)
        answer_ms, found = timed(lambda: at_answer(gathered), args.repeat)
        verified = sum(1 for claim in found if claim["verified"])
        print(f"answer: {len(found)} numbers ({verified} verified) vs {args.tables} tables x {args.rows} rows")
        print(f"at the answer (matching)     {answer_ms:7.1f} ms")
        print(f"while saving a table         {gather_ms / args.tables:7.1f} ms per table")
        print(f"recomputed from storage      {recompute_ms:7.1f} ms   {recompute_ms / baseline_ms:4.2f}x baseline")
        print(f"  baseline: read tables      {baseline_ms:7.1f} ms")
        verdict = "met" if answer_ms < TARGET_MS else "MISSED"
        print(f"target: claims at the answer under {TARGET_MS:.0f} ms: {verdict}")
        return 0
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
