"""VBench scoring in process with the stand-in scorers (univid.eval.vbench.scorers): each video is decoded and
scored once however many prompt entries name it, then pooled as VBench pools (univid.eval.vbench.suite)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from univid.eval.cache import EvalCache, frames_sha256
from univid.eval.vbench.long import SCENE_DETECTOR_ID, clip_seconds, fuse, video_clips
from univid.eval.vbench.scorers import SCORERS, ScoringContext, default_context
from univid.eval.vbench.suite import FUSED, cache_key, check_entries, long_settings, pool_results, resolve_dims, video_name

# A loader gives the i-th video of a prompt: bare frames, or an object with .frames and .fps (univid.data.video.Video).
Loader = Callable[[str, int], Any]


def _frames_fps(video: Any, default_fps: float | None, name: str) -> tuple[np.ndarray, float | None]:
    if hasattr(video, "frames"):
        return video.frames, (getattr(video, "fps", None) or default_fps)
    if isinstance(video, np.ndarray):
        return video, default_fps
    raise ValueError(f"{name}: video of type {type(video).__name__} (expected uint8 [T,H,W,3] frames or a Video)")


def _score_one(frames: np.ndarray, fps: float | None, dim: str, entry: dict, ctx: ScoringContext,
               long: dict | None, seconds: int | None) -> dict:
    """One video's raw score on one dimension: {"score", "weight"} (+ "clips", "ranges", "clip2clip", "fused")."""
    scorer = SCORERS[dim]
    if long is None:
        value, weight = scorer.score(frames, entry, ctx, fps=fps)
        return {"score": value, "weight": weight}
    if not fps:
        raise ValueError(f"{dim}: VBench-Long clip splitting needs the video's fps (expected a Video or fps=...)")
    ranges = video_clips(frames, fps, seconds, long["scene_detection"], long["scene_threshold"])
    clips = [list(scorer.score(frames[a:b], entry, ctx, fps=int(fps))) for a, b in ranges]
    scored = [s for s, _ in clips if s is not None]
    rec = {"score": float(np.mean(scored)) if scored else None, "weight": 1, "clips": clips,
           "ranges": [list(r) for r in ranges]}
    if long["dev_flag"] and dim in FUSED and rec["score"] is not None:
        firsts = frames[[a for a, _ in ranges]]
        rec["clip2clip"] = float(scorer.fn(firsts, entry, ctx)) if len(ranges) >= 2 else None
        rec["fused"] = fuse(dim, rec["score"], rec["clip2clip"])
    return rec


def score_videos(entries: list[dict], videos: Mapping[str, list] | Loader, dims: list[str] | None = None, *,
                 samples_per_prompt: int = 1, fps: float | None = None,
                 ctx: ScoringContext | None = None, long: Mapping | None = None, cache: EvalCache | None = None,
                 video_hashes: Mapping[str, str] | None = None) -> dict:
    """Per-video raw scores and per-dimension scores (raw, in [0, 1]) over a prompt suite.

    videos: {prompt_en: [video, ...]} (every listed video is scored), or loader(prompt_en, i) called for
    i < samples_per_prompt. A video is uint8 [T,H,W,3] RGB frames or an object with .frames and .fps; fps
    (the frame rate of bare arrays) matters to dynamic_degree's frame stride and to VBench-Long's clip length.
    dims: None means all 16. long: eval.vbench.long (None/disabled: VBench on whole videos; enabled: VBench-Long's
    clips, see univid.eval.vbench.long). cache: raw scores are looked up by (video content hash, dimension, scorer backend
    id, prompt entry, long flags) and stored; with video_hashes ({video file name: content hash}) a video whose
    scores are all cached is never loaded. Returns {"per_video", "dimensions", "backends", "unscored", "aggregate",
    "protocol", "long", "counts"}; "aggregate" is VBench's Total/Quality/Semantic (percent) when all 16 dimensions
    were scored, else None.
    """
    check_entries(entries)
    wanted = resolve_dims(entries, dims)
    if isinstance(samples_per_prompt, bool) or not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt {samples_per_prompt!r} (expected a positive integer)")
    ctx = ctx or default_context()
    long = long_settings(long)
    backends = {d: SCORERS[d].backend(ctx) for d in wanted}

    def names_of(prompt: str) -> list[tuple[str, int]]:
        if callable(videos):
            return [(video_name(prompt, i), i) for i in range(samples_per_prompt)]
        if prompt not in videos or not videos[prompt]:
            raise ValueError(f"{prompt!r}: no videos given (expected at least one under this prompt)")
        return [(video_name(prompt, i), i) for i in range(len(videos[prompt]))]

    # Which dimensions each distinct video needs, in suite order.
    needs: dict[str, tuple[str, int, dict[str, dict]]] = {}
    for e in entries:
        for d in (d for d in e["dimension"] if d in wanted):
            for name, i in names_of(e["prompt_en"]):
                needs.setdefault(name, (e["prompt_en"], i, {}))[2].setdefault(d, e)

    def key(vhash: str, d: str, e: dict, seconds: int | None) -> str:
        return cache_key(vhash, d, backends[d], e, long, seconds, fps)

    counts = {"videos": len(needs), "videos_decoded": 0, "scored": 0, "cached": 0}
    records: dict[tuple[str, str], dict] = {}
    for name, (prompt, i, dim_entries) in needs.items():
        seconds = clip_seconds(prompt, entries, long["clip_length"]) if long else None
        vhash = (video_hashes or {}).get(name)
        if cache is not None and vhash is not None:
            hits = {d: cache.get("vbench", key(vhash, d, e, seconds)) for d, e in dim_entries.items()}
            if all(h is not None for h in hits.values()):
                records.update({(name, d): h for d, h in hits.items()})
                counts["cached"] += len(hits)
                continue
        video = videos(prompt, i) if callable(videos) else videos[prompt][i]
        frames, video_fps = _frames_fps(video, fps, name)
        counts["videos_decoded"] += 1
        if vhash is None and cache is not None:
            vhash = frames_sha256(frames, video_fps)
        for d, e in dim_entries.items():
            k = key(vhash, d, e, seconds) if cache is not None else None
            rec = cache.get("vbench", k) if cache is not None else None
            if rec is None:
                try:
                    rec = _score_one(frames, video_fps, d, e, ctx, long, seconds)
                except ValueError as err:
                    raise ValueError(f"{name}: {err}") from None
                counts["scored"] += 1
                if cache is not None:
                    cache.put("vbench", k, rec)
            else:
                counts["cached"] += 1
            records[(name, d)] = rec

    if long and long["dev_flag"]:
        for d in set(FUSED) & set(wanted):
            backends[d] += f"+dev_flag-clip2clip:{backends[d].split('+standin:')[-1]}-for-" + \
                           ("dinov2" if d == "subject_consistency" else "dreamsim")
    deviations = ["clips sliced from decoded frames, not re-encoded", "scene clips attributed to their source video"]
    return pool_results(entries, wanted, names_of, records, long, backends, counts,
                        scene_detector=SCENE_DETECTOR_ID, deviations=deviations)
