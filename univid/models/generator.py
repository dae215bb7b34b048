"""Sampling through diffusers' WanPipeline, conditioned on the MLLM via the connector (no T5, no DiT re-implementation).

TMA progress advances in `callback_on_step_end`, i.e. once per denoising step; both CFG branches of a step run
before it, so they see the same alpha.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import WanPipeline

from univid.models.builder import Components
from univid.models.conditioning import encode_condition


def make_pipeline(comp: Components) -> WanPipeline:
    # Wan 2.2 TI2V-5B runs through WanPipeline with expand_timesteps=True (per-token timesteps).
    return WanPipeline(tokenizer=None, text_encoder=None, vae=comp.model.vae, scheduler=comp.scheduler,
                       transformer=comp.model.dit, expand_timesteps=True)


@torch.no_grad()
def generate(comp: Components, pipe: WanPipeline, prompt: str, negative_prompt: str, sampling: dict, seed: int,
             progress: bool = False) -> np.ndarray:
    """One video for one prompt -> uint8 frames [T, H, W, 3]."""
    ctx, is_img = encode_condition(comp, [prompt])
    neg, neg_is_img = encode_condition(comp, [negative_prompt])
    if not torch.equal(is_img, neg_is_img):
        raise ValueError("generate: conditional and negative contexts disagree on token provenance")
    comp.tma.token_is_image = is_img if bool(is_img.any()) else None

    steps = sampling["steps"]
    comp.scheduler.set_timesteps(steps, device=comp.device)
    sigmas = comp.scheduler.sigmas.tolist()
    comp.tma.set_step(0, steps, sigmas[0])

    def advance(pipeline, i, t, kwargs):
        comp.tma.set_step(i + 1, steps, sigmas[min(i + 1, len(sigmas) - 1)])
        return {}

    pipe.set_progress_bar_config(disable=not progress)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out = pipe(prompt_embeds=ctx, negative_prompt_embeds=neg, height=sampling["height"], width=sampling["width"],
               num_frames=sampling["num_frames"], num_inference_steps=steps, guidance_scale=sampling["guidance_scale"],
               generator=generator, output_type="np", callback_on_step_end=advance)
    frames = out.frames[0]  # [T, H, W, 3] float in [0, 1]
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
