"""OS-level isolation of a kernel process, via ctypes: rlimits, network namespace, mount namespace
(a private root built from bind mounts, then pivot_root), uid drop with every capability gone,
no_new_privs, Landlock and seccomp (which also carries the socket policy).

Each `apply_*` function returns a Layer saying whether it took effect and why not; nothing
raises on a missing kernel feature, so the sandbox degrades and reports instead of crashing.
Order matters and is driven by `kernel.lock_down`: namespaces, mounts and chown need root, Landlock
paths are opened (inside the new root) before the uid drop, and seccomp comes last because it
forbids what came before.
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
# The system trees every kernel reads, whichever layer checks (Landlock and the private root in
# `kernel.lock_down`, the open audit hook in `libraries`): the interpreter's standard library and shared
# libraries, zoneinfo and fonts. /lib* are symlinks into /usr on merged-/usr systems. Each layer adds
# what only it needs.
SYSTEM_READ_PATHS = (
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/share/zoneinfo",
    "/usr/share/fonts",
    "/etc/localtime",
)

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


# --- mount namespace ------------------------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {source or ''} on {target}: {os.strerror(e)}")


def _outermost(paths: list[str]) -> list[str]:
    """Existing real paths, without those inside another one (a recursive bind already carries them)."""
    kept: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths if os.path.lexists(p)}, key=len):
        if os.path.exists(path) and not any(os.path.commonpath([path, k]) == k for k in kept):
            kept.append(path)
    return kept


def _mirror_symlinks(root: str, path: str) -> None:
    """Recreate under `root` the host's symlinks along `path` (e.g. /lib -> usr/lib, a venv reached through
    a symlinked checkout), so the path spelled as the host spells it resolves to the same bind mount."""
    current = "/"
    for part in path.strip("/").split("/"):
        host = os.path.join(current, part)
        if os.path.islink(host):
            inside = root + host
            try:
                os.makedirs(os.path.dirname(inside), exist_ok=True)
                if not os.path.lexists(inside):
                    os.symlink(os.readlink(host), inside)
            except OSError:
                pass  # inside a tree that is bound as a whole: the real symlink is there already
            current = os.path.realpath(host)
        else:
            current = host


def _bind(root: str, real: str, flags: int) -> None:
    target = root + real
    if os.path.isdir(real):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(real, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | flags)


def _own_proc(root: str) -> None:
    """A /proc holding only the kernel's own /proc/<pid> (and `self` pointing at it): libraries read
    /proc/self/maps, status or fd, while no other process, host-wide file or sysctl is there."""
    pid = str(os.getpid())
    os.makedirs(f"{root}/proc/{pid}")
    _mount(f"/proc/{pid}", f"{root}/proc/{pid}", None, MS_BIND)
    _mount(None, f"{root}/proc/{pid}", None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.symlink(pid, f"{root}/proc/self")


def _build_root(root: str, *, read_only: list[str], devices: list[str], workspace: str, tmp_mb: int) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here propagates back to the host
    _mount("sandbox-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    os.mkdir(root + "/tmp")
    tmp_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount("sandbox-tmp", root + "/tmp", "tmpfs", tmp_flags, f"size={tmp_mb}m,nr_inodes=4096,mode=1777")
    for path in [*read_only, *devices, workspace]:
        _mirror_symlinks(root, path)
    for real in _outermost(read_only):
        _bind(root, real, MS_RDONLY | MS_NOSUID | MS_NODEV)
    for device in devices:
        if os.path.exists(device):
            _bind(root, os.path.realpath(device), MS_NOSUID | MS_NOEXEC)
    _bind(root, workspace, MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _own_proc(root)
    old = root + "/.old-root"
    os.mkdir(old)
    _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p]
    if _libc.syscall(_SYS_PIVOT_ROOT[platform.machine()], _bytes(root), _bytes(old)) != 0:
        raise OSError(ctypes.get_errno(), _err("pivot_root"))
    os.chdir("/")
    if _libc.umount2(b"/.old-root", MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), _err("umount2(old root)"))
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _libc.sethostname(b"sandbox", 7)


def apply_mount_namespace(root: str, *, read_only: list[str], devices: list[str], workspace: str, tmp_mb: int) -> Layer:
    """Give the calling process (root, single-threaded) a private mount, IPC and UTS namespace whose
    whole filesystem is: `read_only` paths (interpreter, libraries, zoneinfo, fonts) read-only, a few
    device nodes, the workspace read-write, a private `tmp_mb` MiB /tmp and a /proc with only the
    process itself. No /sys, /run, /home, /root, host /tmp, other processes, other workspaces or the
    database exist there. `root` is an empty
    directory used as the mount point of the new root."""
    if os.geteuid() != 0:
        return Layer("mount_namespace", False, f"not started as root (uid {os.geteuid()}): cannot unshare")
    if platform.machine() not in _SYS_PIVOT_ROOT:
        return Layer("mount_namespace", False, f"no pivot_root number for {platform.machine()}")
    if _libc.unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0:
        return Layer("mount_namespace", False, _err("unshare(CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWUTS)"))
    try:
        _build_root(root, read_only=read_only, devices=devices, workspace=workspace, tmp_mb=tmp_mb)
    except OSError as exc:
        return Layer("mount_namespace", False, f"building the private root failed: {exc}")
    shown = ", ".join(_outermost(read_only))
    return Layer(
        "mount_namespace",
        True,
        f"private root (read-only tmpfs): read-only {shown}; read-write workspace {workspace}; private {tmp_mb} MiB "
        "/tmp; /proc holds only the kernel's own pid; no /sys, /run, /home, /root, host /tmp or other processes; "
        "private IPC and UTS namespaces",
    )


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


def _cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


CAP_LAST = _cap_last()  # read at import, in the fork server, while /proc is still there
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _drop_bounding_set() -> None:
    """Empty the bounding and ambient sets while still root (CAP_SETPCAP), so no capability can come back."""
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(CAP_LAST + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def capabilities_layer() -> Layer:
    """Read back every capability set of the calling process: the layer is active only if all are empty."""
    header = ctypes.create_string_buffer(struct.pack("Ii", _CAP_VERSION_3, 0))
    data = ctypes.create_string_buffer(24)
    if _libc.capget(header, data) != 0:
        return Layer("capabilities", False, _err("capget"))
    eff0, perm0, inh0, eff1, perm1, inh1 = struct.unpack("6I", data.raw)
    held = {"effective": eff0 | eff1 << 32, "permitted": perm0 | perm1 << 32, "inheritable": inh0 | inh1 << 32}
    held["bounding"] = sum(1 << c for c in range(CAP_LAST + 1) if _libc.prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
    held["ambient"] = sum(
        1 << c for c in range(CAP_LAST + 1) if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1
    )
    left = {name: f"{mask:#x}" for name, mask in held.items() if mask}
    if left:
        return Layer("capabilities", False, "still held: " + ", ".join(f"{k} {v}" for k, v in left.items()))
    return Layer("capabilities", True, "none: effective, permitted, inheritable, ambient and bounding sets empty")


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
        else:
            _drop_bounding_set()
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
        "connect": 42, "bind": 49, "listen": 50, "accept": 43, "accept4": 288,
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "pidfd_open": 434, "pidfd_send_signal": 424, "prlimit64": 302, "setpriority": 141,
        "sched_setaffinity": 203, "sched_setscheduler": 144, "sched_setparam": 142, "sched_setattr": 314,
        "ioprio_set": 251, "migrate_pages": 256, "move_pages": 279, "process_madvise": 440,
        "process_mrelease": 448, "get_robust_list": 274, "reboot": 169, "swapon": 167, "swapoff": 168,
        "quotactl": 179, "acct": 163, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305,
        "adjtimex": 159, "syslog": 103, "mount_setattr": 442, "fsconfig": 431, "fspick": 433, "iopl": 172,
        "ioperm": 173, "vhangup": 153, "sethostname": 170, "setdomainname": 171, "memfd_create": 319,
        "memfd_secret": 447,
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
        "connect": 203, "bind": 200, "listen": 201, "accept": 202, "accept4": 242,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_open": 434, "pidfd_send_signal": 424, "prlimit64": 261, "setpriority": 140,
        "sched_setaffinity": 122, "sched_setscheduler": 119, "sched_setparam": 118, "sched_setattr": 274,
        "ioprio_set": 30, "migrate_pages": 238, "move_pages": 239, "process_madvise": 440,
        "process_mrelease": 448, "get_robust_list": 100, "reboot": 142, "swapon": 224, "swapoff": 225,
        "quotactl": 60, "acct": 89, "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266,
        "adjtimex": 171, "syslog": 116, "mount_setattr": 442, "fsconfig": 431, "fspick": 433, "iopl": None,
        "ioperm": None, "vhangup": 58, "sethostname": 161, "setdomainname": 162, "memfd_create": 279,
        "memfd_secret": 447,
    },
}
_DENIED = [
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "unshare",
    "setns", "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at",
    "name_to_handle_at", "kexec_load", "init_module", "finit_module", "delete_module", "pidfd_getfd", "kcmp",
    "fsopen", "fsmount", "open_tree", "move_mount", "mknod", "mknodat",
    # No new sockets of any family (the kernel's one socket is inherited), so nothing to connect or serve.
    "socket", "connect", "bind", "listen", "accept", "accept4",
    # Other processes are out of reach: no pidfds, no thread-directed signals by tid alone.
    "tkill", "pidfd_open", "pidfd_send_signal", "process_madvise", "process_mrelease", "ioprio_set",
    "get_robust_list", "reboot", "swapon", "swapoff", "quotactl", "acct", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "syslog", "mount_setattr", "fsconfig", "fspick", "iopl", "ioperm",
    "vhangup", "sethostname", "setdomainname",
    # RAM-backed files would hold memory outside the address-space limit.
    "memfd_create", "memfd_secret",
]
# Syscalls that name a process in args[0]: allowed only for the kernel itself (or 0, meaning itself).
_SELF_OR_ZERO = [
    "kill", "prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
    "migrate_pages", "move_pages",
]
_SELF_ONLY = ["tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"]
# fmt: on
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_CLONE_THREAD = 0x00010000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME: no namespaces from a thread either.
_CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
_AF_UNIX = 1
_SOCK_STREAM = 1
_SOCK_TYPE_MASK = 0xF
_BPF_LD_W_ABS = 0x20
_BPF_ALU_AND_K = 0x54
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_ARG0, _ARG1 = 16, 24  # offsets of the low words of seccomp_data.args[0] and args[1] (little endian)


class _Bpf:
    """A tiny classic-BPF assembler: forward jumps to named labels, resolved at the end."""

    def __init__(self) -> None:
        self.code: list[tuple] = []
        self.labels: dict[str, int] = {}

    def stmt(self, code: int, k: int) -> None:
        self.code.append((code, k, None, None))

    def jump(self, code: int, k: int, true: str | None, false: str | None) -> None:
        self.code.append((code, k, true or "", false or ""))  # "" means the next instruction

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def ret(self, value: int) -> None:
        self.stmt(_BPF_RET_K, value)

    def assemble(self) -> list[bytes]:
        out = []
        for i, (code, k, true, false) in enumerate(self.code):
            if true is None:  # a statement
                out.append(struct.pack("HBBI", code, 0, 0, k))
                continue
            jt = self.labels[true] - i - 1 if true else 0
            jf = self.labels[false] - i - 1 if false else 0
            if not (0 <= jt <= 255 and 0 <= jf <= 255):
                raise ValueError("seccomp program too long for 8-bit jumps")
            out.append(struct.pack("HBBI", code, jt, jf, k))
        return out


def seccomp_program(arch: str, pid: int | None = None) -> list[bytes]:
    """BPF: deny program execution, new processes (clone without CLONE_THREAD) and namespaces, every
    new socket but an AF_UNIX stream socketpair (a pipe in all but name), signals and scheduling
    aimed at other processes (`pid`, default the caller, is the only target allowed), and kernel
    surfaces a data-analysis kernel never needs; allow the rest."""
    nr = _NR[arch]
    pid = os.getpid() if pid is None else pid
    denied = {name for name in _DENIED if nr.get(name) is not None} - set(_SELF_OR_ZERO) - set(_SELF_ONLY)
    checks = [(nr[name], "deny") for name in sorted(denied)]
    checks += [(nr[name], "self_or_zero") for name in _SELF_OR_ZERO]
    checks += [(nr[name], "self_only") for name in _SELF_ONLY]
    checks += [(nr["clone3"], "enosys"), (nr["clone"], "clone"), (nr["socketpair"], "socketpair")]
    checks += [(nr["setpriority"], "setpriority")]
    bpf = _Bpf()
    bpf.stmt(_BPF_LD_W_ABS, 4)  # seccomp_data.arch
    bpf.jump(_BPF_JEQ_K, _AUDIT_ARCH[arch], "native", None)
    bpf.ret(_RET_KILL_PROCESS)  # foreign ABI (e.g. int 0x80 on x86_64)
    bpf.label("native")
    bpf.stmt(_BPF_LD_W_ABS, 0)  # seccomp_data.nr
    if arch == "x86_64":
        bpf.jump(_BPF_JGE_K, 0x40000000, "deny", None)  # x32 ABI
    for number, target in checks:
        bpf.jump(_BPF_JEQ_K, number, target, None)
    bpf.ret(_RET_ALLOW)  # any other syscall
    # Argument checks sit after the number checks and before the shared returns: BPF jumps only go forward.
    bpf.label("clone")
    bpf.stmt(_BPF_LD_W_ABS, _ARG0)
    bpf.jump(_BPF_JSET_K, _CLONE_THREAD, None, "deny")  # a process -> deny
    bpf.jump(_BPF_JSET_K, _CLONE_NEW_ANY, "deny", "allow")  # a thread, unless it asks for a namespace
    bpf.label("socketpair")
    bpf.stmt(_BPF_LD_W_ABS, _ARG0)
    bpf.jump(_BPF_JEQ_K, _AF_UNIX, None, "deny")
    bpf.stmt(_BPF_LD_W_ABS, _ARG1)
    bpf.stmt(_BPF_ALU_AND_K, _SOCK_TYPE_MASK)
    bpf.jump(_BPF_JEQ_K, _SOCK_STREAM, "allow", "deny")
    bpf.label("setpriority")
    bpf.stmt(_BPF_LD_W_ABS, _ARG0)
    bpf.jump(_BPF_JEQ_K, 0, None, "deny")  # PRIO_PROCESS only (not a process group or a whole uid)
    bpf.stmt(_BPF_LD_W_ABS, _ARG1)
    bpf.jump(_BPF_JEQ_K, 0, "allow", None)
    bpf.jump(_BPF_JEQ_K, pid, "allow", "deny")
    bpf.label("self_or_zero")
    bpf.stmt(_BPF_LD_W_ABS, _ARG0)
    bpf.jump(_BPF_JEQ_K, 0, "allow", None)
    bpf.jump(_BPF_JEQ_K, pid, "allow", "deny")
    bpf.label("self_only")
    bpf.stmt(_BPF_LD_W_ABS, _ARG0)
    bpf.jump(_BPF_JEQ_K, pid, "allow", "deny")
    bpf.label("allow")
    bpf.ret(_RET_ALLOW)
    bpf.label("deny")
    bpf.ret(_RET_ERRNO | errno.EPERM)
    bpf.label("enosys")
    bpf.ret(_RET_ERRNO | errno.ENOSYS)  # clone3: glibc then falls back to clone(), which is checked
    return bpf.assemble()


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
        f"{len(prog)}-instruction filter: blocks execve/execveat, fork/vfork, clone without CLONE_THREAD or with "
        "a namespace flag, ptrace, namespaces, mounts, bpf, io_uring; signals, priorities and limits aimed at "
        "other processes",
    )


def apply_socket_policy() -> Layer:
    """Reported separately from seccomp because it is what keeps host sockets out of reach."""
    arch = platform.machine()
    if arch not in _NR:
        return Layer("socket_policy", False, f"no syscall table for architecture {arch}")
    return Layer(
        "socket_policy",
        True,
        "no new sockets of any family (TCP, UDP, raw, netlink, abstract or pathname UNIX): socket(), connect(), "
        "bind(), listen() and accept() fail with EPERM; only an AF_UNIX stream socketpair (an in-process pipe) "
        "and the inherited host channel remain",
    )


def python_read_paths(exclude: str) -> list[str]:
    """Directories the interpreter and its installed libraries are loaded from, except `exclude`
    (the project checkout, which is on sys.path but holds far more than the sandbox needs)."""
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(p for p in paths if os.path.realpath(p) != os.path.realpath(exclude))
