"""Content-keyed cache of evaluation results: raw VBench scores per video x dimension, video metadata, judge verdicts.

One SQLite file (`<root>/eval_cache.sqlite`, root = eval.cache_dir, else $UNIVID_CACHE, else ~/.cache/univid).
Every key is the sha256 of a canonical JSON of everything the value depends on: the video's content hash (not its
path), the dimension, the scorer backend id (names model, stand-in and seed), the prompt entry, and every
score-changing flag (clip length, scene detection, dev flag). A changed input is a different key, never a stale hit.
SQLite's transactions make each write atomic and let parallel workflow jobs share the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def cache_root(configured: str | os.PathLike | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("UNIVID_CACHE", Path.home() / ".cache" / "univid"))


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def frames_sha256(frames: np.ndarray, fps: float | None = None) -> str:
    """Content hash of in-memory frames (shape, dtype and bytes) and their frame rate."""
    h = hashlib.sha256(f"{frames.shape}|{frames.dtype}|{fps}|".encode())
    h.update(np.ascontiguousarray(frames).data)
    return h.hexdigest()


def key_of(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


class EvalCache:
    """get/put JSON values by (namespace, key); counts hits and misses per namespace."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = cache_root(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "eval_cache.sqlite"
        from univid.sqlite import connect

        # WAL on a local disk, the rollback journal on a network file system (univid.sqlite)
        self._db = connect(self.path, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                         "PRIMARY KEY (ns, key))")
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    def get(self, ns: str, key: str) -> Any | None:
        row = self._db.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (ns, key)).fetchone()
        counter = self.hits if row else self.misses
        counter[ns] = counter.get(ns, 0) + 1
        return json.loads(row[0]) if row else None

    def put(self, ns: str, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?, ?, ?)",
                         (ns, key, json.dumps(value, sort_keys=True)))

    def stats(self) -> dict:
        return {"path": str(self.path), "hits": dict(self.hits), "misses": dict(self.misses)}

    def close(self) -> None:
        self._db.close()
