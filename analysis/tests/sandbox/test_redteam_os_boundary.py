"""Red team of the OS boundary alone: the language policy is switched off (plain Python, any import,
os, ctypes, raw syscalls), the way `manage.py sandbox_exec --no-policy` runs code. Every case
asserts, from the host, that the concrete effect did not happen: a canary not read, a listener
not reached, a file not created, a process still alive, a kernel attribute unchanged.

The layout mirrors production: DATA_DIR holds db.sqlite3 and workspaces/session-N; the session
under attack is session-1 and its neighbours session-2 and session-10 hold canaries.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from analysis.sandbox import ForkServer, Limits, Sandbox, diskquota
from analysis.sandbox.host import NO_POLICY_MODULE
from analysis.tests.sandbox.redteam import TOKEN, assert_still_serves, leaked

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the OS layers (namespaces, uid drop) need root")

LIMITS = Limits(timeout=5, memory_mb=1024, disk_mb=32)
PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


@pytest.fixture(scope="module")
def forkserver():
    server = ForkServer(policy_module=NO_POLICY_MODULE)
    yield server
    server.close()


@pytest.fixture(scope="module")
def data_dir():
    """A DATA_DIR as production lays it out, world-traversable so only the sandbox keeps kernels out."""
    root = tempfile.mkdtemp(prefix="sandbox-datadir-")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "db.sqlite3"), "w") as f:
        f.write(f"SQLite format 3 {TOKEN}")
    for name in ("session-2", "session-10"):
        os.makedirs(os.path.join(root, "workspaces", name))
        with open(os.path.join(root, "workspaces", name, "secret.csv"), "w") as f:
            f.write(f"a\n{TOKEN}\n")
        os.chmod(os.path.join(root, "workspaces", name), 0o777)
        os.chmod(os.path.join(root, "workspaces", name, "secret.csv"), 0o666)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workspace(data_dir):
    path = os.path.join(data_dir, "workspaces", "session-1")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox(forkserver, workspace):
    with Sandbox(workspace, LIMITS, server=forkserver) as sb:
        yield sb


@pytest.fixture(scope="module")
def neighbour(forkserver, data_dir):
    """Another session's live kernel in the same fork server, running as the same uid."""
    path = os.path.join(data_dir, "workspaces", "session-2")
    with Sandbox(path, LIMITS, server=forkserver) as sb:
        result = sb.run("import os\nos.environ['NEIGHBOUR_SECRET'] = " + repr(TOKEN) + "\nos.getpid()")
        assert result.ok, result.error
        yield sb, int(result.display)


@pytest.fixture(scope="module")
def root_canary():
    path = f"/root/sandbox-canary-{secrets.token_hex(4)}"
    with open(path, "w") as f:
        f.write(TOKEN)
    yield path
    os.unlink(path)


@pytest.fixture(scope="module")
def tmp_canary():
    path = f"/tmp/sandbox-canary-{secrets.token_hex(4)}"
    with open(path, "w") as f:
        f.write(TOKEN)
    os.chmod(path, 0o644)
    yield path
    os.unlink(path)


@pytest.fixture(scope="module")
def unix_listener():
    """Pathname and abstract UNIX stream listeners anyone may connect to; they record connections."""
    folder = tempfile.mkdtemp(prefix="sandbox-sock-")
    os.chmod(folder, 0o777)
    path = os.path.join(folder, "open.sock")
    abstract = "\0sandbox-redteam-" + secrets.token_hex(4)
    servers = []
    for address in (path, abstract):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen(8)
        server.settimeout(0.1)
        servers.append(server)
    os.chmod(path, 0o777)
    received: list[str] = []
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            for server in servers:
                try:
                    conn, _ = server.accept()
                except (TimeoutError, OSError):
                    continue
                received.append(server.getsockname())
                conn.close()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield {"path": path, "abstract": abstract[1:], "received": received}
    stop.set()
    thread.join()
    for server in servers:
        server.close()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def udp_listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.3)
    yield server
    server.close()


