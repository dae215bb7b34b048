"""The three training stages (paper Sec. 3.2, Appendix A.3) through one trainer loop.

Stage I   (generation alignment): connector + DiT cross-attention LoRA, flow matching with CFG dropout, TMA active
          (`model.conditioning: t5`: the DiT LoRA alone, on the frozen UMT5's context).
Stage II  (understanding adaptation): last ViT blocks + vision connector, SFT on assistant tokens only, LLM frozen.
Stage III (joint): phases a/b/c of Appendix A.3 (see univid.train.trainable), from the weights of I and II.

What trains is exact (univid.train.trainable); everything else has requires_grad False. One optimizer step =
`grad_accum` micro-batches. bf16 autocast on CUDA only (trainable parameters kept in float32 there); CPU runs in the
config's dtype. Every `save_every` steps a checkpoint (univid.train.checkpoint); a run finds the newest one in its
output directory and resumes from it, ending bitwise-identical on CPU to a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from univid.io import write_json
from univid.models.builder import Components, build, load_weights, save_weights
from univid.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from univid.train.data import batch_indices, load_generation_set, load_understanding_set
from univid.train.losses import flow_matching_loss, sft_loss, train_sigmas
from univid.train.metrics import StepLogger
from univid.train.trainable import batch_kind, phase_at, phase_schedule, trainable_names, vae_mix


@dataclass
class Run:
    """Everything one stage's loop needs; `state` is what a checkpoint carries besides tensors."""

    stage: int
    cfg: dict
    comp: Components
    total_steps: int
    schedule: list
    names: list[str]  # the stage's trainable names (union over phases)
    phase_names: dict[str, list[str]]
    params: dict[str, torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    seed: int
    gen_set: list = field(default_factory=list)
    und_set: list = field(default_factory=list)
    sigmas: list = field(default_factory=list)
    state: dict = field(default_factory=lambda: {"gen_batches": 0, "und_batches": 0, "log": []})
    active_phase: str | None = None

    @property
    def scfg(self) -> dict:
        return self.cfg["train"][f"stage{self.stage}"]

    @property
    def autocast(self) -> bool:
        return self.comp.device.type == "cuda"


def set_trainable(comp: Components, names: list[str]) -> None:
    """requires_grad exactly on `names`; train mode except the VAE and the UMT5 text encoder (only ever frozen)."""
    comp.model.requires_grad_(False)
    params = dict(comp.model.named_parameters())
    for n in names:
        params[n].requires_grad_(True)
    comp.model.train()
    comp.model.vae.eval()
    if comp.model.text_encoder is not None:
        comp.model.text_encoder.eval()  # no dropout in a frozen encoder


def prepare(stage: int, cfg: dict, curate_dir: Path, init: list[Path] = (), max_steps: int | None = None,
            comp: Components | None = None) -> Run:
    """Build (or take) the model, load `init` weights, choose what trains, load the data a stage needs."""
    if stage not in (1, 2, 3):
        raise ValueError(f"--stage {stage}: expected 1, 2 or 3")
    scfg = cfg["train"][f"stage{stage}"]
    total = max_steps or scfg["steps"]
    comp = comp or build(cfg)
    for path in init:
        load_weights(comp.model, path)
    schedule = phase_schedule(stage, total, scfg)
    names = trainable_names(comp, cfg, stage)
    phase_names = {p: (trainable_names(comp, cfg, stage, p) if stage == 3 else names) for p, _, _ in schedule}
    params = dict(comp.model.named_parameters())
    if comp.device.type == "cuda":
        for n in names:  # float32 master weights under bf16 autocast
            params[n].data = params[n].data.float()
    optimizer = torch.optim.AdamW([params[n] for n in names], lr=scfg["lr"], weight_decay=0.0)
    seed = cfg["seed"] + 1000 * stage
    torch.manual_seed(seed)
    run = Run(stage, cfg, comp, total, schedule, names, phase_names, params, optimizer,
              torch.Generator().manual_seed(seed), seed)
    kinds = {batch_kind(stage, p, s) for p, a, b in schedule for s in range(a, min(b, a + 2))}
    if "gen" in kinds:
        run.gen_set = load_generation_set(comp, curate_dir)
        run.sigmas = train_sigmas(comp)
    if "und" in kinds:
        run.und_set = load_understanding_set(comp, curate_dir, scfg.get("num_frames", 4))
    return run


def _generation_loss(run: Run, phase: str, step: int, start: int, end: int) -> tuple[torch.Tensor, dict]:
    comp, scfg, g = run.comp, run.scfg, run.generator
    idx = batch_indices(len(run.gen_set), scfg["batch_size"], run.state["gen_batches"], run.seed)
    run.state["gen_batches"] += 1
    clips = [run.gen_set[i] for i in idx]
    latents = torch.cat([c.latents for c in clips]).to(comp.device)
    i = int(torch.randint(len(run.sigmas), (1,), generator=g))
    ref, gain = None, 1.0
    if run.stage == 3:
        # Phase a trains only the ViT side, so its generation batches always carry the reference frame.
        use_ref = phase == "a" or bool(torch.rand(1, generator=g) < scfg["ref_image_prob"])
        ref = torch.stack([c.first_frame for c in clips]).to(comp.device) if use_ref else None
        gain = vae_mix(phase, step, start, end)
    loss = flow_matching_loss(comp, latents, [c.caption for c in clips], i, run.sigmas, g,
                              run.cfg["train"]["stage1"]["cfg_dropout"], ref_frames=ref, vae_gain=gain)
    return loss, {"sigma_index": i, "reference": ref is not None, "vae_mix": gain if ref is not None else 0.0}


def _understanding_loss(run: Run) -> tuple[torch.Tensor, dict]:
    idx = batch_indices(len(run.und_set), run.scfg["batch_size"], run.state["und_batches"], run.seed + 1)
    run.state["und_batches"] += 1
    items = [run.und_set[i] for i in idx]
    frames = torch.stack([c.frames for c in items])
    return sft_loss(run.comp, frames, [c.pieces for c in items]), {"samples": [c.id for c in items]}


def train_step(run: Run, step: int) -> dict:
    """One optimizer step (grad_accum micro-batches of one kind); returns its log row."""
    phase, start, end = phase_at(run.schedule, step)
    if phase != run.active_phase:
        set_trainable(run.comp, run.phase_names[phase])
        run.active_phase = phase
    kind = batch_kind(run.stage, phase, step)
    accum = run.scfg["grad_accum"]
    run.optimizer.zero_grad(set_to_none=True)
    total, info = 0.0, {}
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if run.autocast else contextlib.nullcontext())
    for _ in range(accum):
        with amp:
            loss, info = (_generation_loss(run, phase, step, start, end) if kind == "gen"
                          else _understanding_loss(run))
        if loss.requires_grad:  # e.g. phase a with encoders=vae: no trainable part on this batch's path
            (loss / accum).backward()
        total += float(loss.detach())
    run.optimizer.step()
    row = {"step": step, "phase": phase, "kind": kind, "loss": total / accum}
    row.update({k: v for k, v in info.items() if k != "samples"})
    return row


