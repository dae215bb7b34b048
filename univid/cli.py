"""`univid <verb>`: what every Snakemake rule calls, and what users run by hand.

Workflow rules pass `--job-config JSON` (the job's resolved config, see univid.workflow); by hand, `--config FILE`
and `--set KEY=VALUE` build the same config from workflows/config.yaml's defaults.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


COMMAND_MODULES: list[str] = ["generation", "understanding", "evaluation", "reproduce", "suites"]  # e.g. "understanding" -> univid/commands/understanding.py


def _full_config(args) -> dict:
    from univid.config import load_ablation, parse_set, resolve
    from univid.config.load import load_user_config

    user = load_user_config(args.config) if getattr(args, "config", None) else {}
    user.pop("tables", None)
    cfg = resolve(user, parse_set(getattr(args, "set", None)))
    if getattr(args, "ablation", None):
        from univid.config import apply_overrides

        ablation = load_ablation(args.ablation)
        match = [v for v in ablation["variants"] if v["name"] == args.variant]
        if not match:
            names = ", ".join(v["name"] for v in ablation["variants"])
            raise SystemExit(f"univid: variant {args.variant!r} not in {args.ablation} (expected one of: {names})")
        cfg = apply_overrides(cfg, match[0].get("overrides") or {})
    return cfg


def _job(args, name: str) -> tuple[dict, dict]:
    """(job config, full config) from --job-config, or from --config/--set for a run by hand."""
    from univid.config import job_config
    from univid.workflow import config_from_job, parse_job_config

    if args.job_config:
        job = parse_job_config(args.job_config)
        if job["job"] != name:
            raise SystemExit(f"univid: --job-config is for job {job['job']!r} (expected {name!r})")
        return job, config_from_job(job)
    cfg = _full_config(args)
    return job_config(cfg, name), cfg


def _write_job_config(out: Path, job: dict) -> None:
    from univid.io import write_json

    write_json(out / "job_config.json", job)


def _upstream(job: dict, name: str, args_value: str | None) -> Path:
    if args_value:
        return Path(args_value)
    path = Path(job["upstream_dirs"][name])
    if not path.exists():
        raise SystemExit(f"univid: upstream {name} output '{path}' not found (expected the workflow or "
                         f"`univid {name if name == 'curate' else 'train'} ...` to have produced it)")
    return path


# ---- verbs -------------------------------------------------------------------------------------------------------

def cmd_config(args) -> None:
    from univid.config import config_hash, job_configs

    cfg = _full_config(args)
    jobs = job_configs(cfg)
    print(json.dumps({"config_hash": config_hash(cfg), "jobs": {k: v["dir"] for k, v in jobs.items()},
                      "config": cfg}, indent=2))


def cmd_curate(args) -> None:
    from univid.data.curate import curate
    from univid.io import write_json
    from univid.prompts import prompt_suite

    job, cfg = _job(args, "curate")
    out = Path(args.out or job["dir"])
    report = curate(cfg["data"], out, cfg["seed"])
    write_json(out / "prompts.json", prompt_suite(cfg["eval"]["vbench"], cfg["seed"]))
    _write_job_config(out, job)
    print(json.dumps(report))


def cmd_train(args) -> None:
    from univid.train.stages import train_stage
    from univid.workflow import JOB_OUTPUTS

    name = f"stage{args.stage}"
    by_hand = not args.job_config
    if args.max_steps is not None and by_hand:
        # A shortened run is another job: its key, and so its default output directory, say so.
        args.set = list(args.set or []) + [f"train.{name}.steps={args.max_steps}"]
    if args.max_steps is not None and not by_hand and not args.out:
        raise SystemExit("univid train: --max-steps with --job-config needs --out (the job directory is keyed by "
                         "its config, which fixes the number of steps)")
    job, cfg = _job(args, name)
    out = Path(args.out or job["dir"])

    def complete(path: Path, job_name: str) -> bool:
        return all((path / f).exists() for f in JOB_OUTPUTS[job_name])

    if args.curate:
        curate_dir = Path(args.curate)
    elif by_hand:
        # By hand with nothing curated yet: curate first, into the config's curate job directory.
        curate_dir = Path(job["upstream_dirs"]["curate"])
        if not complete(curate_dir, "curate"):
            print(f"univid train: no curated data at {curate_dir}; curating it first", file=sys.stderr)
            cmd_curate(argparse.Namespace(job_config=None, config=args.config, set=args.set, ablation=args.ablation,
                                          variant=args.variant, out=str(curate_dir)))
    else:
        curate_dir = _upstream(job, "curate", None)
    init = []
    if args.stage == 3:
        for up, given in (("stage1", args.init1), ("stage2", args.init2)):
            path = Path(given) if given else Path(job["upstream_dirs"][up])
            if not given and by_hand and not complete(path, up):
                print(f"univid train: no {up} output at {path}; training it first", file=sys.stderr)
                cmd_train(argparse.Namespace(**{**vars(args), "stage": int(up[-1]), "out": None, "max_steps": None,
                                                "curate": str(curate_dir), "init1": None, "init2": None}))
            elif not given:
                path = _upstream(job, up, None)
            init.append(path / "final" / "weights.safetensors")
    log = train_stage(args.stage, cfg, curate_dir, out, init=init, save_every=args.save_every,
                      progress=not args.quiet, tracking_uri=args.tracking_uri)
    _write_job_config(out, job)
    for kind in ("gen", "und"):
        losses = [s["loss"] for s in log["steps"] if s["kind"] == kind]
        if losses:
            print(f"stage {args.stage} {kind}: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    resumed = f", resumed at step {log['resumed_from']}" if log["resumed_from"] is not None else ""
    print(f"stage {args.stage}: {log['num_trainable_params']} trainable params, {log['wall_s']:.1f}s{resumed} -> {out}")


def cmd_generate_suite(args) -> None:
    from univid.data.video import write_video
    from univid.io import read_json, write_json
    from univid.models.builder import build, load_weights
    from univid.models.generator import generate, make_pipeline
    from tqdm import tqdm

    job, cfg = _job(args, "generate")
    out = Path(args.out or job["dir"])
    curate_dir = _upstream(job, "curate", args.curate)
    stage = f"stage{cfg['sampling']['from_stage']}"  # stage III (joint) or stage I weights (paper Table 6)
    weights = Path(args.weights or Path(_upstream(job, stage, None)) / "final" / "weights.safetensors")
    entries = read_json(curate_dir / "prompts.json")
    comp = build(cfg)
    load_weights(comp.model, weights)
    pipe = make_pipeline(comp)
    s = cfg["sampling"]
    manifest = []
    todo = [(e, i) for e in entries for i in range(s["samples_per_prompt"])]
    for n, (entry, i) in enumerate(tqdm(todo, desc="generate", disable=args.quiet)):
        path = out / "videos" / f"{entry['prompt_en']}-{i}.mp4"
        seed = cfg["seed"] * 100003 + n  # one recorded seed per file
        if not path.exists():  # videos are written atomically, so an existing file is complete: resume
            frames = generate(comp, pipe, entry["prompt_en"], s["negative_prompt"], s, seed)
            write_video(path, frames, s["fps"])
        manifest.append({"video": str(path), "prompt": entry["prompt_en"], "index": i, "seed": seed})
    _write_job_config(out, job)
    write_json(out / "manifest.json", {"videos": manifest, "tma": cfg["tma"], "sampling": s, "weights": str(weights),
                                       "scale": cfg["scale"]})
    print(f"generated {len(manifest)} videos -> {out / 'videos'}")


def cmd_evaluate(args) -> None:
    from univid.eval.cache import EvalCache
    from univid.eval.results import eval_metadata
    from univid.eval.scorers import default_context
    from univid.eval.vbench_eval import backend_options, score_video_dir
    from univid.io import read_json

    job, cfg = _job(args, "evaluate")
    out = Path(args.out or job["dir"])
    curate_dir = _upstream(job, "curate", args.curate)
    gen_dir = _upstream(job, "generate", args.videos)
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
    _write_job_config(out, job)
    agg, c = result["aggregate"], result["counts"]
    name = f"VBench{'-Long' if result['protocol'] == 'vbench-long' else ''} ({cfg['scale']})"
    scores = (f"total {agg['total']:.2f} quality {agg['quality']:.2f} semantic {agg['semantic']:.2f}" if agg else
              f"{len(result['dimensions'])} dimension(s), no total (it needs all 16)")
    print(f"{name}: {scores} [{c['scored']} scored, {c['cached']} from cache, "
          f"{c['videos_decoded']}/{c['videos']} videos decoded]")


def cmd_vbench_aggregate(args) -> None:
    from univid.eval.vbench_aggregate import aggregate
    from univid.io import read_json

    raw = read_json(args.scores)
    if isinstance(raw, dict) and isinstance(raw.get("dimensions"), dict) and "aggregate" in raw:
        raw = raw["dimensions"]  # a scores.json written by `univid evaluate`
    result = aggregate(raw)
    print(json.dumps({k: result[k] for k in ("total", "quality", "semantic")}, indent=2))


def cmd_collect(args) -> None:
    from univid.report.collect import collect

    pairs = []
    for item in args.variant:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"univid collect: --variant {item!r}: expected NAME=RESULTS_DIR")
        pairs.append((name, Path(path)))
    collect(args.table, args.ablation, pairs, Path(args.out))


def cmd_track(args) -> None:
    from univid.track.mlflow_log import log_table

    runs = log_table(Path(args.results), Path(args.out), tracking_uri=args.tracking_uri,
                     prefix=args.experiment_prefix, artifacts=[Path(a) for a in args.artifact])
    print(f"MLflow: parent run {runs[0]['parent_run_id']} with {len(runs)} variant runs in experiment "
          f"{runs[0]['experiment']}")


def cmd_report(args) -> None:
    from univid.report.render import render_table

    render_table(Path(args.results), Path(args.out), template=args.template)
    if args.mlflow:
        from univid.track.mlflow_log import log_to_parent

        run_id = log_to_parent(Path(args.mlflow), Path(args.out))
        print(f"wrote {args.out} (logged to MLflow run {run_id})")
    else:
        print(f"wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="univid", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)

    def cfg_args(sp, job=True):
        sp.add_argument("--config", default=None, help="YAML config (default: packaged defaults, scale smoke)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. tma.schedule=step")
        sp.add_argument("--ablation", help="ablation YAML; with --variant, applies that variant's overrides")
        sp.add_argument("--variant")
        if job:
            sp.add_argument("--job-config", help="a job's resolved config as JSON (what the workflow passes)")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    sp = sub.add_parser("config", help="print the resolved config, its hash and each job's output directory")
    cfg_args(sp, job=False)
    sp.set_defaults(fn=cmd_config)

    sp = sub.add_parser("curate", help="curate training data and the benchmark prompt suite")
    cfg_args(sp)
    sp.add_argument("--out")
    sp.set_defaults(fn=cmd_curate)

    sp = sub.add_parser("train", help="train one stage (1: generation alignment, 2: understanding, 3: joint)")
    cfg_args(sp)
    sp.add_argument("--stage", type=int, choices=(1, 2, 3), required=True)
    sp.add_argument("--out")
    sp.add_argument("--curate", help="curated data directory (default: the config's curate job directory)")
    sp.add_argument("--init1", help="stage I output directory (stage 3)")
    sp.add_argument("--init2", help="stage II output directory (stage 3)")
    sp.add_argument("--max-steps", type=int, help="train N steps (by hand: sets train.stageN.steps, so the job key)")
    sp.add_argument("--save-every", type=int, help="checkpoint every K steps (default: train.stageN.save_every)")
    sp.add_argument("--tracking-uri", help="log per-step metrics to this MLflow store (default: mlflow.tracking_uri; "
                    "off when null)")
    sp.set_defaults(fn=cmd_train)

    sp = sub.add_parser("generate-suite", help="generate the benchmark prompt suite's videos")
    cfg_args(sp)
    sp.add_argument("--out")
    sp.add_argument("--curate")
    sp.add_argument("--weights", help="trained weights (default: the config's stage III output)")
    sp.set_defaults(fn=cmd_generate_suite)

    sp = sub.add_parser("evaluate", help="score generated videos on the VBench dimensions")
    cfg_args(sp)
    sp.add_argument("--out")
    sp.add_argument("--curate")
    sp.add_argument("--videos", help="generate job directory (holding videos/)")
    sp.add_argument("--no-cache", action="store_true", help="score every video afresh (the cache is not read/written)")
    sp.set_defaults(fn=cmd_evaluate)

    sp = sub.add_parser("vbench-aggregate", help="official VBench Total/Quality/Semantic from 16 raw dimension scores")
    sp.add_argument("scores")
    sp.set_defaults(fn=cmd_vbench_aggregate)

    sp = sub.add_parser("collect", help="gather a table's variant scores into results.json/.csv")
    sp.add_argument("--table", required=True)
    sp.add_argument("--ablation", required=True)
    sp.add_argument("--variant", action="append", required=True, metavar="NAME=EVALUATE_DIR")
    sp.add_argument("--out", required=True, help="results.json (results.csv is written beside it)")
    sp.set_defaults(fn=cmd_collect)

    sp = sub.add_parser("track", help="log a table to MLflow (one experiment per table, a parent run with one child run per variant)")
    sp.add_argument("--results", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    sp.add_argument("--experiment-prefix", default="univid")
    sp.add_argument("--artifact", action="append", default=[], metavar="PATH",
                    help="a file or directory (the table's .tex, its plots) to log on the parent run; repeatable")
    sp.set_defaults(fn=cmd_track)

    sp = sub.add_parser("report", help="render a table as LaTeX through its Jinja template")
    sp.add_argument("--results", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--template")
    sp.add_argument("--mlflow", help="the table's mlflow.json (written by `univid track`): log the .tex to its parent run")
    sp.set_defaults(fn=cmd_report)

    # Verbs of other areas live in their own modules (univid/commands/<area>.py), each with register(sub, cfg_args).
    for module in COMMAND_MODULES:
        importlib.import_module(f"univid.commands.{module}").register(sub, cfg_args)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from univid.config import ConfigError

    try:
        args.fn(args)
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as exc:
        # Bad input: one line naming the thing and what was expected; nothing computed is touched.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"univid {args.verb}: error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
