"""Tokenizer loading. A GGUF-embedded tokenizer is converted once and cached by the GGUF file's content hash
(parsing the GGUF takes ~13 s on 2 cores; the cached tokenizer.json loads in well under a second)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from transformers import AutoTokenizer

from univid.io import atomic_dir, file_lock


def cache_root() -> Path:
    return Path(os.environ.get("UNIVID_CACHE", Path.home() / ".cache" / "univid"))


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_path(package: str, filename: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model.tokenizer.gguf_package {package!r}: not installed (expected `make setup` to "
                                f"install it from requirements-nodeps.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise FileNotFoundError(f"model.tokenizer.gguf_file '{path}': not found in package {package!r}")
    return path


def load_tokenizer(spec: dict):
    if spec.get("path"):
        return AutoTokenizer.from_pretrained(spec["path"])
    if not spec.get("gguf_package"):
        raise ValueError("model.tokenizer: expected `path` (hub id or directory) or `gguf_package` + `gguf_file`")
    src = gguf_path(spec["gguf_package"], spec["gguf_file"])
    return AutoTokenizer.from_pretrained(str(converted_tokenizer(src, _file_sha256(src))))


def converted_tokenizer(src: Path, sha: str) -> Path:
    """The GGUF's tokenizer, converted once into $UNIVID_CACHE/tokenizers/<sha16>. Jobs side by side on a cold cache:
    the first converts, the others wait on the lock and read its result (two renames onto one directory would fail
    the second with "Directory not empty")."""
    target = cache_root() / "tokenizers" / sha[:16]
    if not (target / "tokenizer_config.json").is_file():
        with file_lock(target.with_name(target.name + ".lock")):
            if not (target / "tokenizer_config.json").is_file():
                tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
                with atomic_dir(target) as tmp:
                    tok.save_pretrained(tmp)
    return target
