"""Score a prompt suite's videos on VBench dimensions with the smoke scorers, as VBench pools them.

A dimension is scored only on the videos of the prompts whose "dimension" list names it, and each prompt entry
counts its videos once per entry (VBench_full_info.json repeats some prompts; VBench then counts their videos
again, and so do we). Each video is decoded and scored once however many entries name it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from univid.eval.cache import EvalCache, file_sha256, frames_sha256, key_of
from univid.eval.checks import check_info, check_names
from univid.eval.long import CLIP_LENGTH_MODES, SCENE_DETECTOR_ID, clip_seconds, fuse, pool_long, video_clips
from univid.eval.scorers import SCORERS, ScoringContext, default_context
from univid.eval.vbench_aggregate import aggregate
from univid.eval.vbench_constants import DIMENSIONS
from univid.io import read_json, write_json

# A loader gives the i-th video of a prompt: bare frames, or an object with .frames and .fps (univid.data.video.Video).
Loader = Callable[[str, int], Any]


def video_name(prompt: str, index: int) -> str:
    """VBench's file name for the index-th sample of a prompt."""
    return f"{prompt}-{index}.mp4"


def _check_entries(entries: list[dict]) -> None:
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"prompt suite of type {type(entries).__name__} (expected a non-empty list of entries)")
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("prompt_en"), str) or not e["prompt_en"]:
            raise ValueError(f"prompt entry {str(e)[:80]} (expected a dict with a non-empty 'prompt_en')")
        dims = e.get("dimension")
        if not isinstance(dims, list) or not dims:
            raise ValueError(f"{e['prompt_en']!r}: 'dimension' = {dims!r} (expected a non-empty list of dimensions)")
        for d in dims:
            if d not in DIMENSIONS:
                raise ValueError(f"{e['prompt_en']!r}: unknown dimension {d!r} "
                                 f"(expected one of {', '.join(DIMENSIONS)})")


def _resolve_dims(entries: list[dict], dims: list[str] | None) -> list[str]:
    wanted = list(DIMENSIONS) if dims is None else list(dims)
    for d in wanted:
        if d not in DIMENSIONS:
            raise ValueError(f"dimension {d!r}: unknown (expected one of {', '.join(DIMENSIONS)})")
        if not any(d in e["dimension"] for e in entries):
            raise ValueError(f"dimension {d!r}: no prompt in the suite lists it (expected at least one video to score)")
    return wanted


def _frames_fps(video: Any, default_fps: float | None, name: str) -> tuple[np.ndarray, float | None]:
    if hasattr(video, "frames"):
        return video.frames, (getattr(video, "fps", None) or default_fps)
    if isinstance(video, np.ndarray):
        return video, default_fps
    raise ValueError(f"{name}: video of type {type(video).__name__} (expected uint8 [T,H,W,3] frames or a Video)")


BACKENDS = ("standin", "official")
LONG_DEFAULTS = {"enabled": False, "clip_length": "mix", "scene_detection": False, "scene_threshold": 35.0,
                 "dev_flag": False, "static_filter": False}
_FUSED = ("subject_consistency", "background_consistency")


def long_settings(long: Mapping | None, official: bool = False) -> dict | None:
    """The VBench-Long flags (eval.vbench.long) completed with defaults; None when long evaluation is off.
    official: flags for the official backend (univid.eval.vbench_official), which runs the RAFT static filter."""
    if not long:
        return None
    unknown = sorted(set(long) - set(LONG_DEFAULTS))
    if unknown:
        raise ValueError(f"eval.vbench.long.{unknown[0]}: unknown flag (expected one of {', '.join(LONG_DEFAULTS)})")
    settings = {**LONG_DEFAULTS, **long}
    if not settings["enabled"]:
        return None
    if settings["static_filter"] and not official:
        # vbench2_beta_long's static filter drops near-static clips from temporal_flickering with RAFT flow.
        raise ValueError("eval.vbench.long.static_filter: true needs RAFT weights (expected false here; the official "
                         "filter runs only through the official vbench environment, `make vbench-env`)")
    if settings["clip_length"] not in CLIP_LENGTH_MODES:
        raise ValueError(f"eval.vbench.long.clip_length {settings['clip_length']!r}: unknown "
                         f"(expected one of {CLIP_LENGTH_MODES})")
    return settings


