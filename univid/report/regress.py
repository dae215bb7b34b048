"""Score regression checking: compare a table's results.json with a committed baseline, metric by metric.

Tolerances. With seed runs (`univid regress --update --seed-runs RUN ...`: the same tables from the same config at
other seeds), a metric's tolerance is its measured run-to-run variation: max(SEED_FLOOR, SEED_K * sd), sd the sample
standard deviation (n - 1) of the metric over the main run and the seed runs; the baseline value stays the main run's.
Without seed runs it is flat: DEFAULT_TOLERANCE, widened to the half-width of the metric's 95% CI where the row has
one. Each metric records where its tolerance came from (`tolerance_source`: "seeds:N sd=X" or "flat").

Per question (Video-QA rows). With seed runs, the baseline also pins, for each question, what the main run and every
seed run agree on (PINNED: benchmark/question_id -> value): its answer (`answers`) and Pyramid Reflection's retrieval,
the frames the Actor was shown in each round in the order shown (`retrieval`, a digest of them). A check counts the
pinned questions whose value changed (metrics `answers.changed`, `retrieval.changed`; tolerance 0). Where answers do not move between
seeds (toy: most do not), a defect that changes answers but leaves accuracy where it was (a right answer lost on one
question and gained on another; one wrong answer for another) is still caught, and so is one that changes which
frames, or in which order, the Actor sees without changing an answer. Questions that differ between seeds are not
pinned, and a flat baseline pins none.

An n/a cell (every item failed to be judged or scored; None with a count in the row's `na`) is recorded in a baseline
as {"value": null, "na": count}; a baseline number that became n/a is a regression, and so is a number where the
baseline has n/a (a change to accept on purpose with --update)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from univid.io import read_json, write_json

DEFAULT_TOLERANCE = 0.5  # percentage points: smoke runs are deterministic on one machine, not bit-equal across CPUs
# Seed-measured tolerance = max(SEED_FLOOR, SEED_K * sd). k = 3: a metric that is roughly normal across seeds leaves
# +-3 sd by chance ~0.3% of the time, while a planted defect that moves it 4 sd is caught. The floor (points) keeps a
# metric that is identical at every seed (deterministic) from failing on float noise between CPUs.
SEED_K = 3.0
SEED_FLOOR = 0.05


def metric_tolerance(row: dict, metric: str, tolerance: float) -> float:
    """The fixed tolerance, widened to the half-width of the metric's 95% CI where the row has one (Video-QA: a
    handful of smoke questions, where one flipped judge verdict on another CPU moves accuracy by many points)."""
    ci = (row.get("ci") or {}).get(metric)
    return round(max(tolerance, (ci[1] - ci[0]) / 2), 4) if ci else tolerance


def seed_tolerance(values: list[float], k: float = SEED_K, floor: float = SEED_FLOOR) -> tuple[float, float]:
    """(tolerance, sd): max(floor, k * sample sd) of one metric's values over the main run and its seed runs."""
    if len(values) < 2:
        raise ValueError(f"seed tolerance: {len(values)} value(s) (expected the main run and at least one seed run)")
    sd = statistics.stdev(float(v) for v in values)
    return round(max(floor, k * sd), 4), sd


def _baseline_metric(row: dict, metric: str, value, tolerance: float) -> dict:
    if value is None:
        return {"value": None, "na": (row.get("na") or {}).get(metric)}
    return {"value": round(float(value), 4), "tolerance": metric_tolerance(row, metric, tolerance),
            "tolerance_source": "flat"}


def _seed_metric(row: dict, metric: str, value, seed_values: list, k: float, floor: float,
                 tolerance: float) -> dict:
    """A baseline entry whose tolerance comes from the seed runs' values of this metric (None where n/a there)."""
    if value is None:
        return {"value": None, "na": (row.get("na") or {}).get(metric)}
    numbers = [float(value)] + [float(v) for v in seed_values if v is not None]
    na_runs = sum(v is None for v in seed_values)
    if len(numbers) < 2:  # n/a at every other seed: no spread to measure
        spec = _baseline_metric(row, metric, value, tolerance)
        spec["tolerance_source"] = f"flat (n/a in {na_runs} of {len(seed_values)} seed runs)"
        return spec
    tol, sd = seed_tolerance(numbers, k, floor)
    spec = {"value": round(float(value), 4), "tolerance": tol, "tolerance_source": f"seeds:{len(numbers)} sd={sd:.4f}",
            "seeds": len(numbers), "sd": round(sd, 6)}
    if na_runs:
        spec["na_seed_runs"] = na_runs
    return spec


