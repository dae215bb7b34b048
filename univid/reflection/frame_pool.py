"""The frame pool of Pyramid Reflection (Algorithm 1, line 1; Sec. 3.2): N frames uniformly sampled, encoded ONCE by
the retrieval image tower, L2-normalised, cached on disk.

Retrieval compares embeddings of one space (Eq. 6, "SigLIP2 cosine similarity"): by default the frozen SigLIP2 pair,
i.e. the image tower as the public checkpoint has it (before stage II/III fine-tune its last blocks) against the same
checkpoint's text tower; `understanding.retriever.space: univid_vit` ranks with the fine-tuned UniVid ViT instead,
as a named option. The disk cache keeps only what retrieval reads, the pooled embedding v_i of each pool frame
([N, D] float32: 64 x 1152 x 4 B = 295 KB per video at paper scale, where the patch tokens would be ~215 MB). The
Actor's patch tokens come from the UniVid ViT for the frames it actually reads, memoised in the process
(univid.reflection.actor). The cache key is the video's content hash + the encoder id (a digest of the tower's
tensors) + N + the sampling rule.

For understanding.encoders vae / vit+vae (paper Table 9) the Actor also reads VAE latents of the pool frames: encoded
once per (pool, VAE tensor digest) and cached beside the pool (`load_vae_latents`). Retrieval never uses them.

The text side phi(s) is a SigLIP text tower (`transformers.SiglipTextModel`): at paper scale the text half of the
same SigLIP2 checkpoint as the ViT; at smoke scale a tiny seeded-random SiglipTextModel read through the SmolLM2
tokenizer (no SigLIP text weights ship in any package), so smoke similarities are real computations on random
weights and carry no meaning.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from univid.data.video import read_video, uniform_indices, video_info
from univid.io import atomic_dir
from univid.models.mllm import vit_patch_features, vit_pixels
from univid.models.tokenizer import _file_sha256, cache_root

SAMPLING_RULE = "uniform-segment-centres"  # univid.data.video.uniform_indices


def module_digest(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (name, dtype, shape, bytes), in name order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class VisionEncoder:
    """A SiglipVisionModel (the retrieval tower, or the UniVid ViT for the Actor). Counts passes and frames.
    `feature_layer`: the hidden state kept as patch tokens (UniVidMLLM.vision_feature_layer; None: last_hidden_state)."""

    def __init__(self, vit: torch.nn.Module, batch_size: int = 64, feature_layer: int | None = None):
        self.vit = vit
        self.batch_size = batch_size
        self.feature_layer = feature_layer
        # the patch tokens depend on the layer kept: it is part of the id (and so of the pool's cache key)
        layer = "" if feature_layer is None else f"@hidden{feature_layer}"
        self.encoder_id = f"{type(vit).__name__}:{module_digest(vit)[:16]}{layer}"
        self.passes = 0
        self.frames_encoded = 0

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [N,H,W,3] -> (L2-normalised pooled embeddings [N, D] float32, patch tokens [N, P, Dv])."""
        param = next(self.vit.parameters())
        pooled, patches = [], []
        for start in range(0, len(frames), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[start:start + self.batch_size]))
            pixels = vit_pixels(x, self.vit.config.image_size).to(device=param.device, dtype=param.dtype)
            feats, out = vit_patch_features(self.vit, pixels, self.feature_layer)
            self.passes += 1
            self.frames_encoded += len(x)
            if out.pooler_output is None:
                raise ValueError("model.vit: the ViT has no pooling head (expected a SigLIP vision tower with "
                                 "vision_use_head: true, whose pooled output lives in the SigLIP text-image space)")
            pooled.append(F.normalize(out.pooler_output.float(), dim=-1).cpu())
            patches.append(feats.cpu())
        return torch.cat(pooled), torch.cat(patches)


class TextEncoder:
    """phi(s): a SigLIP text tower; L2-normalised [B, D]."""

    def __init__(self, spec: dict, tokenizer=None, seed: int = 0, device: str | torch.device = "cpu"):
        from transformers import AutoTokenizer, SiglipTextConfig, SiglipTextModel

        if spec.get("path"):
            self.model = SiglipTextModel.from_pretrained(spec["path"])
            self.tokenizer = AutoTokenizer.from_pretrained(spec.get("tokenizer") or spec["path"])
            self.encoder_id = f"SiglipTextModel:{spec['path']}"
        else:
            if tokenizer is None:
                raise ValueError("understanding.retriever.text: path is null, so a tokenizer is needed "
                                 "(expected model.tokenizer to be loadable)")
            self.tokenizer = tokenizer
            gen_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            special = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                       "eos_token_id": tokenizer.eos_token_id}
            self.model = SiglipTextModel(SiglipTextConfig(vocab_size=len(tokenizer), **{**special, **spec["config"]}))
            torch.random.set_rng_state(gen_state)
            self.encoder_id = f"SiglipTextModel:random:{module_digest(self.model)[:16]}"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.to(device).eval()
        self.max_length = self.model.config.max_position_embeddings

    @property
    def dim(self) -> int:
        return self.model.config.projection_size or self.model.config.hidden_size

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        # SigLIP's processors pad to max_length: the text tower pools the last position.
        enc = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        dev = next(self.model.parameters()).device
        out = self.model(input_ids=enc.input_ids.to(dev)).pooler_output
        return F.normalize(out.float(), dim=-1).cpu()


