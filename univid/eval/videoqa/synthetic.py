"""The synthetic world's held-out clips and questions written in each Video-QA release's OFFICIAL layout, so that the
smoke run reads them back through the very loaders that read the real releases (univid.eval.videoqa.datasets):

- MSVD-QA: `{split}_qa.json` [{answer, id, question, video_id}], `youtube_mapping.txt` ("<clip name> vid<N>"),
  `YouTubeClips/<clip name>.avi` (MPEG-4 Part 2 in AVI, as the release's clips);
- MSRVTT-QA: `{split}_qa.json` [{answer, category_id, id, question, video_id}], `video/video<N>.mp4`;
- TGIF-QA FrameQA: tab-separated `{Split}_frameqa_question.csv` (gif_name, question, answer, vid_id, key, type),
  `gifs/<gif_name>.gif`; only frame questions (object / number / colour / location), as FrameQA has;
- ActivityNet-QA: `{split}_q.json` + `{split}_a.json` (univid.data.formats), `videos/v_<video_name>.mp4`.

Data set i of eval.videoqa.benchmarks' canonical order draws its clips with seed `synthetic.seed + i`, so the four
sets hold different clips (and none of the curated training clips, whose seed is data.synthetic.seed). Each clip's
questions are shuffled with the same seed, so a `max_questions` prefix mixes static and dynamic questions. A set is
written once into a content-keyed directory (`<cache>/videoqa_synthetic/<dataset>-<key>`), atomically.
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from univid.data import formats, synthetic
from univid.data.video import write_video
from univid.eval.cache import cache_root, key_of
from univid.eval.videoqa.datasets import DATASETS, TGIF_COLUMNS
from univid.io import atomic_dir, atomic_path, write_json

WRITER_VERSION = 1  # bump when a writer's output changes: it is part of the content key
# TGIF-QA FrameQA type codes (0 object, 1 number, 2 colour, 3 location) from the world's ActivityNet-QA types.
_TGIF_TYPE = {synthetic.ANET_TYPES["object"]: 0, synthetic.ANET_TYPES["number"]: 1,
              synthetic.ANET_TYPES["color"]: 2, synthetic.ANET_TYPES["spatial"]: 3}
# MSRVTT-QA category_id by question word (0 what, 1 who, 2 how, 3 when, 4 where): the world asks what / how.
_MSRVTT_CATEGORY = {"what": 0, "who": 1, "how": 2, "when": 3, "where": 4}


def dataset_seed(dataset: str, syn: dict) -> int:
    if dataset not in DATASETS:
        raise ValueError(f"Video-QA dataset {dataset!r}: unknown (expected one of {', '.join(DATASETS)})")
    return int(syn["seed"]) + DATASETS.index(dataset)


def synthetic_items(dataset: str, syn: dict) -> list[tuple[synthetic.ClipSpec, list[dict]]]:
    """[(clip spec, its questions in file order)] for one data set."""
    seed = dataset_seed(dataset, syn)
    specs = synthetic.sample_clip_specs(seed, int(syn["clips"]), int(syn["num_frames"]), int(syn["height"]),
                                        int(syn["width"]), float(syn["fps"]))
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        qa = synthetic.qa_pairs(spec)
        if dataset == "tgif_frameqa":
            qa = [q for q in qa if q["type"] == "static" and q["anet_type"] in _TGIF_TYPE]
        out.append((spec, [qa[i] for i in rng.permutation(len(qa))]))
    return out


def write_avi(path: Path, frames: np.ndarray, fps: float) -> None:
    """MPEG-4 Part 2 in an AVI container (the MSVD release's clips are AVI), written atomically."""
    import av

    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="avi") as container:
            stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.options = {"qscale": "2"}  # near-lossless: the world's colours must survive
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    """An animated GIF (TGIF's format), looping, written atomically. As GIF writers do, a run of identical frames is
    stored once with the summed duration (a still clip decodes to fewer frames)."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
                   loop=0)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.getvalue())


def write_msvd_qa(root: Path, items, split: str) -> None:
    qa, mapping, qid = [], [], 0
    for n, (spec, questions) in enumerate(items, 1):
        name = f"{spec.clip_id}_0_{spec.num_frames}"  # release names: <youtube id>_<start>_<end>
        mapping.append(f"{name} vid{n}")
        write_avi(root / "YouTubeClips" / f"{name}.avi", synthetic.render_clip(spec), spec.fps)
        for q in questions:
            qa.append({"answer": q["answer"], "id": qid, "question": q["question"], "video_id": n})
            qid += 1
    write_json(root / f"{split}_qa.json", qa)
    with atomic_path(root / "youtube_mapping.txt") as tmp:
        Path(tmp).write_text("".join(line + "\n" for line in mapping))


def write_msrvtt_qa(root: Path, items, split: str) -> None:
    qa, qid = [], 0
    first_test_video = 7010  # MSR-VTT's test videos are video7010..video9999
    for n, (spec, questions) in enumerate(items):
        vid = first_test_video + n
        write_video(root / "video" / f"video{vid}.mp4", synthetic.render_clip(spec), spec.fps)
        for q in questions:
            cat = _MSRVTT_CATEGORY.get(q["question"].split()[0].lower(), 0)
            qa.append({"answer": q["answer"], "category_id": cat, "id": qid, "question": q["question"],
                       "video_id": vid})
            qid += 1
    write_json(root / f"{split}_qa.json", qa)


def write_tgif_frameqa(root: Path, items, split: str) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(TGIF_COLUMNS)
    for n, (spec, questions) in enumerate(items):
        gif = f"tumblr_{spec.clip_id}"
        write_gif(root / "gifs" / f"{gif}.gif", synthetic.render_clip(spec), spec.fps)
        for q in questions:
            w.writerow([gif, q["question"], q["answer"], n, n, _TGIF_TYPE[q["anet_type"]]])
    with atomic_path(root / f"{split.capitalize()}_frameqa_question.csv") as tmp:
        Path(tmp).write_text(buf.getvalue())


def write_activitynet_qa(root: Path, items, split: str) -> None:
    rows = []
    for spec, questions in items:
        write_video(root / "videos" / f"v_{spec.clip_id}.mp4", synthetic.render_clip(spec), spec.fps)
        rows += [{"question_id": f"v_{spec.clip_id}_{k}", "video_name": spec.clip_id, "question": q["question"],
                  "answer": q["answer"], "type": q["anet_type"]} for k, q in enumerate(questions)]
    formats.write_activitynet_qa(root, split, rows)


WRITERS = {"msvd_qa": write_msvd_qa, "msrvtt_qa": write_msrvtt_qa, "tgif_frameqa": write_tgif_frameqa,
           "activitynet_qa": write_activitynet_qa}


def write_synthetic_dataset(dataset: str, syn: dict, split: str, cache_dir: str | None = None) -> Path:
    """The data set's release directory (written once, content-keyed); read it with univid.eval.videoqa.datasets.load."""
    keys = ("seed", "clips", "num_frames", "height", "width", "fps")
    missing = [k for k in keys if k not in syn]
    if missing:
        raise ValueError(f"config key 'eval.videoqa.synthetic': missing {missing} (expected {list(keys)})")
    key = key_of(dataset=dataset, split=split, version=WRITER_VERSION, **{k: syn[k] for k in keys})[:16]
    root = cache_root(cache_dir) / "videoqa_synthetic" / f"{dataset}-{key}"
    if not (root / "manifest.json").is_file():
        with atomic_dir(root) as tmp:
            WRITERS[dataset](Path(tmp), synthetic_items(dataset, syn), split)
            (Path(tmp) / "manifest.json").write_text(json.dumps(
                {"dataset": dataset, "split": split, "seed": dataset_seed(dataset, syn), "writer": WRITER_VERSION,
                 "synthetic": {k: syn[k] for k in keys}}, indent=2, sort_keys=True))
    return root
