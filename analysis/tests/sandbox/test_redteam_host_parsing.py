"""Red team, host side: a kernel that has escaped every language layer writes whatever it wants on its
protocol socket. The host must turn each hostile message into a readable run error (never an uncaught
RecursionError, MemoryError or crash), kill that kernel, keep no pidfd or socket of it, and serve the next
cell. The kernels run with the language policy off (plain exec), as after a full escape.
"""

from __future__ import annotations

import os
import time

import pytest

from analysis.sandbox import ForkServer, Limits, Sandbox, protocol
from analysis.tests.sandbox.redteam import assert_still_serves

LIMITS = Limits(timeout=5, memory_mb=1024, output_bytes=20_000)

# The kernel finds its own protocol socket among its fds and writes FRAME (bytes) on it, then carries on.
WRITE_FRAME = """
import os, stat, struct, time
fd = next(f for f in range(3, 512) if _ok(f) and stat.S_ISSOCK(os.fstat(f).st_mode))
os.write(fd, {frame})
time.sleep({sleep})
"""
# The id of the request being answered, read from the kernel's serve() frame (possible once escaped).
RID = "f = sys._getframe(0)\nwhile 'request' not in f.f_locals:\n    f = f.f_back\nrid = f.f_locals['request']['id']\n"
OK_FD = "def _ok(f):\n    try:\n        os.fstat(f)\n        return True\n    except OSError:\n        return False\n"


def frame_code(payload: str, *, sleep: float = 0.0, header: str | None = None) -> str:
    """Cell code writing a length-prefixed `payload` (a bytes expression evaluated in the kernel)."""
    frame = f"struct.pack('!I', len({payload})) + {payload}" if header is None else header
    return "import os\n" + OK_FD + WRITE_FRAME.format(frame=frame, sleep=sleep)


# Messages the host must refuse: each a bytes expression built inside the kernel.
HOSTILE = {
    "deep_list_5000": "b'[' * 5000 + b']' * 5000",
    "deep_object_5000": "b'{\"a\":' * 5000 + b'1' + b'}' * 5000",
    "deep_list_100000": "b'[' * 100000 + b']' * 100000",
    "deep_below_recursion_limit": "b'[' * 500 + b']' * 500",
    "deep_in_final_result": "b'{\"ok\":true,\"final_result\":' + b'[' * 5000 + b']' * 5000 + b'}'",
    "deep_in_artifact": 'b\'{"ok":true,"artifacts":[{"kind":"table","rows":\' + b\'[\' * 3000 + b\']\' * 3000 + b\'}]}\'',
    "deep_in_error": "b'{\"ok\":false,\"error\":{\"message\":' + b'{\"a\":' * 3000 + b'1' + b'}' * 3000 + b'}}'",
    "unbalanced_deep": "b'[' * 5000 + b'}' * 5000",
    "empty_list_flood": "b'[' + b'[],' * 2_000_000 + b'[]]'",
    "empty_object_flood": "b'{\"ok\":true,\"final_result\":[' + b'{},' * 2_000_000 + b'{}]}'",
    "number_flood": "b'{\"ok\":true,\"final_result\":[' + b'0,' * 3_000_000 + b'0]}'",
    "key_flood": "b'{' + b'\"k\":0,' * 1_100_000 + b'\"k\":0}'",
    "nan": 'b\'{"ok":true,"final_result":NaN}\'',
    "infinity_peak_memory": 'b\'{"ok":true,"peak_memory":Infinity}\'',
    "minus_infinity": "b'[-Infinity]'",
    "huge_integer": "b'{\"ok\":true,\"peak_memory\":' + b'9' * 100000 + b'}'",
    "not_utf8": 'b\'{"ok":true,"stdout":"\\xff\\xfe"}\'',
    "pickle": "b'cos\\nsystem\\n(S\\'id\\'\\ntR.'",
    "python_literal": "b\"{'ok': True}\"",
    "empty_frame": "b''",
    "whitespace_frame": "b'   '",
    "trailing_garbage": 'b\'{"ok":true}{"ok":true}\'',
    "truncated_json": 'b\'{"ok":true,"stdout":"abc\'',
    "json_array": "b'[1,2,3]'",
    "json_string": "b'\"ok\"'",
    "json_null": "b'null'",
    "error_is_text": 'b\'{"ok":false,"error":"boom"}\'',
    "artifacts_not_a_list": 'b\'{"ok":true,"artifacts":{"kind":"plotly"}}\'',
    "artifact_not_an_object": 'b\'{"ok":true,"artifacts":[5]}\'',
    "nul_bytes": "b'\\x00' * 64",
}

