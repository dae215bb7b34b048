"""Score a generate job's video folder on VBench dimensions: check the videos, then score them through the
configured backend (stand-in scorers in process, or vbench 0.1.5 in its own environment) and write scores.json."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from univid.eval.cache import EvalCache, file_sha256, key_of
from univid.eval.checks import check_info, check_names
from univid.eval.vbench.controls import CONTROL_DIMS, pool_controls
from univid.eval.vbench.scorers import ScoringContext, default_context
from univid.eval.vbench.standin import score_videos
from univid.eval.vbench.suite import (BACKENDS, check_entries, expected_names, long_settings, resolve_dims,
                                      video_name)
from univid.io import read_json, write_json


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
    backend (eval.vbench.backend): "standin" scores in process (univid.eval.vbench.scorers); "official" runs vbench 0.1.5
    in its own environment (univid.eval.vbench.official; official: its keyword arguments, e.g. python, device,
    weights_root). Both pool through pool_results, so the written JSON has one shape.
    """
    if backend not in BACKENDS:
        raise ValueError(f"eval.vbench.backend {backend!r}: unknown (expected one of {', '.join(BACKENDS)})")
    from univid.data.video import read_video, video_info

    video_dir = Path(video_dir)
    entries = read_json(prompt_suite_json)
    check_entries(entries)
    wanted = resolve_dims(entries, dims)
    if isinstance(samples_per_prompt, bool) or not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt {samples_per_prompt!r} (expected a positive integer)")

    expected = expected_names(entries, wanted, samples_per_prompt)
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

        check_names(video_dir, expected, allowed=expected_names(entries, None, samples_per_prompt))
        infos = {n: info_of(video_dir / n) for n in expected}
        for n in expected:
            check_info(str(video_dir / n), infos[n], num_frames=checks.get("num_frames"), fps=checks.get("fps"),
                       min_duration_s=checks.get("min_duration_s") or 0.0)

    if backend == "official":
        from univid.eval.vbench.official import score_official

        result = score_official(entries, video_dir, prompt_suite_json, wanted,
                                lambda prompt: [(video_name(prompt, i), i) for i in range(samples_per_prompt)],
                                long=long_settings(long, official=True), samples_per_prompt=samples_per_prompt,
                                cache=cache, hashes=hashes, work_dir=Path(out_json).parent, **(official or {}))
    else:
        # The stand-in's detection dimensions know the world's vocabulary, so each gets its control (the same
        # videos scored for another shape, colour or axis): a score near its control follows nothing. The controls
        # share the scores' ScoringContext (each frame detected once) and their decoded videos (each read once).
        ctx = ctx or default_context()
        on_controls = [e for e in entries if set(e["dimension"]) & set(wanted) & set(CONTROL_DIMS)]
        keep = {(e["prompt_en"], i) for e in on_controls for i in range(samples_per_prompt)}
        decoded: dict[tuple[str, int], object] = {}

        def videos(prompt: str, i: int):
            if (prompt, i) in decoded:
                return decoded[(prompt, i)]
            video = read_video(video_dir / video_name(prompt, i))
            if (prompt, i) in keep:
                decoded[(prompt, i)] = video
            return video

        kwargs = dict(samples_per_prompt=samples_per_prompt, ctx=ctx, long=long, cache=cache, video_hashes=hashes)
        result = score_videos(entries, videos, wanted, **kwargs)
        controls = pool_controls(on_controls, videos, dims=wanted, **kwargs)
        if controls is not None:
            result["controls"] = controls
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


def merge_dimension_shards(parts: list[dict], entries: list[dict]) -> dict:
    """One score_video_dir result from results over disjoint dimension subsets of the same videos (the shards of an
    evaluate job): rows in the order one run writes them, dimensions pooled as they were (each dimension pools only
    its own videos), the aggregate over the union. Work counts are summed over the shards."""
    from univid.eval.vbench.aggregate import aggregate
    from univid.eval.vbench.constants import DIMENSIONS

    dims = [d for p in parts for d in p["dimensions"]]
    twice = sorted({d for d in dims if dims.count(d) > 1})
    if twice:
        raise ValueError(f"evaluate shards: dimension {twice[0]!r} scored by two shards (expected disjoint subsets)")
    for field in ("protocol", "long", "video_dir", "prompt_suite", "samples_per_prompt"):
        if any(p.get(field) != parts[0].get(field) for p in parts):
            raise ValueError(f"evaluate shards: {field} differs between shards (expected one job's settings)")
    rows: dict[tuple[str, str], list[dict]] = {}
    for p in parts:
        for r in p["per_video"]:
            rows.setdefault((r["prompt"], r["dimension"]), []).append(r)
    per_video, n = [], parts[0]["samples_per_prompt"]
    for e in entries:  # pool_results' order: entry, its dimensions, its samples
        for d in e["dimension"]:
            mine = rows.get((e["prompt_en"], d), [])
            per_video += mine[:n]
            del mine[:n]
    merged = {k: v for k, v in parts[0].items() if k not in ("cache", "official", "controls")}
    controls = [p["controls"] for p in parts if p.get("controls")]
    if controls:  # each shard's controls cover its own dimensions
        merged["controls"] = {"dimensions": {d: v for c in controls for d, v in c["dimensions"].items()},
                              "readings": {d: v for c in controls for d, v in c["readings"].items()},
                              "method": controls[0]["method"]}
    merged.update({
        "per_video": per_video,
        "dimensions": {d: s for p in parts for d, s in p["dimensions"].items()},
        "backends": {d: b for p in parts for d, b in p["backends"].items()},
        "unscored": {d: n for p in parts for d, n in p["unscored"].items()},
        "counts": {"videos": len({r["video"] for r in per_video}),
                   **{k: sum(p["counts"][k] for p in parts) for k in ("videos_decoded", "scored", "cached")}},
        "video_sha256": {n: h for p in parts for n, h in (p.get("video_sha256") or {}).items()} or None,
        "shards": [{"dimensions": list(p["dimensions"]), "counts": p["counts"],
                    **({"official": p["official"]} if "official" in p else {})} for p in parts],
    })
    merged["aggregate"] = aggregate(merged["dimensions"]) if set(merged["dimensions"]) == set(DIMENSIONS) else None
    if merged["video_sha256"] is None:
        del merged["video_sha256"]
    return merged
