"""Prompt -> DiT context: tokenizer -> MLLM -> connector. Shared by training and sampling."""

from __future__ import annotations

import torch

from univid.models.builder import Components


def tokenize(comp: Components, texts: list[str]):
    enc = comp.tokenizer(texts, padding=True, truncation=True, max_length=comp.max_text_tokens, return_tensors="pt")
    return enc.input_ids.to(comp.device), enc.attention_mask.to(comp.device)


def encode_condition(comp: Components, texts: list[str], image=None, image_latents=None):
    """Return (context [B, M, text_dim], token_is_image [B, M]) for the DiT's cross-attention."""
    ids, mask = tokenize(comp, texts)
    z, zmask, is_image = comp.model.mllm.encode_for_generation(ids, mask, comp.encoders, image, image_latents)
    return comp.model.connector(z, zmask, is_image)