@dataclass
class FramePool:
    video: str
    key: str
    indices: list[int]          # video frame index of each pool position, increasing
    fps: float
    num_frames_total: int
    embeds: torch.Tensor        # [N, D] L2-normalised pooled embeddings of the retrieval tower
    cache_hit: bool
    encoder_passes: int         # retrieval-tower forward calls made to build this pool (0 on a cache hit)
    frames_encoded: int         # frames through the retrieval tower for this pool (0 on a cache hit)
    images: list | None = None  # an image pool's frames (uint8 [H, W, 3] each, sizes may differ); None: read the video

    def frames(self, positions: list[int]) -> list[np.ndarray]:
        """The pool frames at these positions (uint8 [H, W, 3] each), for the Actor's encoder."""
        if self.images is not None:
            return [self.images[p] for p in positions]
        clip = read_video(self.video, [self.indices[p] for p in positions])
        return list(clip.frames)

    def timestamps(self, positions: list[int]) -> list[float]:
        return [round(self.indices[p] / self.fps, 4) if self.fps > 0 else 0.0 for p in positions]


def pool_cache_dir(cache_dir: str | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else cache_root() / "frame_pool"


def pool_key(video_sha: str, encoder_id: str, n: int) -> str:
    blob = json.dumps({"video": video_sha, "encoder": encoder_id, "n": n, "rule": SAMPLING_RULE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def load_pool(video: str | os.PathLike, encoder: VisionEncoder, n: int, cache_dir: str | None = None) -> FramePool:
    """The video's pool from the cache, or sampled + encoded + stored (atomically) when absent."""
    video = Path(video)
    info = video_info(video)  # raises VideoError naming the file when it is missing or unreadable
    key = pool_key(_file_sha256(video), encoder.encoder_id, n)
    target = pool_cache_dir(cache_dir) / key
    if (target / "pool.safetensors").is_file():
        t = load_file(str(target / "pool.safetensors"))
        meta = json.loads((target / "meta.json").read_text())
        return FramePool(str(video), key, meta["indices"], meta["fps"], meta["num_frames_total"], t["embeds"],
                         True, 0, 0)
    passes0, frames0 = encoder.passes, encoder.frames_encoded
    clip = read_video(video, uniform_indices(info["num_frames"], n))
    embeds, _ = encoder.encode(clip.frames)
    meta = {"indices": clip.indices, "fps": clip.fps, "num_frames_total": clip.num_frames_total, "n": n,
            "encoder": encoder.encoder_id, "rule": SAMPLING_RULE, "video": str(video)}
    with atomic_dir(target) as tmp:
        save_file({"embeds": embeds.contiguous()}, str(tmp / "pool.safetensors"))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return FramePool(str(video), key, clip.indices, clip.fps, clip.num_frames_total, embeds, False,
                     encoder.passes - passes0, encoder.frames_encoded - frames0)


# ------------------------------------------------------------------------------------------ VAE latents (Table 9)

class VaeFrameEncoder:
    """The UniVid VAE encoding pool frames one by one (each a one-frame clip: the causal Wan VAE encodes frame 0
    alone, as the reference image of generation is encoded), normalised as the DiT sees latents. Counts passes."""

    def __init__(self, vae: torch.nn.Module, batch_size: int = 64):
        self.vae = vae
        self.batch_size = batch_size
        self.encoder_id = f"{type(vae).__name__}:{module_digest(vae)[:16]}"
        self.passes = 0
        self.frames_encoded = 0

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N,H,W,3] -> normalised latents [N, C, h, w] (frames cropped to the VAE's spatial factor)."""
        from univid.train.losses import frame_latents  # stage II's SFT encodes its frames there too

        out = []
        for start in range(0, len(frames), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[start:start + self.batch_size]))
            latents = frame_latents(self.vae, x)  # [B, C, 1, h, w]
            self.passes += 1
            self.frames_encoded += len(x)
            out.append(latents[:, :, 0].float().cpu())
        return torch.cat(out)


def load_vae_latents(pool: FramePool, encoder: VaeFrameEncoder, cache_dir: str | None = None) -> torch.Tensor:
    """[N, C, h, w] VAE latents of the pool's frames, computed once per (pool, VAE digest) and cached beside the pool."""
    target = pool_cache_dir(cache_dir) / f"{pool.key}.vae-{encoder.encoder_id.split(':')[-1]}"
    if (target / "latents.safetensors").is_file():
        return load_file(str(target / "latents.safetensors"))["latents"]
    clip = read_video(pool.video, pool.indices)
    latents = encoder.encode(clip.frames)
    with atomic_dir(target) as tmp:
        save_file({"latents": latents.contiguous()}, str(tmp / "latents.safetensors"))
        (tmp / "meta.json").write_text(json.dumps({"pool": pool.key, "vae": encoder.encoder_id,
                                                   "indices": pool.indices}, indent=2))
    return latents