def train_stage(stage: int, cfg: dict, curate_dir: Path, out_dir: Path, init: list[Path] = (),
                max_steps: int | None = None, save_every: int | None = None, progress: bool = True,
                comp: Components | None = None, tracking_uri: str | None = None) -> dict:
    """Train one stage into out_dir (checkpoints/, final/weights.safetensors, train_log.json); resume if possible."""
    t0 = time.time()
    out_dir = Path(out_dir)
    run = prepare(stage, cfg, curate_dir, init, max_steps, comp)
    save_every = save_every or run.scfg["save_every"]
    if save_every < 1:
        raise ValueError(f"--save-every {save_every}: expected a positive number of steps")
    expect = {"stage": stage, "total_steps": run.total_steps, "trainable": run.names, "seed": run.seed}
    resumed_from = None
    ckpt = latest_checkpoint(out_dir)
    if ckpt is not None:
        run.state = load_checkpoint(ckpt, run.params, run.names, run.optimizer, run.generator, expect)
        resumed_from = run.state["step"]
    first = run.state.get("step", 0)
    uri = tracking_uri or cfg.get("mlflow", {}).get("tracking_uri")
    logger = StepLogger(uri, f"{cfg.get('mlflow', {}).get('experiment_prefix', 'univid')}-train", out_dir,
                        params={"stage": stage, "steps": run.total_steps, **{f"train.{k}": v for k, v in run.scfg.items()}},
                        tags={"univid.stage": f"stage{stage}", "univid.scale": cfg["scale"]})
    bar = tqdm(range(first, run.total_steps), desc=f"stage {stage}", disable=not progress, initial=first,
               total=run.total_steps)
    t_loop = time.time()
    try:
        for step in bar:
            row = train_step(run, step)
            run.state["log"].append(row)
            logger.log(step, {"loss": row["loss"], f"loss_{row['kind']}": row["loss"]})
            bar.set_postfix(loss=f"{row['loss']:.4f}", phase=row["phase"])
            done = step + 1
            if done % save_every == 0 or done == run.total_steps:
                state = {k: v for k, v in run.state.items() if k != "step"}
                save_checkpoint(out_dir, done, run.params, run.names, run.optimizer, run.generator,
                                {**state, **expect})
                logger.flush()
    except BaseException:
        logger.close("KILLED")
        raise
    loop_s = time.time() - t_loop
    run.comp.model.eval()
    run.comp.model.requires_grad_(False)
    # Final weights: what this stage trained plus what it started from (so Stage III's file alone holds I + II + III).
    final = {n: run.params[n] for n in sorted(set(run.names) | set(_init_names(init)))}
    save_weights({n: p.detach().to(run.comp.dtype).cpu().contiguous() for n, p in final.items()},
                 out_dir / "final" / "weights.safetensors", metadata={"stage": stage, "steps": run.total_steps})
    steps_run = run.total_steps - first
    log = {"stage": stage, "steps": run.state["log"], "total_steps": run.total_steps, "trainable": run.names,
           "trainable_by_phase": run.phase_names, "phases": [list(p) for p in run.schedule],
           "num_trainable_params": int(sum(run.params[n].numel() for n in run.names)),
           "grad_accum": run.scfg["grad_accum"], "resumed_from": resumed_from, "wall_s": time.time() - t0,
           "steps_per_s": steps_run / loop_s if steps_run and loop_s > 0 else None}
    logger.close()
    write_json(out_dir / "train_log.json", log)
    return log


def _init_names(init: list[Path]) -> list[str]:
    from safetensors import safe_open

    names = []
    for path in init:
        with safe_open(str(path), "pt") as f:
            names += list(f.keys())
    return names
