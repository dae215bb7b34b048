"""The UniVid MLLM: text tokens + ViT tokens (semantic) + VAE latent tokens (pixel detail) -> Qwen2 LLM -> Z_u.

Generation uses the encoders chosen by `model.encoders` (vit+vae | vit | vae) for a reference image; understanding
uses the ViT path only (paper Sec. 2.2). Visual tokens are projected into the LLM's token space and placed before
the text tokens.

The projector reads the ViT's `last_hidden_state` (after SigLIP's post-LayerNorm) when it starts fresh, or the hidden
state a pretrained LLaVA-layout checkpoint's projector was trained on (its `vision_feature_layer`, an index into the
tower's hidden states: -1 is the last block's output before the post-LayerNorm), see `model.mllm.init`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIGLIP_MEAN = 0.5  # SigLIP / SigLIP2 image processors normalise with mean 0.5, std 0.5
SIGLIP_STD = 0.5
ENCODERS = ("vit+vae", "vit", "vae")  # paper Table 5


def vit_pixels(frames: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 or [0,1] frames [N, H, W, 3] -> normalised pixel_values [N, 3, S, S] for the ViT."""
    x = frames.float()
    if frames.dtype == torch.uint8:
        x = x / 255.0
    x = x.permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return (x - SIGLIP_MEAN) / SIGLIP_STD


def vit_patch_features(vit: nn.Module, pixels: torch.Tensor, layer: int | None = None):
    """(patch features [N, P, Dv] the projector reads, the ViT's output): `last_hidden_state` for layer None, else
    `hidden_states[layer]`. The Actor's frame pool and `UniVidMLLM.vit_tokens` both select here."""
    out = vit(pixel_values=pixels, output_hidden_states=layer is not None)
    return (out.last_hidden_state if layer is None else out.hidden_states[layer]), out


class UniVidMLLM(nn.Module):
    def __init__(self, llm: nn.Module, vit: nn.Module, vae_z_dim: int, vision_feature_layer: int | None = None):
        super().__init__()
        self.llm = llm
        self.vit = vit
        d = llm.config.hidden_size
        dv = vit.config.hidden_size
        self.vision_proj = nn.Sequential(nn.Linear(dv, d), nn.GELU(), nn.Linear(d, d))
        self.vae_proj = nn.Linear(vae_z_dim, d)
        self.vision_feature_layer = vision_feature_layer  # None: last_hidden_state (see the module docstring)
        # Which LLM hidden state is Z_u for the generator (model.mllm.generation_layer, as diffusers' clip_skip picks a
        # text encoder's layer): None, the last (the paper's "MLLM output"), else an index into `hidden_states`
        # (0: the input embeddings). Understanding always reads the last.
        self.generation_layer: int | None = None

    @property
    def hidden_size(self) -> int:
        return self.llm.config.hidden_size

    def vit_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [N, H, W, 3] -> [N, P, d] projected ViT patch tokens."""
        pixels = vit_pixels(frames, self.vit.config.image_size).to(self.vision_proj[0].weight.dtype)
        feats, _ = vit_patch_features(self.vit, pixels, self.vision_feature_layer)
        return self.vision_proj(feats)

    def vae_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE latents [B, C, T, h, w] -> [B, T*h*w, d]."""
        return self.vae_proj(latents.flatten(2).transpose(1, 2).to(self.vae_proj.weight.dtype))

    def embed_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.llm.get_input_embeddings()(input_ids)

    def forward_embeds(self, visual: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       layer: int | None = None):
        """Run the LLM on [visual tokens; text tokens]. Returns (hidden [B, L, d], mask [B, L], is_image [B, L]):
        `last_hidden_state` for layer None, else `hidden_states[layer]`."""
        text = self.embed_text(input_ids)
        mask = attention_mask.bool()
        is_image = torch.zeros_like(mask)
        if visual is not None:
            b, v = visual.shape[:2]
            text = torch.cat([visual.to(text.dtype), text], dim=1)
            ones = torch.ones(b, v, dtype=torch.bool, device=mask.device)
            mask = torch.cat([ones, mask], dim=1)
            is_image = torch.cat([ones, is_image], dim=1)
        out = self.llm.model(inputs_embeds=text, attention_mask=mask.long(), output_hidden_states=layer is not None)
        return (out.last_hidden_state if layer is None else out.hidden_states[layer]), mask, is_image

    def encode_for_generation(self, input_ids, attention_mask, encoders: str, image=None, image_latents=None):
        """Z_u for the generator; the reference image (if any) enters through the configured encoders.

        image: [B, H, W, 3] frames for the ViT; image_latents: [B, C, T, h, w] VAE latents. Visual tokens come first
        and are marked image-derived (for TMA's alpha_img)."""
        if encoders not in ENCODERS:
            raise ValueError(f"model.encoders {encoders!r}: expected one of {', '.join(ENCODERS)}")
        used = encoders.split("+")
        visual = []
        if image is not None and "vit" in used:
            visual.append(self.vit_tokens(image))
        if image_latents is not None and "vae" in used:
            visual.append(self.vae_tokens(image_latents))
        vis = torch.cat(visual, dim=1) if visual else None
        return self.forward_embeds(vis, input_ids, attention_mask, self.generation_layer)
