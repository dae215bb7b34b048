"""Score regression checking: compare a table's results.json with a committed baseline, metric by metric.

An n/a cell (every item failed to be judged or scored; None with a count in the row's `na`) is recorded in a baseline
as {"value": null, "na": count}; a baseline number that became n/a is a regression, and so is a number where the
baseline has n/a (a change to accept on purpose with --update)."""

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


def _baseline_metric(row: dict, metric: str, value, tolerance: float) -> dict:
    if value is None:
        return {"value": None, "na": (row.get("na") or {}).get(metric)}
    return {"value": round(float(value), 4), "tolerance": metric_tolerance(row, metric, tolerance)}


def baseline_from_results(results: list[dict], tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """A baseline file body from one or more results.json bodies (one per table)."""
    tables = {}
    for res in results:
        tables[res["table"]] = {"scale": res["scale"], "rows": {
            r["variant"]: {m: _baseline_metric(r, m, v, tolerance) for m, v in r["scores"].items()}
            for r in res["rows"]}}
    return {"tables": tables}


def _check(value, na, spec: dict) -> tuple[float | None, bool, str]:
    """(delta, ok, note) of one metric against its baseline entry."""
    if spec["value"] is None:
        return None, value is None, ("still n/a" if value is None else "n/a in the baseline")
    if value is None:
        return None, False, ("became n/a" if na is not None else "missing")
    delta = value - spec["value"]
    return delta, abs(delta) <= spec["tolerance"], ""


def compare(results: dict, baseline: dict) -> pd.DataFrame:
    """One row per (variant, metric) in the baseline: value, baseline, delta, tolerance, ok, note (n/a, missing) and
    failed (an n/a cell's count of failed items)."""
    table = results["table"]
    if table not in baseline["tables"]:
        raise KeyError(f"baseline has no table {table!r} (expected one of {', '.join(baseline['tables'])})")
    base = baseline["tables"][table]
    if base["scale"] != results["scale"]:
        raise ValueError(f"baseline for {table} is at scale {base['scale']!r}, results at {results['scale']!r}")
    measured = {r["variant"]: r["scores"] for r in results["rows"]}
    na = {r["variant"]: r.get("na") or {} for r in results["rows"]}
    rows = []
    for variant, metrics in base["rows"].items():
        for metric, spec in metrics.items():
            value = measured.get(variant, {}).get(metric)
            failed = na.get(variant, {}).get(metric)
            delta, ok, note = _check(value, failed, spec)
            rows.append({"table": table, "variant": variant, "metric": metric, "value": value,
                         "baseline": spec["value"], "delta": delta, "tolerance": spec.get("tolerance"), "ok": ok,
                         "note": note, "failed": failed})
    return pd.DataFrame(rows)


def regress(results_paths: list[Path], baseline_path: Path, update: bool = False,
            tolerance: float = DEFAULT_TOLERANCE) -> tuple[bool, pd.DataFrame]:
    results = [read_json(p) for p in results_paths]
    if update:
        write_json(baseline_path, baseline_from_results(results, tolerance))
    baseline = read_json(baseline_path)
    frame = pd.concat([compare(r, baseline) for r in results], ignore_index=True)
    return bool(frame["ok"].all()), frame
