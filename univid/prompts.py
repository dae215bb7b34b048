"""The VBench-Long prompt suite at each scale, in VBench_full_info.json's entry format."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from univid.eval.vbench.constants import DIMENSIONS


def vbench_full_info_path() -> Path:
    spec = importlib.util.find_spec("vbench")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("vbench: package not installed (expected `make setup` to install vbench==0.1.5 --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "VBench_full_info.json"


def select_per_dimension(entries: list[dict], per_dimension: int | None) -> list[dict]:
    """Keep the first `per_dimension` prompts of every dimension (all when None), in file order, no duplicates."""
    if per_dimension is None:
        return list(entries)
    counts = {d: 0 for d in DIMENSIONS}
    keep = []
    for entry in entries:
        wanted = [d for d in entry["dimension"] if counts.get(d, per_dimension) < per_dimension]
        if wanted:
            keep.append(entry)
            for d in entry["dimension"]:
                counts[d] = counts.get(d, 0) + 1
    missing = [d for d, c in counts.items() if c == 0]
    if missing:
        raise ValueError(f"prompt suite: no prompt for dimension(s) {', '.join(missing)} (expected all 16 covered)")
    return keep


def prompt_suite(vbench_cfg: dict, seed: int) -> list[dict]:
    if vbench_cfg["prompt_suite"] == "synthetic":
        from univid.data.synthetic import vbench_prompt_suite

        entries = vbench_prompt_suite(seed, per_dimension=vbench_cfg.get("per_dimension") or 1)
    else:
        entries = json.loads(vbench_full_info_path().read_text())
    return select_per_dimension(entries, vbench_cfg.get("per_dimension"))
