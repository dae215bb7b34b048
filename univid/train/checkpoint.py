"""Resumable checkpoints: OUT/checkpoints/step-<N>/ holds only what trains, as safetensors, written atomically.

  weights.safetensors     the stage's trainable parameters (every phase's), float32 on CPU
  optimizer.safetensors   AdamW state per parameter (`<name>::exp_avg` ...), param_groups in the metadata
  rng.safetensors         the global torch CPU RNG, the trainer's generator, CUDA RNGs when on a GPU
  trainer_state.json      step, batch counters, the per-step log so far, and what the run must agree on to resume

The directory appears under its final name only once complete (atomic rename), so the newest `step-<N>` is always a
complete checkpoint, whenever the process was killed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from univid.io import atomic_dir, write_json

FILES = ("weights.safetensors", "optimizer.safetensors", "rng.safetensors", "trainer_state.json")
_STEP_DIR = re.compile(r"^step-(\d+)$")
KEEP = 2  # newest checkpoints kept; older ones are removed once a newer one is complete


def checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    root = Path(out_dir) / "checkpoints"
    found = []
    if root.is_dir():
        for d in root.iterdir():
            m = _STEP_DIR.match(d.name)
            if m and all((d / f).is_file() for f in FILES):
                found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(out_dir: Path) -> Path | None:
    found = checkpoints(out_dir)
    return found[-1][1] if found else None


def _optimizer_tensors(optimizer: torch.optim.Optimizer, names: list[str]) -> tuple[dict, list]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{names[idx]}::{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def save_checkpoint(out_dir: Path, step: int, params: dict[str, torch.nn.Parameter], names: list[str],
                    optimizer: torch.optim.Optimizer, generator: torch.Generator, state: dict) -> Path:
    root = Path(out_dir) / "checkpoints"
    for stale in root.glob(".step-*"):  # temporaries of a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    target = root / f"step-{step}"
    opt_tensors, groups = _optimizer_tensors(optimizer, names)
    rng = {"torch_cpu": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda_{i}"] = s
    with atomic_dir(target) as tmp:
        save_file({n: params[n].detach().float().cpu().contiguous() for n in names}, str(tmp / FILES[0]),
                  metadata={"step": str(step)})
        save_file(opt_tensors, str(tmp / FILES[1]), metadata={"param_groups": json.dumps(groups), "step": str(step)})
        save_file(rng, str(tmp / FILES[2]), metadata={"step": str(step)})
        write_json(tmp / FILES[3], {**state, "step": step})
    for _, old in checkpoints(out_dir)[:-KEEP]:
        trash = old.with_name(f".trash-{old.name}")
        old.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    return target


def load_checkpoint(path: Path, params: dict[str, torch.nn.Parameter], names: list[str],
                    optimizer: torch.optim.Optimizer, generator: torch.Generator, expect: dict) -> dict:
    """Restore weights, optimizer and RNG states in place; return the trainer state. `expect` must match."""
    path = Path(path)
    state = json.loads((path / FILES[3]).read_text())
    for key, value in expect.items():
        if state.get(key) != value:
            raise ValueError(f"{path}: checkpoint has {key}={state.get(key)!r}, this run {value!r} (expected the same "
                             f"run to resume; remove {path.parent} to start over)")
    weights = load_file(str(path / FILES[0]))
    if sorted(weights) != sorted(names):
        raise ValueError(f"{path}: checkpoint holds other parameters than this stage trains")
    with torch.no_grad():
        for n in names:
            params[n].copy_(weights[n].to(params[n].dtype))
    opt = load_file(str(path / FILES[1]))
    groups = json.loads(_metadata(path / FILES[1])["param_groups"])
    per_param: dict[int, dict] = {}
    index = {n: i for i, n in enumerate(names)}
    for key, value in opt.items():
        name, _, field = key.rpartition("::")
        per_param.setdefault(index[name], {})[field] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    rng = load_file(str(path / FILES[2]))
    torch.set_rng_state(rng["torch_cpu"])
    generator.set_state(rng["generator"])
    cuda = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return state


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return f.metadata() or {}
