"""Open-ended Video-QA test sets in their official file layouts, as one list of samples.

Every loader returns [{"question_id", "video", "video_path", "question", "answer", "type"?}], "video" being the
clustering unit for statistics (one video, several questions). A missing file is one line naming it. `video_dir`
replaces the release's own video folder (YouTubeClips/, video/, gifs/, videos/) when the videos live elsewhere.

- MSVD-QA (xudejing/video-question-answering): `{split}_qa.json` = [{"answer", "id", "question", "video_id"}],
  `youtube_mapping.txt` = lines "<youtube clip name> vid<N>", videos `YouTubeClips/<youtube clip name>.avi`
  (video_id N <-> vid<N>).
- MSRVTT-QA (same release): `{split}_qa.json` = [{"answer", "category_id", "id", "question", "video_id"}], videos
  `video/video<video_id>.mp4`.
- TGIF-QA FrameQA (YunseokJANG/tgif-qa): tab-separated `Test_frameqa_question.csv` (or Train_) with columns
  gif_name, question, answer, vid_id, key, type (0 object, 1 number, 2 colour, 3 location), gifs `gifs/<gif_name>.gif`.
- ActivityNet-QA (MILVLG/activitynet-qa): `{split}_q.json` + `{split}_a.json` (univid.data.formats), videos
  `<video_name>.mp4` or `v_<video_name>.mp4` under the video directory.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from univid.data.formats import load_json_list

DATASETS = ("msvd_qa", "msrvtt_qa", "tgif_frameqa", "activitynet_qa")


def _need(path: Path, dataset: str, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {dataset} file not found (expected {what})")
    return path


def _json_list(path: Path, dataset: str, keys: tuple[str, ...]) -> list[dict]:
    return load_json_list(path, keys, what=f"the {dataset} list of questions")


def load_msvd_qa(root: str | os.PathLike, split: str = "test", video_dir: str | os.PathLike | None = None) -> list[dict]:
    root = Path(root)
    vdir = Path(video_dir) if video_dir else root / "YouTubeClips"
    qa = _json_list(_need(root / f"{split}_qa.json", "MSVD-QA", f"{split}_qa.json from the official release"),
                    "MSVD-QA", ("answer", "id", "question", "video_id"))
    mapping_file = _need(root / "youtube_mapping.txt", "MSVD-QA", "youtube_mapping.txt ('<clip name> vid<N>' lines)")
    mapping = {}
    for n, line in enumerate(mapping_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].startswith("vid") or not parts[1][3:].isdigit():
            raise ValueError(f"{mapping_file}:{n}: {line!r} (expected '<youtube clip name> vid<N>')")
        mapping[int(parts[1][3:])] = parts[0]
    out = []
    for q in qa:
        vid = int(q["video_id"])
        if vid not in mapping:
            raise ValueError(f"{mapping_file}: no clip name for video_id {vid} (expected a 'vid{vid}' line)")
        out.append({"question_id": f"msvd_{q['id']}", "video": mapping[vid],
                    "video_path": str(vdir / f"{mapping[vid]}.avi"),
                    "question": q["question"], "answer": q["answer"]})
    return out


def load_msrvtt_qa(root: str | os.PathLike, split: str = "test",
                   video_dir: str | os.PathLike | None = None) -> list[dict]:
    root = Path(root)
    vdir = Path(video_dir) if video_dir else root / "video"
    qa = _json_list(_need(root / f"{split}_qa.json", "MSRVTT-QA", f"{split}_qa.json from the official release"),
                    "MSRVTT-QA", ("answer", "id", "question", "video_id"))
    return [{"question_id": f"msrvtt_{q['id']}", "video": f"video{q['video_id']}",
             "video_path": str(vdir / f"video{q['video_id']}.mp4"), "question": q["question"],
             "answer": q["answer"], **({"type": q["category_id"]} if "category_id" in q else {})} for q in qa]


TGIF_COLUMNS = ("gif_name", "question", "answer", "vid_id", "key", "type")


def load_tgif_frameqa(root: str | os.PathLike, split: str = "test",
                      video_dir: str | os.PathLike | None = None) -> list[dict]:
    root = Path(root)
    vdir = Path(video_dir) if video_dir else root / "gifs"
    name = f"{split.capitalize()}_frameqa_question.csv"
    path = _need(root / name, "TGIF-QA", f"{name}, tab-separated with columns {', '.join(TGIF_COLUMNS)}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows and any(c not in rows[0] for c in TGIF_COLUMNS):
        raise ValueError(f"{path}: columns {list(rows[0])} (expected tab-separated {', '.join(TGIF_COLUMNS)})")
    return [{"question_id": f"tgif_{r['key']}_{i}", "video": r["gif_name"],
             "video_path": str(vdir / f"{r['gif_name']}.gif"), "question": r["question"],
             "answer": r["answer"], "type": int(r["type"])} for i, r in enumerate(rows)]


def load_activitynet_qa(root: str | os.PathLike, split: str = "test", video_dir: str | os.PathLike | None = None,
                        video_ext: str = ".mp4") -> list[dict]:
    from univid.data.formats import read_activitynet_qa, video_path_for

    items = read_activitynet_qa(root, split)
    vdir = Path(video_dir) if video_dir else Path(root) / "videos"
    return [{"question_id": it["question_id"], "video": it["video_name"],
             "video_path": str(video_path_for(vdir, it["video_name"], video_ext)), "question": it["question"],
             "answer": it["answer"], "type": it["type"]} for it in items]


LOADERS = {"msvd_qa": load_msvd_qa, "msrvtt_qa": load_msrvtt_qa, "tgif_frameqa": load_tgif_frameqa,
           "activitynet_qa": load_activitynet_qa}


def load(dataset: str, root: str | os.PathLike, split: str = "test", **kw) -> list[dict]:
    if dataset not in LOADERS:
        raise ValueError(f"Video-QA dataset {dataset!r}: unknown (expected one of {', '.join(DATASETS)})")
    return LOADERS[dataset](root, split, **kw)
