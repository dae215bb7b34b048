"""Evaluation verbs: `univid evaluate` (the evaluate job: a generate job's videos on the VBench dimensions),
`univid vbench-aggregate` (official Total/Quality/Semantic from 16 raw scores) and `univid weights fetch|verify`
(official VBench weights against benchmarks/vbench_weights.json)."""

from __future__ import annotations

import json
from pathlib import Path

from univid.commands.common import config_args, job_config_of, suite_entries, upstream, write_job_config


def cmd_weights(args) -> None:
    from univid.eval.vbench.weights import fetch, load_manifest, vbench_cache_dir, verify

    manifest = load_manifest(args.manifest)
    root = vbench_cache_dir(args.root)
    names = args.name or None
    known = {f["name"] for f in manifest["files"]}
    for n in names or []:
        if n not in known:
            raise ValueError(f"weights --name {n!r}: not in the manifest (expected one of {', '.join(sorted(known))})")
    if args.action == "fetch":
        results = fetch(manifest, root, names, pin=args.pin, manifest_path=args.manifest)
    else:
        results = verify(manifest, root, names)
    for r in results:
        print(json.dumps(r))
    bad = [r for r in results if r["status"] in ("missing", "size-mismatch", "sha256-mismatch")]
    unpinned = [r for r in results if r["status"] == "unpinned"]
    print(f"weights {args.action}: {len(results) - len(bad) - len(unpinned)} ok, {len(unpinned)} present but unpinned, "
          f"{len(bad)} missing or mismatched (root {root})")
    if bad:
        raise SystemExit(1)


def shard_dims(wanted: list[str], shard: int, shards: int) -> list[str]:
    """The dimensions evaluate shard `shard` of `shards` scores: every shards-th (16 shards: one dimension each)."""
    if shards < 1 or not 0 <= shard < shards or shards > len(wanted):
        raise ValueError(f"--shard {shard} --shards {shards}: expected 0 <= shard < shards <= {len(wanted)} (the "
                         f"job's dimensions)")
    return wanted[shard::shards]


def _shard_file(out: Path, shard: int, shards: int) -> Path:
    return out / "shards" / f"{shard}-of-{shards}.json"


def cmd_evaluate(args) -> None:
    from univid.eval.cache import EvalCache
    from univid.eval.results import eval_metadata
    from univid.eval.vbench.constants import DIMENSIONS
    from univid.eval.vbench.scorers import default_context
    from univid.eval.vbench.scoring import merge_dimension_shards, score_video_dir
    from univid.eval.vbench.suite import backend_options, resolve_dims
    from univid.io import read_json, write_json

    job, cfg = job_config_of(args, "evaluate")
    out = Path(args.out or job["dir"])
    gen_dir = upstream(job, "generate", args.videos)
    ev = cfg["eval"]
    vb, s = ev["vbench"], cfg["sampling"]
    dims = vb["dimensions"]
    track = vb["track"]
    # t2v: curate's prompt suite; ti2v: the ti2v suite's prompts, each video scored against its reference image too
    entries, images = suite_entries(job, track, args)
    prompts_json = (upstream(job, "ti2v_suite", args.ti2v_suite) if track == "ti2v"
                    else upstream(job, "curate", args.curate)) / "prompts.json"
    manifest = gen_dir / "manifest.json"
    gen_seeds = ({Path(v["video"]).name: v["seed"] for v in read_json(manifest)["videos"]}
                 if manifest.is_file() else {})
    checks = ({"num_frames": s.get("num_frames"), "fps": s.get("fps"), "min_duration_s": vb.get("min_duration_s")}
              if vb.get("check_videos", True) else None)
    ctx = default_context(cfg["seed"])
    cache = None if args.no_cache else EvalCache(ev.get("cache_dir"))
    extra = eval_metadata(job, cfg, seeds={"scorer_standins": ctx.seed, "generation": gen_seeds})
    extra["track"] = track
    # "all" is every VBench dimension the suite has prompts for: the 16 of VBench's (and the synthetic) suite, the
    # quality dimensions of VBench-I2V's (it has no semantic prompts).
    wanted = resolve_dims(entries, None if dims == "all" else dims) if track == "t2v" or dims != "all" else \
        [d for d in DIMENSIONS if any(d in e["dimension"] for e in entries)]
    if args.gather is not None:  # the N dimension shards' results, pooled as one job's scores.json
        parts = []
        for k in range(args.gather):
            path = _shard_file(out, k, args.gather)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: shard {k} of {args.gather} not finished (expected `univid "
                                        f"evaluate --shard {k} --shards {args.gather}` to have written it)")
            parts.append(read_json(path))
        result = merge_dimension_shards(parts, entries)
        lost = sorted(set(wanted) - set(result["dimensions"]))
        if lost:
            raise ValueError(f"evaluate --gather {args.gather}: dimension {lost[0]!r} is in no shard (expected the "
                             f"shards of this job's eval.vbench.dimensions)")
        result.update(extra)
        if track == "ti2v":
            result["i2v"] = _i2v(entries, images, gen_dir, s, vb, ctx, cache)
        write_json(out / "scores.json", result)
    else:
        target = out / "scores.json"
        if args.shard is not None:
            target, wanted = _shard_file(out, args.shard, args.shards), shard_dims(wanted, args.shard, args.shards)
        elif track == "ti2v":  # the video-image consistency goes with the whole job's scores (or the gather's)
            extra["i2v"] = _i2v(entries, images, gen_dir, s, vb, ctx, cache)
        result = score_video_dir(gen_dir / "videos", prompts_json, target, dims=wanted,
                                 samples_per_prompt=s["samples_per_prompt"], ctx=ctx, long=vb.get("long"),
                                 cache=cache, checks=checks, extra=extra, **backend_options(vb))
        if args.shard is not None:
            print(f"evaluated shard {args.shard} of {args.shards}: {', '.join(wanted)} -> {target}")
            return
    write_job_config(out, job)
    agg, c = result["aggregate"], result["counts"]
    name = f"VBench{'-Long' if result['protocol'] == 'vbench-long' else ''} {track.upper()} ({cfg['scale']})"
    scores = (f"total {agg['total']:.2f} quality {agg['quality']:.2f} semantic {agg['semantic']:.2f}" if agg else
              f"{len(result['dimensions'])} dimension(s), no total (it needs all 16)")
    if result.get("i2v", {}).get("dimensions"):
        scores += "; " + " ".join(f"{d} {100 * v:.2f}" for d, v in result["i2v"]["dimensions"].items())
    print(f"{name}: {scores} [{c['scored']} scored, {c['cached']} from cache, "
          f"{c['videos_decoded']}/{c['videos']} videos decoded]")


