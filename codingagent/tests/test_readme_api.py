"""The README's API walk-through, run as written against a live server (daphne + a run worker)."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile

from codingagent.tests.browser.conftest import live_app  # noqa: F401  (the module-scoped live server)
from codingagent.tests.support import REPO_ROOT

# Only for the test: stop at the first failing command and show the body of any HTTP error.
_STRICT = """set -euo pipefail
curl() { command curl --fail-with-body --max-time 120 "$@"; }
"""


def readme_api_block() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## The API", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_api_examples_run_in_order_on_a_used_database(live_app, tmp_path):  # noqa: F811
    # Run from a folder shaped like the repository root: var/ is the live app's DATA_DIR (demo_password).
    (tmp_path / "var").symlink_to(live_app.data_dir)
    (tmp_path / "projects").symlink_to(REPO_ROOT / "projects")
    script = _STRICT + readme_api_block().replace("http://127.0.0.1:8000", live_app.url)
    first = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    # The second pass meets the first one's project, session and run: fixed ids would point at the wrong ones.
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert first.returncode == 0, f"{first.stdout[-3000:]}\n{first.stderr[-3000:]}"
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "event: done" in result.stdout and '"status": "succeeded"' in result.stdout
    assert (tmp_path / "session.pdf").read_bytes().startswith(b"%PDF")
    assert any(name.endswith(".md") for name in zipfile.ZipFile(tmp_path / "session-md.zip").namelist())
    assert json.loads((tmp_path / "project.ipynb").read_text())["cells"]


def test_the_readme_block_uses_no_hard_coded_ids():
    block = readme_api_block()

    assert not re.search(r"/(projects|sessions|runs)/\d", block)
