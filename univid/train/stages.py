"""The three training stages (paper Sec. 3.2, Appendix A.3) through one trainer loop on accelerate.

Stage I   (generation alignment): connector + DiT cross-attention LoRA, flow matching with CFG dropout, TMA active,
          on the precomputed VAE latents and frozen MLLM (or UMT5) outputs (univid.train.precompute).
Stage II  (understanding adaptation): last ViT blocks + vision connector (+ the VAE encoder's blocks with
          `train.stage2.vae: trainable_blocks`), SFT on assistant tokens only, LLM frozen.
Stage III (joint): phases a/b/c of Appendix A.3 (see univid.train.trainable), from the weights of I and II; its
          generation batches read the precomputed latents and run the (training) MLLM on the caption and reference.

`univid train` runs unchanged in one process or under `accelerate launch` (DDP across processes and nodes; FSDP
through accelerate's own config). The global batch is `train.stageN.batch_size` whatever the number of processes
(per device x processes x `grad_accum`); batches come from a DataLoader whose sampler gives every process its slice
of the same global batch, with per-sample seeded noise (univid.train.loader), so N processes train on what one
process would. `train.mixed_precision` (no | bf16) is accelerate's autocast with float32 master weights;
`train.gradient_checkpointing` recomputes the DiT's and the MLLM's blocks in backward.

What trains is exact (univid.train.trainable); everything else has requires_grad False. Every `save_every` steps the
main process writes a checkpoint (univid.train.checkpoint); a run resumes from the newest one in its output
directory: bitwise-identical to an uninterrupted run in one process, at the same step and data order in N.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from univid.io import write_json
from univid.models.builder import GENERATION_PARTS, Components, build, load_weights, save_weights
from univid.models.conditioning import null_text, padding_keys
from univid.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from univid.train.loader import (ConversationSamples, GenerationSamples, batch_stream, collate_conversations,
                                 collate_generation, per_device_batch, sample_generator)
from univid.train.losses import (flow_matching_loss, online_condition, precomputed_condition, sft_loss,
                                 train_sigmas)
from univid.train.metrics import StepLogger
from univid.train.trainable import (batch_kind, phase_at, phase_schedule, sft_encoders, stage2_trains_vae,
                                   trainable_names, vae_mix)

MIXED_PRECISION = ("no", "bf16")


def stage_parts(stage: int, cfg: dict) -> tuple[str, ...]:
    """Stage II trains and runs the MLLM alone (and the VAE when its blocks train); I and III need the generation
    parts."""
    if stage == 2:
        return ("mllm", "vae") if stage2_trains_vae(cfg) else ("mllm",)
    return GENERATION_PARTS


def make_accelerator(cfg: dict, stage: int):
    """accelerate's Accelerator for this stage: mixed precision and accumulation from the config, the process layout
    from `accelerate launch` (one process without it)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    t = cfg["train"]
    mp = t.get("mixed_precision", "no")
    if mp not in MIXED_PRECISION:
        raise ValueError(f"train.mixed_precision {mp!r}: expected one of {', '.join(MIXED_PRECISION)}")
    if cfg["dtype"] != "float32" and mp == "no":
        raise ValueError(f"train.mixed_precision 'no' with dtype {cfg['dtype']}: expected bf16 (trainable weights "
                         f"are float32 masters that meet the {cfg['dtype']} model under autocast)")
    # Stage III's trainable set changes by phase: DDP must tolerate parameters without a gradient in a step.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=stage == 3)
    acc = Accelerator(mixed_precision=mp, cpu=cfg["device"] == "cpu" or not torch.cuda.is_available(),
                      kwargs_handlers=[ddp],
                      gradient_accumulation_steps=cfg["train"][f"stage{stage}"]["grad_accum"])
    if acc.device.type == "cuda" and acc.local_process_index >= torch.cuda.device_count():
        raise ValueError(f"accelerate: {acc.num_processes} processes on a node with {torch.cuda.device_count()} "
                         f"GPU(s) (expected at most one process per GPU)")
    return acc


