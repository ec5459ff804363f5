"""Host side: the workspace disk quota. While a Sandbox is open its workspace is a size-limited
tmpfs mounted over the session directory, so a kernel cannot write more than `Limits.disk_mb`
(bytes) or more than FILES_PER_MB entries per MiB (many small files), whatever language layer it escaped.

The host keeps plain directory semantics: on mount the directory's contents are copied in (the
originals stay underneath until close, so a host crash loses nothing that was on disk), the worker
copies datasets in and reads artifacts out through the same path while it is mounted, and on the
last release (or at interpreter exit) the contents are written back to the directory on disk and
the tmpfs is unmounted. One mount per workspace per host process (reference counted); a mount left
by a killed process is recovered: its files are written back to disk before a fresh mount is made. Nothing here imports Django or the analysis libraries.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import shutil
import stat
import threading
from dataclasses import dataclass

FILES_PER_MB = 64  # inodes of the tmpfs (files + directories + symlinks): 65,536 for the default 1 GiB
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class QuotaError(OSError):
    """The workspace could not be put under its quota."""


@dataclass
class _Mount:
    workspace: str
    disk_mb: int
    under_fd: int  # the directory on disk, reachable through this fd while the tmpfs covers it
    adopted: bool  # left mounted by an earlier process (killed before it could write the files back)
    shared: bool = False  # mounted by another live process on the same workspace: used, never unmounted
    users: int = 0


_mounts: dict[str, _Mount] = {}
_lock = threading.Lock()


def _tree_bytes(dir_fd: int) -> int:
    total = 0
    for entry in os.scandir(dir_fd):
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                total += _tree_bytes(fd)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


def _copy_tree(src_fd: int, dst_fd: int) -> None:
    """Copy a directory's entries by fd, never following a symlink (they are copied as symlinks)."""
    for entry in os.scandir(src_fd):
        name = entry.name
        st = os.lstat(name, dir_fd=src_fd)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst_fd)
            sub_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            sub_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                _copy_tree(sub_src, sub_dst)
            finally:
                os.close(sub_src)
                os.close(sub_dst)
        elif stat.S_ISREG(st.st_mode):
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_fd)
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_fd)
            try:
                with open(src, "rb", closefd=False) as fin, open(dst, "wb", closefd=False) as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            finally:
                os.close(src)
                os.close(dst)
        else:
            continue  # fifos, sockets, devices: never part of a workspace
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)


def _empty(dir_fd: int) -> None:
    for entry in os.scandir(dir_fd):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.name, dir_fd=dir_fd)
        else:
            os.unlink(entry.name, dir_fd=dir_fd)


_SOURCE = "sandbox-workspace"  # the tmpfs source name, followed by "-<pid>-<start time>" of the owner


def _owner_tag(pid: int) -> str | None:
    """pid plus its start time (so a reused pid does not look alive), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f"{pid}-{f.read().rsplit(')', 1)[1].split()[19]}"
    except (OSError, IndexError):
        return None


def _quota_mounts() -> dict[str, str]:
    """Mount point -> tmpfs source of every workspace quota mount visible here (the last one per path)."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        head, _, tail = line.partition(" - ")
        fstype, source = (tail.split() + ["", ""])[:2]
        mount_point = head.split()[4].replace("\\040", " ")
        if fstype == "tmpfs" and source.startswith(_SOURCE):
            found[mount_point] = source
        else:
            found.pop(mount_point, None)
    return found


def _is_quota_mount(path: str) -> bool:
    return path in _quota_mounts()


def _mount_tmpfs(workspace: str, disk_mb: int) -> None:
    options = f"size={disk_mb}m,nr_inodes={disk_mb * FILES_PER_MB},mode=0777".encode()
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    source = f"{_SOURCE}-{_owner_tag(os.getpid())}".encode()
    if _libc.mount(source, os.fsencode(workspace), b"tmpfs", flags, options) != 0:
        e = ctypes.get_errno()
        raise QuotaError(e, f"mount tmpfs on {workspace}: {os.strerror(e)}")


def recover_orphans() -> list[str]:
    """Write back and unmount every workspace quota whose owning process is gone (killed before it
    could), wherever it is; run on each acquire, so no mount outlives its process for long."""
    recovered = []
    for path, source in _quota_mounts().items():
        tag = source[len(_SOURCE) + 1 :]
        pid = tag.split("-", 1)[0]
        if path in _mounts or not pid.isdigit() or _owner_tag(int(pid)) == tag:
            continue  # ours, or an owner still alive
        with contextlib.suppress(OSError):
            _recover(path)
            recovered.append(path)
    return recovered


