"""Losses: rectified-flow matching for the generator, assistant-only cross-entropy for understanding."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from univid.models.builder import Components
from univid.models.conditioning import encode_condition, null_text
from univid.train.conversation import Piece, assemble


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


def frame_latents(vae, frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] -> normalised latents [N, C, 1, h, w], each frame a one-frame clip (the causal Wan
    VAE encodes frame 0 alone, as generation's reference image), centre-cropped to a multiple of the VAE's spatial
    factor. The Actor's VAE tokens (frame pool) and stage II's SFT both encode frames here; gradients flow when the
    caller does not disable them."""
    factor = int(getattr(vae.config, "scale_factor_spatial", 16) or 16)
    h, w = frames.shape[1] // factor * factor, frames.shape[2] // factor * factor
    if h == 0 or w == 0:
        raise ValueError(f"VAE frame tokens: frames of {frames.shape[1]}x{frames.shape[2]} pixels (expected at "
                         f"least {factor}x{factor}, the VAE's spatial factor)")
    top, left = (frames.shape[1] - h) // 2, (frames.shape[2] - w) // 2
    param = next(vae.parameters())
    x = frames[:, top:top + h, left:left + w].permute(0, 3, 1, 2).unsqueeze(2)
    x = x.float().div(127.5).sub(1.0).to(device=param.device, dtype=param.dtype)
    return normalise_latents(vae, vae.encode(x).latent_dist.mode())


def train_sigmas(comp: Components, num_steps: int = 1000) -> list[float]:
    """The sampler's own shifted sigma schedule at `num_steps` steps (so training and sampling agree on u = i/N)."""
    sched = type(comp.scheduler).from_config(comp.scheduler.config)
    sched.set_timesteps(num_steps)
    return sched.sigmas[:-1].tolist()


@contextlib.contextmanager
def vae_branch_gain(comp: Components, gain: float):
    """Scale the adapter's VAE-feature tokens (mllm.vae_proj's output) by `gain` (Stage III b's mixing ratio)."""
    if gain == 1.0:
        yield
        return
    handle = comp.model.mllm.vae_proj.register_forward_hook(lambda module, args, out: out * gain)
    try:
        yield
    finally:
        handle.remove()


def precomputed_condition(comp: Components, condition: torch.Tensor, mask: torch.Tensor):
    """(context, token_is_image) from the frozen encoder's precomputed output [B, L, d] (univid.train.precompute):
    the MLLM's hidden states through the (training) connector, or the UMT5 context as it is. Text-only: no image
    tokens (Stage I has no reference image)."""
    condition, mask = condition.to(comp.device), mask.to(comp.device)
    is_image = torch.zeros_like(mask)
    if comp.conditioning == "t5":
        return condition.to(comp.dtype), is_image
    comp.model.connector.attach(comp.model.dit)
    return comp.model.connector(condition.to(comp.dtype), mask, is_image)


def online_condition(comp: Components, captions: list[str], drop: list[bool], ref_frames: torch.Tensor | None = None,
                     latents: torch.Tensor | None = None, vae_gain: float = 1.0):
    """(context, token_is_image) computed now, for stages whose MLLM trains (Stage III).

    A dropped caption (CFG dropout) is the null condition (the bare end-of-text token), as the sampler's negative
    branch is built. With `ref_frames` ([B, H, W, 3] uint8: each clip's first frame) the condition also carries the
    reference image through the configured encoders: ViT tokens from the frame, VAE tokens from the clip's first latent
    frame (the causal Wan VAE encodes frame 0 alone), the latter scaled by `vae_gain` (0 leaves them out)."""
    texts = [null_text(comp) if d else c for c, d in zip(captions, drop)]
    image_latents = latents[:, :, :1] if ref_frames is not None and vae_gain > 0 else None
    with vae_branch_gain(comp, vae_gain):
        return encode_condition(comp, texts, image=ref_frames, image_latents=image_latents)


def flow_matching_loss(comp: Components, latents: torch.Tensor, noise: torch.Tensor, sigma_index: list[int],
                       sigmas: list[float], context: torch.Tensor, is_image: torch.Tensor,
                       is_pad: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between the DiT's velocity and (noise - x0), each sample at its own noise level sigmas[sigma_index[b]],
    with TMA's progress set per sample to its step (u = i/N of the sampler's schedule, as at inference). `is_pad`:
    the context's padding keys (univid.models.conditioning.padding_keys), which TMA leaves unscaled."""
    pred, target = _velocity(comp, latents, noise, sigma_index, sigmas, context, is_image, is_pad)
    return F.mse_loss(pred, target)


