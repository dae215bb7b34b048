"""univid.track.mlflow_log on a local SQLite store: a half-logged child (a writer that died) is replaced, not
counted; a missing input fails before any run exists; new numbers make a new parent, the old one stays."""

import json

import pytest

from univid.track.mlflow_log import log_table, row_metrics

PROV = {"git": {"commit": "feedfacecafe", "dirty": True}, "packages": {}, "python": "3.11"}


def _results(tmp_path, total=60.0):
    (tmp_path / "scores.json").write_text("{}")
    rows = [{"variant": v, "label": v.title(), "seed": 0, "scale": "smoke", "config_hash": f"{i:012x}",
             "job_keys": {}, "backends": {"total": "official-formula"}, "scores_path": str(tmp_path / "scores.json"),
             "config": {"tma": {"schedule": v}}, "scores": {"total": total + i, "quality": 70.0}}
            for i, v in enumerate(("none", "cosine"))]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"table": "table4", "ablation": "tma", "title": "", "scale": "smoke", "rows": rows,
                                "provenance": PROV}))
    return path


@pytest.fixture
def client(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # the SQLite store's default artifact root is ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(tracking_uri=uri)


def test_row_metrics_cover_nested_scores_and_intervals_and_skip_missing():
    row = {"variant": "v", "scores": {"a": 1, "b": {"accuracy": 2.5}, "c": None, "d": float("nan")},
           "ci": {"b.accuracy": [2.0, 3.0]}}
    assert row_metrics(row) == {"a": 1.0, "b.accuracy": 2.5, "b.accuracy.ci_lo": 2.0, "b.accuracy.ci_hi": 3.0}
    with pytest.raises(ValueError, match=r"ci\['a'\].*expected \[lo, hi\]"):
        row_metrics({"variant": "v", "scores": {"a": 1}, "ci": {"a": [1.0]}})


def test_dead_writer_child_is_replaced_and_new_numbers_get_a_new_parent(tmp_path, client):
    uri, c = client
    results = _results(tmp_path)
    runs = log_table(results, tmp_path / "m.json", tracking_uri=uri)
    exp_id, parent_id = runs[0]["experiment_id"], runs[0]["parent_run_id"]
    # A writer that died after creating the child: same identity, status RUNNING, no metrics.
    dead = c.create_run(exp_id, tags={"univid.run_key": runs[1]["run_key"], "mlflow.parentRunId": parent_id})
    c.delete_run(runs[1]["run_id"])
    again = log_table(results, tmp_path / "m.json", tracking_uri=uri)
    assert again[0]["run_id"] == runs[0]["run_id"] and again[1]["run_id"] not in (runs[1]["run_id"], dead.info.run_id)
    assert c.get_run(dead.info.run_id).info.lifecycle_stage == "deleted"
    child = c.get_run(again[1]["run_id"])
    assert child.data.metrics == {"total": 61.0, "quality": 70.0} and child.info.status == "FINISHED"
    assert child.data.tags["univid.backend.total"] == "official-formula"

    newer = log_table(_results(tmp_path, total=50.0), tmp_path / "m.json", tracking_uri=uri)
    assert newer[0]["parent_run_id"] != parent_id
    alive = c.search_runs([exp_id])
    assert len(alive) == 2 * 3  # two parents with two children each


def test_missing_scores_file_fails_before_the_store_is_touched(tmp_path):
    results = _results(tmp_path)
    (tmp_path / "scores.json").unlink()
    with pytest.raises(FileNotFoundError, match="scores.json: not found"):
        log_table(results, tmp_path / "m.json", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()  # no store, so certainly no half-logged parent
