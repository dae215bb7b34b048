"""Log a table to MLflow: one experiment per table, one parent run per logged result, one child run per variant.

Child runs: params = the variant's resolved config, metrics = every score (and `<metric>.ci_lo` / `.ci_hi` where the
row carries a confidence interval), tags = git commit, config hash, scale, scorer / judge / actor ids (the row's
`backends`, one tag each as `univid.backend.<name>`, and `ids` as `univid.ids.<name>`). An n/a cell (every item
failed) gets no metric, only a mention in the tag `univid.na`. The parent
(named "<table> @ <commit[:8]>") carries the table-level provenance and the artifacts: results.json/.csv, the table's
.tex and its plots (`artifacts`). The MLflow UI groups children under their parent (tag `mlflow.parentRunId`).

Identity, so that logging the same results again creates nothing new: a child is its `univid.run_key` (table,
variant, config hash, commit, scores) under its parent; a parent is its `univid.parent_key` (table, commit and its
children's run keys), so a workflow invocation that produced new numbers gets a new parent, an unchanged rerun does not.
Runs are found again through `search_runs` on those tags.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from univid.config import config_hash
from univid.io import read_json, write_json

DEFAULT_URI = "sqlite:///mlflow.db"
MAX_TAG = 8000  # MLflow's tag value limit
MAX_PARAM = 6000  # MLflow's param value limit


def resolve_tracking_uri(explicit: str | None = None) -> str:
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            text = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
            out[key] = text[:MAX_PARAM]
    return out


def experiment_name(results: dict, prefix: str = "univid") -> str:
    return f"{prefix}-{results['table']}"


def row_metrics(row: dict) -> dict[str, float]:
    """Every numeric score of a row (nested dicts joined with '.'), `<dimension>.control`
    from row['controls'], plus `<metric>.ci_lo` / `.ci_hi` from row['ci']."""
    out: dict[str, float] = {}

    def add(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[prefix] = float(value)
        # None / NaN (a benchmark that produced no number) is left out rather than logged as a fake value

    add("", row["scores"])
    for metric, value in (row.get("controls") or {}).items():  # a detection dimension's control (VBench rows)
        add(f"{metric}.control", value)
    for metric, interval in (row.get("ci") or {}).items():
        if interval is None:
            continue
        if not (isinstance(interval, (list, tuple)) and len(interval) == 2):
            raise ValueError(f"results row {row['variant']!r}: ci[{metric!r}] = {interval!r} (expected [lo, hi])")
        out[f"{metric}.ci_lo"], out[f"{metric}.ci_hi"] = float(interval[0]), float(interval[1])
    return out


def _tag(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_TAG]


def _experiment_id(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # created by a concurrent writer between the lookup and the create
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _find(client, exp_id: str, filter_string: str):
    runs = client.search_runs([exp_id], filter_string=filter_string, max_results=10,
                              order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def _kind(results: dict, row: dict) -> str:
    return row.get("kind") or results.get("kind") or "vbench_long"


def _parent_tags(results: dict, parent_key: str) -> dict[str, str]:
    prov = results["provenance"]
    tags = {
        "mlflow.source.git.commit": prov["git"]["commit"], "univid.git_dirty": str(prov["git"]["dirty"]),
        "univid.role": "parent", "univid.parent_key": parent_key, "univid.table": results["table"],
        "univid.ablation": results["ablation"], "univid.title": _tag(results.get("title", "")),
        "univid.scale": results["scale"], "univid.kind": results.get("kind") or _kind(results, results["rows"][0]),
        "univid.python": prov["python"], "univid.packages": _tag(prov["packages"]),
        "univid.variants": _tag([r["variant"] for r in results["rows"]]),
    }
    if results["scale"] == "smoke":
        tags["univid.note"] = "smoke scale: tiny random-init models, synthetic world, stand-in scorers"
    return tags


def _child_tags(results: dict, row: dict, run_key: str, parent_id: str) -> dict[str, str]:
    prov = results["provenance"]
    tags = {
        "mlflow.parentRunId": parent_id, "mlflow.source.git.commit": prov["git"]["commit"],
        "univid.git_dirty": str(prov["git"]["dirty"]), "univid.role": "variant",
        "univid.table": results["table"], "univid.ablation": results["ablation"], "univid.kind": _kind(results, row),
        "univid.variant": row["variant"], "univid.label": row["label"], "univid.scale": row["scale"],
        "univid.config_hash": row["config_hash"], "univid.run_key": run_key, "univid.seed": str(row["seed"]),
        "univid.python": prov["python"], "univid.packages": _tag(prov["packages"]),
        "univid.scorers": _tag(row.get("backends") or {}), "univid.job_keys": _tag(row["job_keys"]),
    }
    # One tag per scorer / judge / actor id as well, so the UI can filter on them (tags.`univid.backend.judge`).
    for name, ident in (row.get("backends") or {}).items():
        tags[f"univid.backend.{name}"] = _tag(ident)
    for name, ident in (row.get("ids") or {}).items():
        tags[f"univid.ids.{name}"] = _tag(ident)
    if row.get("na"):  # cells whose every item failed: no metric is logged for them, this says why
        tags["univid.na"] = _tag({m: f"{k} failed" for m, k in row["na"].items()})
    if row["scale"] == "smoke":
        tags["univid.note"] = "smoke scale: tiny random-init models, synthetic world, stand-in scorers"
    return tags


def _run_key(results: dict, row: dict) -> str:
    key = {"table": results["table"], "variant": row["variant"], "hash": row["config_hash"],
           "commit": results["provenance"]["git"]["commit"], "scores": row["scores"]}
    for optional in ("ci", "ids"):
        if row.get(optional):
            key[optional] = row[optional]
    return config_hash(key)


def _log_artifact(client, run_id: str, path: Path) -> None:
    if path.is_dir():
        client.log_artifacts(run_id, str(path), artifact_path=path.name)
    else:
        client.log_artifact(run_id, str(path))


def log_table(results_path: Path, out: Path, tracking_uri: str | None = None, prefix: str = "univid",
              artifacts: list[Path] | tuple = ()) -> list[dict]:
    """Log results.json; returns the child runs [{variant, run_id, experiment, experiment_id, run_key, parent_run_id}].

    Writes `out` (JSON: tracking URI, experiment, parent run, child runs)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    results = read_json(results_path)
    if not results.get("rows"):
        raise ValueError(f"{results_path}: no rows (expected one row per variant, written by `univid collect`)")
    artifacts = [Path(a) for a in artifacts]
    # Every input is checked before the first run is created, so bad input leaves no half-logged parent behind.
    metrics = [row_metrics(row) for row in results["rows"]]
    for path in [Path(r["scores_path"]) for r in results["rows"]] + artifacts:
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found (expected a scores file or artifact named by {results_path} "
                                    f"or --artifact; relative paths are taken from {Path.cwd()})")
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    name = experiment_name(results, prefix)
    exp_id = _experiment_id(client, name)  # before any run, so concurrent writers never race on it
    commit = results["provenance"]["git"]["commit"]
    run_keys = [_run_key(results, row) for row in results["rows"]]
    parent_key = config_hash({"table": results["table"], "commit": commit, "runs": sorted(run_keys)})

    parent = _find(client, exp_id, f"tags.`univid.parent_key` = '{parent_key}'")
    if parent is None:
        parent = client.create_run(exp_id, run_name=f"{results['table']} @ {commit[:8]}",
                                   tags=_parent_tags(results, parent_key))
    parent_id = parent.info.run_id

    runs = []
    for row, run_key, row_values in zip(results["rows"], run_keys, metrics):
        child = _find(client, exp_id, f"tags.`univid.run_key` = '{run_key}' and tags.`mlflow.parentRunId` = "
                                      f"'{parent_id}'")
        if child is not None and child.info.status != "FINISHED":
            client.delete_run(child.info.run_id)  # a writer died half-way: its metrics may be incomplete
            child = None
        if child is None:
            child = client.create_run(exp_id, run_name=f"{results['table']}/{row['variant']}",
                                      tags=_child_tags(results, row, run_key, parent_id))
            run_id = child.info.run_id
            ts = child.info.start_time
            client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(row["config"]).items()],
                             metrics=[Metric(k, v, ts, 0) for k, v in row_values.items()])
            client.log_artifact(run_id, row["scores_path"])
            client.set_terminated(run_id, status="FINISHED")
        runs.append({"variant": row["variant"], "run_id": child.info.run_id, "experiment": name,
                     "experiment_id": exp_id, "run_key": run_key, "parent_run_id": parent_id})

    # Artifacts go to the parent every time: the same paths overwrite, so a rerun adds nothing.
    results_path = Path(results_path)
    for path in [results_path, results_path.with_suffix(".csv"), *artifacts]:
        if path == results_path.with_suffix(".csv") and not path.exists():
            continue
        _log_artifact(client, parent_id, path)
    client.log_batch(parent_id, tags=[RunTag("univid.children", _tag([r["run_id"] for r in runs]))])
    client.set_terminated(parent_id, status="FINISHED")
    write_json(out, {"tracking_uri": uri, "experiment": name, "experiment_id": exp_id,
                     "parent": {"run_id": parent_id, "run_key": parent_key,
                                "name": f"{results['table']} @ {commit[:8]}"},
                     "runs": runs})
    return runs


def log_to_parent(mlflow_json: Path, artifact: Path) -> str:
    """Log a file (the rendered table) to the parent run recorded in a table's mlflow.json; returns its run id."""
    from mlflow import MlflowClient

    info = read_json(mlflow_json)
    if "parent" not in info:
        raise ValueError(f"{mlflow_json}: no parent run recorded (expected the output of `univid track`)")
    if not Path(artifact).is_file():
        raise FileNotFoundError(f"{artifact}: not found (expected the rendered table)")
    run_id = info["parent"]["run_id"]
    MlflowClient(tracking_uri=info["tracking_uri"]).log_artifact(run_id, str(artifact))
    return run_id
