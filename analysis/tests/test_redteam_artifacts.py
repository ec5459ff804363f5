"""Red team, output channel: what a kernel reports as artifacts is checked against the schema and the run's
budget before anything is stored. A bogus payload, a path trick or a flood must end in a readable error
(an error step, a message to the model), never in a stored artifact, a file read from outside the
workspace, or exports that fail later for everyone in the project.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib

import pytest
from django.urls import reverse
from pydantic_ai.messages import ModelResponse, TextPart

from analysis.models import Artifact, Run, Step
from analysis.sandbox import ForkServer, Limits, Sandbox
from analysis.services import (
    ArtifactBudget,
    ArtifactRejected,
    artifact_create_from_sandbox,
    artifact_prepare,
    path_within,
)
from analysis.tests.factories import RunFactory, StepFactory
from analysis.tests.test_agent import _run_with, _tool_returns, code_call, script

pytestmark = pytest.mark.django_db


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG header (IHDR) of the given size followed by a tiny image body."""
    ihdr = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))
    )
    raw = zlib.compress(b"\x00" + b"\x00\x00\x00" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FIGURE = json.dumps({"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {"title": {"text": "ok"}}})
TABLE = {"kind": "table", "columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]], "shape": [2, 2]}

# Each must be refused with a message naming the problem (a fragment of it is the value).
BOGUS = {
    "figure_data_is_a_number": ({"kind": "plotly", "json": '{"data": 5, "layout": []}'}, "'data' must be a list"),
    "figure_layout_is_a_list": ({"kind": "plotly", "json": '{"data": [], "layout": []}'}, "'layout' must be"),
    "figure_trace_is_a_number": ({"kind": "plotly", "json": '{"data": [1, 2]}'}, "trace 1"),
    "figure_trace_type_not_text": ({"kind": "plotly", "json": '{"data": [{"type": 5}]}'}, "'type'"),
    "figure_frames_not_a_list": ({"kind": "plotly", "json": '{"data": [], "frames": {}}'}, "'frames'"),
    "figure_is_a_list": ({"kind": "plotly", "json": "[1, 2]"}, "must be an object"),
    "figure_is_a_number": ({"kind": "plotly", "json": 5}, "needs the figure's JSON"),
    "figure_missing": ({"kind": "plotly"}, "needs the figure's JSON"),
    "figure_not_json": ({"kind": "plotly", "json": "{data: 1"}, "not usable JSON"),
    "figure_nan": ({"kind": "plotly", "json": '{"data": [{"y": [NaN]}]}'}, "not usable JSON"),
    "figure_5000_deep": ({"kind": "plotly", "json": '{"data": [' + "[" * 5000 + "]" * 5000 + "]}"}, "deeper"),
    "figure_too_many_traces": ({"kind": "plotly", "json": json.dumps({"data": [{}] * 2001})}, "traces"),
    "image_not_base64": ({"kind": "image", "data": "%%%not base64%%%"}, "not valid base64"),
    "image_empty": ({"kind": "image", "data": ""}, "no base64 data"),
    "image_html_bytes": ({"kind": "image", "data": b64(b"<script>alert(1)</script>")}, "not a PNG"),
    "image_svg_mime": ({"kind": "image", "data": b64(png()), "mime": "image/svg+xml"}, "must be PNG"),
    "image_decompression_bomb": ({"kind": "image", "data": b64(png(100_000, 100_000))}, "megapixels"),
    "image_zero_size": ({"kind": "image", "data": b64(png(0, 5))}, "pixels"),
    "image_name_not_text": ({"kind": "image", "data": b64(png()), "name": ["a"]}, "name must be text"),
    "table_columns_not_a_list": ({**TABLE, "columns": "a,b"}, "'columns'"),
    "table_columns_not_text": ({**TABLE, "columns": [1, 2]}, "'columns'"),
    "table_rows_not_lists": ({**TABLE, "rows": [1, 2]}, "'rows'"),
    "table_row_too_short": ({**TABLE, "rows": [[1]]}, "row 1 of the table has 1 cells"),
    "table_row_too_long": ({**TABLE, "rows": [[1, 2, 3]]}, "3 cells for 2 columns"),
    "table_shape_text": ({**TABLE, "shape": ["2", "2"]}, "'shape'"),
    "table_shape_negative": ({**TABLE, "shape": [-1, 2]}, "'shape'"),
    "table_shape_three_numbers": ({**TABLE, "shape": [1, 2, 3]}, "'shape'"),
    "table_dtypes_not_text": ({**TABLE, "dtypes": {"a": 5}}, "'dtypes'"),
    "table_index_columns_too_many": ({**TABLE, "index_columns": 3}, "'index_columns'"),
    "table_index_columns_bool": ({**TABLE, "index_columns": True}, "'index_columns'"),
    "table_truncated_text": ({**TABLE, "truncated": "yes"}, "'truncated'"),
    "table_too_many_rows": ({**TABLE, "rows": [[1, 2]] * 10_001}, "10,001 rows"),
    "table_too_many_columns": ({**TABLE, "columns": [str(i) for i in range(5001)], "rows": []}, "5,001 columns"),
    "file_absolute_path": ({"kind": "file", "name": "/etc/passwd"}, "not a path inside"),
    "file_parent_path": ({"kind": "file", "name": "../session-10/secret.csv"}, "not a path inside"),
    "file_inner_parent_path": ({"kind": "file", "name": "a/../../x"}, "not a path inside"),
    "file_private_tmp": ({"kind": "file", "name": ".sandbox-tmp/x"}, "not a path inside"),
    "file_nul": ({"kind": "file", "name": "a\x00b"}, "not a path inside"),
    "file_empty_name": ({"kind": "file", "name": ""}, "needs the file's path"),
    "file_name_not_text": ({"kind": "file", "name": 5}, "needs the file's path"),
    "file_data_not_base64": ({"kind": "file", "name": "a.txt", "data": "***"}, "not valid base64"),
    "unknown_kind": ({"kind": "html", "data": "<b>"}, "unknown artifact kind"),
    "no_kind": ({"data": "x"}, "unknown artifact kind"),
    "not_an_object": ([1, 2], "must be an object"),
    "title_not_text": ({**TABLE, "title": {"x": 1}}, "title must be text"),
}


@pytest.fixture
def run(session, alice):
    return RunFactory(session=session, user=alice, status=Run.Status.RUNNING)


@pytest.fixture
def step(run):
    return StepFactory(run=run, ordinal=1, kind=Step.Kind.ARTIFACT)


@pytest.mark.parametrize(("payload", "says"), BOGUS.values(), ids=BOGUS.keys())
def test_a_bogus_artifact_is_refused_with_a_reason_and_nothing_is_stored(run, step, tmp_path, payload, says):
    with pytest.raises(ArtifactRejected, match="not a valid artifact") as refused:
        artifact_create_from_sandbox(run=run, step=step, payload=payload, workspace=str(tmp_path))

    assert says in str(refused.value)
    assert not Artifact.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "plotly", "json": FIGURE},
        {"kind": "plotly", "json": json.loads(FIGURE)},
        {"kind": "image", "data": b64(png()), "name": "fig.png"},
        TABLE,
        {**TABLE, "columns": ["idx", "a"], "index_columns": 1, "dtypes": {"a": "int64"}},
        {"kind": "file", "name": "notes.txt", "data": b64(b"hello")},
    ],
    ids=["plotly_text", "plotly_object", "image", "table", "table_with_row_labels", "file_inline"],
)
def test_well_formed_artifacts_are_stored(run, step, payload):
    artifact = artifact_create_from_sandbox(run=run, step=step, payload=payload)

    assert artifact.pk
    assert artifact.size > 0


# --- path tricks ------------------------------------------------------------------------------------------


@pytest.fixture
def workspaces(tmp_path):
    """session-1 (ours) and session-10 (another session's, whose name starts with ours)."""
    ours, theirs = tmp_path / "session-1", tmp_path / "session-10"
    ours.mkdir()
    theirs.mkdir()
    (theirs / "secret.csv").write_text("canary-of-session-10\n")
    (tmp_path / "outside.txt").write_text("canary-outside\n")
    (ours / "ok.csv").write_text("a,b\n1,2\n")
    return ours, theirs


def test_containment_is_a_path_check_not_a_prefix_check(workspaces):
    ours, theirs = workspaces

    assert path_within(str(ours), str(ours / "ok.csv"))
    assert not path_within(str(ours), str(theirs / "secret.csv"))
    assert str(theirs / "secret.csv").startswith(str(ours))  # what the old check accepted


PATH_TRICKS = {
    "symlink_to_the_session_10_workspace": lambda ours, theirs: os.symlink(theirs / "secret.csv", ours / "leak.csv"),
    "relative_symlink_to_session_10": lambda ours, theirs: os.symlink("../session-10/secret.csv", ours / "leak.csv"),
    "symlink_to_a_host_file": lambda ours, theirs: os.symlink("/etc/passwd", ours / "leak.csv"),
    "symlink_outside_the_workspaces": lambda ours, theirs: os.symlink(ours.parent / "outside.txt", ours / "leak.csv"),
    "symlinked_folder": lambda ours, theirs: os.symlink(theirs, ours / "dir") or None,
    "hard_link_to_session_10": lambda ours, theirs: os.link(theirs / "secret.csv", ours / "leak.csv"),
    "fifo": lambda ours, theirs: os.mkfifo(ours / "leak.csv"),
    "folder": lambda ours, theirs: (ours / "leak.csv").mkdir(),
    "missing": lambda ours, theirs: None,
}


@pytest.mark.parametrize("trick", PATH_TRICKS.values(), ids=PATH_TRICKS.keys())
def test_a_file_artifact_is_read_only_from_inside_the_workspace(run, step, workspaces, trick):
    ours, theirs = workspaces
    trick(ours, theirs)
    name = "dir/secret.csv" if (ours / "dir").is_symlink() else "leak.csv"

    with pytest.raises(ArtifactRejected) as refused:
        artifact_create_from_sandbox(run=run, step=step, payload={"kind": "file", "name": name}, workspace=str(ours))

    assert name in str(refused.value)
    assert not Artifact.objects.exists()


def test_a_file_in_a_subfolder_is_stored_under_its_own_path(run, step, workspaces):
    ours, _ = workspaces
    (ours / "out").mkdir()
    (ours / "out" / "ok.csv").write_text("sub\n")

    artifact = artifact_create_from_sandbox(
        run=run, step=step, payload={"kind": "file", "name": "out/ok.csv"}, workspace=str(ours)
    )

    assert artifact.file.read() == b"sub\n"
    assert artifact.meta == {"name": "ok.csv", "path": "out/ok.csv"}


# --- budgets ----------------------------------------------------------------------------------------------


def test_the_file_bytes_a_run_copies_are_bounded(workspaces):
    ours, _ = workspaces
    for name in ("a.bin", "b.bin", "c.bin"):
        (ours / name).write_bytes(b"x" * 600_000)
    budget = ArtifactBudget(max_count=50, max_file_bytes=1_000_000)

    first = artifact_prepare(payload={"kind": "file", "name": "a.bin"}, workspace=str(ours), budget=budget)
    with pytest.raises(ArtifactRejected, match="larger than the 400,000 bytes left"):
        artifact_prepare(payload={"kind": "file", "name": "b.bin"}, workspace=str(ours), budget=budget)

    assert len(first.body) == 600_000
    assert budget.file_bytes == 600_000
    assert budget.count == 1


def test_without_a_budget_the_runs_stored_artifacts_count(run, settings):
    settings.SANDBOX_MAX_ARTIFACTS = 2
    for ordinal in (1, 2):
        artifact_create_from_sandbox(run=run, step=StepFactory(run=run, ordinal=ordinal), payload=TABLE)

    with pytest.raises(ArtifactRejected, match="already stored 2 artifacts"):
        artifact_create_from_sandbox(run=run, step=StepFactory(run=run, ordinal=3), payload=TABLE)


# --- through the real worker, with a kernel that has escaped the language policy ----------------------------


@pytest.fixture(scope="module")
def escaped_server():
    server = ForkServer(policy_module="analysis.tests.sandbox.no_policy")
    yield server
    server.close()


def _run(session, alice, model, server, question="chart it") -> Run:
    factory = lambda workspace: Sandbox(workspace, Limits(timeout=20), server=server)  # noqa: E731
    return _run_with(model, session, alice, question, executor_factory=factory)


BAD_FIGURE = """
import plotly.graph_objects as go
class Bad(go.Figure):
    def to_json(self, *args, **kwargs):
        return '{"data": 5, "layout": []}'
Bad(go.Bar(x=[1], y=[2])).show()
"""


def test_a_figure_whose_json_is_bogus_becomes_an_error_step_and_exports_still_work(
    client, session, alice, bob, escaped_server
):
    seen = {}

    def answer(messages):
        seen["observation"] = _tool_returns(messages)[-1]
        return ModelResponse(parts=[TextPart("Done.")])

    run = _run(session, alice, script(code_call(BAD_FIGURE), answer), escaped_server)

    assert run.status == Run.Status.SUCCEEDED
    assert not Artifact.objects.filter(run=run).exists()
    error = run.steps.get(kind=Step.Kind.ERROR)
    assert "'data' must be a list of traces, not int" in error.content
    assert "artifact not stored" in seen["observation"]
    for user in (alice, bob):
        client.force_login(user)
        for name, pk in (("exports:session-export", session.pk), ("exports:project-export", session.project_id)):
            for fmt in ("md", "pdf"):
                assert client.get(reverse(name, args=[pk]), {"format": fmt}).status_code == 200, (user, name, fmt)


def test_an_artifact_flood_stores_the_limit_and_says_what_was_left_out(session, alice, escaped_server, settings):
    settings.SANDBOX_MAX_ARTIFACTS = 5
    flood = "for i in range(4):\n    open(f'out{i}.csv', 'w').write('a\\n1\\n')\n"
    more = "for i in range(4, 40):\n    open(f'out{i}.csv', 'w').write('a\\n1\\n')\n"
    seen = {}

    def answer(messages):
        seen["observation"] = _tool_returns(messages)[-1]
        return ModelResponse(parts=[TextPart("Done.")])

    run = _run(session, alice, script(code_call(flood), code_call(more), answer), escaped_server)

    assert Artifact.objects.filter(run=run).count() == 5
    summary = run.steps.get(kind=Step.Kind.ERROR, data__artifact="over_limit")
    assert (
        "limit of 5 stored outputs (SANDBOX_MAX_ARTIFACTS); 35 more were not stored: 35 files (out11.csv"
        in summary.content
    )
    assert "artifact not stored: This run reached its limit of 5" in seen["observation"]
    assert seen["observation"].count("artifact: file") == 1


DEEP_MESSAGE = """
import os, stat, struct
def _ok(f):
    try:
        return stat.S_ISSOCK(os.fstat(f).st_mode)
    except OSError:
        return False
fd = next(f for f in range(3, 512) if _ok(f))
payload = b'[' * 5000 + b']' * 5000
os.write(fd, struct.pack('!I', len(payload)) + payload)
"""


def test_a_5000_deep_kernel_message_is_a_readable_error_step_not_an_internal_error(session, alice, escaped_server):
    seen = {}

    def answer(messages):
        seen["observation"] = _tool_returns(messages)[-1]
        return ModelResponse(parts=[TextPart("Done.")])

    run = _run(session, alice, script(code_call(DEEP_MESSAGE), code_call("final_result = 2"), answer), escaped_server)

    assert run.status == Run.Status.SUCCEEDED, run.error
    error = run.steps.get(kind=Step.Kind.ERROR)
    assert "The kernel sent an invalid result (message nests deeper than 64 levels)" in error.content
    assert run.steps.filter(kind=Step.Kind.OUTPUT, data__final_result=2).exists()
    assert "kernel was restarted" in seen["observation"]