def cache_key(vhash: str, dim: str, backend: str, entry: dict, long: dict | None, seconds: int | None,
              default_fps: float | None = None) -> str:
    """A raw score's cache key: video content, dimension, backend id, prompt entry and the long flags that change
    this dimension's score (dev_flag touches only subject/background consistency)."""
    flags = None if long is None else {**{k: v for k, v in long.items() if k != "dev_flag" or dim in _FUSED},
                                       "seconds": seconds}
    return key_of(video=vhash, dimension=dim, backend=backend, entry=entry, default_fps=default_fps, long=flags)


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
    if long["dev_flag"] and dim in _FUSED and rec["score"] is not None:
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
    clips, see univid.eval.long). cache: raw scores are looked up by (video content hash, dimension, scorer backend
    id, prompt entry, long flags) and stored; with video_hashes ({video file name: content hash}) a video whose
    scores are all cached is never loaded. Returns {"per_video", "dimensions", "backends", "unscored", "aggregate",
    "protocol", "long", "counts"}; "aggregate" is VBench's Total/Quality/Semantic (percent) when all 16 dimensions
    were scored, else None.
    """
    _check_entries(entries)
    wanted = _resolve_dims(entries, dims)
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
        for d in set(_FUSED) & set(wanted):
            backends[d] += f"+dev_flag-clip2clip:{backends[d].split('+standin:')[-1]}-for-" + \
                           ("dinov2" if d == "subject_consistency" else "dreamsim")
    deviations = ["clips sliced from decoded frames, not re-encoded", "scene clips attributed to their source video"]
    return pool_results(entries, wanted, names_of, records, long, backends, counts,
                        scene_detector=SCENE_DETECTOR_ID, deviations=deviations)


def pool_results(entries: list[dict], wanted: list[str], names_of: Callable[[str], list[tuple[str, int]]],
                 records: Mapping[tuple[str, str], dict], long: dict | None, backends: dict, counts: dict, *,
                 scene_detector: str, deviations: list[str],
                 long_pool: Callable[[str, dict], float] = pool_long) -> dict:
    """Per-video rows, per-dimension scores pooled as VBench pools them, and the aggregate, from per-(video,
    dimension) records {"score", "weight"} (+ "clips", "clip2clip", "fused" under VBench-Long); shared by the
    stand-in and the official backends (long_pool: how long videos pool into a dimension, see
    vbench_official.pool_official_long)."""
    per_video = []
    for e in entries:
        for d in (d for d in e["dimension"] if d in wanted):
            for name, _ in names_of(e["prompt_en"]):
                rec = records[(name, d)]
                row = {"video": name, "prompt": e["prompt_en"], "dimension": d, "score": rec["score"],
                       "weight": rec["weight"]}
                if long:
                    row.update({"clips": len(rec["clips"]), "clip_scores": [c[0] for c in rec["clips"]]})
                    if "fused" in rec:
                        row.update({"clip2clip": rec["clip2clip"], "fused": rec["fused"]})
                per_video.append(row)

    dimensions, unscored = {}, {}
    for d in wanted:
        rows = [r for r in per_video if r["dimension"] == d]
        scored = [r for r in rows if r["score"] is not None]
        unscored[d] = len(rows) - len(scored)
        if long:
            # VBench-Long groups clips by long video (a video listed by two entries counts once) and averages.
            dimensions[d] = long_pool(d, {r["video"]: records[(r["video"], d)] for r in rows})
            continue
        total_weight = sum(r["weight"] for r in scored)
        # Only color can leave a video out (the object never appeared). If it leaves out every video there is no
        # frame with the object at all, so no frame shows it in the asked colour: a measured 0, recorded as such
        # in "unscored", where VBench would divide by zero.
        dimensions[d] = sum(r["score"] * r["weight"] for r in scored) / total_weight if total_weight else 0.0

    return {
        "per_video": per_video,
        "dimensions": dimensions,
        "backends": backends,
        "unscored": unscored,
        "aggregate": aggregate(dimensions) if set(wanted) == set(DIMENSIONS) else None,
        "protocol": "vbench-long" if long else "vbench",
        "long": None if long is None else {**long, "scene_detector": scene_detector if long["scene_detection"]
                                           else None, "deviations": deviations},
        "counts": counts,
    }


def backend_options(vbench_cfg: Mapping) -> dict:
    """score_video_dir's backend keywords from eval.vbench: backend, and for "official" the vbench environment's
    python and the weights root (null: $VBENCH_CACHE_DIR, else ~/.cache/vbench)."""
    backend = vbench_cfg.get("backend", "standin")
    if backend not in BACKENDS:
        raise ValueError(f"eval.vbench.backend {backend!r}: unknown (expected one of {', '.join(BACKENDS)})")
    if backend == "standin":
        return {"backend": backend}
    return {"backend": backend, "official": {"python": vbench_cfg.get("official_python"),
                                             "weights_root": vbench_cfg.get("official_weights")}}


def _expected_names(entries: list[dict], wanted: list[str] | None, samples_per_prompt: int) -> list[str]:
    return list(dict.fromkeys(
        video_name(e["prompt_en"], i)
        for e in entries if wanted is None or any(d in wanted for d in e["dimension"])
        for i in range(samples_per_prompt)))


def score_video_dir(video_dir: str | os.PathLike, prompt_suite_json: str | os.PathLike,
                    out_json: str | os.PathLike, dims: list[str] | None = None, samples_per_prompt: int = 1,
                    ctx: ScoringContext | None = None, *, long: Mapping | None = None,
                    cache: EvalCache | None = None, checks: Mapping | None = None,
                    extra: Mapping | None = None, backend: str = "standin",
                    official: Mapping | None = None) -> dict:
    """Score `{video_dir}/{prompt_en}-{i}.mp4` (i < samples_per_prompt) for the suite; write the result atomically.

    checks: {"num_frames", "fps", "min_duration_s"} (any may be None) - every video is checked first (naming, frame
    count, fps, duration; univid.eval.checks) and nothing is scored on a mismatch. cache: see score_videos; video
    files are keyed by their sha256. extra: fields merged into the written JSON (config, provenance, ...).
    backend (eval.vbench.backend): "standin" scores in process (univid.eval.scorers); "official" runs vbench 0.1.5
    in its own environment (univid.eval.vbench_official; official: its keyword arguments, e.g. python, device,
    weights_root). Both pool through pool_results, so the written JSON has one shape.
    """
    if backend not in BACKENDS:
        raise ValueError(f"eval.vbench.backend {backend!r}: unknown (expected one of {', '.join(BACKENDS)})")
    from univid.data.video import read_video, video_info

    video_dir = Path(video_dir)
    entries = read_json(prompt_suite_json)
    _check_entries(entries)
    wanted = _resolve_dims(entries, dims)
    if isinstance(samples_per_prompt, bool) or not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt {samples_per_prompt!r} (expected a positive integer)")

    expected = _expected_names(entries, wanted, samples_per_prompt)
    missing = [n for n in expected if not (video_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{video_dir / missing[0]}: video not found (expected every '{{prompt_en}}-{{i}}.mp4' "
                                f"for i < {samples_per_prompt}; {len(missing)} of {len(expected)} missing)")
    hashes = {n: file_sha256(video_dir / n) for n in expected} if cache is not None else None

    infos = None
    if checks is not None:
        def info_of(path: Path) -> dict:
            if cache is None:
                return video_info(path)
            k = key_of(video=hashes[path.name], what="video_info")
            info = cache.get("video_info", k)
            if info is None:
                info = video_info(path)
                cache.put("video_info", k, info)
            return info

        check_names(video_dir, expected, allowed=_expected_names(entries, None, samples_per_prompt))
        infos = {n: info_of(video_dir / n) for n in expected}
        for n in expected:
            check_info(str(video_dir / n), infos[n], num_frames=checks.get("num_frames"), fps=checks.get("fps"),
                       min_duration_s=checks.get("min_duration_s") or 0.0)

    if backend == "official":
        from univid.eval.vbench_official import score_official

        result = score_official(entries, video_dir, prompt_suite_json, wanted,
                                lambda prompt: [(video_name(prompt, i), i) for i in range(samples_per_prompt)],
                                long=long_settings(long, official=True), samples_per_prompt=samples_per_prompt,
                                cache=cache, hashes=hashes, work_dir=Path(out_json).parent, **(official or {}))
    else:
        result = score_videos(entries, lambda prompt, i: read_video(video_dir / video_name(prompt, i)), wanted,
                              samples_per_prompt=samples_per_prompt, ctx=ctx, long=long, cache=cache,
                              video_hashes=hashes)
    result.update({"video_dir": str(video_dir), "prompt_suite": str(prompt_suite_json),
                   "samples_per_prompt": samples_per_prompt})
    if hashes is not None:
        result["video_sha256"] = hashes
    if infos is not None:
        result["checks"] = {"passed": True, **{k: checks.get(k) for k in ("num_frames", "fps", "min_duration_s")}}
    if cache is not None:
        result["cache"] = cache.stats()
    if extra:
        result.update(extra)
    write_json(out_json, result)
    return result
