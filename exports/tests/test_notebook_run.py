"""The exported notebook re-runs top to bottom in plain Jupyter next to the dataset files."""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from exports.renderers import export_render
from projects.models import Dataset

pytestmark = pytest.mark.django_db

CSV = "region,amount\nNorth,120.5\nSouth,80\nNorth,30\nEast,95.25\n"


@pytest.fixture
def analysed_session(project):
    Dataset.objects.create(
        project=project, name="sales.csv", original_filename="Sales.csv", file="x.csv", size=len(CSV), format="csv",
        row_count=4, column_count=2, profile={},
    )  # fmt: skip
    session = AnalysisSessionFactory(project=project, title="Best region")
    run = RunFactory(session=session, question="Which region has the highest total?", answer="**North** (150.5).")
    StepFactory(run=run, ordinal=1, kind="code", content="df = pd.read_csv('sales.csv')\ndf.groupby('regio').sum()")
    StepFactory(run=run, ordinal=2, kind="error", content="KeyError: 'regio'", data={"traceback": "KeyError: 'regio'"})
    code = (
        "df = pd.read_csv('sales.csv')\n"
        "totals = df.groupby('region')['amount'].sum()\n"
        "final_result = {'region': totals.idxmax(), 'total': float(totals.max())}\n"
        "print(final_result)"
    )
    StepFactory(run=run, ordinal=3, kind="code", content=code)
    StepFactory(run=run, ordinal=4, kind="output", content="{'region': 'North', 'total': 150.5}\n",
                data={"final_result": {"region": "North", "total": 150.5}})  # fmt: skip
    run2 = RunFactory(session=session, question="And the mean?", answer="About 81.4.")
    StepFactory(
        run=run2, ordinal=1, kind="code", content="final_result = round(float(df['amount'].mean()), 2)\nfinal_result"
    )
    StepFactory(run=run2, ordinal=2, kind="output", content="", data={"final_result": 81.44, "display": "81.44"})
    return session


@pytest.mark.timeout(180)
def test_exported_notebook_runs_top_to_bottom_and_reproduces_the_final_values(analysed_session, tmp_path, monkeypatch):
    _, _, body = export_render(target=analysed_session, fmt="ipynb")
    nb = nbformat.reads(body.decode(), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print(repr(final_result))"))
    (tmp_path / "sales.csv").write_text(CSV)
    # The python3 kernel spec launches "python": make that the venv's interpreter.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()

    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    first_answer = "".join(o.get("text", "") for o in code_cells[1].outputs)
    assert first_answer.strip() == "{'region': 'North', 'total': 150.5}"
    assert code_cells[2].outputs[0]["data"]["text/plain"] == "81.44"
    assert code_cells[-1].outputs[0]["text"].strip() == "81.44"
    assert not any(o.get("output_type") == "error" for c in code_cells for o in c.outputs)
