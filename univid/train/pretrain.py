"""The toy scale's "public checkpoints", pretrained by the harness itself on the synthetic world (the pretrain job).

The paper bootstraps UniVid from public checkpoints (Wan 2.2 TI2V-5B; a SigLIP2 + Qwen2 MLLM). At toy scale the
honest analogue is a world small enough that tiny models learn it in minutes: this job renders its own synthetic
world (`pretrain.data`: a seed disjoint from the curate job's, so no evaluation clip is ever pretrained on) and trains
  1. the Wan VAE (reconstruction, a small KL term; its per-channel latent statistics become latents_mean/std),
  2. a text-to-video Wan DiT from scratch with its own frozen UMT5 text encoder (flow matching, Wan's conditioning),
  3. the MLLM: ViT + LLM + projector, SFT on the world's questions and captions (all weights train),
and saves them in the official layouts the paper-scale loaders read: `wan/` as Wan2.2-TI2V-5B-Diffusers
({vae, transformer, text_encoder, tokenizer, scheduler}, model_index.json) and `mllm/` as a transformers LLaVA
checkpoint (SigLIP tower + Qwen2 + Linear-GELU-Linear projector, vision_feature_layer -1). The toy config points
model.{vae,dit,text_encoder,scheduler}.path and model.mllm.init.checkpoint at them (`{pretrain}` in a path); the
paper's three stages then run on top unchanged.

Each saved part records the hash of the model config it was built from (`univid_pretrain.json`), so a run whose
config asks for another architecture gets one line naming it instead of a shape error deep in from_pretrained.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from univid.io import atomic_dir, read_json, write_json
from univid.models.pretrained import PARTS_FILE, part_hashes

def pretrain_world_config(cfg: dict) -> dict:
    """The data config of the pretrain world: the curate job's synthetic settings with the pretrain seed and size."""
    syn = dict(cfg["data"]["synthetic"])
    syn.update(cfg["pretrain"]["data"])
    return {"source": "synthetic", "synthetic": syn, "filters": cfg["data"].get("filters") or {},
            "num_gen_samples": None, "num_qa_samples": None}


def _fresh(spec: dict) -> dict:
    return {**spec, "path": None}


def _load_clips(world: Path) -> tuple[torch.Tensor, list[str]]:
    """Every generation clip of the pretrain world as uint8 [N, T, H, W, 3], and their captions."""
    from univid.data.video import read_video

    rows = [json.loads(line) for line in (world / "gen_train.jsonl").read_text().splitlines() if line.strip()]
    frames = np.stack([read_video(r["video"]).frames for r in rows])
    return torch.from_numpy(frames), [r["caption"] for r in rows]


def _to_unit(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> [B, 3, T, H, W] in [-1, 1] (the Wan VAE's input)."""
    return frames_uint8.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def _cosine_lr(opt, base: float, step: int, total: int, warmup: int = 20) -> None:
    lr = base * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))
    for group in opt.param_groups:
        group["lr"] = lr


def _loop(name: str, params, steps: int, lr: float, loss_fn, log, stop_after: int | None = None) -> list[float]:
    """A plain AdamW loop with warmup + cosine decay and gradient clipping; returns the loss every step. `stop_after`
    ends it early on the full run's schedule (a replay of the first steps: univid.train.shipped)."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses, start = [], time.time()
    for step in range(steps if stop_after is None else min(steps, stop_after)):
        _cosine_lr(opt, lr, step, steps)
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(round(float(loss.detach()), 6))
        if log and (step % 100 == 0 or step == steps - 1):
            log(f"pretrain {name}: step {step + 1}/{steps} loss {losses[-1]:.4f} ({time.time() - start:.0f} s)")
    return losses


def foreground_mask(x: torch.Tensor, dilate: int = 0) -> torch.Tensor:
    """Foreground pixels of clips x [B, C, T, H, W] in [-1, 1] as a [B, 1, T, H, W] 0/1 mask: farther than 0.2 from
    the clip's median colour in any channel, grown by `dilate` pixels in each frame."""
    background = x.flatten(2).median(dim=2).values[:, :, None, None, None]
    foreground = ((x - background).abs().amax(dim=1, keepdim=True) > 0.2).float()
    if dilate:
        k = 2 * dilate + 1
        foreground = F.max_pool3d(foreground, (1, k, k), stride=1, padding=(0, dilate, dilate))
    return foreground