class StageLoss(nn.Module):
    """The module accelerate prepares (DDP-wraps): forward(kind, batch, ...) -> (loss, info) for one micro-batch."""

    def __init__(self, run: "Run"):
        super().__init__()
        self.model = run.comp.model  # registered, so DDP sees the trainable parameters
        self.__dict__["run"] = run  # plain attribute: not a submodule

    def forward(self, kind: str, batch: dict, phase: str, step: int, start: int, end: int):
        run = self.run
        if kind == "und":
            loss = sft_loss(run.comp, batch["frames"], batch["pieces"], sft_encoders(run.cfg, run.stage))
            return loss, {"samples": batch["ids"]}
        return _generation_loss(run, batch, phase, step, start, end)


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
    generator: torch.Generator  # checkpointed for compatibility; draws come from per-batch seeded generators
    seed: int
    accelerator: object = None
    module: nn.Module | None = None
    gen_data: GenerationSamples | None = None
    und_data: ConversationSamples | None = None
    sigmas: list = field(default_factory=list)
    state: dict = field(default_factory=lambda: {"gen_batches": 0, "und_batches": 0, "log": []})
    active_phase: str | None = None
    streams: dict = field(default_factory=dict)

    @property
    def scfg(self) -> dict:
        return self.cfg["train"][f"stage{self.stage}"]


def set_trainable(comp: Components, names: list[str]) -> None:
    """requires_grad exactly on `names`; train mode except the VAE and the UMT5 text encoder (the frozen encoders;
    the Wan VAE has no dropout, so its trainable blocks under train.stage2.vae train the same in eval mode)."""
    comp.model.requires_grad_(False)
    params = dict(comp.model.named_parameters())
    for n in names:
        params[n].requires_grad_(True)
    comp.model.train()
    for frozen in (comp.model.vae, comp.model.text_encoder):
        if frozen is not None:
            frozen.eval()  # no dropout in a frozen encoder


def enable_gradient_checkpointing(comp: Components) -> None:
    """Recompute activations in backward: the DiT's blocks (diffusers) and the LLM's and ViT's layers
    (transformers, non-reentrant, so frozen inputs need no requires_grad)."""
    if comp.model.dit is not None:
        comp.model.dit.enable_gradient_checkpointing()
    for part in (comp.model.mllm.llm, comp.model.mllm.vit):
        part.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def prepare(stage: int, cfg: dict, curate_dir: Path, init: list[Path] = (), max_steps: int | None = None,
            comp: Components | None = None, precompute_dir: Path | None = None, accelerator=None) -> Run:
    """Build (or take) the model, load `init` weights, choose what trains, open the data a stage reads."""
    if stage not in (1, 2, 3):
        raise ValueError(f"--stage {stage}: expected 1, 2 or 3")
    scfg = cfg["train"][f"stage{stage}"]
    total = max_steps or scfg["steps"]
    acc = accelerator or make_accelerator(cfg, stage)
    per_device_batch(scfg["batch_size"], acc.num_processes, scfg["grad_accum"], f"train.stage{stage}")
    comp = comp or build({**cfg, "device": str(acc.device)}, parts=stage_parts(stage, cfg))
    for path in init:
        load_weights(comp.model, path)
    schedule = phase_schedule(stage, total, scfg)
    names = trainable_names(comp, cfg, stage)
    phase_names = {p: (trainable_names(comp, cfg, stage, p) if stage == 3 else names) for p, _, _ in schedule}
    params = dict(comp.model.named_parameters())
    if comp.dtype != torch.float32:
        for n in names:  # float32 master weights under bf16 autocast
            params[n].data = params[n].data.float()
    if cfg["train"].get("gradient_checkpointing"):
        enable_gradient_checkpointing(comp)
    seed = cfg["seed"] + 1000 * stage
    torch.manual_seed(seed)
    set_trainable(comp, names)  # DDP registers what requires grad when it wraps the module
    optimizer = torch.optim.AdamW([params[n] for n in names], lr=scfg["lr"], weight_decay=0.0)
    run = Run(stage, cfg, comp, total, schedule, names, phase_names, params, optimizer,
              torch.Generator().manual_seed(seed), seed, accelerator=acc)
    run.module, run.optimizer = acc.prepare(StageLoss(run), optimizer)
    kinds = {batch_kind(stage, p, s) for p, a, b in schedule for s in range(a, min(b, a + 2))}
    if "gen" in kinds:
        if precompute_dir is None:
            raise ValueError(f"stage {stage}: generation batches need a precompute job's output (expected "
                             f"`univid precompute` to have run, or --precompute DIR)")
        run.sigmas = train_sigmas(comp)
        run.gen_data = GenerationSamples(precompute_dir, seed, len(run.sigmas),
                                         cfg["train"]["stage1"]["cfg_dropout"])
    if "und" in kinds:
        run.und_data = ConversationSamples(curate_dir, comp.tokenizer, scfg.get("num_frames", 4))
    return run


