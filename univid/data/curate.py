"""Curation: OpenVid-1M rows -> generation training pairs; ActivityNet-QA -> Video-ChatGPT conversations.

The synthetic source first writes its world in the official formats (raw/), then follows the very same path as
real files, so the smoke run exercises the code that reads the real data sets.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from univid.data import formats, synthetic
from univid.data.video import VideoError, video_info, write_video
from univid.io import atomic_dir, write_json, write_text


class CurationError(ValueError):
    """The data configuration points at something that is not there."""


# How the synthetic world fills OpenVid-1M's score columns: computed from the clip's pixels, never invented.
SYNTHETIC_SCORE_DEFINITIONS = {
    "aesthetic score": "Hasler-Susstrunk colourfulness of the middle frame / 10, clipped to [0, 10] (the world has no "
                       "aesthetic predictor; OpenVid-1M uses the LAION aesthetic predictor on the same 0-10 range)",
    "motion score": "mean absolute difference between consecutive frames, 0-255 pixel scale",
    "temporal consistency score": "mean cosine similarity between consecutive frames as raw pixel vectors",
    "camera motion": "'static': the world has no camera",
}


# --------------------------------------------------------------------------------------- synthetic raw

def _colourfulness(frame: np.ndarray) -> float:
    f = frame.astype(np.float64)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def clip_scores(frames: np.ndarray) -> dict:
    """OpenVid-style score columns computed from a clip's pixels (see SYNTHETIC_SCORE_DEFINITIONS)."""
    f = frames.astype(np.float64)
    if len(f) > 1:
        motion = float(np.abs(np.diff(f, axis=0)).mean())
        a, b = f[:-1].reshape(len(f) - 1, -1), f[1:].reshape(len(f) - 1, -1)
        denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cos = np.where(denom > 0, (a * b).sum(1) / np.maximum(denom, 1e-12), 1.0)  # two black frames are identical
        consistency = float(cos.mean())
    else:
        motion, consistency = 0.0, 1.0
    aesthetic = min(10.0, _colourfulness(frames[len(frames) // 2]) / 10.0)
    return {"aesthetic score": round(aesthetic, 4), "motion score": round(motion, 4),
            "temporal consistency score": round(consistency, 6), "camera motion": "static"}


def write_synthetic_raw(syn_cfg: dict, raw_dir: Path) -> dict:
    """Render the world into raw_dir in the official layouts: videos/*.mp4, OpenVid-1M.csv, activitynet_qa/."""
    keys = ("seed", "n_clips", "num_frames", "height", "width", "fps", "qa_test_fraction")
    missing = [k for k in keys if k not in syn_cfg]
    if missing:
        raise CurationError(f"data config 'synthetic': missing key(s) {missing} (expected {list(keys)})")
    frac = float(syn_cfg["qa_test_fraction"])
    if not 0.0 <= frac < 1.0:
        raise CurationError(f"data config 'synthetic.qa_test_fraction': {frac} (expected 0 <= fraction < 1)")
    specs = synthetic.sample_clip_specs(int(syn_cfg["seed"]), int(syn_cfg["n_clips"]), int(syn_cfg["num_frames"]),
                                        int(syn_cfg["height"]), int(syn_cfg["width"]), float(syn_cfg["fps"]))
    n_test = int(round(frac * len(specs)))
    # Split QA by clip, so test questions are about videos never seen in QA training; the last clips are test.
    test_ids = {s.clip_id for s in specs[len(specs) - n_test:]}
    # The whole raw tree appears at once: a killed run never leaves a CSV pointing at half-written videos.
    with atomic_dir(raw_dir) as tmp:
        rows, qa = [], {"train": [], "test": []}
        for spec in specs:
            frames = synthetic.render_clip(spec)
            write_video(tmp / "videos" / f"{spec.clip_id}.mp4", frames, spec.fps)
            rows.append({"video": f"{spec.clip_id}.mp4", "caption": synthetic.caption(spec), **clip_scores(frames),
                         "frame": spec.num_frames, "fps": spec.fps,
                         "seconds": round(spec.num_frames / spec.fps, 4)})
            split = "test" if spec.clip_id in test_ids else "train"
            for k, item in enumerate(synthetic.qa_pairs(spec)):
                qa[split].append({"question_id": f"{spec.clip_id}_{k}", "video_name": spec.clip_id,
                                  "question": item["question"], "answer": item["answer"], "type": item["anet_type"]})
        formats.write_openvid_csv(tmp / "OpenVid-1M.csv", rows)
        for split, items in qa.items():
            formats.write_activitynet_qa(tmp / "activitynet_qa", split, items)
    return {"openvid_csv": raw_dir / "OpenVid-1M.csv", "video_dir": raw_dir / "videos",
            "activitynet_qa_dir": raw_dir / "activitynet_qa"}


# ----------------------------------------------------------------------------------------- shared path

def _configured_path(data_cfg: dict, key: str, want_dir: bool) -> Path:
    value = data_cfg.get(key)
    if not value:
        raise CurationError(f"data config key '{key}': not set (expected a path for source 'files')")
    p = Path(value).expanduser().resolve()
    if not (p.is_dir() if want_dir else p.is_file()):
        kind = "directory" if want_dir else "file"
        raise CurationError(f"data config key '{key}': {p} not found (expected an existing {kind})")
    return p


def _readable(path: Path, cache: dict) -> bool:
    if path not in cache:
        try:
            cache[path] = video_info(path)["num_frames"] > 0
        except VideoError:
            cache[path] = False
    return cache[path]


def _filter_reason(row, filters: dict) -> str | None:
    """The first filter a row fails, or None. A filter set to None (or absent) is off."""
    words = len(str(row["caption"]).split())
    checks = (("min_aesthetic", lambda v: row["aesthetic score"] >= v, "low_aesthetic"),
              ("min_motion", lambda v: row["motion score"] >= v, "low_motion"),
              ("min_caption_words", lambda v: words >= v, "short_caption"),
              ("max_caption_words", lambda v: words <= v, "long_caption"),
              ("min_seconds", lambda v: row["seconds"] >= v, "short_video"))
    for key, ok, reason in checks:
        value = filters.get(key)
        if value is not None and not ok(value):  # NaN scores compare False: the row fails that filter
            return reason
    return None


def curate_generation(csv_path: Path, video_dir: Path, filters: dict, n: int | None, seed: int,
                      readable_cache: dict) -> tuple[list[dict], dict]:
    """Filter OpenVid rows, then take up to n valid rows in a seed-determined order."""
    df = formats.read_openvid_csv(csv_path)
    skipped: Counter = Counter()
    candidates = []
    for i, row in df.iterrows():  # cheap checks on every row
        if not str(row["caption"]).strip():
            skipped["empty_caption"] += 1
            continue
        if not str(row["video"]).strip():
            skipped["missing_video"] += 1
            continue
        reason = _filter_reason(row, filters)
        if reason:
            skipped[reason] += 1
            continue
        if not (video_dir / str(row["video"])).is_file():
            skipped["missing_video"] += 1
            continue
        candidates.append(i)
    # Decoding is the expensive check: do it only in sampling order, until n rows are kept.
    order = np.random.default_rng(seed).permutation(len(candidates))
    kept = []
    for j in order:
        if n is not None and len(kept) >= n:
            break
        row = df.loc[candidates[j]]
        path = (video_dir / str(row["video"])).resolve()
        if not _readable(path, readable_cache):
            skipped["unreadable_video"] += 1
            continue
        kept.append((candidates[j], {"video": str(path), "caption": str(row["caption"]).strip()}))
    kept.sort(key=lambda t: t[0])  # file order, so the output reads like the source
    report = {"rows_in": int(len(df)), "candidates_after_filters": len(candidates), "kept": len(kept),
              "skipped": dict(sorted(skipped.items())), "requested": n}
    return [r for _, r in kept], report


def curate_qa(qa_dir: Path, split: str, video_dir: Path, n: int | None, seed: int,
              readable_cache: dict) -> tuple[list[dict], dict]:
    """ActivityNet-QA split -> Video-ChatGPT conversations, bad items skipped, up to n chosen by seed."""
    items = formats.read_activitynet_qa(qa_dir, split)
    skipped: Counter = Counter()
    good = []
    for it in items:
        if not str(it["question"]).strip():
            skipped["empty_question"] += 1
            continue
        if not str(it["answer"]).strip():
            skipped["empty_answer"] += 1
            continue
        path = formats.video_path_for(video_dir, it["video_name"])
        if not path.is_file():
            skipped["missing_video"] += 1
            continue
        if not _readable(path.resolve(), readable_cache):
            skipped["unreadable_video"] += 1
            continue
        good.append(it)
    if n is not None and len(good) > n:
        pick = np.sort(np.random.default_rng(seed).choice(len(good), size=n, replace=False))
        good = [good[i] for i in pick]
    convs = formats.to_conversations(good, video_dir.resolve())
    report = {"items_in": len(items), "kept": len(convs), "skipped": dict(sorted(skipped.items())), "requested": n}
    return convs, report


def _count(value, key: str) -> int | None:
    if value is None:
        return None
    if int(value) < 0:
        raise CurationError(f"data config key '{key}': {value} (expected a non-negative count or null for all)")
    return int(value)


def curate(data_cfg: dict, out_dir: Path, seed: int) -> dict:
    """Write gen_train.jsonl, qa_train.json, qa_test.json and curation_report.json into out_dir; return the report."""
    out_dir = Path(out_dir)
    source = data_cfg.get("source")
    if source == "synthetic":
        if not isinstance(data_cfg.get("synthetic"), dict):
            raise CurationError("data config key 'synthetic': not set (expected a mapping for source 'synthetic')")
        paths = write_synthetic_raw(data_cfg["synthetic"], (out_dir / "raw").resolve())
    elif source == "files":
        paths = {"openvid_csv": _configured_path(data_cfg, "openvid_csv", want_dir=False),
                 "video_dir": _configured_path(data_cfg, "video_dir", want_dir=True),
                 "activitynet_qa_dir": _configured_path(data_cfg, "activitynet_qa_dir", want_dir=True)}
    else:
        raise CurationError(f"data config key 'source': {source!r} (expected 'synthetic' or 'files')")
    # ActivityNet videos usually live apart from OpenVid's; without that key both come from video_dir.
    qa_video_dir = paths["video_dir"]
    if source == "files" and data_cfg.get("activitynet_video_dir"):
        qa_video_dir = _configured_path(data_cfg, "activitynet_video_dir", want_dir=True)

    cache: dict = {}
    gen_rows, gen_report = curate_generation(paths["openvid_csv"], paths["video_dir"], data_cfg.get("filters") or {},
                                             _count(data_cfg.get("num_gen_samples"), "num_gen_samples"), seed, cache)
    qa_train, qa_train_report = curate_qa(paths["activitynet_qa_dir"], "train", qa_video_dir,
                                          _count(data_cfg.get("num_qa_samples"), "num_qa_samples"), seed, cache)
    qa_test, qa_test_report = curate_qa(paths["activitynet_qa_dir"], "test", qa_video_dir, None, seed, cache)

    write_text(out_dir / "gen_train.jsonl", "".join(json.dumps(r) + "\n" for r in gen_rows))
    write_json(out_dir / "qa_train.json", qa_train)
    write_json(out_dir / "qa_test.json", qa_test)
    report = {
        "source": source, "seed": seed,
        "inputs": {k: str(v) for k, v in paths.items()} | {"activitynet_video_dir": str(qa_video_dir)},
        "filters": data_cfg.get("filters") or {},
        "generation": gen_report, "qa_train": qa_train_report, "qa_test": qa_test_report,
        "outputs": {"gen_train": str(out_dir / "gen_train.jsonl"), "qa_train": str(out_dir / "qa_train.json"),
                    "qa_test": str(out_dir / "qa_test.json")},
    }
    if source == "synthetic":
        report["synthetic"] = dict(data_cfg["synthetic"])
        report["score_definitions"] = SYNTHETIC_SCORE_DEFINITIONS
    write_json(out_dir / "curation_report.json", report)  # last: its presence means the other outputs are complete
    return report