def acquire(workspace: str, disk_mb: int) -> dict:
    """Put `workspace` under a `disk_mb` MiB quota (idempotent per process); returns the disk_quota layer."""
    name = "disk_quota"
    if disk_mb <= 0:
        return {"name": name, "active": False, "detail": "disabled (SANDBOX_DISK_MB is 0)"}
    if os.geteuid() != 0:
        return {"name": name, "active": False, "detail": f"not started as root (uid {os.geteuid()}): cannot mount"}
    with _lock:
        recover_orphans()
        current = _mounts.get(workspace)
        if current is None:
            try:
                current = _mount(workspace, disk_mb)
            except OSError as exc:
                return {"name": name, "active": False, "detail": f"workspace quota failed: {exc}"}
            _mounts[workspace] = current
        current.users += 1
    how = "copied back to disk when the sandbox closes"
    if current.shared:
        how = "shared with the live process that mounted it"
    if current.adopted:
        how += " (a mount left by a killed process was adopted: its files were written back first)"
    detail = (
        f"workspace is a {current.disk_mb} MiB tmpfs (at most {current.disk_mb * FILES_PER_MB} files and directories, "
        "nosuid, nodev, "
        f"noexec), {how}"
    )
    return {"name": name, "active": True, "detail": detail}


def _recover(workspace: str) -> None:
    """Write back the files of a quota mount whose process was killed, and take the mount away: the
    detached tmpfs stays readable through an fd opened before, the directory on disk shows again."""
    if not _is_quota_mount(workspace):
        raise QuotaError(errno.EBUSY, f"{workspace} is already a mount point, and not a workspace quota")
    top = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if _libc.umount2(os.fsencode(workspace), _MNT_DETACH) != 0:
            e = ctypes.get_errno()
            raise QuotaError(e, f"umount {workspace}: {os.strerror(e)}")
        under = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _empty(under)
            _copy_tree(top, under)
        finally:
            os.close(under)
    finally:
        os.close(top)


def _mount(workspace: str, disk_mb: int) -> _Mount:
    adopted = os.path.ismount(workspace)
    if adopted:
        source = _quota_mounts().get(workspace, "")
        tag = source[len(_SOURCE) + 1 :]
        if tag and tag.split("-", 1)[0].isdigit() and _owner_tag(int(tag.split("-", 1)[0])) == tag:
            return _Mount(workspace, disk_mb, -1, adopted=False, shared=True)
        _recover(workspace)
    under_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        held = _tree_bytes(under_fd)
        if held > disk_mb * 1024 * 1024:
            raise QuotaError(
                errno.EDQUOT, f"the workspace already holds {held / 2**20:.0f} MiB, more than its {disk_mb} MiB quota"
            )
        _mount_tmpfs(workspace, disk_mb)
        top = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _copy_tree(under_fd, top)
            st = os.fstat(under_fd)
            os.fchown(top, st.st_uid, st.st_gid)
            os.fchmod(top, stat.S_IMODE(st.st_mode))
        except BaseException:
            os.close(top)
            _libc.umount2(os.fsencode(workspace), _MNT_DETACH)
            raise
        os.close(top)
    except BaseException:
        os.close(under_fd)
        raise
    return _Mount(workspace, disk_mb, under_fd, adopted=adopted)


def release(workspace: str) -> None:
    """Drop one user of the workspace's quota; the last one writes it back to disk and unmounts."""
    with _lock:
        current = _mounts.get(workspace)
        if current is None:
            return
        current.users -= 1
        if current.users > 0:
            return
        del _mounts[workspace]
    _write_back(current)


def _write_back(current: _Mount) -> None:
    workspace = current.workspace
    if current.shared:
        return  # its owner writes it back
    try:
        top = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _empty(current.under_fd)
            _copy_tree(top, current.under_fd)
        finally:
            os.close(top)
        if _libc.umount2(os.fsencode(workspace), 0) != 0:
            _libc.umount2(os.fsencode(workspace), _MNT_DETACH)  # a host thread still has a file open there
    finally:
        os.close(current.under_fd)


@atexit.register
def _release_all() -> None:
    """A process ending with sandboxes still open (a worker's cache, a test) leaves no mount behind."""
    with _lock:
        pending = list(_mounts.values())
        _mounts.clear()
    for current in pending:
        with contextlib.suppress(OSError):  # e.g. the directory was deleted meanwhile: unmounted below all the same
            _write_back(current)
        if not current.shared:
            _libc.umount2(os.fsencode(current.workspace), _MNT_DETACH)


def usage(workspace: str) -> tuple[int, int]:
    """(bytes used, bytes allowed) of a mounted workspace, for reports."""
    st = os.statvfs(workspace)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize
