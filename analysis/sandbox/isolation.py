"""OS-level isolation of a kernel process, via ctypes: rlimits, network namespace, uid drop,
no_new_privs, Landlock and seccomp.

Each `apply_*` function returns a Layer saying whether it took effect and why not; nothing
raises on a missing kernel feature, so the sandbox degrades and reports instead of crashing.
Order matters and is driven by `forkserver`: namespaces and chown need root, Landlock paths
are opened before the uid drop, and seccomp comes last because it forbids what came before.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import signal
import struct
import sys
from dataclasses import asdict, dataclass

SANDBOX_UID = 65534
SANDBOX_GID = 65534

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
CLONE_NEWNET = 0x40000000


@dataclass
class Layer:
    name: str
    active: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _err(what: str) -> str:
    e = ctypes.get_errno()
    return f"{what} failed: {errno.errorcode.get(e, e)} ({os.strerror(e)})"


# --- process attributes ---------------------------------------------------------------


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def apply_no_new_privs() -> Layer:
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return Layer("no_new_privs", False, _err("prctl(PR_SET_NO_NEW_PRIVS)"))
    return Layer("no_new_privs", True, "set")


def apply_rlimits(*, memory_mb: int, file_size_mb: int, open_files: int, cpu_hard: int | None = None) -> Layer:
    """Hard limits the kernel cannot raise again once it has dropped root."""
    limits = {
        resource.RLIMIT_AS: memory_mb * 1024 * 1024,
        resource.RLIMIT_FSIZE: file_size_mb * 1024 * 1024,
        resource.RLIMIT_NOFILE: open_files,
        resource.RLIMIT_CORE: 0,
    }
    if cpu_hard is not None:
        limits[resource.RLIMIT_CPU] = cpu_hard
    try:
        for which, value in limits.items():
            resource.setrlimit(which, (value, value))
    except (OSError, ValueError) as exc:
        return Layer("rlimits", False, f"setrlimit failed: {exc}")
    # A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    detail = f"address space {memory_mb} MiB, file size {file_size_mb} MiB, {open_files} open files, no core dumps"
    return Layer("rlimits", True, detail)


def set_cpu_budget(seconds: float) -> None:
    """Give the next run `seconds` of CPU time on top of what the process used so far (SIGXCPU kills)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


# --- network namespace --------------------------------------------------------------


def apply_netns() -> Layer:
    """Move the calling process into a new, empty network namespace (loopback down)."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        return Layer("network_namespace", False, _err("unshare(CLONE_NEWNET)"))
    return Layer("network_namespace", True, "private network namespace with no interfaces up")


# --- uid drop ---------------------------------------------------------------------------

_CAP_VERSION_3 = 0x20080522
CAP_DAC_READ_SEARCH = 2


def _capset(effective: int, permitted: int) -> bool:
    header = struct.pack("Ii", _CAP_VERSION_3, 0)
    data = struct.pack("6I", effective, permitted, 0, 0, 0, 0)
    hbuf, dbuf = ctypes.create_string_buffer(header), ctypes.create_string_buffer(data)
    return _libc.capset(hbuf, dbuf) == 0


def path_searchable_by_other(path: str) -> bool:
    """True if every ancestor directory of `path` can be traversed by an unrelated uid."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts)):
        ancestor = os.sep.join(parts[:i]) or os.sep
        try:
            st = os.stat(ancestor)
        except OSError:
            return False
        if not st.st_mode & 0o001 and st.st_uid != SANDBOX_UID:
            return False
    return True


def apply_uid_drop(*, keep_read_search: bool) -> Layer:
    """Become SANDBOX_UID. `keep_read_search` keeps CAP_DAC_READ_SEARCH alone so the kernel can
    traverse root-only directories holding the interpreter or workspace; only sensible when
    Landlock confines what it may read."""
    if os.geteuid() != 0:
        return Layer("unprivileged_uid", False, f"not started as root; kernel runs as the host uid {os.geteuid()}")
    try:
        os.setgroups([])
        if keep_read_search:
            _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    except OSError as exc:
        return Layer("unprivileged_uid", False, f"setuid failed: {exc}")
    detail = f"uid/gid {SANDBOX_UID}, no supplementary groups"
    if keep_read_search:
        bit = 1 << CAP_DAC_READ_SEARCH
        if not _capset(bit, bit):
            return Layer("unprivileged_uid", True, detail + "; " + _err("capset"))
        detail += "; keeps CAP_DAC_READ_SEARCH only (reads confined by Landlock)"
    else:
        detail += ", no capabilities"
    return Layer("unprivileged_uid", True, detail)