def next_batch(run: Run, kind: str) -> dict:
    """This process's next micro-batch of a kind; the stream opens at the kind's global batch counter."""
    if kind not in run.streams:
        data, collate = ((run.gen_data, collate_generation) if kind == "gen"
                         else (run.und_data, collate_conversations))
        acc, scfg = run.accelerator, run.scfg
        start = run.state[f"{kind}_batches"]
        run.streams[kind] = batch_stream(data, collate, scfg["batch_size"], run.seed + (kind == "und"), start,
                                         acc.process_index, acc.num_processes, scfg["grad_accum"],
                                         run.cfg["train"].get("num_workers", 0))
    return next(run.streams[kind])


def _generation_loss(run: Run, batch: dict, phase: str, step: int, start: int, end: int):
    comp, scfg = run.comp, run.scfg
    latents = batch["latents"].to(comp.device)
    ref, gain = None, 1.0
    # The captions as encoded (a dropped one is the null caption): their UMT5 padding keys stay out of TMA's scaling.
    texts = [null_text(comp) if d else c for c, d in zip(batch["captions"], batch["drop"].tolist())]
    if run.stage == 3:
        # One draw per global batch (the same in every process). Phase a trains only the ViT side, so its
        # generation batches always carry the reference frame.
        g = sample_generator(run.seed + 7, batch["batch_number"], 0)
        use_ref = phase == "a" or bool(torch.rand(1, generator=g) < scfg["ref_image_prob"])
        ref = batch["first_frame"].to(comp.device) if use_ref else None
        gain = vae_mix(phase, step, start, end)
        context, is_image = online_condition(comp, batch["captions"], batch["drop"].tolist(), ref_frames=ref,
                                             latents=latents, vae_gain=gain)
    else:
        context, is_image = precomputed_condition(comp, batch["condition"], batch["condition_mask"])
    loss = flow_matching_loss(comp, latents, batch["noise"].to(comp.device), batch["sigma_index"].tolist(),
                              run.sigmas, context, is_image, padding_keys(comp, texts))
    return loss, {"sigma_index": batch["sigma_index"].tolist(), "reference": ref is not None,
                  "vae_mix": gain if ref is not None else 0.0}


def train_step(run: Run, step: int) -> dict:
    """One optimizer step (grad_accum micro-batches of one kind in each process); returns its log row."""
    phase, start, end = phase_at(run.schedule, step)
    if phase != run.active_phase:
        set_trainable(run.comp, run.phase_names[phase])
        run.active_phase = phase
    kind = batch_kind(run.stage, phase, step)
    acc = run.accelerator
    run.optimizer.zero_grad(set_to_none=True)
    total, info = torch.zeros(()), {}
    counter = f"{kind}_batches"
    for _ in range(run.scfg["grad_accum"]):
        batch = next_batch(run, kind)
        batch["batch_number"] = run.state[counter]
        with acc.accumulate(run.module):
            loss, info = run.module(kind, batch, phase, step, start, end)
            if loss.requires_grad:  # e.g. phase a with encoders=vae: no trainable part on this batch's path
                acc.backward(loss)  # divided by grad_accum by accelerate
        total += loss.detach().float().cpu()
    run.state[counter] += 1
    active = set(run.phase_names[phase])
    for n in run.names:  # a parameter outside this phase keeps no gradient (DDP may have filled one in)
        if n not in active:
            run.params[n].grad = None
    run.optimizer.step()
    mean = acc.reduce(total.to(acc.device) / run.scfg["grad_accum"], reduction="mean")
    row = {"step": step, "phase": phase, "kind": kind, "loss": float(mean)}
    row.update({k: v for k, v in info.items() if k != "samples"})
    return row


