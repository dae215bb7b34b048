"""What both VBench backends share: the prompt suite's checks, VBench's video names, the VBench-Long flags, the
raw-score cache key, and pooling per-(video, dimension) records into dimension scores as VBench pools them.

A dimension is scored only on the videos of the prompts whose "dimension" list names it, and each prompt entry
counts its videos once per entry (VBench_full_info.json repeats some prompts; VBench then counts their videos
again, and so do we).
"""

from __future__ import annotations

from typing import Callable, Mapping

from univid.eval.cache import key_of
from univid.eval.vbench.aggregate import aggregate
from univid.eval.vbench.constants import DIMENSIONS
from univid.eval.vbench.long import CLIP_LENGTH_MODES, pool_long

def video_name(prompt: str, index: int) -> str:
    """VBench's file name for the index-th sample of a prompt."""
    return f"{prompt}-{index}.mp4"


def check_entries(entries: list[dict]) -> None:
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


def resolve_dims(entries: list[dict], dims: list[str] | None) -> list[str]:
    wanted = list(DIMENSIONS) if dims is None else list(dims)
    for d in wanted:
        if d not in DIMENSIONS:
            raise ValueError(f"dimension {d!r}: unknown (expected one of {', '.join(DIMENSIONS)})")
        if not any(d in e["dimension"] for e in entries):
            raise ValueError(f"dimension {d!r}: no prompt in the suite lists it (expected at least one video to score)")
    return wanted


BACKENDS = ("standin", "official")
LONG_DEFAULTS = {"enabled": False, "clip_length": "mix", "scene_detection": False, "scene_threshold": 35.0,
                 "dev_flag": False, "static_filter": False}
FUSED = ("subject_consistency", "background_consistency")


def long_settings(long: Mapping | None, official: bool = False) -> dict | None:
    """The VBench-Long flags (eval.vbench.long) completed with defaults; None when long evaluation is off.
    official: flags for the official backend (univid.eval.vbench.official), which runs the RAFT static filter."""
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
    flags = None if long is None else {**{k: v for k, v in long.items() if k != "dev_flag" or dim in FUSED},
                                       "seconds": seconds}
    return key_of(video=vhash, dimension=dim, backend=backend, entry=entry, default_fps=default_fps, long=flags)


def pool_results(entries: list[dict], wanted: list[str], names_of: Callable[[str], list[tuple[str, int]]],
                 records: Mapping[tuple[str, str], dict], long: dict | None, backends: dict, counts: dict, *,
                 scene_detector: str, deviations: list[str],
                 long_pool: Callable[[str, dict], float] = pool_long) -> dict:
    """Per-video rows, per-dimension scores pooled as VBench pools them, and the aggregate, from per-(video,
    dimension) records {"score", "weight"} (+ "clips", "clip2clip", "fused" under VBench-Long); shared by the
    stand-in and the official backends (long_pool: how long videos pool into a dimension, see
    univid.eval.vbench.official.pool_official_long)."""
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
    python, the weights root (null: $VBENCH_CACHE_DIR, else ~/.cache/vbench) and the device (default cuda)."""
    backend = vbench_cfg.get("backend", "standin")
    if backend not in BACKENDS:
        raise ValueError(f"eval.vbench.backend {backend!r}: unknown (expected one of {', '.join(BACKENDS)})")
    if backend == "standin":
        return {"backend": backend}
    return {"backend": backend, "official": {"python": vbench_cfg.get("official_python"),
                                             "weights_root": vbench_cfg.get("official_weights"),
                                             "device": vbench_cfg.get("official_device") or "cuda"}}


def expected_names(entries: list[dict], wanted: list[str] | None, samples_per_prompt: int) -> list[str]:
    return list(dict.fromkeys(
        video_name(e["prompt_en"], i)
        for e in entries if wanted is None or any(d in wanted for d in e["dimension"])
        for i in range(samples_per_prompt)))
