"""Training verbs: `univid train --stage {1,2,3}` (one stage of the paper's three; by hand, missing upstream outputs
are produced first)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from univid.commands.common import config_args, job_config_of, upstream, write_job_config
from univid.commands.data import cmd_curate


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
    job, cfg = job_config_of(args, name)
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
        curate_dir = upstream(job, "curate", None)
    init = []
    if args.stage == 3:
        for up, given in (("stage1", args.init1), ("stage2", args.init2)):
            path = Path(given) if given else Path(job["upstream_dirs"][up])
            if not given and by_hand and not complete(path, up):
                print(f"univid train: no {up} output at {path}; training it first", file=sys.stderr)
                cmd_train(argparse.Namespace(**{**vars(args), "stage": int(up[-1]), "out": None, "max_steps": None,
                                                "curate": str(curate_dir), "init1": None, "init2": None}))
            elif not given:
                path = upstream(job, up, None)
            init.append(path / "final" / "weights.safetensors")
    log = train_stage(args.stage, cfg, curate_dir, out, init=init, save_every=args.save_every,
                      progress=not args.quiet, tracking_uri=args.tracking_uri)
    write_job_config(out, job)
    for kind in ("gen", "und"):
        losses = [s["loss"] for s in log["steps"] if s["kind"] == kind]
        if losses:
            print(f"stage {args.stage} {kind}: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    resumed = f", resumed at step {log['resumed_from']}" if log["resumed_from"] is not None else ""
    print(f"stage {args.stage}: {log['num_trainable_params']} trainable params, {log['wall_s']:.1f}s{resumed} -> {out}")


def register(sub) -> None:
    sp = sub.add_parser("train", help="train one stage (1: generation alignment, 2: understanding, 3: joint)")
    config_args(sp)
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