def train_stage(stage: int, cfg: dict, curate_dir: Path, out_dir: Path, init: list[Path] = (),
                max_steps: int | None = None, save_every: int | None = None, progress: bool = True,
                comp: Components | None = None, tracking_uri: str | None = None,
                precompute_dir: Path | None = None) -> dict:
    """Train one stage into out_dir (checkpoints/, final/weights.safetensors, train_log.json); resume if possible."""
    t0 = time.time()
    out_dir = Path(out_dir)
    run = prepare(stage, cfg, curate_dir, init, max_steps, comp, precompute_dir=precompute_dir)
    acc = run.accelerator
    main = acc.is_main_process
    save_every = save_every or run.scfg["save_every"]
    if save_every < 1:
        raise ValueError(f"--save-every {save_every}: expected a positive number of steps")
    expect = {"stage": stage, "total_steps": run.total_steps, "trainable": run.names, "seed": run.seed,
              "batch_size": run.scfg["batch_size"]}
    resumed_from = None
    ckpt = latest_checkpoint(out_dir)
    if ckpt is not None:
        run.state = load_checkpoint(ckpt, run.params, run.names, run.optimizer, run.generator, expect)
        resumed_from = run.state["step"]
    first = run.state.get("step", 0)
    uri = (tracking_uri or cfg.get("mlflow", {}).get("tracking_uri")) if main else None
    logger = StepLogger(uri, f"{cfg.get('mlflow', {}).get('experiment_prefix', 'univid')}-train", out_dir,
                        params={"stage": stage, "steps": run.total_steps, "processes": acc.num_processes,
                                **{f"train.{k}": v for k, v in run.scfg.items()}},
                        tags={"univid.stage": f"stage{stage}", "univid.scale": cfg["scale"]})
    bar = tqdm(range(first, run.total_steps), desc=f"stage {stage}", disable=not (progress and main), initial=first,
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
                if main:
                    state = {k: v for k, v in run.state.items() if k != "step"}
                    save_checkpoint(out_dir, done, run.params, run.names, run.optimizer, run.generator,
                                    {**state, **expect})
                    logger.flush()
                acc.wait_for_everyone()
    except BaseException:
        logger.close("KILLED")
        raise
    loop_s = time.time() - t_loop
    run.streams.clear()  # stops the DataLoader workers
    run.comp.model.eval()
    run.comp.model.requires_grad_(False)
    steps_run = run.total_steps - first
    log = {"stage": stage, "steps": run.state["log"], "total_steps": run.total_steps, "trainable": run.names,
           "trainable_by_phase": run.phase_names, "phases": [list(p) for p in run.schedule],
           "num_trainable_params": int(sum(run.params[n].numel() for n in run.names)),
           "batch_size": run.scfg["batch_size"], "grad_accum": run.scfg["grad_accum"],
           "processes": acc.num_processes,
           "per_device_batch": per_device_batch(run.scfg["batch_size"], acc.num_processes, run.scfg["grad_accum"],
                                                f"train.stage{stage}"),
           "mixed_precision": acc.mixed_precision,
           "gradient_checkpointing": bool(cfg["train"].get("gradient_checkpointing")),
           "resumed_from": resumed_from, "wall_s": time.time() - t0,
           "steps_per_s": steps_run / loop_s if steps_run and loop_s > 0 else None}
    if main:
        # Final weights: what this stage trained plus what it started from (so Stage III's file alone holds
        # I + II + III); written before train_log.json, the job's completion marker.
        final = {n: run.params[n] for n in sorted(set(run.names) | set(_init_names(init)))}
        save_weights({n: p.detach().to(run.comp.dtype).cpu().contiguous() for n, p in final.items()},
                     out_dir / "final" / "weights.safetensors", metadata={"stage": stage, "steps": run.total_steps})
        write_json(out_dir / "train_log.json", log)
    logger.close()
    acc.wait_for_everyone()
    return log


def _init_names(init: list[Path]) -> list[str]:
    from safetensors import safe_open

    names = []
    for path in init:
        with safe_open(str(path), "pt") as f:
            names += list(f.keys())
    return names
