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
    from univid.eval.vbench.weights import load_manifest

    m = load_manifest()
    files = {f["name"]: f for f in m["files"]}
    assert set(files) >= {"clip_vit_b32", "dino_vitb16", "viclip_internvid_10m_flt"}
    assert all(f["sha256"] is None or len(f["sha256"]) == 64 for f in m["files"])
    # what remains on disk after vbench unzips RAFT's models.zip (and deletes it), not the zip
    assert files["raft_things"]["path"] == "raft_model/models/raft-things.pth"
    assert files["raft_things"]["archive"] == {"format": "zip", "member": "models/raft-things.pth"}
    assert not any(f["path"].endswith(".zip") for f in m["files"])
    # DINO: the torch-hub code vbench's local mode loads, and the checkpoint where its hubconf reads it
    hub = {f["path"] for f in m["files"] if f["name"].startswith("dino_hub_code_")}
    assert hub == {f"dino_model/facebookresearch_dino_main/{x}" for x in ("hubconf.py", "vision_transformer.py",
                                                                          "utils.py")}
    assert files["dino_vitb16_torch_hub"]["path"] == "torch/hub/checkpoints/dino_vitbase16_pretrain.pth"
    assert files["dino_vitb16_torch_hub"]["copy_of"] == "dino_vitb16"


def test_verify_reports_prefix_only_pins_as_unpinned(tmp_path):
    from univid.eval.vbench.weights import verify_file

    data = b"checkpoint"
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "w.pth").write_bytes(data)
    full = {"name": "w", "path": "w.pth", "url": "", "size": None, "sha256": digest}
    assert verify_file(full, tmp_path)["status"] == "ok"  # a full sha256 pins the bytes, size or not
    prefix = {**full, "sha256": None, "sha256_prefix": digest[:8]}
    r = verify_file(prefix, tmp_path)
    assert r["status"] == "unpinned" and "only the sha256 prefix" in r["detail"]
    assert verify_file({**full, "sha256": None}, tmp_path)["status"] == "unpinned"


def test_fetch_extracts_archive_members_and_copies(tmp_path):
    import zipfile

    from univid.eval.vbench.weights import fetch

    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "models.zip", "w") as z:
        z.writestr("models/raft-things.pth", b"things")
        z.writestr("models/raft-small.pth", b"small")
    (src / "dino.pth").write_bytes(b"dino")
    manifest = {"files": [
        {"name": "raft", "path": "raft_model/models/raft-things.pth", "url": (src / "models.zip").as_uri(),
         "archive": {"format": "zip", "member": "models/raft-things.pth"}, "size": None, "sha256": None},
        {"name": "dino", "path": "dino_model/d.pth", "url": (src / "dino.pth").as_uri(), "size": None,
         "sha256": hashlib.sha256(b"dino").hexdigest()},
        {"name": "dino_hub", "path": "torch/hub/checkpoints/d.pth", "url": "http://unreachable.invalid/d.pth",
         "copy_of": "dino", "size": None, "sha256": hashlib.sha256(b"dino").hexdigest()}]}
    root = tmp_path / "root"
    status = {r["name"]: r["status"] for r in fetch(manifest, root, pin=True, manifest_path=tmp_path / "m.json")}
    assert status == {"raft": "ok", "dino": "ok", "dino_hub": "ok"}
    assert (root / "raft_model/models/raft-things.pth").read_bytes() == b"things"
    assert sorted(p.name for p in (root / "raft_model").rglob("*")) == ["models", "raft-things.pth"]
    assert (root / "torch/hub/checkpoints/d.pth").read_bytes() == b"dino"  # copied, never downloaded
    pinned = json.loads((tmp_path / "m.json").read_text())["files"][0]
    assert (pinned["size"], pinned["sha256"]) == (6, hashlib.sha256(b"things").hexdigest())