# --- Landlock ---------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13
FS_TRUNCATE = 1 << 14
FS_IOCTL_DEV = 1 << 15
_FILE_ONLY_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

READ_ONLY = FS_READ_FILE | FS_READ_DIR
# No MAKE_SYM (a symlink left in the workspace could trick the host into reading elsewhere),
# no REFER (no hard links or renames from other directories), no devices, fifos or sockets.
READ_WRITE = READ_ONLY | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG | FS_TRUNCATE


def landlock_abi() -> int:
    _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32]
    abi = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(abi), 0)


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


class LandlockRuleset:
    """Built while still root (paths are opened now), enforced later by `restrict_self`."""

    def __init__(self) -> None:
        self.abi = landlock_abi() if platform.machine() in ("x86_64", "aarch64") else 0
        self.fd = -1
        self.error = "" if self.abi else "Landlock not supported by this kernel"
        self.handled = _handled_fs(self.abi) if self.abi else 0
        if not self.abi:
            return
        net = 0b11 if self.abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, and no rule allows any port
        scoped = 0b11 if self.abi >= 6 else 0  # abstract unix sockets | signals outside the domain
        attr = struct.pack("QQQ", self.handled, net, scoped)
        size = 24 if self.abi >= 6 else 16 if self.abi >= 4 else 8
        buf = ctypes.create_string_buffer(attr[:size])
        self.fd = int(_libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, size, 0))
        if self.fd < 0:
            self.error = _err("landlock_create_ruleset")
            self.abi = 0
        self.features = ["filesystem"] + (["tcp"] if net else []) + (["abstract-unix+signal scoping"] if scoped else [])

    def allow(self, path: str, access: int) -> None:
        if self.fd < 0:
            return
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a missing optional path is simply not granted
        try:
            if not os.path.isdir(path):
                access &= _FILE_ONLY_RIGHTS
            rule = ctypes.create_string_buffer(struct.pack("=Qi", access & self.handled, pfd))
            _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
            if _libc.syscall(_SYS_LANDLOCK_ADD_RULE, self.fd, _LANDLOCK_RULE_PATH_BENEATH, rule, 0) != 0:
                self.error = _err(f"landlock_add_rule({path})")
        finally:
            os.close(pfd)

    def restrict_self(self, summary: str) -> Layer:
        if self.fd < 0:
            return Layer("landlock", False, self.error)
        _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_uint32]
        rc = _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, self.fd, 0)
        err = _err("landlock_restrict_self") if rc != 0 else ""
        os.close(self.fd)
        self.fd = -1
        if rc != 0:
            return Layer("landlock", False, err)
        return Layer("landlock", True, f"ABI {self.abi} ({', '.join(self.features)}); {summary}")


