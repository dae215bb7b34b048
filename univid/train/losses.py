"""Losses: rectified-flow matching for the generator, assistant-only cross-entropy for understanding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from univid.models.builder import Components
from univid.models.conditioning import encode_condition, tokenize


def normalise_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents -> the normalised space the DiT works in (inverse of WanPipeline's decode step)."""
    mean = torch.tensor(vae.config.latents_mean, device=latents.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=latents.device).view(1, -1, 1, 1, 1)
    return (latents - mean) / std


@torch.no_grad()
def encode_video_latents(comp: Components, frames_uint8: torch.Tensor) -> torch.Tensor:
    """[T, H, W, 3] uint8 -> normalised latents [1, C, t, h, w] (VAE mean, as at inference)."""
    x = frames_uint8.permute(3, 0, 1, 2).unsqueeze(0).float().div(127.5).sub(1.0).to(comp.device)
    latents = comp.model.vae.encode(x).latent_dist.mode()
    return normalise_latents(comp.model.vae, latents)


def train_sigmas(comp: Components, num_steps: int = 1000) -> list[float]:
    """The sampler's own shifted sigma schedule at `num_steps` steps (so training and sampling agree on u = i/N)."""
    sched = type(comp.scheduler).from_config(comp.scheduler.config)
    sched.set_timesteps(num_steps)
    return sched.sigmas[:-1].tolist()


def flow_matching_loss(comp: Components, latents: torch.Tensor, captions: list[str], step_index: int,
                       sigmas: list[float], generator: torch.Generator, cfg_dropout: float) -> torch.Tensor:
    """MSE between the DiT's velocity and (noise - x0) at sigma_i, TMA progress set to step i (one per batch)."""
    b = latents.shape[0]
    drop = torch.rand(b, generator=generator) < cfg_dropout
    # Condition dropout for classifier-free guidance: the null condition is the bare end-of-text token.
    texts = [comp.tokenizer.eos_token if d else c for c, d in zip(captions, drop.tolist())]
    context, is_image = encode_condition(comp, texts)
    comp.tma.token_is_image = is_image if bool(is_image.any()) else None
    sigma = sigmas[step_index]
    comp.tma.set_step(step_index, len(sigmas), sigma)
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    x_t = (1.0 - sigma) * latents + sigma * noise
    timestep = torch.full((b,), sigma * 1000.0, device=latents.device)
    pred = comp.model.dit(hidden_states=x_t.to(comp.dtype), timestep=timestep,
                          encoder_hidden_states=context.to(comp.dtype), return_dict=False)[0]
    return F.mse_loss(pred.float(), (noise - latents).float())


def sft_loss(comp: Components, frames: torch.Tensor, question: str, answer: str) -> torch.Tensor:
    """Cross-entropy on the answer tokens only; visual and question tokens are masked with -100."""
    mllm = comp.model.mllm
    visual = mllm.vit_tokens(frames.to(comp.device)).flatten(0, 1).unsqueeze(0)  # [1, K*P, d]
    prompt_ids, _ = tokenize(comp, [f"Question: {question}\nAnswer:"])
    answer_ids = comp.tokenizer(" " + answer + comp.tokenizer.eos_token, return_tensors="pt",
                                add_special_tokens=False).input_ids.to(comp.device)
    ids = torch.cat([prompt_ids, answer_ids], dim=1)
    embeds = torch.cat([visual.to(comp.dtype), mllm.embed_text(ids)], dim=1)
    labels = torch.full(embeds.shape[:2], -100, dtype=torch.long, device=comp.device)
    labels[0, -answer_ids.shape[1]:] = answer_ids[0]
    return mllm.llm(inputs_embeds=embeds, labels=labels).loss
