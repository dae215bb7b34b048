"""The Actor: the UniVid MLLM answering from an ordered working set of pool frames.

It is asked the way stage II trained it (univid.train.conversation): the tokenizer's chat template around a user
turn "<video>\\n<question>", the visual tokens spliced in at the <video> placeholder, generation from an open
assistant turn. The global caption C_g, which the SFT data do not have, goes in a system turn, so the user turn
stays exactly the trained one. A tokenizer without a chat template gets the plain text with the visual tokens first.

What it sees of each frame is `understanding.encoders` (paper Table 9): vit = the projected ViT patch tokens (the
paper's choice), vae = the projected VAE latent tokens (mllm.vae_tokens), vit+vae = both, ViT tokens of every frame
first and then VAE tokens, as the generation path orders them. ViT patch tokens come from the UniVid ViT for the
frames it reads, each frame encoded once per process (memoised for the last POOLS_IN_MEMORY pools; the disk cache
keeps only retrieval's embeddings), VAE latents from their per-pool cache; replies go through the same response
cache as the text LLMs (keyed by the Actor id, the pool, the frame positions and the full prompt).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np

import torch
import torch.nn.functional as F

from univid.llm.cache import ResponseCache, cached_response, request_key
from univid.models.mllm import ENCODERS
from univid.reflection.frame_pool import FramePool, VaeFrameEncoder, VisionEncoder, load_vae_latents, module_digest
from univid.train.conversation import VIDEO_PLACEHOLDER, text_segments


POOLS_IN_MEMORY = 16  # pools whose frames' patch tokens stay memoised (questions come grouped by video)


class UniVidActor:
    def __init__(self, comp, identity: dict, max_new_tokens: int = 32, max_tokens_per_frame: int | None = None,
                 cache: ResponseCache | None = None, encoders: str = "vit", cache_dir: str | None = None,
                 batch_size: int = 64):
        if encoders not in ENCODERS:
            raise ValueError(f"config key 'understanding.encoders' = {encoders!r}: expected one of "
                             f"{', '.join(ENCODERS)}")
        self.comp = comp
        self.mllm = comp.model.mllm
        self.max_new_tokens = max_new_tokens
        self.max_tokens_per_frame = max_tokens_per_frame
        self.cache = cache
        self.encoders = encoders
        self.cache_dir = cache_dir
        if "vae" in encoders and comp.model.vae is None:
            raise ValueError(f"understanding.encoders {encoders!r}: the Actor reads VAE tokens, but these components "
                             f"were built without the VAE (expected build(cfg, parts=('mllm', 'vae')))")
        self.vae_encoder = VaeFrameEncoder(comp.model.vae, batch_size) if "vae" in encoders else None
        self.vit_encoder = (VisionEncoder(self.mllm.vit, batch_size, feature_layer=self.mllm.vision_feature_layer)
                            if "vit" in encoders else None)
        self._patches: OrderedDict[str, dict[int, torch.Tensor]] = OrderedDict()
        # What determines the Actor's replies: the model spec + seed (+ a loaded weights file's hash), a digest of
        # the parts that turn frames into tokens, the encoders it reads and the prompt format.
        ident = {**identity, "encoders": encoders, "prompt": "sft-chat-template-v1"}
        if "vit" in encoders:
            ident["vision_proj"] = module_digest(self.mllm.vision_proj)[:16]
        if "vae" in encoders:
            ident["vae_proj"] = module_digest(self.mllm.vae_proj)[:16]
            ident["vae"] = self.vae_encoder.encoder_id
        self.identity = ident
        self.actor_id = "univid-mllm:" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        self.calls = 0
        self.hits = 0
        self.input_tokens = {"vit": 0, "vae": 0, "text": 0}  # summed over computed (not cached) replies

    # ----------------------------------------------------------------------------------------- visual tokens
    def _pool_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.max_tokens_per_frame and tokens.shape[1] > self.max_tokens_per_frame:
            tokens = F.adaptive_avg_pool1d(tokens.transpose(1, 2), self.max_tokens_per_frame).transpose(1, 2)
        return tokens

    def patches(self, pool: FramePool, positions: list[int]) -> torch.Tensor:
        """[K, P, Dv]: the UniVid ViT's patch tokens of the pool frames at these positions; a frame is encoded once
        per process (while its pool is among the last POOLS_IN_MEMORY used)."""
        memo = self._patches.setdefault(pool.key, {})
        self._patches.move_to_end(pool.key)
        while len(self._patches) > POOLS_IN_MEMORY:
            self._patches.popitem(last=False)
        todo = sorted({p for p in positions if p not in memo})
        if todo:
            frames = pool.frames(todo)
            if len({f.shape for f in frames}) == 1:
                encoded = self.vit_encoder.encode(np.stack(frames))[1]
            else:  # an image pool's images differ in size: one at a time
                encoded = torch.cat([self.vit_encoder.encode(f[None])[1] for f in frames])
            memo.update(zip(todo, encoded))
        return torch.stack([memo[p] for p in positions])

    def vit_part(self, pool: FramePool, positions: list[int]) -> torch.Tensor:
        """[K*P', d]: the projected ViT patch tokens of the frames, in the given (temporal) order."""
        proj = self.mllm.vision_proj
        w = proj[0].weight
        feats = self.patches(pool, positions).to(device=w.device, dtype=w.dtype)
        return self._pool_tokens(proj(feats)).flatten(0, 1)  # exactly mllm.vit_tokens on those frames

    def vae_part(self, pool: FramePool, positions: list[int]) -> torch.Tensor:
        """[K*h*w', d]: the projected VAE latent tokens of the frames (mllm.vae_tokens, one frame per clip)."""
        latents = load_vae_latents(pool, self.vae_encoder, self.cache_dir)[positions]  # [K, C, h, w]
        w = self.mllm.vae_proj.weight
        tokens = self.mllm.vae_tokens(latents.unsqueeze(2).to(device=w.device, dtype=w.dtype))  # [K, h*w, d]
        return self._pool_tokens(tokens).flatten(0, 1)

    def visual_parts(self, pool: FramePool, positions: list[int]) -> dict[str, torch.Tensor]:
        parts = {}
        if "vit" in self.encoders:
            parts["vit"] = self.vit_part(pool, positions)
        if "vae" in self.encoders:
            parts["vae"] = self.vae_part(pool, positions)
        return parts

    def visual_tokens(self, pool: FramePool, positions: list[int]) -> torch.Tensor:
        """[1, L, d]: what the Actor sees of the frames (understanding.encoders), in temporal order per encoder."""
        return torch.cat(list(self.visual_parts(pool, positions).values()), dim=0).unsqueeze(0)

    # ----------------------------------------------------------------------------------------- prompt
    def prompt_embeds(self, visual: torch.Tensor | None, prompt: str, system: str | None = None) -> torch.Tensor:
        """[1, L, d] inputs: the SFT chat format with the visual tokens [1, V, d] at the <video> placeholder."""
        tok = self.comp.tokenizer
        dev = self.comp.device
        user = f"{VIDEO_PLACEHOLDER}\n{prompt}" if visual is not None else prompt
        turns = ([{"from": "system", "value": system}] if system else []) + [{"from": "human", "value": user}]
        if getattr(tok, "chat_template", None):
            segments = text_segments(tok, turns, add_generation_prompt=True)
        else:
            segments = [("video", "")] + [("text", (system + "\n\n" if system else "") + prompt)]
        parts, n_text = [], 0
        for kind, text in segments:
            if kind == "video":
                if visual is not None:
                    parts.append(visual[0].to(self.mllm.llm.get_input_embeddings().weight.dtype))
                continue
            ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids[0].to(dev)
            if len(ids):
                parts.append(self.mllm.embed_text(ids))
                n_text += len(ids)
        self._last_text_tokens = n_text
        return torch.cat(parts).unsqueeze(0)

    @torch.no_grad()
    def _generate(self, visual: torch.Tensor | None, prompt: str, system: str | None = None) -> str:
        tok = self.comp.tokenizer
        embeds = self.prompt_embeds(visual, prompt, system)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        out = self.mllm.llm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        # With inputs_embeds only, generate returns just the new tokens.
        return tok.decode(out[0], skip_special_tokens=True).strip()

    def respond(self, pool: FramePool | None, positions: list[int], prompt: str, system: str | None = None) -> str:
        """The Actor's reply to `prompt` (the user turn) after the frames at `positions` (none: text only)."""
        where = f"pool={pool.key} frames={list(positions)}" if pool is not None and positions else "text-only"
        key = request_key(self.actor_id, "univid-actor", f"{where}\n{prompt}", system,
                          {"max_new_tokens": self.max_new_tokens, "temperature": 0.0})

        def compute() -> str:
            visual = None
            if pool is not None and positions:
                parts = self.visual_parts(pool, positions)
                for name, t in parts.items():
                    self.input_tokens[name] += int(t.shape[0])
                visual = torch.cat(list(parts.values()), dim=0).unsqueeze(0)
            reply = self._generate(visual, prompt, system)
            self.input_tokens["text"] += self._last_text_tokens
            return reply

        reply, hit = cached_response(self.cache, key, self.actor_id, "univid-actor", compute)
        if hit:
            self.hits += 1
        else:
            self.calls += 1
        return reply