def velocity_error(comp: Components, latents: torch.Tensor, noise: torch.Tensor, sigma_index: list[int],
                   sigmas: list[float], context: torch.Tensor, is_image: torch.Tensor,
                   is_pad: torch.Tensor | None = None) -> torch.Tensor:
    """flow_matching_loss's squared error per latent element [B, C, T, H, W] (float32), before the mean: for
    measurements that select latent positions (benchmarks/perf/toy_conditioning)."""
    pred, target = _velocity(comp, latents, noise, sigma_index, sigmas, context, is_image, is_pad)
    return (pred - target).pow(2)


def _velocity(comp, latents, noise, sigma_index, sigmas, context, is_image, is_pad):
    """(the DiT's velocity, the flow-matching target noise - x0), both float32, as flow_matching_loss sets TMA."""
    comp.tma.token_is_image = is_image if bool(is_image.any()) else None
    comp.tma.token_is_pad = is_pad if is_pad is not None and bool(is_pad.any()) else None
    sigma = [sigmas[i] for i in sigma_index]
    comp.tma.set_samples(list(sigma_index), len(sigmas), sigma)
    s = torch.tensor(sigma, dtype=torch.float32, device=latents.device)
    x_t = (1.0 - s.view(-1, 1, 1, 1, 1)) * latents + s.view(-1, 1, 1, 1, 1) * noise
    pred = comp.model.dit(hidden_states=x_t.to(comp.dtype), timestep=s * 1000.0,
                          encoder_hidden_states=context.to(comp.dtype), return_dict=False)[0]
    return pred.float(), (noise - latents).float()


def sft_batch(comp: Components, frames: torch.Tensor, pieces: list[list[Piece]], encoders: str = "vit"):
    """(inputs_embeds [B, L, d], attention_mask [B, L], labels [B, L]) for a batch of conversations.

    frames [B, K, H, W, 3] uint8: K uniformly sampled frames per video, each encoded by the ViT and projected into the
    LLM space; the K*P visual tokens take the place of the conversation's <video> placeholder. With encoders vit+vae
    (stage II under train.stage2.vae: trainable_blocks) each frame's VAE tokens follow all ViT tokens, in the Actor's
    order (univid.reflection.actor). Right-padded."""
    if encoders not in ("vit", "vit+vae"):
        raise ValueError(f"sft encoders {encoders!r}: expected 'vit' or 'vit+vae'")
    mllm = comp.model.mllm
    b, k = frames.shape[:2]
    flat = frames.flatten(0, 1).to(comp.device)
    visual = mllm.vit_tokens(flat).unflatten(0, (b, k)).flatten(1, 2)  # [B, K*P, d]
    if encoders == "vit+vae":
        vae_tokens = mllm.vae_tokens(frame_latents(comp.model.vae, flat))  # [B*K, h*w, d]
        visual = torch.cat([visual, vae_tokens.to(visual.dtype).unflatten(0, (b, k)).flatten(1, 2)], dim=1)
    embed = mllm.embed_text
    samples = [assemble(p, visual[i], embed) for i, p in enumerate(pieces)]
    length = max(e.shape[0] for e, _ in samples)
    d = visual.shape[-1]
    embeds = visual.new_zeros(b, length, d)
    mask = torch.zeros(b, length, dtype=torch.long, device=visual.device)
    labels = torch.full((b, length), -100, dtype=torch.long, device=visual.device)
    for i, (e, lab) in enumerate(samples):
        n = e.shape[0]
        embeds[i, :n], mask[i, :n], labels[i, :n] = e, 1, lab
    return embeds, mask, labels


def sft_loss(comp: Components, frames: torch.Tensor, pieces: list[list[Piece]], encoders: str = "vit") -> torch.Tensor:
    """Mean next-token cross-entropy over the assistant tokens of the batch; visual and user tokens carry no loss."""
    embeds, mask, labels = sft_batch(comp, frames, pieces, encoders)
    llm = comp.model.mllm.llm
    hidden = llm.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    # The LM head only where a label is predicted: the same loss as over full logits, without [B, L, vocab].
    target = labels[:, 1:]
    keep = target != -100
    logits = llm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), target[keep])
