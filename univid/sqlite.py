"""SQLite caches that survive the file systems clusters share.

SQLite's WAL mode needs shared memory between every process that opens the database, which a network file system
(NFS, Lustre, GPFS, BeeGFS, CephFS, SMB, ...) cannot give to processes on different nodes: the SQLite documentation
says WAL "does not work over a network filesystem". So a cache on such a mount uses the rollback journal (DELETE),
which relies only on file locks; on a local disk it keeps WAL (concurrent readers with one writer).
`UNIVID_SQLITE_JOURNAL=wal|delete` overrides the detection.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs",
              "fuse.glusterfs", "fuse.sshfs", "fuse.cephfs", "9p", "afs", "panfs", "wekafs", "fuse.juicefs")
JOURNAL_MODES = ("wal", "delete")


def mount_fstype(path: str | os.PathLike, mounts: str | None = None) -> str | None:
    """The file system type of the mount holding `path` (longest mount-point prefix in /proc/mounts)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = os.path.realpath(os.path.abspath(path))
    best, fstype = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, fstype = point, parts[2]
    return fstype


def journal_mode(path: str | os.PathLike, mounts: str | None = None) -> str:
    """"wal" on a local disk, "delete" on a network file system (or as UNIVID_SQLITE_JOURNAL says)."""
    forced = os.environ.get("UNIVID_SQLITE_JOURNAL")
    if forced:
        if forced.lower() not in JOURNAL_MODES:
            raise ValueError(f"UNIVID_SQLITE_JOURNAL={forced!r}: expected one of {', '.join(JOURNAL_MODES)}")
        return forced.lower()
    return "delete" if (mount_fstype(Path(path).parent, mounts) or "") in NETWORK_FS else "wal"


def connect(path: str | os.PathLike, **kwargs) -> sqlite3.Connection:
    """sqlite3.connect with a busy timeout and the journal mode safe for where the file lives."""
    con = sqlite3.connect(path, timeout=60, **kwargs)
    con.execute(f"PRAGMA journal_mode={journal_mode(path).upper()}")
    return con