# --- seccomp ------------------------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Syscall numbers per architecture; None where the syscall does not exist there.
# fmt: off
_NR = {
    "x86_64": {
        "execve": 59, "execveat": 322, "fork": 57, "vfork": 58, "clone": 56, "clone3": 435,
        "socket": 41, "socketpair": 53, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
        "request_key": 249, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_by_handle_at": 304, "name_to_handle_at": 303, "kexec_load": 246, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "pidfd_getfd": 438, "kcmp": 312, "fsopen": 430,
        "fsmount": 432, "open_tree": 428, "move_mount": 429, "mknod": 133, "mknodat": 259,
    },
    "aarch64": {
        "execve": 221, "execveat": 281, "fork": None, "vfork": None, "clone": 220, "clone3": 435,
        "socket": 198, "socketpair": 199, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217,
        "request_key": 218, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "kexec_load": 104, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "pidfd_getfd": 438, "kcmp": 272, "fsopen": 430,
        "fsmount": 432, "open_tree": 428, "move_mount": 429, "mknod": None, "mknodat": 33,
    },
}
_DENIED = [
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "unshare",
    "setns", "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at",
    "name_to_handle_at", "kexec_load", "init_module", "finit_module", "delete_module", "pidfd_getfd", "kcmp",
    "fsopen", "fsmount", "open_tree", "move_mount", "mknod", "mknodat",
]
# fmt: on
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_CLONE_THREAD = 0x00010000
_AF_UNIX = 1
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program(arch: str) -> list[bytes]:
    """BPF: deny program execution, new processes (clone without CLONE_THREAD), sockets other
    than AF_UNIX, and kernel surfaces a data-analysis kernel never needs; allow the rest."""
    nr = _NR[arch]
    deny = _RET_ERRNO | errno.EPERM
    checks = [(nr[name], "deny") for name in _DENIED if nr.get(name) is not None]
    checks += [(nr["clone3"], "enosys"), (nr["clone"], "clone"), (nr["socket"], "socket"), (nr["socketpair"], "socket")]
    # BPF jumps only go forward, so argument checks sit in a tail after the syscall-number checks.
    tail = [
        _stmt(_BPF_LD_W_ABS, 16),  # 0 clone: load flags (args[0], low word)
        _jump(_BPF_JSET_K, _CLONE_THREAD, 2, 3),  # 1 a thread -> allow, a process -> deny
        _stmt(_BPF_LD_W_ABS, 16),  # 2 socket: load the address family
        _jump(_BPF_JEQ_K, _AF_UNIX, 0, 1),  # 3 AF_UNIX -> allow, anything else -> deny
        _stmt(_BPF_RET_K, _RET_ALLOW),  # 4
        _stmt(_BPF_RET_K, deny),  # 5
        _stmt(_BPF_RET_K, _RET_ERRNO | errno.ENOSYS),  # 6 clone3: glibc then falls back to clone()
    ]
    target = {"clone": 0, "socket": 2, "allow": 4, "deny": 5, "enosys": 6}
    prog = [
        _stmt(_BPF_LD_W_ABS, 4),  # seccomp_data.arch
        _jump(_BPF_JEQ_K, _AUDIT_ARCH[arch], 1, 0),
        _stmt(_BPF_RET_K, _RET_KILL_PROCESS),  # foreign ABI (e.g. int 0x80 on x86_64)
        _stmt(_BPF_LD_W_ABS, 0),  # seccomp_data.nr
    ]
    if arch == "x86_64":
        prog.append(_jump(_BPF_JGE_K, 0x40000000, len(checks) + target["deny"], 0))  # x32 ABI
    for i, (number, kind) in enumerate(checks):
        remaining = len(checks) - i - 1  # a jump's offset counts from the next instruction
        prog.append(_jump(_BPF_JEQ_K, number, remaining + target[kind], 0 if remaining else target["allow"]))
    return prog + tail


def apply_seccomp() -> Layer:
    arch = platform.machine()
    if arch not in _NR:
        return Layer("seccomp", False, f"no syscall table for architecture {arch}")
    prog = seccomp_program(arch)
    filt = ctypes.create_string_buffer(b"".join(prog))
    fprog = ctypes.create_string_buffer(struct.pack("HxxxxxxP", len(prog), ctypes.addressof(filt)))
    _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
    rc = _libc.syscall(_SYS_SECCOMP[arch], _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, fprog)
    if rc != 0:
        return Layer("seccomp", False, _err("seccomp(SET_MODE_FILTER)"))
    return Layer(
        "seccomp",
        True,
        "blocks execve/execveat, fork/vfork, clone without CLONE_THREAD, non-AF_UNIX sockets, "
        "ptrace, namespaces, mounts, bpf, io_uring and other kernel surfaces",
    )


def python_read_paths(exclude: str) -> list[str]:
    """Directories the interpreter and its installed libraries are loaded from, except `exclude`
    (the project checkout, which is on sys.path but holds far more than the sandbox needs)."""
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(p for p in paths if os.path.realpath(p) != os.path.realpath(exclude))
