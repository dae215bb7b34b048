"""A SQLite response cache keyed by sha256(backend id + model + system + prompt + decoding parameters).

Only completed responses are stored (a failed call stores nothing), so a rerun makes no call for what succeeded.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from univid.llm.base import decoding_params


def request_key(backend_id: str, model: str, prompt: str, system: str | None, decoding: dict) -> str:
    blob = json.dumps({"backend": backend_id, "model": model, "system": system, "prompt": prompt,
                       "decoding": decoding_params(decoding)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, backend TEXT, model TEXT, "
                        "response TEXT NOT NULL, created REAL)")

    def _connect(self) -> sqlite3.Connection:
        from univid.sqlite import connect

        return connect(self.path)  # WAL on a local disk, the rollback journal on a network file system

    def get(self, key: str) -> str | None:
        con = self._connect()
        try:
            row = con.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        finally:
            con.close()
        return row[0] if row else None

    def put(self, key: str, backend_id: str, model: str, response: str) -> None:
        con = self._connect()
        try:
            with con:
                con.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                            (key, backend_id, model, response, time.time()))
        finally:
            con.close()

    def __len__(self) -> int:
        con = self._connect()
        try:
            return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        finally:
            con.close()


def cached_response(cache: ResponseCache | None, key: str, backend_id: str, model: str, compute) -> tuple[str, bool]:
    """(response, came_from_cache): the stored response for `key`, else compute() stored under it."""
    if cache is not None:
        stored = cache.get(key)
        if stored is not None:
            return stored, True
    response = compute()
    if cache is not None:
        cache.put(key, backend_id, model, response)
    return response, False


class CachedLLM:
    """The LLM interface in front of a backend: a cache hit returns the stored response without calling it.

    `calls` counts requests that reached the backend, `hits` those answered from the cache.
    """

    def __init__(self, backend, cache: ResponseCache | None):
        self.backend = backend
        self.cache = cache
        self.backend_id = backend.backend_id
        self.model_id = backend.model_id
        self.calls = 0
        self.hits = 0
        self._lock = threading.Lock()  # counted from several threads when requests go out concurrently

    @property
    def max_concurrency(self) -> int:
        """Requests the backend may serve at once: an HTTP endpoint's bound, 1 for an in-process model."""
        return int(getattr(self.backend, "max_concurrency", 1))

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        key = request_key(self.backend_id, self.model_id, prompt, system, decoding)
        response, hit = cached_response(self.cache, key, self.backend_id, self.model_id,
                                        lambda: self.backend.generate(prompt, system=system, **decoding))
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.calls += 1
        return response