def _i2v(entries: list[dict], images: dict, gen_dir: Path, s: dict, vb: dict, ctx, cache) -> dict:
    """VBench-I2V's video-image consistency of a ti2v job's videos (univid.eval.vbench.i2v)."""
    from univid.data.video import read_video
    from univid.eval.vbench.i2v import score_i2v
    from univid.eval.vbench.suite import video_name

    return score_i2v(entries, lambda prompt, i: read_video(gen_dir / "videos" / video_name(prompt, i)).frames,
                     images, s["samples_per_prompt"], ctx, cache=cache, backend=vb.get("backend", "standin"),
                     video_dir=gen_dir / "videos")


def cmd_vbench_aggregate(args) -> None:
    from univid.eval.vbench.aggregate import aggregate
    from univid.io import read_json

    raw = read_json(args.scores)
    if isinstance(raw, dict) and isinstance(raw.get("dimensions"), dict) and "aggregate" in raw:
        raw = raw["dimensions"]  # a scores.json written by `univid evaluate`
    result = aggregate(raw)
    print(json.dumps({k: result[k] for k in ("total", "quality", "semantic")}, indent=2))


def register(sub) -> None:
    sp = sub.add_parser("weights", help="fetch or verify the official VBench weight files (sizes + sha256)")
    sp.add_argument("action", choices=("fetch", "verify"))
    sp.add_argument("--manifest", help="default: benchmarks/vbench_weights.json")
    sp.add_argument("--root", help="default: $VBENCH_CACHE_DIR, else ~/.cache/vbench")
    sp.add_argument("--name", action="append", help="only this manifest entry (repeatable)")
    sp.add_argument("--pin", action="store_true", help="fetch: record size and sha256 of files the manifest leaves unpinned")
    sp.set_defaults(fn=cmd_weights)

    sp = sub.add_parser("evaluate", help="score generated videos on the VBench dimensions")
    config_args(sp)
    sp.add_argument("--out")
    sp.add_argument("--curate")
    sp.add_argument("--videos", help="generate job directory (holding videos/)")
    sp.add_argument("--ti2v-suite", help="ti2v_suite job directory (eval.vbench.track ti2v; default: the job's)")
    sp.add_argument("--shard", type=int, help="score only dimension shard I of --shards N (-> shards/I-of-N.json)")
    sp.add_argument("--shards", type=int, default=1)
    sp.add_argument("--gather", type=int, metavar="N", help="write scores.json from N finished dimension shards")
    sp.add_argument("--no-cache", action="store_true", help="score every video afresh (the cache is not read/written)")
    sp.set_defaults(fn=cmd_evaluate)

    sp = sub.add_parser("vbench-aggregate", help="official VBench Total/Quality/Semantic from 16 raw dimension scores")
    sp.add_argument("scores")
    sp.set_defaults(fn=cmd_vbench_aggregate)
