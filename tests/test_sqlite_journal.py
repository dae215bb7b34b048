"""SQLite caches on a network file system use the rollback journal, never WAL (unsafe across nodes)."""

from __future__ import annotations

import sqlite3

import pytest

from univid.sqlite import connect, journal_mode, mount_fstype

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export/scratch /scratch nfs4 rw,vers=4.2 0 0
lustre@tcp:/fs /lustre lustre rw 0 0
tmpfs /scratch/local tmpfs rw 0 0
"""


def test_the_mount_holding_a_path_is_the_longest_prefix():
    assert mount_fstype("/scratch/u/cache/x.sqlite", MOUNTS) == "nfs4"
    assert mount_fstype("/scratch/local/x.sqlite", MOUNTS) == "tmpfs"
    assert mount_fstype("/scratchy/x.sqlite", MOUNTS) == "ext4"  # a name prefix is not a mount prefix
    assert mount_fstype("/lustre/p/x", MOUNTS) == "lustre"


def test_network_file_systems_get_the_rollback_journal(monkeypatch):
    monkeypatch.delenv("UNIVID_SQLITE_JOURNAL", raising=False)
    assert journal_mode("/scratch/u/cache/llm.sqlite", MOUNTS) == "delete"
    assert journal_mode("/lustre/p/eval_cache.sqlite", MOUNTS) == "delete"
    assert journal_mode("/home/u/.cache/univid/eval_cache.sqlite", MOUNTS) == "wal"
    monkeypatch.setenv("UNIVID_SQLITE_JOURNAL", "delete")
    assert journal_mode("/home/u/x.sqlite", MOUNTS) == "delete"
    monkeypatch.setenv("UNIVID_SQLITE_JOURNAL", "memory")
    with pytest.raises(ValueError, match=r"UNIVID_SQLITE_JOURNAL='memory': expected one of wal, delete"):
        journal_mode("/home/u/x.sqlite", MOUNTS)


@pytest.mark.parametrize("forced", ["delete", "wal"])
def test_both_caches_open_in_the_mode_chosen(tmp_path, monkeypatch, forced):
    from univid.eval.cache import EvalCache
    from univid.llm.cache import ResponseCache

    monkeypatch.setenv("UNIVID_SQLITE_JOURNAL", forced)
    ev = EvalCache(tmp_path / "ev")
    ev.put("ns", "k", {"v": 1})
    assert ev.get("ns", "k") == {"v": 1}
    assert ev._db.execute("PRAGMA journal_mode").fetchone()[0] == forced
    ev.close()
    ResponseCache(tmp_path / "llm.sqlite")
    con = connect(tmp_path / "llm.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == forced
    con.close()
    assert sqlite3.connect(tmp_path / "llm.sqlite").execute("SELECT count(*) FROM responses").fetchone() == (0,)
