"""Score regression checking: compare a table's results.json with a committed baseline, metric by metric."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from univid.io import read_json, write_json

DEFAULT_TOLERANCE = 0.5  # percentage points: smoke runs are deterministic on one machine, not bit-equal across CPUs


def metric_tolerance(row: dict, metric: str, tolerance: float) -> float:
    """The fixed tolerance, widened to the half-width of the metric's 95% CI where the row has one (Video-QA: a
    handful of smoke questions, where one flipped judge verdict on another CPU moves accuracy by many points)."""
    ci = (row.get("ci") or {}).get(metric)
    return round(max(tolerance, (ci[1] - ci[0]) / 2), 4) if ci else tolerance


def baseline_from_results(results: list[dict], tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """A baseline file body from one or more results.json bodies (one per table)."""
    tables = {}
    for res in results:
        tables[res["table"]] = {"scale": res["scale"], "rows": {
            r["variant"]: {m: {"value": round(float(v), 4), "tolerance": metric_tolerance(r, m, tolerance)}
                           for m, v in r["scores"].items()}
            for r in res["rows"]}}
    return {"tables": tables}


def compare(results: dict, baseline: dict) -> pd.DataFrame:
    """One row per (variant, metric) in the baseline: value, baseline, delta, tolerance, ok."""
    table = results["table"]
    if table not in baseline["tables"]:
        raise KeyError(f"baseline has no table {table!r} (expected one of {', '.join(baseline['tables'])})")
    base = baseline["tables"][table]
    if base["scale"] != results["scale"]:
        raise ValueError(f"baseline for {table} is at scale {base['scale']!r}, results at {results['scale']!r}")
    measured = {r["variant"]: r["scores"] for r in results["rows"]}
    rows = []
    for variant, metrics in base["rows"].items():
        for metric, spec in metrics.items():
            value = measured.get(variant, {}).get(metric)
            delta = None if value is None else value - spec["value"]
            ok = delta is not None and abs(delta) <= spec["tolerance"]
            rows.append({"table": table, "variant": variant, "metric": metric, "value": value,
                         "baseline": spec["value"], "delta": delta, "tolerance": spec["tolerance"], "ok": ok})
    return pd.DataFrame(rows)


def regress(results_paths: list[Path], baseline_path: Path, update: bool = False,
            tolerance: float = DEFAULT_TOLERANCE) -> tuple[bool, pd.DataFrame]:
    results = [read_json(p) for p in results_paths]
    if update:
        write_json(baseline_path, baseline_from_results(results, tolerance))
    baseline = read_json(baseline_path)
    frame = pd.concat([compare(r, baseline) for r in results], ignore_index=True)
    return bool(frame["ok"].all()), frame