def _run_seed(results: list[dict], name: str):
    """A run's seed: the one `seed` its rows record (univid collect writes it), else the run's name."""
    seeds = {r["seed"] for res in results for r in res["rows"] if r.get("seed") is not None}
    return seeds.pop() if len(seeds) == 1 else name


def read_seed_run(path: Path) -> dict[tuple[str, str], dict]:
    """(table, scale) -> results.json body, for one seed run: a results.json, or a directory searched for them (a
    workflow's results_dir, or any folder holding the tables' results.json)."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob("results.json"))
    else:
        raise FileNotFoundError(f"seed run {path}: no such file or directory")
    if not files:
        raise FileNotFoundError(f"seed run {path}: no results.json under it (expected the tables' results.json "
                                f"written by `univid collect` at another seed)")
    run: dict[tuple[str, str], dict] = {}
    for f in files:
        body = read_json(f)
        if not isinstance(body, dict) or "table" not in body or "rows" not in body:
            continue  # some other results.json
        key = (body["table"], body["scale"])
        if key in run:
            raise ValueError(f"seed run {path}: two results.json for table {key[0]} at scale {key[1]} "
                             f"(expected one run per directory)")
        run[key] = body
    return run


def _seed_values(res: dict, row: dict, metric: str, runs: list[tuple[str, dict]]) -> list:
    """The metric's value in each seed run (None where n/a there); a one-line error naming what a run lacks."""
    table, variant = res["table"], row["variant"]
    values = []
    for name, run in runs:
        other = run.get((table, res["scale"]))
        if other is None:
            raise ValueError(f"seed run {name}: no table {table} at scale {res['scale']} (expected the same tables "
                             f"as the main run)")
        match = [r for r in other["rows"] if r["variant"] == variant]
        if not match:
            raise ValueError(f"seed run {name}: table {table} has no variant {variant!r}")
        if row.get("config") is not None and match[0].get("config") is not None and row["config"] != match[0]["config"]:
            raise ValueError(f"seed run {name}: {table}/{variant} ran another config than the main run (expected the "
                             f"same config at another seed)")
        if metric not in match[0]["scores"]:
            raise ValueError(f"seed run {name}: {table}/{variant} has no metric {metric!r}")
        values.append(match[0]["scores"][metric])
    return values


PINNED = {"answers": "answers.changed", "retrieval": "retrieval.changed"}  # row field -> the metric its check reports


def _pinned(res: dict, row: dict, runs: list[tuple[str, dict]], field: str) -> dict | None:
    """The row's per-question `field` values every seed run has too (None when the row has no such field)."""
    main = row.get(field)
    if main is None:
        return None
    others = []
    for name, run in runs:
        match = [r for r in run[(res["table"], res["scale"])]["rows"] if r["variant"] == row["variant"]]
        if match[0].get(field) is None:
            raise ValueError(f"seed run {name}: {res['table']}/{row['variant']} has no per-question {field} (expected "
                             f"results.json written by this version of univid collect)")
        others.append(match[0][field])
    pinned = {q: a for q, a in main.items() if all(o.get(q) == a for o in others)}
    return {"pinned": pinned, "questions": len(main), "seeds": len(runs) + 1}


def baseline_from_results(results: list[dict], tolerance: float = DEFAULT_TOLERANCE,
                          seed_runs: list[tuple[str, dict]] | None = None, k: float = SEED_K,
                          floor: float = SEED_FLOOR) -> dict:
    """A baseline file body from one or more results.json bodies (one per table).

    seed_runs: [(name, read_seed_run(...))] of the same tables at other seeds; each metric's tolerance is then
    max(floor, k * sd) over the main run and these (see the module doc), else flat."""
    tables = {}
    seed_runs = list(seed_runs or [])
    for res in results:
        rows = {}
        for r in res["rows"]:
            if seed_runs:
                rows[r["variant"]] = {m: _seed_metric(r, m, v, _seed_values(res, r, m, seed_runs), k, floor, tolerance)
                                      for m, v in r["scores"].items()}
            else:
                rows[r["variant"]] = {m: _baseline_metric(r, m, v, tolerance) for m, v in r["scores"].items()}
        tables[res["table"]] = {"scale": res["scale"], "rows": rows}
        for field in PINNED if seed_runs else ():
            pins = {r["variant"]: _pinned(res, r, seed_runs, field) for r in res["rows"]}
            pins = {v: p for v, p in pins.items() if p is not None}
            if pins:
                tables[res["table"]][field] = pins
    seeds = [_run_seed(results, "main")]
    for name, run in seed_runs:
        seeds.append(_run_seed(list(run.values()), name))
    known = [s for s in seeds if not isinstance(s, str)]  # a run without seed info is named, not numbered
    if len(set(known)) != len(known):  # e.g. the main run passed again as a seed run: sd would be underestimated
        raise ValueError(f"seed runs: a seed appears twice among {seeds} (main run first; expected each run at a "
                         f"different seed)")
    rule = ({"rule": "seeds", "k": k, "floor": floor, "runs": len(seed_runs) + 1} if seed_runs
            else {"rule": "flat", "flat": tolerance, "ci_half_width": True})
    return {"seeds": seeds, "tolerance": rule, "tables": tables}


