"""VBench-Long: clip splitting and clip-to-video pooling as `vbench2_beta_long` does it (VBench 0.1.5).

What the official long evaluation does, and what this module reproduces:
- clip length per *video*: the largest `clip_length_mix.yaml` value over every dimension that any suite entry with the
  video's prompt lists (2 s; 10 s for human_action, temporal_style, overall_consistency), truncated to whole seconds
  (`int(duration)`); `long_custom_input` mode uses 2 s for every video;
- `split_video_into_clips`: fps = int(average fps), clip = fps * seconds frames; a video shorter than one clip is one
  clip (`_full`); otherwise floor(n / clip) back-to-back clips, and a short tail becomes one more full-length clip
  ending at the last frame (it borrows the frames it lacks from the clip before);
- optional scene detection first (`--use_semantic_splitting`: PySceneDetect ContentDetector, threshold 35): each
  detected scene is split into clips as above; no cut found means the whole video;
- every clip is scored as its own entry, so a dimension's total is the mean over clip entries, i.e. per-video scores
  weighted by clip count (`reorganize_clips_results` adds per-long-video means beside it; clips without a score,
  colour's "object never seen", are left out);
- subject/background consistency: when no video has two clips, the official code falls back to the in-clip pooled
  score (pair-weighted over all clips); with `dev_flag` each video's score becomes
  w_inclip * in-clip + w_clip2clip * mapped(clip-to-clip), clip-to-clip being the consistency of the sequence of the
  clips' first frames, mapped through VBench's quantile table (0.7/0.3 subject, 0.8/0.2 background).
Differences, recorded in the results: clips are sliced from the decoded frames instead of re-encoded to mp4 and
decoded again, and a scene's clips are attributed to the video they came from (the official standard mode looks them
up under the video's own name and misses them).
"""

from __future__ import annotations

import functools
import json
from bisect import bisect_left
from pathlib import Path

import numpy as np

from univid.eval.vbench.constants import DIMENSIONS

CLIP_LENGTH_MODES = ("mix", "fixed2")  # clip_length_mix.yaml | long_custom_input's 2 s for every video
SCENE_DETECTOR_ID = "univid-content-detector(pyscenedetect-ContentDetector-hsv-mean-delta,min_scene_len=15)"


@functools.lru_cache(maxsize=1)
def tables() -> dict:
    return json.loads((Path(__file__).with_name("long_tables.json")).read_text())


def clip_seconds(prompt: str, entries: list[dict], mode: str = "mix") -> int:
    """`get_duration_from_json`: the longest configured clip over the dimensions of every entry with this prompt."""
    if mode not in CLIP_LENGTH_MODES:
        raise ValueError(f"eval.vbench.long.clip_length {mode!r}: unknown (expected one of {CLIP_LENGTH_MODES})")
    if mode == "fixed2":
        return 2
    lengths = tables()["clip_length_mix"]
    dims = {d for e in entries if e["prompt_en"] == prompt for d in e["dimension"]}
    if not dims:
        raise ValueError(f"{prompt!r}: not in the prompt suite (expected an entry naming its dimensions)")
    return int(max(lengths[d] for d in dims))


def clip_ranges(num_frames: int, fps: float, seconds: int) -> list[tuple[int, int]]:
    """`split_video_into_clips` as [start, end) frame ranges."""
    if num_frames < 1:
        raise ValueError(f"clip splitting: {num_frames} frames (expected at least 1)")
    seg = int(fps) * int(seconds)
    if seg < 1:
        raise ValueError(f"clip splitting: fps {fps!r} x {seconds} s is less than one frame (expected fps >= 1)")
    if num_frames < seg:
        return [(0, num_frames)]
    full, rem = divmod(num_frames, seg)
    ranges = [(i * seg, (i + 1) * seg) for i in range(full)]
    if rem:
        ranges.append((max(0, full * seg - (seg - rem)), num_frames))
    return ranges


def _content_scores(frames: np.ndarray) -> np.ndarray:
    """PySceneDetect ContentDetector's frame score: mean |delta| of hue, saturation and value (equal weights)."""
    import cv2

    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames]).astype(np.float32)
    return np.abs(np.diff(hsv, axis=0)).mean(axis=(1, 2, 3))  # [T-1]: change from frame i to i+1


def detect_scenes(frames: np.ndarray, threshold: float = 35.0, min_scene_len: int = 15) -> list[tuple[int, int]]:
    """[start, end) scenes; a cut before frame i+1 when the content score reaches threshold and the current scene
    has at least min_scene_len frames. No cut: [] (the official code then keeps the whole video)."""
    if len(frames) < 2:
        return []
    cuts, last = [], 0
    for i, s in enumerate(_content_scores(frames)):
        if s >= threshold and (i + 1) - last >= min_scene_len:
            cuts.append(i + 1)
            last = i + 1
    if not cuts:
        return []
    bounds = [0, *cuts, len(frames)]
    return list(zip(bounds[:-1], bounds[1:]))


def video_clips(frames: np.ndarray, fps: float, seconds: int, scene_detection: bool = False,
                scene_threshold: float = 35.0) -> list[tuple[int, int]]:
    """All clip ranges of one video (scenes first when asked), in frame indices of the whole video."""
    scenes = detect_scenes(frames, scene_threshold) if scene_detection else []
    if not scenes:
        return clip_ranges(len(frames), fps, seconds)
    return [(a + s, a + e) for a, b in scenes for s, e in clip_ranges(b - a, fps, seconds)]


def map_clip2clip(dim: str, score: float) -> float:
    """`fuse_inclip_clip2clip`'s table lookup: bisect into VBench's quantile mapping, linear in between."""
    pairs = tables()["mapping_table"][dim]
    keys = [k for k, _ in pairs]
    values = dict((k, v) for k, v in pairs)
    idx = bisect_left(keys, score)
    if idx == 0:
        return values[keys[0]]
    if idx == len(keys):
        return values[keys[-1]]
    k0, k1 = keys[idx - 1], keys[idx]
    return values[k0] + (values[k1] - values[k0]) * (score - k0) / (k1 - k0)


def fuse(dim: str, inclip: float, clip2clip: float | None) -> float:
    """dev_flag fusion of one video's scores; a video with one clip (no clip-to-clip score) keeps its in-clip score."""
    w = tables()["dev_weights"][dim]
    mapped = map_clip2clip(dim, clip2clip) if clip2clip is not None else 0.0
    return inclip * w["w_inclip"] + mapped * w["w_clip2clip"] if mapped != 0.0 else inclip


def pool_long(dim: str, per_video: dict[str, dict]) -> float:
    """A dimension's score from {video: {"score", "clips": [[score, weight], ...], "fused"?}} (see module doc)."""
    if dim not in DIMENSIONS:
        raise ValueError(f"dimension {dim!r}: unknown (expected one of {', '.join(DIMENSIONS)})")
    if dim in ("subject_consistency", "background_consistency") and per_video \
            and all(len(v["clips"]) < 2 for v in per_video.values()):
        clips = [c for v in per_video.values() for c in v["clips"] if c[0] is not None]
        total = sum(w for _, w in clips)
        return sum(s * w for s, w in clips) / total if total else 0.0
    # vbench 0.1.5 keys every clip separately (one per long video only when dev_flag fuses it), so its total is the
    # mean over clip entries: per-video scores weighted by their clip count (checked against the official run).
    scored = [(v.get("fused", v["score"]), 1 if "fused" in v else max(1, len(v["clips"])))
              for v in per_video.values() if v["score"] is not None]
    total = sum(w for _, w in scored)
    return float(sum(s * w for s, w in scored) / total) if total else 0.0
