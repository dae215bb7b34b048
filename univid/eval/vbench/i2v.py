"""VBench-I2V's video-image consistency (vbench2_beta_i2v: i2v_subject, i2v_background): how closely a TI2V video
keeps the reference image it was generated from.

Per video, the official formula (vbench2_beta_i2v/i2v_subject.py, i2v_background.py): over every frame,
    w_max * max_t cos(image, frame_t) + w_mean * mean_t cos(frame_t-1, frame_t) + w_min * min_t cos(frame_t-1, frame_t)
with each cosine clamped at 0; i2v_subject on DINO features with weights (0.5, 0.5, 0), i2v_background on DreamSim
features with (0.4, 0.3, 0.3); a dimension is the mean over its videos.

The features come from the harness's named random-init stand-ins (the DINO stand-in; the CLIP stand-in for DreamSim),
as for every stand-in dimension: the number follows how close the frames stay to the reference in those features,
it measures nothing semantic. The official vbench2_beta_i2v code (DINO, DreamSim) is not wired into the official
backend: with eval.vbench.backend official these two dimensions are left unscored, and scores.json says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from univid.eval.cache import EvalCache, file_sha256, key_of
from univid.eval.vbench.scorers import (CLIP_STANDIN, DINO_STANDIN, ScoringContext, _clip_image_features,
                                        _dino_features)
from univid.eval.vbench.suite import video_name
from univid.prompts import I2V_DIMENSIONS

I2V_WEIGHTS = {"i2v_subject": (0.5, 0.5, 0.0), "i2v_background": (0.4, 0.3, 0.3)}  # (max, mean, min)
BACKEND_IDS = {"i2v_subject": f"official-formula:i2v_subject+standin:{DINO_STANDIN}-for-dino-vitb16",
               "i2v_background": f"official-formula:i2v_background+standin:{CLIP_STANDIN}-for-dreamsim"}
OFFICIAL_UNSCORED = ("not scored: the official backend does not run vbench2_beta_i2v (DINO, DreamSim) yet; "
                     "the stand-in backend scores it")


def backend_id(dim: str, ctx: ScoringContext) -> str:
    return BACKEND_IDS[dim].format(seed=ctx.seed)


def i2v_consistency(frames: np.ndarray, image: np.ndarray, dim: str, ctx: ScoringContext) -> float:
    """One video's score on `dim` against its reference image (uint8 [T, H, W, 3] frames, uint8 [h, w, 3] image)."""
    if dim not in I2V_WEIGHTS:
        raise ValueError(f"i2v dimension {dim!r}: unknown (expected one of {', '.join(I2V_DIMENSIONS)})")
    for what, arr, ndim in (("frames", frames, 4), ("reference image", image, 3)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != ndim or arr.shape[-1] != 3:
            raise ValueError(f"{dim}: {what} of shape {getattr(arr, 'shape', None)} (expected uint8 "
                             f"{'[T,H,W,3]' if ndim == 4 else '[H,W,3]'})")
    if len(frames) < 2:
        raise ValueError(f"{dim}: {len(frames)} frame(s) (expected at least 2)")
    features = _dino_features if dim == "i2v_subject" else _clip_image_features
    f, ref = features(frames, ctx), features(image[None], ctx)[0]
    conformity = (f @ ref).clamp(min=0.0)
    consecutive = (f[1:] * f[:-1]).sum(-1).clamp(min=0.0)
    w_max, w_mean, w_min = I2V_WEIGHTS[dim]
    score = w_max * float(conformity.max()) + w_mean * float(consecutive.mean()) + w_min * float(consecutive.min())
    return min(1.0, score)  # float rounding can put a cosine a hair above 1


def _read_image(path: Path) -> np.ndarray:
    import PIL.Image

    with PIL.Image.open(path) as im:
        return np.array(im.convert("RGB"))


def score_i2v(entries: list[dict], load: Callable[[str, int], np.ndarray], images: Mapping[str, Path],
              samples_per_prompt: int, ctx: ScoringContext, cache: EvalCache | None = None,
              backend: str = "standin", video_dir: Path | None = None) -> dict:
    """{"dimensions", "backends", "per_video", "unscored"} of every entry's videos (load(prompt, i) -> frames) on the
    i2v dimensions the entry lists (`i2v_dimension`), against its reference image (images[prompt]). Raw scores are
    cached by video content (the file in video_dir), reference image sha256, dimension and backend id."""
    wanted = [d for d in I2V_DIMENSIONS if any(d in (e.get("i2v_dimension") or []) for e in entries)]
    if backend != "standin":
        return {"dimensions": {}, "backends": {}, "per_video": [], "unscored": {d: OFFICIAL_UNSCORED for d in wanted}}
    per_video, counts = [], {"scored": 0, "cached": 0}
    for e in entries:
        dims = [d for d in I2V_DIMENSIONS if d in (e.get("i2v_dimension") or [])]
        if not dims:
            continue
        image = None
        for i in range(samples_per_prompt):
            name = video_name(e["prompt_en"], i)
            vhash = file_sha256(video_dir / name) if cache is not None and video_dir is not None else None
            frames = None
            for d in dims:
                key = key_of(video=vhash, image=e["image_sha256"], dimension=d, backend=backend_id(d, ctx))
                score = cache.get("vbench_i2v", key) if vhash is not None else None
                if score is None:
                    if frames is None:
                        frames = load(e["prompt_en"], i)
                    if image is None:
                        image = _read_image(images[e["prompt_en"]])
                    try:
                        score = i2v_consistency(frames, image, d, ctx)
                    except ValueError as err:
                        raise ValueError(f"{name}: {err}") from None
                    counts["scored"] += 1
                    if vhash is not None:
                        cache.put("vbench_i2v", key, score)
                else:
                    counts["cached"] += 1
                per_video.append({"video": name, "prompt": e["prompt_en"], "dimension": d, "score": score,
                                  "image_sha256": e["image_sha256"]})
    dimensions = {d: float(np.mean([r["score"] for r in per_video if r["dimension"] == d])) for d in wanted}
    return {"dimensions": dimensions, "backends": {d: backend_id(d, ctx) for d in wanted}, "per_video": per_video,
            "unscored": {}, "protocol": "vbench-i2v per-video formula on whole videos", "counts": counts}
