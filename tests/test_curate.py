"""Curation end to end: the synthetic world through the official formats, bad rows skipped and counted, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from univid.data import formats
from univid.data.curate import CurationError, curate

N_CLIPS = 12


def synthetic_cfg(**over) -> dict:
    cfg = {
        "source": "synthetic",
        "synthetic": {"seed": 0, "n_clips": N_CLIPS, "num_frames": 17, "height": 64, "width": 64, "fps": 8,
                      "qa_test_fraction": 0.25},
        "openvid_csv": None, "video_dir": None, "activitynet_qa_dir": None,
        "filters": {"min_aesthetic": None, "min_motion": None, "min_caption_words": 3, "max_caption_words": 60,
                    "min_seconds": 1.0},
        "num_gen_samples": 8,
        "num_qa_samples": 40,
    }
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("curated")
    report = curate(synthetic_cfg(), out, seed=1)
    return out, report


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_synthetic_raw_is_in_official_formats(synthetic_run):
    out, _ = synthetic_run
    raw = out / "raw"
    df = formats.read_openvid_csv(raw / "OpenVid-1M.csv")
    assert list(df.columns) == list(formats.OPENVID_COLUMNS)
    assert len(df) == N_CLIPS
    assert (df["frame"] == 17).all() and (df["seconds"] == 17 / 8).all()
    # scores are computed from the pixels: moving clips have motion, all frames are nearly alike
    assert df["motion score"].max() > 0.5 and (df["motion score"] >= 0).all()
    assert df["temporal consistency score"].between(0.5, 1.0).all()
    assert df["aesthetic score"].between(0, 10).all() and df["aesthetic score"].nunique() > 1
    assert sorted(p.name for p in (raw / "videos").iterdir()) == sorted(df["video"])
    qa_dir = raw / "activitynet_qa"
    assert sorted(p.name for p in qa_dir.iterdir()) == ["test_a.json", "test_q.json", "train_a.json", "train_q.json"]
    q = json.loads((qa_dir / "train_q.json").read_text())
    a = json.loads((qa_dir / "train_a.json").read_text())
    assert set(q[0]) == {"question", "question_id", "video_name"}
    assert set(a[0]) == {"answer", "question_id", "type"} and isinstance(a[0]["type"], int)
    train_videos = {x["video_name"] for x in q}
    test_videos = {x["video_name"] for x in formats.read_activitynet_qa(qa_dir, "test")}
    assert len(test_videos) == 3 and len(train_videos) == N_CLIPS - 3 and not train_videos & test_videos


def test_synthetic_curation_outputs_and_counts(synthetic_run):
    out, report = synthetic_run
    assert json.loads((out / "curation_report.json").read_text()) == json.loads(json.dumps(report))
    gen = _read_jsonl(out / "gen_train.jsonl")
    assert len(gen) == report["generation"]["kept"] == 8
    assert report["generation"]["rows_in"] == N_CLIPS and report["generation"]["skipped"] == {}
    for row in gen:
        assert set(row) == {"video", "caption"}
        assert Path(row["video"]).is_absolute() and Path(row["video"]).is_file()
        assert row["caption"].endswith("background")
    qa_train = json.loads((out / "qa_train.json").read_text())
    qa_test = json.loads((out / "qa_test.json").read_text())
    assert len(qa_train) == report["qa_train"]["kept"] == 40
    assert len(qa_test) == report["qa_test"]["kept"] == report["qa_test"]["items_in"] > 0
    for conv in qa_train + qa_test:
        assert set(conv) == {"id", "video", "conversations"} and Path(conv["video"]).is_file()
        human, gpt = conv["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<video>\n") and len(human["value"]) > 8
        assert gpt["from"] == "gpt" and gpt["value"].strip()
    assert not {c["video"] for c in qa_train} & {c["video"] for c in qa_test}


def test_curation_is_deterministic_by_seed(synthetic_run, tmp_path):
    out, _ = synthetic_run
    again = curate(synthetic_cfg(), tmp_path / "a", seed=1)
    other = curate(synthetic_cfg(), tmp_path / "b", seed=2)
    def rows(d):  # absolute paths differ between runs; the selection must not
        return [(Path(r["video"]).name, r["caption"]) for r in _read_jsonl(d / "gen_train.jsonl")]

    def ids(d):
        return [c["id"] for c in json.loads((d / "qa_train.json").read_text())]

    assert rows(out) == rows(tmp_path / "a") != rows(tmp_path / "b")
    assert again["qa_train"]["kept"] == other["qa_train"]["kept"] == 40
    assert ids(out) == ids(tmp_path / "a") != ids(tmp_path / "b")


def _files_tree(src: Path, dst: Path) -> dict:
    """A 'files' source built from a synthetic raw tree, so bad rows can be planted."""
    shutil.copytree(src / "raw", dst)
    return {"openvid_csv": str(dst / "OpenVid-1M.csv"), "video_dir": str(dst / "videos"),
            "activitynet_qa_dir": str(dst / "activitynet_qa")}


def test_planted_bad_rows_are_skipped_and_counted(synthetic_run, tmp_path):
    out, _ = synthetic_run
    paths = _files_tree(out, tmp_path / "data")
    df = formats.read_openvid_csv(paths["openvid_csv"])
    good = df.iloc[0].to_dict()
    (Path(paths["video_dir"]) / "corrupt.mp4").write_bytes(b"\x00not an mp4" * 50)
    planted = [
        {**good, "video": "does_not_exist.mp4"},
        {**good, "caption": ""},
        {**good, "caption": "   "},
        {**good, "video": "corrupt.mp4"},
        {**good, "caption": "too short"},
    ]
    formats.write_openvid_csv(paths["openvid_csv"], df.to_dict("records") + planted)
    qa_dir = Path(paths["activitynet_qa_dir"])
    items = formats.read_activitynet_qa(qa_dir, "train")
    base = items[0]
    items += [{**base, "question_id": "bad_1", "answer": ""},
              {**base, "question_id": "bad_2", "video_name": "gone"},
              {**base, "question_id": "bad_3", "video_name": "corrupt"}]
    formats.write_activitynet_qa(qa_dir, "train", items)

    cfg = synthetic_cfg(source="files", num_gen_samples=None, num_qa_samples=None, **paths)
    report = curate(cfg, tmp_path / "out", seed=0)
    gen = report["generation"]
    assert gen["rows_in"] == N_CLIPS + 5
    assert gen["skipped"] == {"missing_video": 1, "empty_caption": 2, "unreadable_video": 1, "short_caption": 1}
    assert gen["kept"] == N_CLIPS == len(_read_jsonl(tmp_path / "out" / "gen_train.jsonl"))
    qa = report["qa_train"]
    assert qa["skipped"] == {"empty_answer": 1, "missing_video": 1, "unreadable_video": 1}
    assert qa["kept"] == qa["items_in"] - 3
    kept_ids = {c["id"] for c in json.loads((tmp_path / "out" / "qa_train.json").read_text())}
    assert not kept_ids & {"bad_1", "bad_2", "bad_3"}


def test_filters_apply(synthetic_run, tmp_path):
    out, _ = synthetic_run
    paths = _files_tree(out, tmp_path / "data")
    motion = formats.read_openvid_csv(paths["openvid_csv"])["motion score"]
    threshold = float(motion.median())
    cfg = synthetic_cfg(source="files", num_gen_samples=None, **paths)
    cfg["filters"] = {"min_motion": threshold}
    report = curate(cfg, tmp_path / "out", seed=0)
    assert report["generation"]["kept"] == int((motion >= threshold).sum())
    assert report["generation"]["skipped"] == {"low_motion": int((motion < threshold).sum())}


def test_missing_activitynet_file_is_named(synthetic_run, tmp_path):
    out, _ = synthetic_run
    paths = _files_tree(out, tmp_path / "data")
    (Path(paths["activitynet_qa_dir"]) / "test_a.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_a\.json"):
        curate(synthetic_cfg(source="files", **paths), tmp_path / "out", seed=0)
    assert not (tmp_path / "out" / "curation_report.json").exists()


def test_missing_configured_path_names_key_and_path(tmp_path):
    cfg = synthetic_cfg(source="files", openvid_csv=str(tmp_path / "nope.csv"), video_dir=str(tmp_path),
                        activitynet_qa_dir=str(tmp_path))
    with pytest.raises(CurationError, match=r"'openvid_csv': .*nope\.csv not found"):
        curate(cfg, tmp_path / "out", seed=0)
    with pytest.raises(CurationError, match="'source'"):
        curate(synthetic_cfg(source="web"), tmp_path / "out", seed=0)


def test_wrong_csv_header_names_missing_columns(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"video": ["a.mp4"], "caption": ["a cat"]}).to_csv(path, index=False)
    with pytest.raises(formats.FormatError, match=r"missing column\(s\) \['aesthetic score'"):
        formats.read_openvid_csv(path)


def test_to_conversations_uses_activitynet_v_prefix(tmp_path):
    (tmp_path / "v_abc.mp4").write_bytes(b"")
    (tmp_path / "xyz.mp4").write_bytes(b"")
    items = [{"question_id": "v_abc_0", "video_name": "abc", "question": "what?", "answer": "red", "type": 4},
             {"question_id": "xyz_0", "video_name": "xyz", "question": "who?", "answer": "cat", "type": 5}]
    convs = formats.to_conversations(items, tmp_path)
    assert [c["video"] for c in convs] == [str(tmp_path / "v_abc.mp4"), str(tmp_path / "xyz.mp4")]
    assert convs[0] == {"id": "v_abc_0", "video": str(tmp_path / "v_abc.mp4"),
                        "conversations": [{"from": "human", "value": "<video>\nwhat?"},
                                          {"from": "gpt", "value": "red"}]}
