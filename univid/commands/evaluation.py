"""Evaluation verbs: `univid evaluate` (the evaluate job: a generate job's videos on the VBench dimensions),
`univid vbench-aggregate` (official Total/Quality/Semantic from 16 raw scores) and `univid weights fetch|verify`
(official VBench weights against benchmarks/vbench_weights.json)."""

from __future__ import annotations

import json
from pathlib import Path

from univid.commands.common import config_args, job_config_of, upstream, write_job_config


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


def cmd_evaluate(args) -> None:
    from univid.eval.cache import EvalCache
    from univid.eval.results import eval_metadata
    from univid.eval.vbench.scorers import default_context
    from univid.eval.vbench.scoring import score_video_dir
    from univid.eval.vbench.suite import backend_options
    from univid.io import read_json

    job, cfg = job_config_of(args, "evaluate")
    out = Path(args.out or job["dir"])
    curate_dir = upstream(job, "curate", args.curate)
    gen_dir = upstream(job, "generate", args.videos)
    ev = cfg["eval"]
    vb, s = ev["vbench"], cfg["sampling"]
    dims = vb["dimensions"]
    manifest = gen_dir / "manifest.json"
    gen_seeds = ({Path(v["video"]).name: v["seed"] for v in read_json(manifest)["videos"]}
                 if manifest.is_file() else {})
    checks = ({"num_frames": s.get("num_frames"), "fps": s.get("fps"), "min_duration_s": vb.get("min_duration_s")}
              if vb.get("check_videos", True) else None)
    ctx = default_context(cfg["seed"])
    cache = None if args.no_cache else EvalCache(ev.get("cache_dir"))
    extra = eval_metadata(job, cfg, seeds={"scorer_standins": ctx.seed, "generation": gen_seeds})
    result = score_video_dir(gen_dir / "videos", curate_dir / "prompts.json", out / "scores.json",
                             dims=None if dims == "all" else dims,
                             samples_per_prompt=s["samples_per_prompt"], ctx=ctx, long=vb.get("long"),
                             cache=cache, checks=checks, extra=extra, **backend_options(vb))
    write_job_config(out, job)
    agg, c = result["aggregate"], result["counts"]
    name = f"VBench{'-Long' if result['protocol'] == 'vbench-long' else ''} ({cfg['scale']})"
    scores = (f"total {agg['total']:.2f} quality {agg['quality']:.2f} semantic {agg['semantic']:.2f}" if agg else
              f"{len(result['dimensions'])} dimension(s), no total (it needs all 16)")
    print(f"{name}: {scores} [{c['scored']} scored, {c['cached']} from cache, "
          f"{c['videos_decoded']}/{c['videos']} videos decoded]")


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
    sp.add_argument("--no-cache", action="store_true", help="score every video afresh (the cache is not read/written)")
    sp.set_defaults(fn=cmd_evaluate)

    sp = sub.add_parser("vbench-aggregate", help="official VBench Total/Quality/Semantic from 16 raw dimension scores")
    sp.add_argument("scores")
    sp.set_defaults(fn=cmd_vbench_aggregate)
