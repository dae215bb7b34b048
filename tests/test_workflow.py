"""The Table-4 DAG end to end on the smoke config, in a scratch copy of the workflow (slow: a few minutes)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
TARGET = "reports/table4.tex"


def _snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args, TARGET], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1200)


def _job_counts(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("table4")
    for item in ("Snakefile", "workflows", "ablations", "reports/templates"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / item)
    proc = _snakemake(work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def test_table_has_five_variant_rows_of_numbers(work):
    tex = (work / TARGET).read_text()
    labels = ["w/o TMA", "Constant", "Step", "Linear", "Cosine"]
    number = r"(?:\\textbf\{)?\d+\.\d\d\}?"
    for label in labels:
        rows = [line for line in tex.splitlines() if line.startswith(f"UniVid ({label})")]
        assert len(rows) == 2, label  # the overall/quality block and the semantic block
        cells = [c.strip().rstrip("\\").strip() for row in rows for c in row.split("&")[1:]]
        assert len(cells) == 10 + 9 and all(re.fullmatch(number, c) for c in cells), rows
    assert "Scale: smoke" in tex


def test_mlflow_has_one_run_per_variant_with_metrics(work):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("univid-table4")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["univid.variant"] for r in runs) == ["constant", "cosine", "linear", "step", "wo_tma"]
    for r in runs:
        assert {"total", "quality", "semantic", "subject_consistency", "overall_consistency"} <= set(r.data.metrics)
        assert r.data.tags["univid.scale"] == "smoke" and len(r.data.tags["univid.config_hash"]) == 12
        assert r.data.tags["mlflow.source.git.commit"]
        assert r.data.params["tma.schedule"] == {"wo_tma": "none"}.get(r.data.tags["univid.variant"],
                                                                         r.data.tags["univid.variant"])


def test_second_run_does_nothing(work):
    proc = _snakemake(work, "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def test_stage2_is_shared_by_all_variants(work):
    assert len(list((work / "results" / "smoke" / "stage2").iterdir())) == 1
    assert len(list((work / "results" / "smoke" / "stage1").iterdir())) == 5


def test_removing_one_stage1_output_reruns_only_that_variant(work):
    stage1 = sorted((work / "results" / "smoke" / "stage1").iterdir())[0]
    (stage1 / "final" / "weights.safetensors").unlink()
    proc = _snakemake(work, "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout + proc.stderr)
    assert counts == {"stage1": 1, "stage3": 1, "generate": 1, "evaluate": 1, "collect": 1, "track": 1, "report": 1}


def test_scores_match_the_committed_baseline(work):
    """The regression check CI runs: smoke scores within tolerance of benchmarks/baselines/smoke.json."""
    proc = subprocess.run([sys.executable, "-m", "univid.cli", "regress", "--baseline",
                           str(ROOT / "benchmarks" / "baselines" / "smoke.json"), "--results",
                           str(work / "results" / "smoke" / "tables" / "table4" / "results.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
