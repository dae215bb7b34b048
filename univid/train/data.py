"""Training data from a curate directory: generation clips (VAE latents, cached by content) and SFT conversations.

Batch order is stateless: batch n of a stream is read off an endless sequence of seeded epoch permutations, so a
resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from univid.data.video import read_video, uniform_indices
from univid.io import atomic_path
from univid.models.builder import Components
from univid.models.tokenizer import cache_root
from univid.train.conversation import Piece, conversation_pieces
from univid.train.losses import encode_video_latents


@dataclass
class Clip:
    latents: torch.Tensor  # [1, C, t, h, w] normalised
    caption: str
    first_frame: torch.Tensor  # [H, W, 3] uint8: the reference image of TI2V-style conditioning


@dataclass
class Conversation:
    frames: torch.Tensor  # [K, H, W, 3] uint8, uniformly sampled
    pieces: list[Piece]
    id: str


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected `univid curate` output)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vae_key(comp: Components) -> str:
    """Content key of the VAE: its config and every weight (random init at smoke, a checkpoint at paper scale)."""
    h = hashlib.sha256(json.dumps(dict(comp.model.vae.config), sort_keys=True, default=str).encode())
    for name, t in comp.model.vae.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def clip_latents(comp: Components, path: str, vkey: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised latents [1, C, t, h, w], first frame [H, W, 3] uint8) of one video, cached by (VAE, file content)."""
    video_bytes = Path(path).read_bytes()
    cached = cache_root() / "latents" / vkey / f"{_sha256(video_bytes)[:24]}.safetensors"
    if cached.is_file():
        t = load_file(str(cached))
        return t["latents"].to(comp.device), t["first_frame"]
    frames = torch.from_numpy(read_video(path).frames)
    latents = encode_video_latents(comp, frames)
    with atomic_path(cached) as tmp:
        save_file({"latents": latents.cpu().contiguous(), "first_frame": frames[0].contiguous()}, str(tmp))
    return latents, frames[0].clone()


def load_generation_set(comp: Components, curate_dir: Path, limit: int | None = None) -> list[Clip]:
    rows = _read_jsonl(Path(curate_dir) / "gen_train.jsonl")[:limit]
    if not rows:
        raise ValueError(f"{curate_dir}/gen_train.jsonl: no clips (expected at least one curated generation sample)")
    vkey = vae_key(comp)
    out = []
    for row in rows:
        latents, first = clip_latents(comp, row["video"], vkey)
        out.append(Clip(latents, row["caption"], first))
    return out


def load_understanding_set(comp: Components, curate_dir: Path, num_frames: int,
                           limit: int | None = None) -> list[Conversation]:
    """The curated Video-ChatGPT conversations, tokenized once; K frames uniformly sampled per video."""
    path = Path(curate_dir) / "qa_train.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected `univid curate` output)")
    items = json.loads(path.read_text())[:limit]
    if not items:
        raise ValueError(f"{path}: no conversations (expected at least one curated QA sample)")
    frames_of: dict[str, torch.Tensor] = {}
    out = []
    for item in items:
        video = item["video"]
        if video not in frames_of:
            full = read_video(video)
            idx = uniform_indices(full.frames.shape[0], num_frames)
            frames_of[video] = torch.from_numpy(np.ascontiguousarray(full.frames[idx]))
        out.append(Conversation(frames_of[video], conversation_pieces(comp.tokenizer, item["conversations"]),
                                str(item.get("id", len(out)))))
    return out


@functools.lru_cache(maxsize=64)
def _epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return tuple(torch.randperm(n, generator=g).tolist())


def batch_indices(n: int, batch_size: int, batch_number: int, seed: int) -> list[int]:
    """Items of the batch_number-th batch: consecutive positions of seeded epoch permutations of range(n)."""
    out = []
    for pos in range(batch_number * batch_size, (batch_number + 1) * batch_size):
        epoch, i = divmod(pos, n)
        out.append(_epoch_order(n, seed, epoch)[i])
    return out
