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


def score_videos(entries: list[dict], videos: Mapping[str, list] | Loader, dims: list[str] | None = None, *,
                 samples_per_prompt: int = 1, fps: float | None = None,
                 ctx: ScoringContext | None = None) -> dict:
    """Per-video raw scores and per-dimension scores (raw, in [0, 1]) over a prompt suite.

    videos: {prompt_en: [video, ...]} (every listed video is scored), or loader(prompt_en, i) called for
    i < samples_per_prompt. A video is uint8 [T,H,W,3] RGB frames or an object with .frames and .fps; fps
    (the frame rate of bare arrays) matters only to dynamic_degree's frame stride.
    dims: None means all 16. Returns {"per_video", "dimensions", "backends", "unscored", "aggregate"}; "aggregate"
    is VBench's Total/Quality/Semantic (percent) when all 16 dimensions were scored, else None.
    """
    _check_entries(entries)
    wanted = _resolve_dims(entries, dims)
    if isinstance(samples_per_prompt, bool) or not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt {samples_per_prompt!r} (expected a positive integer)")
    ctx = ctx or default_context()

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

    scores: dict[tuple[str, str], tuple[float | None, int]] = {}
    for name, (prompt, i, dim_entries) in needs.items():
        video = videos(prompt, i) if callable(videos) else videos[prompt][i]
        frames, video_fps = _frames_fps(video, fps, name)
        for d, e in dim_entries.items():
            try:
                scores[(name, d)] = SCORERS[d].score(frames, e, ctx, fps=video_fps)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None

    per_video = []
    for e in entries:
        for d in (d for d in e["dimension"] if d in wanted):
            for name, _ in names_of(e["prompt_en"]):
                value, weight = scores[(name, d)]
                per_video.append({"video": name, "prompt": e["prompt_en"], "dimension": d, "score": value,
                                  "weight": weight})

    dimensions, unscored = {}, {}
    for d in wanted:
        rows = [r for r in per_video if r["dimension"] == d]
        scored = [r for r in rows if r["score"] is not None]
        unscored[d] = len(rows) - len(scored)
        total_weight = sum(r["weight"] for r in scored)
        # Only color can leave a video out (the object never appeared). If it leaves out every video there is no
        # frame with the object at all, so no frame shows it in the asked colour: a measured 0, recorded as such
        # in "unscored", where VBench would divide by zero.
        dimensions[d] = sum(r["score"] * r["weight"] for r in scored) / total_weight if total_weight else 0.0

    return {
        "per_video": per_video,
        "dimensions": dimensions,
        "backends": {d: SCORERS[d].backend(ctx) for d in wanted},
        "unscored": unscored,
        "aggregate": aggregate(dimensions) if set(wanted) == set(DIMENSIONS) else None,
    }


def score_video_dir(video_dir: str | os.PathLike, prompt_suite_json: str | os.PathLike,
                    out_json: str | os.PathLike, dims: list[str] | None = None, samples_per_prompt: int = 1,
                    ctx: ScoringContext | None = None) -> dict:
    """Score `{video_dir}/{prompt_en}-{i}.mp4` (i < samples_per_prompt) for the suite; write the result atomically."""
    from univid.data.video import read_video

    video_dir = Path(video_dir)
    entries = read_json(prompt_suite_json)
    _check_entries(entries)
    wanted = _resolve_dims(entries, dims)
    if isinstance(samples_per_prompt, bool) or not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt {samples_per_prompt!r} (expected a positive integer)")

    expected = list(dict.fromkeys(
        video_name(e["prompt_en"], i)
        for e in entries if any(d in wanted for d in e["dimension"]) for i in range(samples_per_prompt)))
    missing = [n for n in expected if not (video_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{video_dir / missing[0]}: video not found (expected every '{{prompt_en}}-{{i}}.mp4' "
                                f"for i < {samples_per_prompt}; {len(missing)} of {len(expected)} missing)")

    result = score_videos(entries, lambda prompt, i: read_video(video_dir / video_name(prompt, i)), wanted,
                          samples_per_prompt=samples_per_prompt, ctx=ctx)
    result.update({"video_dir": str(video_dir), "prompt_suite": str(prompt_suite_json),
                   "samples_per_prompt": samples_per_prompt})
    write_json(out_json, result)
    return result
