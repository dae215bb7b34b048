"""Gather one table's variant scores (one evaluate directory per variant) into results.json and results.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from univid.config import load_ablation
from univid.eval.vbench_constants import DIMENSIONS
from univid.io import atomic_path, read_json, write_json
from univid.provenance import provenance


def _job_chain(evaluate_dir: Path) -> dict[str, dict]:
    """job name -> job config, following upstream_dirs from the evaluate job back to curate."""
    chain: dict[str, dict] = {}
    todo = [evaluate_dir]
    while todo:
        job = read_json(Path(todo.pop()) / "job_config.json")
        if job["job"] in chain:
            continue
        chain[job["job"]] = job
        todo.extend(Path(d) for d in job["upstream_dirs"].values())
    return chain


def collect(table: str, ablation_path: str | Path, variants: list[tuple[str, Path]], out: Path) -> dict:
    ablation = load_ablation(ablation_path)
    labels = {v["name"]: v["label"] for v in ablation["variants"]}
    rows = []
    for name, evaluate_dir in variants:
        if name not in labels:
            raise ValueError(f"collect: variant {name!r} is not in {ablation_path} (expected one of {', '.join(labels)})")
        scores = read_json(Path(evaluate_dir) / "scores.json")
        chain = _job_chain(Path(evaluate_dir))
        agg = scores["aggregate"]
        row_scores = {"total": agg["total"], "quality": agg["quality"], "semantic": agg["semantic"]}
        row_scores.update({d: 100.0 * scores["dimensions"][d] for d in DIMENSIONS})
        rows.append({
            "variant": name, "label": labels[name], "scores": row_scores, "backends": scores["backends"],
            "config_hash": chain["evaluate"]["key"],
            "job_keys": {job: cfg["key"] for job, cfg in chain.items()},
            "seed": chain["evaluate"]["seed"], "scale": chain["evaluate"]["scale"],
            "config": {"tma": chain["generate"]["tma"], "sampling": chain["generate"]["sampling"],
                       "model": chain["generate"]["model"], "data": chain["curate"]["data"],
                       "eval": chain["evaluate"]["eval"],
                       "train": {f"stage{i}": chain[f"stage{i}"]["train"][f"stage{i}"] for i in (1, 2, 3)}},
            "scores_path": str(Path(evaluate_dir) / "scores.json"),
        })
    scales = {r["scale"] for r in rows}
    if len(scales) != 1:
        raise ValueError(f"collect: variants come from different scales {sorted(scales)} (expected one)")
    result = {"table": table, "ablation": ablation["name"], "title": ablation.get("title", ""),
              "scale": scales.pop(), "rows": rows, "provenance": provenance()}
    write_json(out, result)
    frame = pd.DataFrame([{"variant": r["variant"], "label": r["label"], "scale": r["scale"],
                           "config_hash": r["config_hash"], **r["scores"]} for r in rows])
    with atomic_path(out.with_suffix(".csv")) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    return result
