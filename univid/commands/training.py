"""Training verbs: `univid precompute` (the frozen parts' outputs as shards, once per data set and encoders) and
`univid train --stage {1,2,3}` (one stage of the paper's three; by hand, missing upstream outputs are produced first).
Both run unchanged under `accelerate launch`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from univid.commands.common import config_args, job_config_of, upstream, write_job_config
from univid.commands.data import cmd_curate


def cmd_precompute(args) -> None:
    from univid.train.precompute import run_precompute

    job, cfg = job_config_of(args, "precompute")
    out = Path(args.out or job["dir"])
    curate_dir = _curated(args, job, "precompute")
    index = run_precompute(cfg, curate_dir, out, log=lambda msg: print(msg, file=sys.stderr))
    write_job_config(out, job)
    c = index["counts"]
    reasons = ", ".join(f"{n} {r}" for r, n in c["skipped_by_reason"].items()) or "none"
    print(f"precompute: {c['items']} of {c['clips']} clips -> {c['shards']} shard(s) ({c['shards_reused']} kept from "
          f"an earlier run); skipped: {reasons} -> {out}")


def _complete(path: Path, job_name: str) -> bool:
    from univid.workflow import JOB_OUTPUTS

    return all((path / f).exists() for f in JOB_OUTPUTS[job_name])


def _curated(args, job: dict, name: str) -> Path:
    """The curate output a job reads: --curate, the workflow's upstream, or (by hand) curated first."""
    if getattr(args, "curate", None):
        return Path(args.curate)
    if args.job_config:
        return upstream(job, "curate", None)
    curate_dir = Path(job["upstream_dirs"]["curate"])
    if not _complete(curate_dir, "curate"):
        print(f"univid {name}: no curated data at {curate_dir}; curating it first", file=sys.stderr)
        cmd_curate(argparse.Namespace(job_config=None, config=args.config, set=args.set, ablation=args.ablation,
                                      variant=args.variant, out=str(curate_dir)))
    return curate_dir


def _train_inputs(args, job: dict, name: str, by_hand: bool) -> tuple[Path, Path | None]:
    """(curate dir, precompute dir or None) a stage reads; by hand, missing ones are produced first."""
    curate_dir = _curated(args, job, name)
    if "precompute" not in job["upstream_dirs"]:
        return curate_dir, None
    if args.precompute:
        return curate_dir, Path(args.precompute)
    if not by_hand:
        return curate_dir, upstream(job, "precompute", None)
    precompute_dir = Path(job["upstream_dirs"]["precompute"])
    if not _complete(precompute_dir, "precompute"):
        print(f"univid train: no precompute output at {precompute_dir}; computing it first", file=sys.stderr)
        cmd_precompute(argparse.Namespace(job_config=None, config=args.config, set=args.set, ablation=args.ablation,
                                          variant=args.variant, out=str(precompute_dir), curate=str(curate_dir),
                                          quiet=True))
    return curate_dir, precompute_dir


