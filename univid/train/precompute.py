"""The `precompute` job: what training reads of the data set, computed once by the frozen parts, as shard files.

Per curated generation clip (gen_train.jsonl): the clip pre-processed as at inference (univid.data.clips), its
normalised VAE latents [C, t, h, w] and first frame [H, W, 3] uint8 (Stage III's reference image), and the frozen
conditioning encoder's output for its caption: the MLLM's last hidden states over the caption tokens [L, d]
(`model.conditioning: mllm`; the MLLM does not train in Stage I) or Wan's UMT5 context [M, text_dim] (`t5`).
The null (CFG-dropout) caption's output is stored once beside them.

The job is keyed only by what these depend on (the curated data, the VAE, the tokenizer, LLM and ViT or the text
encoder, the clip spec; never `tma`, the connector or the DiT), so every Table-4 variant reads the same shards.
Clips are written `shard_size` to a file (safetensors, atomically); a rerun keeps every complete shard, so a killed
job loses at most the shard in flight. index.json, written last, marks completion and lists the items, the skipped
clips with their reasons, and the counts.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from univid.data.clips import ClipSkip, clip_spec, model_strides, prepare_clip
from univid.io import atomic_path, read_json, write_json
from univid.models.builder import Components, build

INDEX = "index.json"
NULL = "null.safetensors"


def precompute_parts(cfg: dict) -> tuple[str, ...]:
    """The frozen parts precompute builds: the VAE and the conditioning encoder (MLLM or UMT5). Never the DiT."""
    return ("mllm", "vae", "text_encoder") if cfg["model"]["conditioning"] == "t5" else ("mllm", "vae")


@torch.no_grad()
def encode_captions(comp: Components, captions: list[str]) -> list[torch.Tensor]:
    """The frozen conditioning encoder's output per caption: MLLM hidden states over the real tokens [L, d], or the
    UMT5 context [max_text_tokens, text_dim] exactly as WanPipeline encodes it."""
    from univid.models.conditioning import encode_t5, tokenize

    if comp.conditioning == "t5":
        context, _ = encode_t5(comp, captions)
        return [c.contiguous() for c in context.cpu()]
    side = comp.tokenizer.padding_side
    comp.tokenizer.padding_side = "right"  # real tokens first: positions do not depend on the batch's padding
    try:
        ids, mask = tokenize(comp, captions)
    finally:
        comp.tokenizer.padding_side = side
    hidden, m, _ = comp.model.mllm.forward_embeds(None, ids, mask, comp.model.mllm.generation_layer)
    return [hidden[i][m[i]].cpu().contiguous() for i in range(len(captions))]


@torch.no_grad()
def encode_latents(comp: Components, frames) -> torch.Tensor:
    from univid.train.losses import encode_video_latents

    return encode_video_latents(comp, torch.from_numpy(frames))[0].cpu().contiguous()


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected `univid curate` output)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_precompute(cfg: dict, curate_dir: Path, out: Path, log=None) -> dict:
    """Write out/shards/*.safetensors (+ .json), out/null.safetensors and, last, out/index.json."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t0 = time.time()
    spec = clip_spec(cfg)
    spec.check(*model_strides(cfg["model"]))
    rows = _read_jsonl(Path(curate_dir) / "gen_train.jsonl")
    if not rows:
        raise ValueError(f"{curate_dir}/gen_train.jsonl: no clips (expected at least one curated generation sample)")
    shard_size = int(cfg["train"]["precompute"]["shard_size"])
    comp = build(cfg, parts=precompute_parts(cfg))
    from univid.models.conditioning import null_text

    out = Path(out)
    if not (out / NULL).is_file():
        with atomic_path(out / NULL) as tmp:
            save_file({"condition": encode_captions(comp, [null_text(comp)])[0]}, str(tmp))
    items, skipped, reused = [], [], 0
    for k, start in enumerate(range(0, len(rows), shard_size)):
        chunk = rows[start:start + shard_size]
        shard, meta = out / "shards" / f"{k:05d}.safetensors", out / "shards" / f"{k:05d}.json"
        if shard.is_file() and meta.is_file():  # complete from an earlier run (the .json is written second)
            done = read_json(meta)
            reused += 1
        else:
            tensors, done = {}, {"items": [], "skipped": []}
            ok = []
            for r, row in enumerate(chunk, start=start):
                try:
                    frames = prepare_clip(row["video"], spec)
                except ClipSkip as skip:
                    done["skipped"].append({"row": r, "video": row["video"], "reason": skip.reason,
                                            "detail": skip.detail})
                    log(f"precompute: skipped {row['video']}: {skip}")
                    continue
                slot = len(ok)
                tensors[f"{slot}.latents"] = encode_latents(comp, frames)
                tensors[f"{slot}.first_frame"] = torch.from_numpy(frames[0]).contiguous()
                ok.append((slot, r, row))
            for (slot, r, row), cond in zip(ok, encode_captions(comp, [row["caption"] for _, _, row in ok])
                                             if ok else []):
                tensors[f"{slot}.condition"] = cond
                done["items"].append({"row": r, "slot": slot, "video": row["video"], "caption": row["caption"]})
            with atomic_path(shard) as tmp:
                save_file(tensors, str(tmp))
            write_json(meta, done)
        items += [{**it, "shard": shard.name} for it in done["items"]]
        skipped += done["skipped"]
    if not items:
        reasons = ", ".join(f"{n} {r}" for r, n in Counter(s["reason"] for s in skipped).items())
        raise ValueError(f"{curate_dir}/gen_train.jsonl: every clip was skipped ({reasons}; expected at least one "
                         f"usable clip for train.clip {spec})")
    index = {"items": items, "skipped": skipped, "null": NULL,
             "clip": {"height": spec.height, "width": spec.width, "num_frames": spec.num_frames, "fps": spec.fps},
             "conditioning": comp.conditioning,
             "counts": {"clips": len(rows), "items": len(items), "skipped": len(skipped),
                        "skipped_by_reason": dict(Counter(s["reason"] for s in skipped)),
                        "shards": -(-len(rows) // shard_size), "shards_reused": reused},
             "wall_s": time.time() - t0}
    write_json(out / INDEX, index)
    return index


class ShardReader:
    """Random access to a precompute job's items; keeps the last few shards of this process (worker) in memory."""

    def __init__(self, root: str | Path, keep: int = 2):
        self.root = Path(root)
        index_path = self.root / INDEX
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: not found (expected a complete `univid precompute` output)")
        self.index = read_json(index_path)
        self.items = self.index["items"]
        self.null = load_file(str(self.root / self.index["null"]))["condition"]
        self.keep = keep
        self._shards: dict[str, dict] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        tensors = self._shards.get(it["shard"])
        if tensors is None:
            if len(self._shards) >= self.keep:
                self._shards.pop(next(iter(self._shards)))
            tensors = self._shards[it["shard"]] = load_file(str(self.root / "shards" / it["shard"]))
        s = it["slot"]
        return {"latents": tensors[f"{s}.latents"], "first_frame": tensors[f"{s}.first_frame"],
                "condition": tensors[f"{s}.condition"], "caption": it["caption"]}
