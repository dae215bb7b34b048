"""Prompt (+ reference image) -> DiT context: tokenizer -> MLLM -> connector. Shared by training and sampling."""

from __future__ import annotations

from univid.models.builder import Components


def tokenize(comp: Components, texts: list[str]):
    enc = comp.tokenizer(texts, padding=True, truncation=True, max_length=comp.max_text_tokens, return_tensors="pt")
    return enc.input_ids.to(comp.device), enc.attention_mask.to(comp.device)


def encode_condition(comp: Components, texts: list[str], image=None, image_latents=None):
    """Return (context [B, M, text_dim], token_is_image [B, M]) for the DiT's cross-attention.

    `image` ([B, H, W, 3], uint8 or [0, 1]) and `image_latents` (normalised VAE latents [B, C, 1, h, w]) are the
    reference image for TI2V; they enter the MLLM through the encoders `comp.encoders` names (vit+vae | vit | vae).
    The returned context is g_phi's time-independent part; the connector's time modulation is applied inside every
    DiT call at that call's timestep (attached here, once).
    """
    comp.model.connector.attach(comp.model.dit)
    ids, mask = tokenize(comp, texts)
    z, zmask, is_image = comp.model.mllm.encode_for_generation(ids, mask, comp.encoders, image, image_latents)
    return comp.model.connector(z, zmask, is_image)
