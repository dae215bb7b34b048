"""Training batches through `torch.utils.data.DataLoader`, the same whatever the number of processes.

The config names the global batch (`train.stageN.batch_size`): per device x processes x accumulation. Global batch
n of a stream is read off seeded epoch permutations (`batch_indices`); micro-batch a of process r takes its slice
[(a * world + r) * per, + per). Every random draw of a sample (its noise level, its noise, CFG dropout) comes from a
generator seeded by (stream seed, batch number, position in the global batch), so one process and N processes train
on the same samples with the same noise, and a resumed run draws exactly what the uninterrupted run would have.
Nothing of the data set lives on the GPU: workers read shard files (univid.train.precompute) or decode videos.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from univid.data.video import read_video, uniform_indices
from univid.train.conversation import conversation_pieces
from univid.train.precompute import ShardReader


@functools.lru_cache(maxsize=64)
def _epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return tuple(torch.randperm(n, generator=g).tolist())


def batch_indices(n: int, batch_size: int, batch_number: int, seed: int) -> list[int]:
    """Items of the batch_number-th global batch: consecutive positions of seeded epoch permutations of range(n)."""
    out = []
    for pos in range(batch_number * batch_size, (batch_number + 1) * batch_size):
        epoch, i = divmod(pos, n)
        out.append(_epoch_order(n, seed, epoch)[i])
    return out


def sample_generator(seed: int, batch_number: int, position: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + batch_number) * 65_537 + position)


def per_device_batch(global_batch: int, world: int, accum: int, what: str) -> int:
    if global_batch % (world * accum):
        raise ValueError(f"{what}.batch_size = {global_batch}: not divisible by {world} process(es) x grad_accum "
                         f"{accum} (expected the global batch to split evenly; it is per device x processes x "
                         f"accumulation)")
    return global_batch // (world * accum)


class GlobalBatches(Sampler):
    """Endless batch sampler: lists of (item, batch number, position) keys for this process's micro-batches."""

    def __init__(self, n: int, global_batch: int, seed: int, start: int, rank: int, world: int, accum: int):
        self.n, self.global_batch, self.seed, self.start = n, global_batch, seed, start
        self.rank, self.world, self.accum = rank, world, accum
        self.per = global_batch // (world * accum)

    def __iter__(self):
        b = self.start
        while True:
            idx = batch_indices(self.n, self.global_batch, b, self.seed)
            for a in range(self.accum):
                lo = (a * self.world + self.rank) * self.per
                yield [(idx[p], b, p) for p in range(lo, lo + self.per)]
            b += 1


class GenerationSamples(Dataset):
    """Key (item, batch number, position) -> a precomputed clip with its own noise level, noise and CFG dropout."""

    def __init__(self, root: str | Path, seed: int, num_sigmas: int, cfg_dropout: float):
        self.reader = ShardReader(root)
        self.seed, self.num_sigmas, self.cfg_dropout = seed, num_sigmas, cfg_dropout

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, key) -> dict:
        item, b, pos = key
        rec = self.reader[item]
        g = sample_generator(self.seed, b, pos)
        sigma_index = int(torch.randint(self.num_sigmas, (1,), generator=g))
        drop = bool(torch.rand(1, generator=g) < self.cfg_dropout)
        noise = torch.randn(rec["latents"].shape, generator=g)
        return {**rec, "sigma_index": sigma_index, "drop": drop, "noise": noise,
                "condition": self.reader.null if drop else rec["condition"]}


def collate_generation(samples: list[dict]) -> dict:
    """Stack the clips; pad the conditions (right) to the longest, with a mask."""
    conds = [s["condition"] for s in samples]
    length = max(c.shape[0] for c in conds)
    cond = conds[0].new_zeros(len(conds), length, conds[0].shape[-1])
    mask = torch.zeros(len(conds), length, dtype=torch.bool)
    for i, c in enumerate(conds):
        cond[i, :c.shape[0]], mask[i, :c.shape[0]] = c, True
    return {"latents": torch.stack([s["latents"] for s in samples]),
            "noise": torch.stack([s["noise"] for s in samples]),
            "first_frame": torch.stack([s["first_frame"] for s in samples]),
            "sigma_index": torch.tensor([s["sigma_index"] for s in samples]),
            "drop": torch.tensor([s["drop"] for s in samples]),
            "captions": [s["caption"] for s in samples],
            "condition": cond, "condition_mask": mask}


class ConversationSamples(Dataset):
    """Key (item, batch number, position) -> a curated Video-ChatGPT conversation, tokenized, with K uniformly
    sampled frames of its video (decoded in the worker)."""

    def __init__(self, curate_dir: str | Path, tokenizer, num_frames: int, filename: str = "qa_train.json"):
        path = Path(curate_dir) / filename
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (expected `univid curate` output)")
        items = json.loads(path.read_text())
        if not items:
            raise ValueError(f"{path}: no conversations (expected at least one curated QA sample)")
        self.items = [(it["video"], conversation_pieces(tokenizer, it["conversations"]), str(it.get("id", i)))
                      for i, it in enumerate(items)]
        self.num_frames = num_frames

    def __len__(self) -> int:
        return len(self.items)

    @functools.lru_cache(maxsize=32)
    def frames(self, video: str) -> torch.Tensor:
        full = read_video(video)
        idx = uniform_indices(full.frames.shape[0], self.num_frames)
        return torch.from_numpy(np.ascontiguousarray(full.frames[idx]))

    def __getitem__(self, key) -> dict:
        video, pieces, ident = self.items[key[0]]
        return {"frames": self.frames(video), "pieces": pieces, "id": ident}


def collate_conversations(samples: list[dict]) -> dict:
    return {"frames": torch.stack([s["frames"] for s in samples]), "pieces": [s["pieces"] for s in samples],
            "ids": [s["id"] for s in samples]}


def batch_stream(dataset: Dataset, collate, global_batch: int, seed: int, start: int, rank: int, world: int,
                 accum: int, num_workers: int):
    """An endless iterator of this process's micro-batches, from global batch `start` on."""
    sampler = GlobalBatches(len(dataset), global_batch, seed, start, rank, world, accum)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                        persistent_workers=False, prefetch_factor=2 if num_workers else None)
    return iter(loader)