def foreground_weight(x: torch.Tensor, fg_weight: float, dilate: int = 0) -> torch.Tensor:
    """Per-pixel reconstruction weight of clips x [B, C, T, H, W] in [-1, 1]: 1 + fg_weight on foreground pixels
    (see foreground_mask), the foreground grown by `dilate` pixels in each frame. Undilated, the pixels just outside
    an object count 1 against its 1 + fg_weight: the decoder bleeds an object into its background almost for free,
    which rounds a 10-pixel square or triangle into a blob."""
    return 1.0 + fg_weight * foreground_mask(x, dilate)


def latent_foreground(clips: torch.Tensor, dilate: int, spatial: int, temporal: int) -> torch.Tensor:
    """The foreground of uint8 clips [N, T, H, W, 3] on the causal VAE's latent grid, [N, 1, 1 + (T - 1) / temporal,
    H / spatial, W / spatial]: a latent cell is foreground when any pixel it encodes is (the first frame alone, then
    each `temporal` frames, as Wan's VAE groups them)."""
    masks = []
    for i in range(0, len(clips), 8):
        fg = foreground_mask(_to_unit(clips[i:i + 8]), dilate)
        first, rest = fg[:, :, :1], fg[:, :, 1:]
        if rest.shape[2] % temporal:
            raise ValueError(f"clips of {fg.shape[2]} frames: expected 1 + {temporal}k for the causal VAE")
        rest = F.max_pool3d(rest, (temporal, 1, 1), stride=(temporal, 1, 1))
        masks.append(F.max_pool3d(torch.cat([first, rest], 2), (1, spatial, spatial), stride=(1, spatial, spatial)))
    return torch.cat(masks)


def pretrain_vae(spec: dict, clips: torch.Tensor, p: dict, seed: int, log, stop_after: int | None = None):
    """The Wan VAE on the clips: whole clips (`window` null) or random `window`-frame crops (the causal VAE encodes
    1 + 4k frames; crops shorter than the sampled clips leave its later chunks, which read cached features of the
    chunks before, untrained). The reconstruction error of foreground pixels (farther than 0.2 from the clip's
    median colour in any channel; grown by `fg_dilate` pixels, see foreground_weight) counts `fg_weight` more: the
    world's objects cover ~3% of a frame, and an unweighted loss is met by backgrounds alone long before an object's
    colour survives the 8x8 latent."""
    from univid.models.builder import build_vae

    torch.manual_seed(seed)
    vae = build_vae(_fresh(spec))
    vae.train()
    g = torch.Generator().manual_seed(seed)
    n, t = clips.shape[:2]
    window = t if p.get("window") is None else min(int(p["window"]), t)

    def loss_fn(step):
        idx = torch.randint(0, n, (p["batch_size"],), generator=g)
        start = int(torch.randint(0, t - window + 1, (1,), generator=g))
        x = _to_unit(clips[idx, start:start + window])
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.mode()).sample
        weight = foreground_weight(x, float(p.get("fg_weight", 0.0)), int(p.get("fg_dilate", 0)))
        kl = 0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar).mean()
        return ((rec - x).pow(2) * weight).mean() + p["kl_weight"] * kl

    losses = _loop("vae", [q for q in vae.parameters() if q.requires_grad], p["steps"], p["lr"], loss_fn, log,
                   stop_after)
    vae.eval()
    latents = _encode_clips(vae, clips)
    mean = latents.mean(dim=(0, 2, 3, 4))  # latent statistics over the whole clips: the DiT works on normalised latents
    std = latents.std(dim=(0, 2, 3, 4)).clamp_min(1e-3)
    vae.register_to_config(latents_mean=[round(float(v), 6) for v in mean],
                           latents_std=[round(float(v), 6) for v in std])
    return vae, _normalise(latents, mean, std), losses


