"""Pre-staging the official VBench weights: fetch (where the machine has internet) and verify (offline) against the
manifest `benchmarks/vbench_weights.json` (paths relative to $VBENCH_CACHE_DIR, size and sha256 per file).

An entry lists the file as the official code reads it. "archive" {"format": "zip", "member"}: the URL is an archive
that vbench unpacks (and deletes), so fetch extracts the member. "copy_of": the same bytes another entry fetches,
needed at a second place (DINO's checkpoint, which torch.hub reads from TORCH_HOME)."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from univid.eval.cache import file_sha256
from univid.io import atomic_path, read_json, write_json

DEFAULT_MANIFEST = Path(__file__).resolve().parents[3] / "benchmarks" / "vbench_weights.json"


def vbench_cache_dir(root: str | os.PathLike | None = None) -> Path:
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("VBENCH_CACHE_DIR") or Path.home() / ".cache" / "vbench")


def load_manifest(path: str | os.PathLike | None = None) -> dict:
    path = Path(path or DEFAULT_MANIFEST)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights manifest not found (expected benchmarks/vbench_weights.json)")
    m = read_json(path)
    for f in m.get("files", []):
        for k in ("name", "path", "url", "size", "sha256"):
            if k not in f:
                raise ValueError(f"{path}: file entry {f.get('name', f)!r} lacks {k!r} (expected name, path, url, "
                                 "size, sha256)")
    return m


def verify_file(entry: dict, root: Path) -> dict:
    """{"name", "path", "status"}: ok | missing | size-mismatch | sha256-mismatch | unpinned (present, no pin)."""
    path = root / entry["path"]
    out = {"name": entry["name"], "path": str(path)}
    if not path.is_file():
        return {**out, "status": "missing"}
    size = path.stat().st_size
    if entry["size"] is not None and size != entry["size"]:
        return {**out, "status": "size-mismatch", "detail": f"{size} bytes (expected {entry['size']})"}
    if entry["sha256"] is None and not entry.get("sha256_prefix"):
        return {**out, "status": "unpinned", "size": size, "detail": "no sha256 in the manifest"}
    digest = file_sha256(path)
    want = entry["sha256"] or entry["sha256_prefix"]
    if not digest.startswith(want):
        return {**out, "status": "sha256-mismatch", "detail": f"sha256 {digest} (expected {want})"}
    if entry["sha256"] is None:  # a publisher's 8-hex prefix is a check, not a pin
        return {**out, "status": "unpinned", "size": size, "sha256": digest,
                "detail": f"only the sha256 prefix {want} is known"}
    return {**out, "status": "ok", "size": size, "sha256": digest}


def verify(manifest: dict, root: Path, names: list[str] | None = None) -> list[dict]:
    return [verify_file(e, root) for e in manifest["files"] if not names or e["name"] in names]


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as f:
        while block := resp.read(1 << 20):
            f.write(block)


def _materialize(entry: dict, root: Path, by_name: dict[str, dict]) -> None:
    """Put one missing file in place, atomically: a copy of a present sibling, an archive member, or the URL."""
    path = root / entry["path"]
    src = by_name.get(entry.get("copy_of") or "")
    with atomic_path(path) as tmp:
        if src is not None and (root / src["path"]).is_file():
            shutil.copyfile(root / src["path"], tmp)
        elif entry.get("archive"):
            arc = entry["archive"]
            if arc.get("format") != "zip":
                raise ValueError(f"{entry['name']}: archive format {arc.get('format')!r} (expected 'zip')")
            with tempfile.TemporaryDirectory(dir=path.parent) as d:
                _download(entry["url"], Path(d) / "archive.zip")
                with zipfile.ZipFile(Path(d) / "archive.zip") as z, z.open(arc["member"]) as m, open(tmp, "wb") as f:
                    shutil.copyfileobj(m, f)
        else:
            _download(entry["url"], tmp)


def fetch(manifest: dict, root: Path, names: list[str] | None = None, pin: bool = False,
          manifest_path: str | os.PathLike | None = None) -> list[dict]:
    """Download what is missing (atomically), then verify; with pin, record size and sha256 of unpinned files in
    the manifest (only where no pin exists: a pinned file that does not match is an error, never re-pinned)."""
    results = []
    by_name = {e["name"]: e for e in manifest["files"]}
    for e in manifest["files"]:
        if names and e["name"] not in names:
            continue
        path = root / e["path"]
        if not path.is_file():
            _materialize(e, root, by_name)
        r = verify_file(e, root)
        if pin and r["status"] == "unpinned":
            e["size"], e["sha256"] = path.stat().st_size, file_sha256(path)
            r = verify_file(e, root)
        results.append(r)
    if pin:
        write_json(manifest_path or DEFAULT_MANIFEST, manifest)
    return results
