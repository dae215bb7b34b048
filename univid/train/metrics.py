"""Per-step training metrics to MLflow, when a tracking URI is configured (`mlflow.tracking_uri` or --tracking-uri).

The environment's MLFLOW_TRACKING_URI alone does not switch it on: the workflow sets it for the result tables, and
per-step logging from every training job would cost more than the smoke stages themselves. One run per output
directory (tag `univid.train_dir`): a resumed run logs into the run it resumes. Metrics are buffered and sent in
batches at each checkpoint and at the end.
"""

from __future__ import annotations

import time
from pathlib import Path


class StepLogger:
    def __init__(self, tracking_uri: str | None, experiment: str, out_dir: Path, params: dict[str, str],
                 tags: dict[str, str]):
        self.client = None
        self.buffer: list = []
        if not tracking_uri:
            return
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
        key = str(Path(out_dir).resolve())
        runs = self.client.search_runs([exp_id], filter_string=f"tags.`univid.train_dir` = '{key}'", max_results=1)
        if runs:
            self.run_id = runs[0].info.run_id
        else:
            run = self.client.create_run(exp_id, tags={**tags, "univid.train_dir": key}, run_name=tags.get("univid.stage"))
            self.run_id = run.info.run_id
            self.client.log_batch(self.run_id, params=[_param(k, v) for k, v in params.items()])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.buffer += [Metric(k, float(v), ts, step) for k, v in metrics.items()]

    def flush(self) -> None:
        if self.client is None or not self.buffer:
            return
        for i in range(0, len(self.buffer), 1000):  # MLflow's per-request metric limit
            self.client.log_batch(self.run_id, metrics=self.buffer[i:i + 1000])
        self.buffer = []

    def close(self, status: str = "FINISHED") -> None:
        if self.client is None:
            return
        self.flush()
        self.client.set_terminated(self.run_id, status=status)


def _param(key: str, value: str):
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])