# Frames that break the framing itself.
FRAMING = {
    "length_over_cap": "struct.pack('!I', 2**31) + b'{}'",
    "length_max": "b'\\xff\\xff\\xff\\xff'",
    "length_larger_than_sent": "struct.pack('!I', 10_000_000) + b'{\"ok\":true}'",
    "half_header": "b'\\x00\\x00'",
    "header_then_garbage": "struct.pack('!I', 3) + b'\\xff\\xff\\xff'",
}


@pytest.fixture(scope="module")
def forkserver():
    server = ForkServer(policy_module="analysis.tests.sandbox.no_policy")
    yield server
    server.close()


@pytest.fixture
def sandbox(forkserver, workspace):
    with Sandbox(workspace, LIMITS, server=forkserver) as sb:
        yield sb


@pytest.mark.parametrize("payload", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_message_becomes_a_readable_run_error(sandbox, forkserver, payload):
    result = sandbox.run(frame_code(payload))

    assert not result.ok
    assert result.killed_reason == "protocol", result.error
    assert result.error["type"] == "SandboxProtocolError"
    assert "The kernel sent an invalid result" in result.error["message"]
    assert len(result.error["message"]) < 600
    assert result.state_lost
    assert_still_serves(sandbox, forkserver)


@pytest.mark.parametrize("frame", FRAMING.values(), ids=FRAMING.keys())
def test_a_malformed_frame_ends_the_run_with_an_error_within_the_time_limit(sandbox, forkserver, frame):
    result = sandbox.run(frame_code("", header=frame, sleep=0.2))

    assert not result.ok
    assert result.killed_reason in {"protocol", "timeout"}, result.error
    assert result.duration < LIMITS.timeout + 3
    assert_still_serves(sandbox, forkserver)


def test_a_result_not_answering_this_cell_is_refused(sandbox, forkserver):
    forged = 'b\'{"ok":true,"stdout":"forged","final_result":"forged"}\''

    result = sandbox.run(frame_code(forged))
    mine = sandbox.run("print('mine')")

    assert result.killed_reason == "protocol"
    assert "out of turn" in result.error["message"]
    assert "forged" not in result.stdout
    assert mine.stdout == "mine\n"


def test_a_message_left_over_from_a_cell_is_never_taken_for_the_next_cells_result(sandbox, forkserver):
    # The kernel replays its own last request id on a second, late message.
    code = "import os, stat, struct, sys, time, json\n" + OK_FD
    code += "fd = next(f for f in range(3, 512) if _ok(f) and stat.S_ISSOCK(os.fstat(f).st_mode))\n"
    code += RID
    code += "late = json.dumps({'ok': True, 'stdout': 'stale', 'id': rid}).encode()\n"
    code += "os.write(fd, struct.pack('!I', len(late)) + late)\n"
    sandbox.run(code)  # the forged reply (right id) is read as this cell's; the kernel's own one is left over
    time.sleep(0.3)

    mine = sandbox.run("print('mine')")

    assert mine.stdout == "mine\n"
    assert mine.state_lost
    assert "between executions" in mine.state_lost_reason


def test_the_host_bounds_text_fields_of_a_forged_result(sandbox, forkserver):
    code = "import sys\n" + RID + "rid = rid.encode()\n"
    forged = 'b\'{"ok":true,"id":"\' + rid + b\'","stdout":"\' + b\'x\' * 5_000_000 + b\'","display":"\' + b\'y\' * 1_000_000 + b\'"}\''

    result = sandbox.run(code + frame_code(forged))

    assert len(result.stdout) < LIMITS.output_bytes + 500
    assert "cut by the host" in result.stdout
    assert len(result.display) < 11_000


def test_a_forged_kill_reason_or_memory_figure_is_not_believed(sandbox, forkserver):
    code = "import sys\n" + RID + "rid = rid.encode()\n"
    forged = 'b\'{"ok":true,"id":"\' + rid + b\'","killed_reason":"timeout","peak_memory":"lots"}\''

    result = sandbox.run(code + frame_code(forged))

    assert result.killed_reason == "crashed"
    assert result.peak_memory == 0
    assert_still_serves(sandbox, forkserver)


def test_a_lone_surrogate_in_output_arrives_as_text_that_can_be_saved(sandbox):
    result = sandbox.run("print('a\\ud800b')\nfinal_result = {'k\\udfff': ['\\ud83d']}")

    assert result.ok, result.error
    assert result.stdout == "a?b\n"
    assert result.final_result == {"k?": ["?"]}
    result.stdout.encode("utf-8")


def test_a_kernel_that_closes_its_socket_and_lives_on_is_killed(sandbox, forkserver):
    code = "import os, stat, time\n" + OK_FD
    code += "for f in range(3, 512):\n    if _ok(f) and stat.S_ISSOCK(os.fstat(f).st_mode):\n        os.close(f)\n"
    code += "time.sleep(60)"
    sandbox.run("1")
    pid = sandbox._kernel.pid

    result = sandbox.run(code)

    assert not result.ok
    assert result.killed_reason == "crashed"
    assert not _alive(pid)
    assert_still_serves(sandbox, forkserver)


def _alive(pid: int) -> bool:
    """Running (not a zombie awaiting its parent's wait)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kernels_of(server: ForkServer) -> set[int]:
    """Live child processes of the fork server: kernels and pre-forked spares."""
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[1]) == server.proc.pid:
            children.add(int(entry))
    return children


def _settled(server: ForkServer, expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while len(_kernels_of(server)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(_kernels_of(server))


def test_a_burst_of_hostile_output_leaks_no_fd_and_leaves_no_kernel(forkserver, workspace):
    with Sandbox(workspace, LIMITS, server=forkserver) as warm:
        assert warm.run("1 + 1").ok
    baseline_kernels = _settled(forkserver, 1)
    baseline_fds = len(os.listdir("/proc/self/fd"))

    with Sandbox(workspace, LIMITS, server=forkserver) as sb:
        outcomes = [sb.run(frame_code(payload)).killed_reason for payload in HOSTILE.values()]
        outcomes += [sb.run(frame_code("", header=frame, sleep=0.2)).killed_reason for frame in FRAMING.values()]
        assert sb.run("1 + 1").ok

    assert set(outcomes) <= {"protocol", "timeout"}
    assert _settled(forkserver, baseline_kernels) == baseline_kernels
    assert len(os.listdir("/proc/self/fd")) == baseline_fds


def test_dropping_a_sandbox_without_closing_it_kills_its_kernel_and_closes_its_pidfd(forkserver, workspace):
    baseline_fds = len(os.listdir("/proc/self/fd"))
    sb = Sandbox(workspace, LIMITS, server=forkserver)
    assert sb.run("1 + 1").ok
    pid = sb._kernel.pid

    del sb
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not _alive(pid)
    assert len(os.listdir("/proc/self/fd")) == baseline_fds


def test_the_parser_refuses_deep_json_without_recursing():
    with pytest.raises(protocol.ProtocolError, match="deeper than 64"):
        protocol.loads_bounded(b"[" * 5000 + b"]" * 5000)


def test_the_parser_counts_values_outside_strings_only():
    text_with_brackets = b'{"stdout": "' + b"[[{,}]]," * 400_000 + b'"}'

    assert protocol.loads_bounded(text_with_brackets)["stdout"].startswith("[[{,}]]")
    with pytest.raises(protocol.ProtocolError, match="more than 1,000,000 values"):
        protocol.loads_bounded(b"[" + b"0," * 1_000_001 + b"0]")
