"""Prompt (+ reference image) -> DiT context. Shared by training and sampling.

`model.conditioning` picks the path (paper Table 3):
  mllm: tokenizer -> MLLM (reference image through the configured encoders) -> connector (UniVid);
  t5:   Wan's own UMT5 text encoder, encoded by diffusers' WanPipeline.encode_prompt itself ("w/o MLLM"): the last
        hidden state, padded with zeros to `max_text_tokens`. A TI2V reference image then reaches the DiT only through
        the pipeline's VAE path (the pinned first latent frame); every context token is a text token or padding
        (`padding_keys`: TMA scales the text keys only).
"""

from __future__ import annotations

import torch
from diffusers import WanPipeline
from diffusers.pipelines.wan.pipeline_wan import prompt_clean

from univid.models.builder import Components


def tokenize(comp: Components, texts: list[str]):
    enc = comp.tokenizer(texts, padding=True, truncation=True, max_length=comp.max_text_tokens, return_tensors="pt")
    return enc.input_ids.to(comp.device), enc.attention_mask.to(comp.device)


def null_text(comp: Components) -> str:
    """The caption of the unconditional (CFG-dropout) branch: MLLM: the bare end-of-text token; T5: the empty prompt
    (what WanPipeline.encode_prompt encodes when no negative prompt is given)."""
    return "" if comp.conditioning == "t5" else comp.tokenizer.eos_token


def prompt_encoder(comp: Components) -> WanPipeline:
    """A WanPipeline holding only the text encoder and its tokenizer: its encode_prompt is the stock Wan path."""
    if comp.model.text_encoder is None:
        raise ValueError("model.conditioning 't5': the model has no text encoder "
                         "(expected components built with conditioning t5)")
    return WanPipeline(tokenizer=comp.text_tokenizer, text_encoder=comp.model.text_encoder, vae=None, scheduler=None)


@torch.no_grad()  # the text encoder is frozen (as in Wan): its context is a constant of the prompt
def encode_t5(comp: Components, texts: list[str]):
    """(context [B, max_text_tokens, text_dim], token_is_image all False) from Wan's UMT5, exactly as WanPipeline."""
    context, _ = prompt_encoder(comp).encode_prompt(list(texts), do_classifier_free_guidance=False,
                                                    max_sequence_length=comp.max_text_tokens, device=comp.device,
                                                    dtype=comp.dtype)
    return context, torch.zeros(context.shape[:2], dtype=torch.bool, device=context.device)


def padding_keys(comp: Components, texts: list[str]) -> torch.Tensor | None:
    """[B, M] bool, True where the DiT context of `texts` is padding, not a token; None when it has none.

    MLLM: none (the connector resamples each prompt's real tokens to exactly `num_tokens`). T5: the positions past
    each prompt's tokens, from the UMT5 tokenizer's attention mask, tokenized exactly as WanPipeline does before it
    zero-pads the hidden states to `max_text_tokens` (`_get_t5_prompt_embeds`)."""
    if comp.conditioning != "t5":
        return None
    enc = comp.text_tokenizer([prompt_clean(t) for t in texts], padding="max_length", max_length=comp.max_text_tokens,
                              truncation=True, add_special_tokens=True, return_attention_mask=True,
                              return_tensors="pt")
    return enc.attention_mask.eq(0).to(comp.device)


def encode_condition(comp: Components, texts: list[str], image=None, image_latents=None):
    """Return (context [B, M, text_dim], token_is_image [B, M]) for the DiT's cross-attention.

    `image` ([B, H, W, 3], uint8 or [0, 1]) and `image_latents` (normalised VAE latents [B, C, 1, h, w]) are the
    reference image for TI2V; with mllm conditioning they enter the MLLM through the encoders `comp.encoders` names
    (vit+vae | vit | vae); with t5 conditioning they are not part of the context.
    The returned MLLM context is g_phi's time-independent part; the connector's time modulation is applied inside every
    DiT call at that call's timestep (attached here, once).
    """
    if comp.conditioning == "t5":
        return encode_t5(comp, texts)
    comp.model.connector.attach(comp.model.dit)
    # "" is no text: WanPipeline encodes it as T5's unconditional prompt; the MLLM's unconditional caption is the bare
    # end-of-text token (null_text; Stage I's CFG dropout trains on it). Tokenised as is, "" is zero tokens and the
    # LLM fails on an empty sequence (`univid generate --negative-prompt ""`).
    texts = [null_text(comp) if t == "" else t for t in texts]
    ids, mask = tokenize(comp, texts)
    z, zmask, is_image = comp.model.mllm.encode_for_generation(ids, mask, comp.encoders, image, image_latents)
    return comp.model.connector(z, zmask, is_image)