@pytest.fixture
def victim():
    """A host process of the same uid as nothing in the sandbox: it must outlive every signal sent."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def _limits(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as f:
        return f.read()


def _kernel_pid(sandbox: Sandbox) -> int:
    result = sandbox.run("import os\nos.getpid()")
    assert result.ok, result.error
    return int(result.display)


# --- reading outside the workspace --------------------------------------------------------------------

READS = {
    "database_file": "open(DATA + '/db.sqlite3').read()",
    "database_file_by_relative_path": "open('../../db.sqlite3').read()",
    "neighbour_workspace": "open(DATA + '/workspaces/session-2/secret.csv').read()",
    "neighbour_with_common_prefix": "open('../session-10/secret.csv').read()",
    "neighbour_by_directory_listing": "import os\n[open(os.path.join('..', d, f)).read() for d in os.listdir('..') for f in os.listdir(os.path.join('..', d))]",
    "root_home": "open(ROOTCANARY).read()",
    "root_home_listing": "import os\nos.listdir('/root')",
    "host_tmp": "open(TMPCANARY).read()",
    "host_tmp_by_glob": "import glob\n[open(p).read() for p in glob.glob('/tmp/sandbox-canary-*')]",
    "proc_host_environ": "open('/proc/HOSTPID/environ').read()",
    "proc_init_environ": "open('/proc/1/environ').read()",
    "proc_self_root_escape": "open('/proc/self/root' + TMPCANARY).read()",
    "proc_host_cwd_link": "import os\nos.listdir('/proc/HOSTPID/cwd')",
    "raw_openat_syscall": LIBC
    + "fd = libc.open(TMPCANARY.encode(), 0)\nos.read(fd, 100) if fd >= 0 else ctypes.get_errno()",
    "open_by_handle_at": LIBC + "libc.syscall(304, -100, None, 0)\nctypes.get_errno()",
    "etc_shadow": "open('/etc/shadow').read()",
    "etc_passwd_lists_host_users": "open('/etc/passwd').read()",
    "postgres_socket_directory": "import os\nos.listdir('/var/run/postgresql')",
    "dev_shm": "import os\nos.listdir('/dev/shm')",
    "sys_firmware": "import os\nos.listdir('/sys')",
    "numpy_fromfile_host_tmp": "import numpy as np\nbytes(np.fromfile(TMPCANARY, dtype='uint8'))",
    "mmap_host_tmp": "import mmap\nf = open(TMPCANARY)\nmmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:]",
}


def _fill(code: str, data_dir: str, root_canary: str, tmp_canary: str) -> str:
    return (
        code.replace("DATA", repr(data_dir))
        .replace("ROOTCANARY", repr(root_canary))
        .replace("TMPCANARY", repr(tmp_canary))
        .replace("HOSTPID", str(os.getpid()))
    )


@pytest.mark.parametrize("code", READS.values(), ids=READS.keys())
def test_plain_python_reads_nothing_outside_the_workspace(
    sandbox, forkserver, data_dir, root_canary, tmp_canary, neighbour, code
):
    result = sandbox.run(_fill(code, data_dir, root_canary, tmp_canary))

    assert not leaked(result, TOKEN)
    assert "root:" not in (result.display or "")
    assert_still_serves(sandbox, forkserver)


def test_a_root_owned_private_file_in_the_workspace_is_unreadable(sandbox, workspace):
    sandbox.run("1")  # the kernel is up and has chowned what was there; this file comes afterwards
    secret = os.path.join(workspace, "private.csv")
    with open(secret, "w") as f:
        f.write(TOKEN)
    os.chmod(secret, 0o600)

    result = sandbox.run("open('private.csv').read()")

    assert result.error["type"] == "PermissionError"
    assert not leaked(result, TOKEN)


def test_a_root_owned_private_file_on_a_read_only_path_is_unreadable(sandbox, forkserver):
    secret = os.path.join(forkserver.home, "matplotlib", "private-" + secrets.token_hex(4))
    with open(secret, "w") as f:
        f.write(TOKEN)
    os.chmod(secret, 0o600)
    try:
        result = sandbox.run(f"open({secret!r}).read()")
    finally:
        os.unlink(secret)

    assert result.error["type"] == "PermissionError"
    assert not leaked(result, TOKEN)


def test_the_neighbour_kernel_is_invisible(sandbox, neighbour):
    _, pid = neighbour
    own = _kernel_pid(sandbox)

    result = sandbox.run(
        f"import os\n[os.path.exists(p) for p in ('/proc/{pid}', '/proc/{pid}/environ', '/proc/{pid}/cwd', '/proc/1')]"
    )
    listing = sandbox.run("import os\nsorted(os.listdir('/proc'))")

    assert result.display == "[False, False, False, False]"
    assert listing.display == repr(sorted([str(own), "self"]))


def test_the_kernel_reads_its_own_proc_entries_only(sandbox):
    own = _kernel_pid(sandbox)

    result = sandbox.run("import os\n(os.readlink('/proc/self'), 'r-xp' in open('/proc/self/maps').read())")
    environ = sandbox.run("open('/proc/self/environ').read()")

    assert result.display == repr((str(own), True))
    assert not leaked(environ, TOKEN)


# --- writing outside the workspace --------------------------------------------------------------------

WRITES = {
    "host_tmp": "open('/tmp/' + NAME, 'w').write('x')",
    "data_dir": "open(DATA + '/' + NAME, 'w').write('x')",
    "data_dir_relative": "open('../../' + NAME, 'w').write('x')",
    "neighbour_workspace": "open(DATA + '/workspaces/session-2/' + NAME, 'w').write('x')",
    "neighbour_with_common_prefix": "open('../session-10/' + NAME, 'w').write('x')",
    "root_home": "open('/root/' + NAME, 'w').write('x')",
    "dev_shm": "open('/dev/shm/' + NAME, 'w').write('x')",
    "venv_site_packages": "import sysconfig\nopen(sysconfig.get_paths()['purelib'] + '/' + NAME, 'w').write('x')",
    "raw_open_syscall": LIBC + "libc.open(('/tmp/' + NAME).encode(), 0o101, 0o644)\nctypes.get_errno()",
    "rename_out_of_the_workspace": "open('a.txt', 'w').write('x')\nimport os\nos.rename('a.txt', DATA + '/' + NAME)",
    "hard_link_out_of_the_workspace": "open('a.txt', 'w').write('x')\nimport os\nos.link('a.txt', DATA + '/' + NAME)",
    "symlink_planted_for_the_host": "import os\nos.symlink(DATA + '/db.sqlite3', NAME)",
    "fifo_planted_for_the_host": "import os\nos.mkfifo(NAME)",
}


@pytest.mark.parametrize("code", WRITES.values(), ids=WRITES.keys())
def test_plain_python_writes_nothing_outside_the_workspace(sandbox, forkserver, workspace, data_dir, neighbour, code):
    name = "planted-" + secrets.token_hex(4)
    places = [
        f"/tmp/{name}",
        f"/root/{name}",
        f"/dev/shm/{name}",
        os.path.join(data_dir, name),
        os.path.join(data_dir, "workspaces", "session-2", name),
        os.path.join(data_dir, "workspaces", "session-10", name),
    ]

    sandbox.run(code.replace("NAME", repr(name)).replace("DATA", repr(data_dir)))

    assert [p for p in places if os.path.lexists(p)] == []
    planted = os.path.join(workspace, name)
    assert not os.path.islink(planted) and not (os.path.exists(planted) and not os.path.isfile(planted))
    assert_still_serves(sandbox, forkserver)


def test_the_private_tmp_is_not_the_host_tmp(sandbox):
    name = "private-" + secrets.token_hex(4)

    result = sandbox.run(f"open('/tmp/{name}', 'w').write('x')\nimport os\nos.path.exists('/tmp/{name}')")

    assert result.display == "True"
    assert not os.path.exists(f"/tmp/{name}")


# --- sockets ------------------------------------------------------------------------------------------

SOCKETS = {
    "tcp_loopback": "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1)",
    "tcp_raw_syscall": LIBC + "libc.syscall(41, 2, 1, 0)\nctypes.get_errno()",
    "unix_pathname_listener": "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(UNIXPATH)",
    "unix_abstract_listener": "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0' + ABSTRACT)",
    "unix_raw_socket_syscall": LIBC + "libc.syscall(41, 1, 1, 0)\nctypes.get_errno()",
    "unix_datagram_socketpair_sendto": (
        "import socket\na, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\na.sendto(b'x', UNIXPATH)"
    ),
    "unix_stream_socketpair_connect": "import socket\na, b = socket.socketpair()\na.connect(UNIXPATH)",
    "unix_stream_socketpair_sendto": "import socket\na, b = socket.socketpair()\na.sendto(b'x', UNIXPATH)",
    "inherited_socket_reconnect": "import socket\ns = socket.fromfd(3, socket.AF_UNIX, socket.SOCK_STREAM)\ns.connect(UNIXPATH)",
    "netlink_route": "import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)",
    "packet_socket": "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)",
}


@pytest.mark.parametrize("code", SOCKETS.values(), ids=SOCKETS.keys())
def test_no_socket_reaches_a_listener(sandbox, forkserver, listener, unix_listener, code):
    port, tcp_received = listener
    before = (len(tcp_received), len(unix_listener["received"]))
    filled = (
        code.replace("PORT", str(port))
        .replace("UNIXPATH", repr(unix_listener["path"]))
        .replace("ABSTRACT", repr(unix_listener["abstract"]))
    )

    sandbox.run(filled)
    time.sleep(0.2)  # the accept loops poll every 0.1-0.2 s

    assert (len(tcp_received), len(unix_listener["received"])) == before
    assert_still_serves(sandbox, forkserver)


def test_no_udp_datagram_reaches_a_listener(sandbox, udp_listener):
    port = udp_listener.getsockname()[1]

    sandbox.run(f"import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port}))")

    with pytest.raises(TimeoutError):
        udp_listener.recvfrom(16)


@pytest.mark.skipif(not os.path.exists(PG_SOCKET), reason="no local PostgreSQL socket on this machine")
def test_the_postgresql_socket_is_out_of_reach(sandbox):
    assert os.stat(PG_SOCKET).st_mode & 0o002  # world-writable on the host: only the sandbox keeps it out

    result = sandbox.run(
        f"import socket, os\nvisible = os.path.exists({PG_SOCKET!r})\n"
        f"s = socket.socket(socket.AF_UNIX)\ns.connect({PG_SOCKET!r})"
    )

    assert result.error["type"] in ("PermissionError", "FileNotFoundError")
    assert sandbox.run("visible").display == "False"


# --- processes, programs and signals ------------------------------------------------------------------

PROGRAMS = {
    "fork_syscall": LIBC + "pid = libc.syscall(57)\nif pid == 0:\n    open(MARKER, 'w'); os._exit(0)",
    "clone_syscall": LIBC + "pid = libc.syscall(56, 17, 0, 0, 0, 0)\nif pid == 0:\n    open(MARKER, 'w'); os._exit(0)",
    "vfork_syscall": LIBC + "pid = libc.syscall(58)\nif pid == 0:\n    libc._exit(0)",
    "execve_syscall": LIBC
    + "libc.execve(b'/bin/sh', (ctypes.c_char_p * 4)(b'sh', b'-c', ('touch ' + MARKER).encode(), None), None)",
    "posix_spawn": "import os\nos.posix_spawn('/usr/bin/touch', ['touch', MARKER], {})",
    "subprocess": "import subprocess\nsubprocess.run(['touch', MARKER])",
    "os_system": "import os\nos.system('touch ' + MARKER)",
    "clone_thread_into_a_new_namespace": (
        LIBC + "libc.syscall(56, 0x00010000 | 0x00000100 | 0x00000800 | 0x10000000, 0, 0, 0, 0)\nctypes.get_errno()"
    ),
}


@pytest.mark.parametrize("code", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_no_program_or_process_starts(sandbox, forkserver, marker_dir, code):
    marker = os.path.join(marker_dir, "ran-" + secrets.token_hex(4))

    sandbox.run(code.replace("MARKER", repr(marker)))
    time.sleep(0.1)

    assert not os.path.exists(marker)
    assert_still_serves(sandbox, forkserver)


SIGNALS = {
    "kill_host_process": "import os, signal\nos.kill(VICTIM, signal.SIGKILL)",
    "kill_every_process": "import os, signal\nos.kill(-1, signal.SIGKILL)",
    "kill_by_raw_syscall": LIBC + "libc.syscall(62, VICTIM, 9)\nctypes.get_errno()",
    "tgkill": LIBC + "libc.syscall(234, VICTIM, VICTIM, 9)\nctypes.get_errno()",
    "tkill": LIBC + "libc.syscall(200, VICTIM, 9)\nctypes.get_errno()",
    "rt_sigqueueinfo": LIBC + "libc.syscall(129, VICTIM, 9, (ctypes.c_char * 128)())\nctypes.get_errno()",
    "pidfd_send_signal": LIBC + "fd = libc.syscall(434, VICTIM, 0)\nlibc.syscall(424, fd, 9, None, 0)",
    "ptrace_attach": LIBC + "libc.ptrace(16, VICTIM, None, None)\nctypes.get_errno()",
}


@pytest.mark.parametrize("code", SIGNALS.values(), ids=SIGNALS.keys())
def test_signals_never_reach_another_process(sandbox, forkserver, victim, neighbour, code):
    neighbour_sandbox, neighbour_pid = neighbour

    sandbox.run(code.replace("VICTIM", str(victim.pid)))
    sandbox.run(code.replace("VICTIM", str(neighbour_pid)))
    sandbox.run(code.replace("VICTIM", str(forkserver.proc.pid)))

    assert victim.poll() is None
    assert neighbour_sandbox.run("1 + 1").display == "2"
    assert _status(neighbour_pid)["TracerPid"].strip() == "0"
    assert_still_serves(sandbox, forkserver)


def test_another_kernels_limits_cannot_be_changed(sandbox, neighbour):
    _, pid = neighbour
    before = _limits(pid)

    sandbox.run(
        "import resource\nresource.prlimit(PID, resource.RLIMIT_CPU, (1, 1))\n".replace("PID", str(pid))
        + "resource.prlimit(PID, resource.RLIMIT_AS, (1 << 20, 1 << 20))".replace("PID", str(pid))
    )

    assert _limits(pid) == before


def test_another_kernels_priority_and_cpus_cannot_be_changed(sandbox, neighbour):
    _, pid = neighbour
    nice_before = os.getpriority(os.PRIO_PROCESS, pid)
    cpus_before = os.sched_getaffinity(pid)

    sandbox.run(f"import os\nos.setpriority(os.PRIO_PROCESS, {pid}, 19)")
    sandbox.run("import os\nos.setpriority(os.PRIO_USER, os.getuid(), 19)")
    sandbox.run("import os\nos.setpriority(os.PRIO_PGRP, 0, 19)")
    sandbox.run(f"import os\nos.sched_setaffinity({pid}, {{0}})")

    assert os.getpriority(os.PRIO_PROCESS, pid) == nice_before
    assert os.sched_getaffinity(pid) == cpus_before


def test_another_kernels_memory_cannot_be_read(sandbox, neighbour):
    _, pid = neighbour

    result = sandbox.run(
        LIBC + "class iovec(ctypes.Structure):\n    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "buf = ctypes.create_string_buffer(4096)\nlocal = iovec(ctypes.addressof(buf), 4096)\n"
        f"remote = iovec(0x400000, 4096)\nn = libc.syscall(310, {pid}, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)\n"
        "(n, ctypes.get_errno())"
    )

    assert result.display == "(-1, 1)"  # EPERM from seccomp


# --- namespaces and privileges --------------------------------------------------------------------------

ESCALATIONS = {
    "unshare_user_namespace": LIBC + "libc.unshare(0x10000000)",
    "unshare_mount_namespace": LIBC + "libc.unshare(0x00020000)",
    "unshare_network_namespace": LIBC + "libc.unshare(0x40000000)",
    "unshare_pid_namespace": LIBC + "libc.unshare(0x20000000)",
    "setns_to_init": LIBC + "libc.setns(os.open('/proc/1/ns/mnt', 0), 0)",
    "setuid_root": "import os\nos.setuid(0)",
    "setresuid_root": "import os\nos.setresuid(0, 0, 0)",
    "setgid_root": "import os\nos.setgid(0)",
    "capset_all": LIBC
    + "libc.capset(ctypes.byref((ctypes.c_uint32 * 2)(0x20080522, 0)), ctypes.byref((ctypes.c_uint32 * 6)(*([0xFFFFFFFF] * 6))))",
    "ambient_raise": LIBC + "libc.prctl(47, 2, 21, 0, 0)",
    "mount_tmpfs": LIBC + "libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)",
    "chroot": "import os\nos.chroot('.')",
    "bpf_program": LIBC + "libc.syscall(321, 5, None, 0)",
    "io_uring": LIBC + "libc.syscall(425, 8, (ctypes.c_char * 120)())",
    "userfaultfd": LIBC + "libc.syscall(323, 0)",
    "perf_event_open": LIBC + "libc.syscall(298, (ctypes.c_char * 128)(), 0, -1, -1, 0)",
    "keyctl_session_keyring": LIBC + "libc.syscall(250, 1, None)",
    "memfd_create_outside_the_memory_limit": LIBC + "libc.memfd_create(b'x', 0)",
}


@pytest.mark.parametrize("code", ESCALATIONS.values(), ids=ESCALATIONS.keys())
def test_no_namespace_privilege_or_kernel_surface_is_gained(sandbox, forkserver, code):
    pid = _kernel_pid(sandbox)
    namespaces = {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("user", "mnt", "net", "pid", "ipc", "uts")}
    fds_before = len(os.listdir(f"/proc/{pid}/fd"))

    result = sandbox.run(code + "\nctypes.get_errno() if 'ctypes' in dir() else None")

    status = _status(pid)
    assert {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in namespaces} == namespaces
    assert status["Uid"].split() == ["65534"] * 4
    assert status["Gid"].split() == ["65534"] * 4
    assert {status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {"0000000000000000"}
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"
    assert len(os.listdir(f"/proc/{pid}/fd")) <= fds_before  # no bpf, io_uring, userfaultfd or memfd handle
    assert result.ok is False or result.display in ("1", "38")  # EPERM, or ENOSYS for clone3-like fallbacks
    assert_still_serves(sandbox, forkserver)


# --- environment --------------------------------------------------------------------------------------

ENVIRONMENT = {
    "os_environ": "import os\ndict(os.environ)",
    "libc_environ": LIBC + "env = ctypes.POINTER(ctypes.c_char_p).in_dll(libc, 'environ')\n"
    "out = []\ni = 0\nwhile env[i]:\n    out.append(env[i])\n    i += 1\nout",
    "proc_self_environ": "open('/proc/self/environ').read()",
    "initial_stack_environ": LIBC
    + "[libc.getenv(k.encode()) for k in ('SANDBOX_TEST_HOST_SECRET', 'SECRET_KEY', 'DATABASE_URL')]",
}


@pytest.mark.parametrize("code", ENVIRONMENT.values(), ids=ENVIRONMENT.keys())
def test_no_host_environment_variable_is_visible(sandbox, code):
    result = sandbox.run(code)

    assert not leaked(result, TOKEN)
    assert "SECRET_KEY" not in (result.display or "")
    assert "DATABASE_URL" not in (result.display or "")


# --- disk and memory ----------------------------------------------------------------------------------

DISK = {
    "one_big_file_in_chunks": "with open('big.bin', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * (1 << 20))",
    "many_files_under_the_per_file_cap": "for i in range(100):\n    open(f'part-{i}.bin', 'wb').write(b'x' * (1 << 20))",
    "many_tiny_files": "for i in range(200000):\n    open(f't{i}', 'w')",
    "private_temp_dir": "import tempfile\nfor _ in range(100):\n    tempfile.NamedTemporaryFile(delete=False).write(b'x' * (1 << 20))",
    "fallocate": "import os\nfd = os.open('alloc.bin', os.O_CREAT | os.O_WRONLY)\nos.posix_fallocate(fd, 0, 200 << 20)",
}


def _tree(path: str) -> tuple[int, int]:
    total, count = 0, 0
    for root, dirs, files in os.walk(path):
        count += len(dirs) + len(files)
        total += sum(os.lstat(os.path.join(root, f)).st_blocks * 512 for f in files)
    return total, count


@pytest.mark.parametrize("code", DISK.values(), ids=DISK.keys())
def test_the_workspace_never_holds_more_than_its_quota(sandbox, forkserver, workspace, code):
    result = sandbox.run(code)

    used, entries = _tree(workspace)
    assert not result.ok
    assert "No space left on device" in result.error["message"]
    assert used <= LIMITS.disk_mb << 20
    assert entries <= LIMITS.disk_mb * diskquota.FILES_PER_MB
    assert_still_serves(sandbox, forkserver)


def test_the_private_tmp_is_capped_too(sandbox, forkserver):
    result = sandbox.run(
        "with open('/tmp/fill', 'wb') as f:\n    for _ in range(200):\n        f.write(b'x' * (1 << 20))"
    )

    assert result.error["message"].startswith("[Errno 28] No space left on device")
    assert_still_serves(sandbox, forkserver)


def test_workspace_files_survive_the_sandbox_on_disk(forkserver, workspace):
    with open(os.path.join(workspace, "in.csv"), "w") as f:
        f.write("a\n1\n")
    with Sandbox(workspace, LIMITS, server=forkserver) as sb:
        result = sb.run("import pandas as pd\npd.read_csv('in.csv').to_csv('out.csv', index=False)")
        assert os.path.ismount(workspace)

    assert result.ok, result.error
    assert not os.path.ismount(workspace)
    with open(os.path.join(workspace, "out.csv")) as f:
        assert f.read() == "a\n1\n"


MEMORY = {
    "bytearray": "b = bytearray(3 << 30)",
    "numpy": "import numpy as np\na = np.ones(400_000_000)",
    "anonymous_mmap": "import mmap\nm = mmap.mmap(-1, 3 << 30)\nm[::4096] = b'x' * len(range(0, 3 << 30, 4096))",
    "raw_mmap_syscall": LIBC
    + "libc.mmap.restype = ctypes.c_void_p\np = libc.mmap(None, 3 << 30, 3, 0x22, -1, 0)\nctypes.memset(p, 1, 3 << 30)",
    "brk_growth": LIBC + "libc.sbrk.restype = ctypes.c_void_p\ngot = [libc.sbrk(1 << 28) for _ in range(12)]\n"
    "assert (1 << 64) - 1 not in got, 'the heap grew past the limit'",
}


@pytest.mark.parametrize("code", MEMORY.values(), ids=MEMORY.keys())
def test_memory_beyond_the_limit_is_refused(sandbox, forkserver, code):
    result = sandbox.run(code)

    assert not result.ok
    assert result.peak_memory < LIMITS.memory_mb << 20
    assert_still_serves(sandbox, forkserver)
