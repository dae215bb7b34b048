"""`univid weights verify` works offline on the files present: ok, unpinned, mismatched, missing."""

import hashlib
import json

import pytest

from univid.cli import main


def test_weights_verify_offline(tmp_path, capsys):
    good, other = b"weights-a" * 100, b"weights-b"
    manifest = {"files": [
        {"name": "a", "path": "m/a.pt", "url": "http://x/a", "size": len(good),
         "sha256": hashlib.sha256(good).hexdigest()},
        {"name": "b", "path": "m/b.pt", "url": "http://x/b", "size": None, "sha256": None},
        {"name": "c", "path": "c.pt", "url": "http://x/c", "size": None, "sha256": None,
         "sha256_prefix": hashlib.sha256(b"nope").hexdigest()[:8]},
        {"name": "d", "path": "d.pt", "url": "http://x/d", "size": 3, "sha256": None}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    root = tmp_path / "root"
    (root / "m").mkdir(parents=True)
    (root / "m" / "a.pt").write_bytes(good)
    (root / "m" / "b.pt").write_bytes(other)
    (root / "c.pt").write_bytes(other)
    argv = ["weights", "verify", "--manifest", str(tmp_path / "manifest.json"), "--root", str(root)]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    status = {json.loads(x)["name"]: json.loads(x)["status"] for x in lines[:-1]}
    assert status == {"a": "ok", "b": "unpinned", "c": "sha256-mismatch", "d": "missing"}
    assert "1 ok, 1 present but unpinned, 2 missing or mismatched" in lines[-1]
    main(argv + ["--name", "a", "--name", "b"])  # nothing wrong among these two: exit 0
    with pytest.raises(SystemExit):
        main(argv + ["--name", "zzz"])


def test_shipped_manifest_is_well_formed():
    from univid.eval.weights import load_manifest

    m = load_manifest()
    assert {f["name"] for f in m["files"]} >= {"clip_vit_b32", "dino_vitb16", "viclip_internvid_10m_flt"}
    assert all(f["sha256"] is None or len(f["sha256"]) == 64 for f in m["files"])
