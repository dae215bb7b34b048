"""The Actor: the UniVid MLLM on its ViT-only understanding path (paper Sec. 2.2), answering from an ordered working
set of pool frames. It reads the pool's cached ViT patch tokens, so it never runs the vision encoder; its replies
go through the same response cache as the text LLMs (keyed by the pool, the frame positions and the prompt)."""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F

from univid.llm.cache import ResponseCache, cached_response, request_key
from univid.reflection.frame_pool import FramePool, module_digest


class UniVidActor:
    def __init__(self, comp, identity: dict, max_new_tokens: int = 32, max_tokens_per_frame: int | None = None,
                 cache: ResponseCache | None = None):
        self.comp = comp
        self.mllm = comp.model.mllm
        self.max_new_tokens = max_new_tokens
        self.max_tokens_per_frame = max_tokens_per_frame
        self.cache = cache
        # What determines the Actor's weights: the model spec + seed (+ a loaded weights file's hash), and a digest
        # of the parts stage II trains (vision projector); the ViT id is part of the pool key.
        ident = {**identity, "vision_proj": module_digest(self.mllm.vision_proj)[:16]}
        self.actor_id = "univid-mllm:" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        self.calls = 0
        self.hits = 0

    def visual_tokens(self, pool: FramePool, positions: list[int]) -> torch.Tensor:
        """[1, K*P', d]: the projected patch tokens of the frames, in the given (temporal) order."""
        proj = self.mllm.vision_proj
        w = proj[0].weight
        feats = pool.patches[positions].to(device=w.device, dtype=w.dtype)
        tokens = proj(feats)  # [K, P, d], exactly mllm.vit_tokens on those frames
        if self.max_tokens_per_frame and tokens.shape[1] > self.max_tokens_per_frame:
            tokens = F.adaptive_avg_pool1d(tokens.transpose(1, 2), self.max_tokens_per_frame).transpose(1, 2)
        return tokens.flatten(0, 1).unsqueeze(0)

    @torch.no_grad()
    def _generate(self, visual: torch.Tensor | None, prompt: str) -> str:
        tok = self.comp.tokenizer
        ids = tok(prompt, return_tensors="pt").input_ids.to(self.comp.device)
        embeds = self.mllm.embed_text(ids)
        if visual is not None:
            embeds = torch.cat([visual.to(embeds.dtype), embeds], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        out = self.mllm.llm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        # With inputs_embeds only, generate returns just the new tokens.
        return tok.decode(out[0], skip_special_tokens=True).strip()

    def respond(self, pool: FramePool | None, positions: list[int], prompt: str) -> str:
        """The Actor's reply to `prompt` after the frames at `positions` (none: text only)."""
        where = f"pool={pool.key} frames={list(positions)}" if pool is not None and positions else "text-only"
        key = request_key(self.actor_id, "univid-actor", f"{where}\n{prompt}", None,
                          {"max_new_tokens": self.max_new_tokens, "temperature": 0.0})

        def compute() -> str:
            visual = self.visual_tokens(pool, positions) if pool is not None and positions else None
            return self._generate(visual, prompt)

        reply, hit = cached_response(self.cache, key, self.actor_id, "univid-actor", compute)
        if hit:
            self.hits += 1
        else:
            self.calls += 1
        return reply