def _encode_clips(vae, clips: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([vae.encode(_to_unit(clips[i:i + 8])).latent_dist.mode() for i in range(0, len(clips), 8)])


def _normalise(latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)


def _t2v_foreground(vae, clips: torch.Tensor, p: dict) -> torch.Tensor | None:
    """The latent foreground pretrain_t2v weights by `fg_weight` (None when it is 0), on `vae`'s latent grid."""
    if not float(p.get("fg_weight", 0.0)):
        return None
    return latent_foreground(clips, int(p.get("fg_dilate", 0)), int(vae.config.scale_factor_spatial),
                             int(vae.config.scale_factor_temporal))


def pretrain_t2v(model_cfg: dict, latents: torch.Tensor, captions: list[str], p: dict, seed: int, log,
                 stop_after: int | None = None, foreground: torch.Tensor | None = None):
    """A text-to-video Wan DiT from scratch on the clips' normalised latents, conditioned by its own frozen UMT5
    (WanPipeline's prompt encoding), with flow matching on the Wan 2.2 sampler's shifted sigmas and CFG dropout
    (the empty prompt, as WanPipeline encodes no negative prompt). With `fg_weight` > 0 the error on latent cells
    over an object (`foreground`, see latent_foreground) counts 1 + fg_weight, normalised by the batch's mean
    weight: unweighted, the loss is ~97% background (README, toy generation) and the DiT never commits to an object."""
    fg_weight = float(p.get("fg_weight", 0.0))
    if fg_weight and (foreground is None or len(foreground) != len(latents)):
        raise ValueError("pretrain.t2v.fg_weight > 0 needs the clips' latent foreground, one mask per clip")
    from diffusers import WanPipeline

    from univid.models.builder import build_dit, build_scheduler, build_text_encoder
    from univid.models.tokenizer import load_tokenizer

    torch.manual_seed(seed)
    encoder, tokenizer = build_text_encoder(_fresh(model_cfg["text_encoder"]), load_tokenizer(model_cfg["tokenizer"]))
    encoder.eval()
    scheduler = build_scheduler(_fresh(model_cfg["scheduler"]))
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=encoder, vae=None, scheduler=None)
    with torch.no_grad():
        context, _ = pipe.encode_prompt(captions + [""], do_classifier_free_guidance=False,
                                        max_sequence_length=model_cfg["max_text_tokens"], device=torch.device("cpu"))
    null, context = context[-1:], context[:-1]
    torch.manual_seed(seed + 1)
    dit = build_dit(_fresh(model_cfg["dit"]))
    dit.train()
    sched = type(scheduler).from_config(scheduler.config)
    sched.set_timesteps(1000)
    sigmas = sched.sigmas[:-1].float()
    g = torch.Generator().manual_seed(seed)
    n = latents.shape[0]

    def loss_fn(step):
        b = p["batch_size"]
        idx = torch.randint(0, n, (b,), generator=g)
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=g)
        s = sigmas[torch.randint(0, len(sigmas), (b,), generator=g)]
        drop = torch.rand(b, generator=g) < p["cfg_dropout"]
        ctx = torch.where(drop.view(-1, 1, 1), null.expand(b, -1, -1), context[idx])
        x_t = (1 - s.view(-1, 1, 1, 1, 1)) * x0 + s.view(-1, 1, 1, 1, 1) * noise
        pred = dit(hidden_states=x_t, timestep=s * 1000.0, encoder_hidden_states=ctx, return_dict=False)[0]
        if not fg_weight:
            return F.mse_loss(pred, noise - x0)
        weight = 1.0 + fg_weight * foreground[idx]
        return ((pred - (noise - x0)).pow(2) * weight).mean() / weight.mean()

    losses = _loop("t2v", [q for q in dit.parameters() if q.requires_grad], p["steps"], p["lr"], loss_fn, log,
                   stop_after)
    dit.eval()
    return dit, encoder, tokenizer, scheduler, losses


