"""Log a table's variants to MLflow: params = resolved config, metrics = scores, tags = provenance.

A run is identified by the tag `univid.run_key` (table + variant + config hash + commit); logging the same results
again finds that run through `search_runs` instead of creating a duplicate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from univid.config import config_hash
from univid.io import read_json, write_json

DEFAULT_URI = "sqlite:///mlflow.db"


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
            out[key] = text[:6000]  # MLflow's param value limit
    return out


def experiment_name(results: dict, prefix: str = "univid") -> str:
    return f"{prefix}-{results['table']}"


def log_table(results_path: Path, out: Path, tracking_uri: str | None = None, prefix: str = "univid") -> list[dict]:
    import mlflow

    results = read_json(results_path)
    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    name = experiment_name(results, prefix)
    # Create the experiment once, before any run, so concurrent writers never race to create it.
    exp = mlflow.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else mlflow.create_experiment(name)
    prov = results["provenance"]
    runs = []
    for row in results["rows"]:
        run_key = config_hash({"table": results["table"], "variant": row["variant"], "hash": row["config_hash"],
                               "commit": prov["git"]["commit"], "scores": row["scores"]})
        found = mlflow.search_runs(experiment_ids=[exp_id], filter_string=f"tags.`univid.run_key` = '{run_key}'",
                                   output_format="list")
        if found:
            run_id = found[0].info.run_id
        else:
            tags = {
                "mlflow.source.git.commit": prov["git"]["commit"], "univid.git_dirty": str(prov["git"]["dirty"]),
                "univid.table": results["table"], "univid.ablation": results["ablation"],
                "univid.variant": row["variant"], "univid.label": row["label"], "univid.scale": row["scale"],
                "univid.config_hash": row["config_hash"], "univid.run_key": run_key,
                "univid.seed": str(row["seed"]), "univid.python": prov["python"],
                "univid.packages": json.dumps(prov["packages"], sort_keys=True),
                "univid.scorers": json.dumps(row["backends"], sort_keys=True),
                "univid.job_keys": json.dumps(row["job_keys"], sort_keys=True),
            }
            if row["scale"] == "smoke":
                tags["univid.note"] = "smoke scale: tiny random-init models, synthetic world, stand-in scorers"
            with mlflow.start_run(experiment_id=exp_id, run_name=f"{results['table']}/{row['variant']}",
                                  tags=tags) as run:
                mlflow.log_params(flatten(row["config"]))
                mlflow.log_metrics({k: float(v) for k, v in row["scores"].items()})
                mlflow.log_artifact(row["scores_path"])
                run_id = run.info.run_id
        runs.append({"variant": row["variant"], "run_id": run_id, "experiment": name, "experiment_id": exp_id,
                     "run_key": run_key})
    write_json(out, {"tracking_uri": uri, "experiment": name, "runs": runs})
    return runs