def cmd_train(args) -> None:
    import torch
    from accelerate import PartialState

    from univid.train.stages import train_stage

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

    # The process layout (`accelerate launch`, torchrun or one process), set up once: on CPU, gloo.
    state = PartialState(cpu=cfg["device"] == "cpu" or not torch.cuda.is_available())
    with state.main_process_first():  # under `accelerate launch`, one process makes missing inputs
        curate_dir, precompute_dir = _train_inputs(args, job, name, by_hand)
    init = []
    if args.stage == 3:
        for up, given in (("stage1", args.init1), ("stage2", args.init2)):
            path = Path(given) if given else Path(job["upstream_dirs"][up])
            if not given and by_hand and not _complete(path, up):
                print(f"univid train: no {up} output at {path}; training it first", file=sys.stderr)
                cmd_train(argparse.Namespace(**{**vars(args), "stage": int(up[-1]), "out": None, "max_steps": None,
                                                "curate": str(curate_dir), "init1": None, "init2": None,
                                                "precompute": str(precompute_dir) if precompute_dir else None}))
            elif not given:
                path = upstream(job, up, None)
            init.append(path / "final" / "weights.safetensors")
    log = train_stage(args.stage, cfg, curate_dir, out, init=init, save_every=args.save_every,
                      progress=not args.quiet, tracking_uri=args.tracking_uri, precompute_dir=precompute_dir)
    if not state.is_main_process:
        return  # the main process writes and reports
    write_job_config(out, job)
    for kind in ("gen", "und"):
        losses = [s["loss"] for s in log["steps"] if s["kind"] == kind]
        if losses:
            print(f"stage {args.stage} {kind}: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    resumed = f", resumed at step {log['resumed_from']}" if log["resumed_from"] is not None else ""
    print(f"stage {args.stage}: {log['num_trainable_params']} trainable params, global batch {log['batch_size']} "
          f"({log['processes']} process(es) x {log['per_device_batch']} x {log['grad_accum']} accumulation), "
          f"{log['wall_s']:.1f}s{resumed} -> {out}")


def cmd_pretrain(args) -> None:
    from univid.train import shipped
    from univid.train.pretrain import run_pretrain

    job, cfg = job_config_of(args, "pretrain")
    if args.from_dir:  # ship a finished job's output as it is
        if not args.ship:
            raise SystemExit("univid: pretrain --from DIR ships DIR (expected --ship with it)")
        path = shipped.ship(Path(args.from_dir), job)
        print(f"pretrain ({cfg['scale']}): shipped {args.from_dir} -> {path}")
        return
    out = Path(args.out or job["dir"])
    src = None if args.train else shipped.shipped_dir(job["key"])
    if src is not None:
        manifest = shipped.install(src, out, job)
        how = f"shipped checkpoint {manifest['shipped']['from']} (sha256 checked; trained by " \
              f"`{manifest['shipped']['command']}`)"
    else:
        manifest = run_pretrain(cfg, out, log=None if args.quiet else (lambda msg: print(msg, file=sys.stderr)))
        how = ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in manifest["timings"].items())
    write_job_config(out, job)
    loss = ", ".join(f"{k} {v:.4f}" for k, v in manifest["final_loss_mean_last20"].items())
    print(f"pretrain ({cfg['scale']}): final loss (mean of the last 20 steps) {loss}; {how} -> {out}")
    if args.ship:
        print(f"pretrain ({cfg['scale']}): shipped {out} -> {shipped.ship(out, job)}")


def register(sub) -> None:
    sp = sub.add_parser("pretrain", help="toy scale: pretrain the VAE, a T2V DiT with its text encoder and the MLLM on "
                        "the synthetic world, saved in the official layouts (what the toy config's paths name)")
    config_args(sp)
    sp.add_argument("--out")
    sp.add_argument("--train", action="store_true", help="train even when this repository ships the checkpoints of "
                    "this job (checkpoints/pretrain/<key>; used by default, sha256-checked)")
    sp.add_argument("--ship", action="store_true", help="copy the output into checkpoints/pretrain/<key> with its "
                    "record (what `make ship-pretrain` runs)")
    sp.add_argument("--from", dest="from_dir", metavar="DIR", help="with --ship: ship this finished pretrain output "
                    "of the same config instead of training")
    sp.set_defaults(fn=cmd_pretrain)

    sp = sub.add_parser("precompute", help="VAE latents and frozen caption-encoder outputs of the training clips, as "
                        "shards (once for every variant that agrees on them)")
    config_args(sp)
    sp.add_argument("--out")
    sp.add_argument("--curate", help="curated data directory (default: the config's curate job directory)")
    sp.set_defaults(fn=cmd_precompute)

    sp = sub.add_parser("train", help="train one stage (1: generation alignment, 2: understanding, 3: joint)")
    config_args(sp)
    sp.add_argument("--stage", type=int, choices=(1, 2, 3), required=True)
    sp.add_argument("--out")
    sp.add_argument("--curate", help="curated data directory (default: the config's curate job directory)")
    sp.add_argument("--precompute", help="precompute job directory (stages 1 and 3; default: the config's)")
    sp.add_argument("--init1", help="stage I output directory (stage 3)")
    sp.add_argument("--init2", help="stage II output directory (stage 3)")
    sp.add_argument("--max-steps", type=int, help="train N steps (by hand: sets train.stageN.steps, so the job key)")
    sp.add_argument("--save-every", type=int, help="checkpoint every K steps (default: train.stageN.save_every)")
    sp.add_argument("--tracking-uri", help="log per-step metrics to this MLflow store (default: mlflow.tracking_uri; "
                    "off when null)")
    sp.set_defaults(fn=cmd_train)