def _mllm_items(world: Path, captions_prompt: str, system_fraction: float = 0.0, seed: int = 0) -> list[dict]:
    """The world's questions (Video-ChatGPT conversations, as curated) and one caption conversation per clip.

    A `system_fraction` of the questions (seeded choice) also get the Actor's system turn (the `actor` prompt with
    a global caption), half of them with the clip's own caption and half with another clip's: a public MLLM has
    seen many system prompts, this one would otherwise have seen none, and the Actor asks with that turn under
    Pyramid Reflection (measured at toy: without it, the tiny Actor answered "What color is the background?" with a
    whole caption once the turn was there, and "black" without it). Another clip's caption teaches that the caption
    may be wrong, as C_g from a stand-in summarizer is."""
    from univid.reflection.templates import render

    if not 0.0 <= system_fraction <= 1.0:
        raise ValueError(f"pretrain.mllm.system_fraction: {system_fraction} (expected a number in [0, 1])")
    rows = [json.loads(line) for line in (world / "gen_train.jsonl").read_text().splitlines()]
    captions = {row["video"]: row["caption"] for row in rows}
    others = [row["caption"] for row in rows]
    has_other = len(set(others)) > 1
    rng = random.Random(seed)
    items = []
    for item in read_json(world / "qa_train.json"):
        if rng.random() < system_fraction:
            own = captions[item["video"]]
            if rng.random() >= 0.5 and has_other:
                caption = rng.choice([c for c in others if c != own])
            else:
                caption = own
            item = {**item, "conversations": [{"from": "system", "value": render("actor", global_caption=caption)},
                                              *item["conversations"]]}
        items.append(item)
    for i, row in enumerate(rows):
        items.append({"id": f"caption_{i}", "video": row["video"],
                      "conversations": [{"from": "human", "value": f"<video>\n{captions_prompt}"},
                                        {"from": "gpt", "value": row["caption"]}]})
    return items


