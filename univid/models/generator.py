"""Sampling through diffusers' Wan pipelines, conditioned on the MLLM via the connector (no DiT re-implementation), or
on Wan's own UMT5 with `model.conditioning: t5` (Table 3 "w/o MLLM"; see univid.models.conditioning).

T2V runs `WanPipeline`, TI2V runs `WanImageToVideoPipeline`, both with `expand_timesteps=True` (Wan 2.2 TI2V-5B): for
TI2V the first latent frame is the reference image's latent at every step and its tokens get timestep 0.

TMA progress advances in `callback_on_step_end`, i.e. once per denoising step; both CFG branches of a step run
before it, so they see the same alpha. Each branch's context is registered with its token provenance
(`TMAState.branch_contexts`), so image-derived tokens get alpha_img, and UMT5 padding keys alpha 1, in the conditional
and the negative branch alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import WanImageToVideoPipeline, WanPipeline

from univid.models.builder import Components
from univid.models.conditioning import encode_condition, padding_keys


def make_pipeline(comp: Components, ti2v: bool = False) -> WanPipeline | WanImageToVideoPipeline:
    """The Wan 2.2 TI2V-5B sampler over the harness's DiT, VAE and scheduler (no text encoder: contexts come in)."""
    # TI2V-5B's per-token timesteps (expand_timesteps) subsample the latent mask by [:, ::2, ::2] in diffusers: they
    # fit only a DiT that patches the latent by 2 spatially, as TI2V-5B does; any other patch fails deep in a block.
    patch = list(comp.model.dit.config.patch_size)
    if patch[1:] != [2, 2]:
        raise ValueError(f"model.dit.config.patch_size {patch}: expected spatial patch 2 ([t, 2, 2]), which the Wan 2.2 "
                         "TI2V sampler's per-token timesteps (expand_timesteps) assume")
    parts = dict(tokenizer=None, text_encoder=None, vae=comp.model.vae, scheduler=comp.scheduler,
                 transformer=comp.model.dit, expand_timesteps=True)
    return WanImageToVideoPipeline(**parts) if ti2v else WanPipeline(**parts)


