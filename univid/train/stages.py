"""The three training stages through one trainer loop.

Stage I   (generation alignment): connector + DiT cross-attention LoRA, flow matching, TMA active.
Stage II  (understanding adaptation): last ViT blocks + vision projector, assistant-only SFT, LLM frozen.
Stage III (joint refinement): both sets, alternating generation and understanding batches, from I and II.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from univid.data.video import read_video, uniform_indices
from univid.io import write_json
from univid.models.builder import Components, build, load_weights, save_weights, trainable_state_dict
from univid.train.losses import encode_video_latents, flow_matching_loss, sft_loss, train_sigmas


def trainable_names(comp: Components, stage: int, cfg: dict) -> list[str]:
    names = [n for n, _ in comp.model.named_parameters()]
    gen = [n for n in names if n.startswith("connector.") or (n.startswith("dit.") and ".lora_" in n)]
    k = cfg["train"]["stage2"]["trainable_vit_blocks"]
    n_layers = comp.model.mllm.vit.config.num_hidden_layers
    last = tuple(f"mllm.vit.vision_model.encoder.layers.{i}." for i in range(n_layers - k, n_layers))
    und = [n for n in names if n.startswith("mllm.vision_proj.") or n.startswith(last)]
    return {1: gen, 2: und, 3: gen + und}[stage]


def set_trainable(comp: Components, names: list[str]) -> list[torch.nn.Parameter]:
    comp.model.requires_grad_(False)
    params = dict(comp.model.named_parameters())
    for n in names:
        params[n].requires_grad_(True)
    comp.model.train()
    comp.model.vae.eval()
    return [params[n] for n in names]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def load_generation_set(comp: Components, curate_dir: Path, limit: int | None = None) -> list[tuple[torch.Tensor, str]]:
    """(normalised latents, caption) for each curated clip; videos are VAE-encoded once per stage run."""
    rows = _read_jsonl(curate_dir / "gen_train.jsonl")[:limit]
    out = []
    for row in rows:
        frames = torch.from_numpy(read_video(row["video"]).frames)
        out.append((encode_video_latents(comp, frames), row["caption"]))
    return out


def load_understanding_set(curate_dir: Path, num_frames: int, limit: int | None = None):
    """(frames [K, H, W, 3] uint8, question, answer) from the curated Video-ChatGPT conversations."""
    items = json.loads((curate_dir / "qa_train.json").read_text())[:limit]
    cache: dict[str, torch.Tensor] = {}
    out = []
    for item in items:
        video = item["video"]
        if video not in cache:
            full = read_video(video)
            idx = uniform_indices(full.frames.shape[0], num_frames)
            cache[video] = torch.from_numpy(np.ascontiguousarray(full.frames[idx]))
        question = item["conversations"][0]["value"].replace("<video>\n", "").replace("<video>", "").strip()
        out.append((cache[video], question, item["conversations"][1]["value"]))
    return out


def train_stage(stage: int, cfg: dict, curate_dir: Path, out_dir: Path, init: list[Path] = (),
                max_steps: int | None = None, progress: bool = True) -> dict:
    """Train one stage; write out_dir/final/weights.safetensors and out_dir/train_log.json. Returns the log."""
    t0 = time.time()
    scfg = cfg["train"][f"stage{stage}"]
    steps = max_steps or scfg["steps"]
    comp = build(cfg)
    for path in init:
        load_weights(comp.model, path)
    names = trainable_names(comp, stage, cfg)
    params = set_trainable(comp, names)
    optimizer = torch.optim.AdamW(params, lr=scfg["lr"], weight_decay=0.0)
    seed = cfg["seed"] + 1000 * stage
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    gen_set = load_generation_set(comp, curate_dir) if stage in (1, 3) else []
    und_set = load_understanding_set(curate_dir, scfg.get("num_frames", 4)) if stage in (2, 3) else []
    sigmas = train_sigmas(comp) if gen_set else []
    s1 = cfg["train"]["stage1"]
    log = {"stage": stage, "steps": [], "trainable": names,
           "num_trainable_params": int(sum(p.numel() for p in params))}
    bar = tqdm(range(steps), desc=f"stage {stage}", disable=not progress)
    for step in bar:
        # Stage III alternates: even steps generation, odd steps understanding.
        kind = {1: "gen", 2: "und", 3: "gen" if step % 2 == 0 else "und"}[stage]
        if kind == "gen":
            batch = rng.sample(gen_set, min(scfg["batch_size"], len(gen_set)))
            latents = torch.cat([b[0] for b in batch])
            i = rng.randrange(len(sigmas))
            loss = flow_matching_loss(comp, latents, [b[1] for b in batch], i, sigmas, gen, s1["cfg_dropout"])
        else:
            batch = rng.sample(und_set, min(scfg["batch_size"], len(und_set)))
            loss = torch.stack([sft_loss(comp, f, q, a) for f, q, a in batch]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        log["steps"].append({"step": step, "kind": kind, "loss": value})
        bar.set_postfix(loss=f"{value:.4f}")
    comp.model.eval()
    log["wall_s"] = time.time() - t0
    save_weights(trainable_state_dict(comp.model), out_dir / "final" / "weights.safetensors",
                 metadata={"stage": stage, "steps": steps})
    write_json(out_dir / "train_log.json", log)
    return log