def pretrain_mllm(model_cfg: dict, world: Path, p: dict, seed: int, log, stop_after: int | None = None):
    """ViT + LLM + projector from scratch, SFT (assistant-token cross-entropy) on the world's conversations with
    `num_frames` uniform frames each. The projector reads hidden_states[-1] (vision_feature_layer -1, as the LLaVA
    layout it is saved in records)."""
    from univid.models.builder import Components, UniVid, build_llm, build_vit
    from univid.models.mllm import UniVidMLLM
    from univid.models.tokenizer import load_tokenizer
    from univid.train.loader import ConversationSamples, batch_stream, collate_conversations
    from univid.train.losses import sft_loss

    tokenizer = load_tokenizer(model_cfg["tokenizer"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    llm = build_llm(_fresh(model_cfg["llm"]), vocab_size=len(tokenizer))
    torch.manual_seed(seed + 1)
    vit = build_vit(_fresh(model_cfg["vit"]))
    torch.manual_seed(seed + 2)
    mllm = UniVidMLLM(llm, vit, vae_z_dim=1, vision_feature_layer=-1)
    comp = Components(UniVid(mllm, None, None, None), tokenizer, None, None, "vit", model_cfg["max_text_tokens"],
                      torch.device("cpu"), torch.float32)
    write_json(world / "mllm_train.json", _mllm_items(world, p["caption_prompt"], p["system_fraction"], seed))
    data = ConversationSamples(world, tokenizer, p["num_frames"], filename="mllm_train.json")
    stream = batch_stream(data, collate_conversations, p["batch_size"], seed, 0, 0, 1, 1, 0)
    mllm.train()
    params = [q for n, q in mllm.named_parameters() if not n.startswith("vae_proj")]

    def loss_fn(step):
        batch = next(stream)
        return sft_loss(comp, batch["frames"], batch["pieces"], "vit")

    losses = _loop("mllm", params, p["steps"], p["lr"], loss_fn, log, stop_after)
    mllm.eval()
    return mllm, tokenizer, losses


def save_llava(mllm, tokenizer, out: Path) -> None:
    """The MLLM as a transformers LLaVA checkpoint (what `model.mllm.init: {checkpoint}` loads)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    text = mllm.llm.config.to_dict()
    config = LlavaConfig(vision_config=mllm.vit.config.to_dict(), text_config=text, vision_feature_layer=-1,
                         vision_feature_select_strategy="full", image_token_index=len(tokenizer) - 1,
                         projector_hidden_act="gelu", multimodal_projector_bias=True,
                         tie_word_embeddings=text.get("tie_word_embeddings", False))
    with torch.device("meta"):
        llava = LlavaForConditionalGeneration(config)
    llava.model.vision_tower = mllm.vit
    llava.model.language_model = mllm.llm.model
    llava.lm_head = mllm.llm.lm_head
    proj = llava.model.multi_modal_projector
    proj.linear_1, proj.linear_2 = mllm.vision_proj[0], mllm.vision_proj[2]
    llava.save_pretrained(out)
    tokenizer.save_pretrained(out)


def render_world(cfg: dict, world: Path) -> Path:
    """The pretrain world (rendered once into `world`; a shipped checkpoint comes without it)."""
    from univid.data.curate import curate

    if not (world / "curation_report.json").is_file():
        curate(pretrain_world_config(cfg), world, int(cfg["pretrain"]["seed"]))
    return world


def replay_first_steps(cfg: dict, checkpoint: Path, work: Path, steps: int, log=None) -> dict[str, list[float]]:
    """The first `steps` losses of each of the job's three loops, rerun by this code on the full run's schedules:
    the VAE and the MLLM from their seeded init, as the job trains them; the T2V DiT on the clips' latents from
    `checkpoint`'s VAE (the job's own VAE, up to the 6-decimal rounding of its saved latent statistics). What
    univid.train.shipped compares with a shipped checkpoint's logged losses."""
    from diffusers import AutoencoderKLWan

    p, m, seed = cfg["pretrain"], cfg["model"], int(cfg["pretrain"]["seed"])
    world = render_world(cfg, Path(work) / "world")
    clips, captions = _load_clips(world)
    out = {}
    out["vae"] = pretrain_vae(m["vae"], clips, p["vae"], seed, log, stop_after=steps)[2]
    vae = AutoencoderKLWan.from_pretrained(Path(checkpoint) / "wan", subfolder="vae").eval()
    latents = _normalise(_encode_clips(vae, clips), torch.tensor(vae.config.latents_mean),
                         torch.tensor(vae.config.latents_std))
    out["t2v"] = pretrain_t2v(m, latents, captions, p["t2v"], seed, log, stop_after=steps,
                              foreground=_t2v_foreground(vae, clips, p["t2v"]))[4]
    out["mllm"] = pretrain_mllm(m, world, p["mllm"], seed, log, stop_after=steps)[2]
    return out


def run_pretrain(cfg: dict, out: Path, log=None) -> dict:
    """Pretrain the toy scale's checkpoints into `out` (wan/, mllm/, pretrain_log.json, then manifest.json)."""
    from diffusers import WanPipeline

    p, m, seed = cfg["pretrain"], cfg["model"], int(cfg["pretrain"]["seed"])
    out = Path(out)
    world = render_world(cfg, out / "world")
    timings, log_body = {}, {}
    t0 = time.time()
    clips, captions = _load_clips(world)
    vae, latents, log_body["vae"] = pretrain_vae(m["vae"], clips, p["vae"], seed, log)
    timings["vae_s"] = round(time.time() - t0, 1)
    t0 = time.time()
    dit, encoder, text_tokenizer, scheduler, log_body["t2v"] = pretrain_t2v(
        m, latents, captions, p["t2v"], seed, log, foreground=_t2v_foreground(vae, clips, p["t2v"]))
    timings["t2v_s"] = round(time.time() - t0, 1)
    t0 = time.time()
    mllm, tokenizer, log_body["mllm"] = pretrain_mllm(m, world, p["mllm"], seed, log)
    timings["mllm_s"] = round(time.time() - t0, 1)
    with atomic_dir(out / "wan") as tmp:
        WanPipeline(tokenizer=text_tokenizer, text_encoder=encoder, transformer=dit, vae=vae,
                    scheduler=scheduler).save_pretrained(tmp)
        write_json(tmp / PARTS_FILE, {"parts": part_hashes(m, "wan")})
    with atomic_dir(out / "mllm") as tmp:
        save_llava(mllm, tokenizer, tmp)
        write_json(tmp / PARTS_FILE, {"parts": part_hashes(m, "mllm")})
    final = {k: float(np.mean(v[-20:])) for k, v in log_body.items()}
    write_json(out / "pretrain_log.json", {"losses": log_body, "final_loss_mean_last20": final, "timings": timings,
                                           "clips": len(captions)})
    manifest = {"wan": str(out / "wan"), "mllm": str(out / "mllm"), "final_loss_mean_last20": final,
                "timings": timings}
    write_json(out / "manifest.json", manifest)  # last: its presence means the job is complete
    return manifest