def _check(value, na, spec: dict) -> tuple[float | None, bool, str]:
    """(delta, ok, note) of one metric against its baseline entry."""
    if spec["value"] is None:
        return None, value is None, ("still n/a" if value is None else "n/a in the baseline")
    if value is None:
        return None, False, ("became n/a" if na is not None else "missing")
    delta = value - spec["value"]
    return delta, abs(delta) <= spec["tolerance"], ""


def compare(results: dict, baseline: dict) -> pd.DataFrame:
    """One row per (variant, metric) in the baseline: value, baseline, delta, tolerance (and its source), ok, note
    (n/a, missing) and failed (an n/a cell's count of failed items)."""
    table = results["table"]
    if table not in baseline["tables"]:
        raise KeyError(f"baseline has no table {table!r} (expected one of {', '.join(baseline['tables'])})")
    base = baseline["tables"][table]
    if base["scale"] != results["scale"]:
        raise ValueError(f"baseline for {table} is at scale {base['scale']!r}, results at {results['scale']!r}")
    measured = {r["variant"]: r["scores"] for r in results["rows"]}
    na = {r["variant"]: r.get("na") or {} for r in results["rows"]}
    per_question = {r["variant"]: r for r in results["rows"]}
    rows = []
    for variant, metrics in base["rows"].items():
        for metric, spec in metrics.items():
            value = measured.get(variant, {}).get(metric)
            failed = na.get(variant, {}).get(metric)
            delta, ok, note = _check(value, failed, spec)
            source = spec.get("tolerance_source", "flat") if spec["value"] is not None else None
            rows.append({"table": table, "variant": variant, "metric": metric, "value": value,
                         "baseline": spec["value"], "delta": delta, "tolerance": spec.get("tolerance"),
                         "source": source, "ok": ok, "note": note, "failed": failed})
    for field, metric in PINNED.items():
        for variant, spec in (base.get(field) or {}).items():
            rows.append(_pinned_check(table, variant, metric, spec, per_question[variant].get(field)
                                      if variant in per_question else None))
    return pd.DataFrame(rows)


def _pinned_check(table: str, variant: str, metric: str, spec: dict, measured: dict | None) -> dict:
    """One row: how many of the baseline's pinned questions changed in this run (tolerance 0)."""
    pinned = spec["pinned"]
    source = f"seeds:{spec['seeds']} pinned={len(pinned)}/{spec['questions']}"
    row = {"table": table, "variant": variant, "metric": metric, "baseline": 0.0, "tolerance": 0.0,
           "source": source, "failed": None}
    if measured is None:
        return {**row, "value": None, "delta": None, "ok": False, "note": "missing (no per-question values)"}
    changed = [q for q, a in pinned.items() if measured.get(q) != a]
    shown = ", ".join(changed[:4]) + (f", ... ({len(changed)})" if len(changed) > 4 else "")
    return {**row, "value": float(len(changed)), "delta": float(len(changed)), "ok": not changed, "note": shown}


def regress(results_paths: list[Path], baseline_path: Path, update: bool = False,
            tolerance: float = DEFAULT_TOLERANCE, seed_runs: list[Path] = ()) -> tuple[bool, pd.DataFrame]:
    """Compare results with the baseline; with update, first rewrite the baseline from them (tolerances from
    seed_runs when given, else flat)."""
    if seed_runs and not update:
        raise ValueError("--seed-runs: only with --update (tolerances are measured when the baseline is written)")
    results = [read_json(p) for p in results_paths]
    if update:
        runs = [(str(p), read_seed_run(Path(p))) for p in seed_runs]
        write_json(baseline_path, baseline_from_results(results, tolerance, seed_runs=runs))
    baseline = read_json(baseline_path)
    frame = pd.concat([compare(r, baseline) for r in results], ignore_index=True)
    return bool(frame["ok"].all()), frame