def load_image(path: str | Path) -> PIL.Image.Image:
    """A reference image file -> RGB PIL image; one-line error when it is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--image '{path}': file not found (expected a PNG or JPEG reference image)")
    try:
        with PIL.Image.open(path) as im:
            return im.convert("RGB")
    except (PIL.UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"--image '{path}': not a readable image ({exc.__class__.__name__}; expected PNG or JPEG)") \
            from None


def as_pil(image) -> PIL.Image.Image:
    if isinstance(image, PIL.Image.Image):
        return image.convert("RGB")
    arr = image.cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"reference image: expected a PIL image or uint8 array [H, W, 3], got {arr.dtype} {arr.shape}")
    return PIL.Image.fromarray(arr)


@dataclass
class Condition:
    """What one sampling run is conditioned on: both CFG contexts with their provenance, and the TI2V reference."""

    context: torch.Tensor
    negative: torch.Tensor
    is_image: torch.Tensor
    negative_is_image: torch.Tensor
    image: PIL.Image.Image | None = None  # TI2V reference, as the pipeline takes it
    image_latent: torch.Tensor | None = None  # its normalised VAE latent [1, C, 1, h, w] (the pinned first frame)
    is_pad: torch.Tensor | None = None  # padding keys of `context` (UMT5 context only), TMA leaves them at 1
    negative_is_pad: torch.Tensor | None = None


def _check_size(pipe, sampling: dict) -> None:
    p = pipe.transformer.config.patch_size
    for key, multiple in (("height", pipe.vae_scale_factor_spatial * p[1]), ("width", pipe.vae_scale_factor_spatial * p[2])):
        if sampling[key] % multiple:
            raise ValueError(f"sampling.{key} {sampling[key]}: expected a multiple of {multiple} (VAE stride x patch)")


@torch.no_grad()
def reference_inputs(comp: Components, pipe: WanImageToVideoPipeline, image: PIL.Image.Image, sampling: dict):
    """(ViT frames [1, H, W, 3] in [0, 1], normalised image latent [1, C, 1, h, w]) exactly as the pipeline sees them."""
    _check_size(pipe, sampling)
    h, w = sampling["height"], sampling["width"]
    pixels = pipe.video_processor.preprocess(image, height=h, width=w).to(comp.device, dtype=torch.float32)
    # The pipeline's own latent preparation (VAE mode, latents_mean/std); the noise latents are not drawn here.
    _, latent, _ = pipe.prepare_latents(pixels, 1, comp.model.vae.config.z_dim, h, w, sampling["num_frames"],
                                        torch.float32, comp.device, None, latents=torch.zeros(()))
    frames = ((pixels + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1)
    return frames, latent


@torch.no_grad()
def condition(comp: Components, pipe, prompt: str, negative_prompt: str, sampling: dict, image=None) -> Condition:
    """Encode the prompt and the negative prompt (each with the reference image, if any) by the configured
    conditioning (MLLM + connector, or UMT5); the reference image also pins the first latent frame (VAE path)."""
    frames = latent = pil = None
    if image is not None:
        if not isinstance(pipe, WanImageToVideoPipeline):
            raise ValueError("generate: a reference image needs the TI2V pipeline (make_pipeline(comp, ti2v=True))")
        pil = as_pil(image)
        frames, latent = reference_inputs(comp, pipe, pil, sampling)
    ctx, is_img = encode_condition(comp, [prompt], image=frames, image_latents=latent)
    neg, neg_is_img = encode_condition(comp, [negative_prompt], image=frames, image_latents=latent)
    # Cast to the DiT's dtype here so the pipeline's own `.to(dtype)` returns these very tensors (provenance lookup).
    return Condition(ctx.to(comp.dtype), neg.to(comp.dtype), is_img, neg_is_img, pil, latent,
                     padding_keys(comp, [prompt]), padding_keys(comp, [negative_prompt]))


def _mask(mask: torch.Tensor | None):
    return mask if mask is not None and bool(mask.any()) else None


@torch.no_grad()
def sample(comp: Components, pipe, cond: Condition, sampling: dict, seed: int, progress: bool = False,
           output_type: str = "np"):
    """Run the pipeline on a Condition: frames [1, T, H, W, 3] in [0, 1] (np) or the final latents (latent)."""
    if cond.image is not None and not isinstance(pipe, WanImageToVideoPipeline):
        raise ValueError("generate: a reference image needs the TI2V pipeline (make_pipeline(comp, ti2v=True))")
    steps = sampling["steps"]
    comp.scheduler.set_timesteps(steps, device=comp.device)
    sigmas = comp.scheduler.sigmas.tolist()
    comp.tma.set_step(0, steps, sigmas[0])

    def advance(pipeline, i, t, kwargs):
        comp.tma.set_step(i + 1, steps, sigmas[min(i + 1, len(sigmas) - 1)])
        return {}

    pipe.set_progress_bar_config(disable=not progress, desc="denoise")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    kwargs = dict(prompt_embeds=cond.context, negative_prompt_embeds=cond.negative, height=sampling["height"],
                  width=sampling["width"], num_frames=sampling["num_frames"], num_inference_steps=steps,
                  guidance_scale=sampling["guidance_scale"], generator=generator, output_type=output_type,
                  callback_on_step_end=advance)
    if cond.image is not None:
        kwargs["image"] = cond.image
    comp.tma.branch_contexts = [(cond.context, _mask(cond.is_image), _mask(cond.is_pad)),
                                (cond.negative, _mask(cond.negative_is_image), _mask(cond.negative_is_pad))]
    try:
        out = pipe(**kwargs)
    finally:
        comp.tma.branch_contexts = []
        comp.tma.token_is_image = comp.tma.token_is_pad = None
    return out.frames


@torch.no_grad()
def generate(comp: Components, pipe, prompt: str, negative_prompt: str, sampling: dict, seed: int,
             progress: bool = False, image=None) -> np.ndarray:
    """One video for one prompt (TI2V when `image` is given: PIL image or uint8 [H, W, 3]) -> uint8 [T, H, W, 3]."""
    if image is not None and not isinstance(pipe, WanImageToVideoPipeline):
        pipe = make_pipeline(comp, ti2v=True)
    cond = condition(comp, pipe, prompt, negative_prompt, sampling, image)
    frames = sample(comp, pipe, cond, sampling, seed, progress)[0]  # [T, H, W, 3] float in [0, 1]
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
