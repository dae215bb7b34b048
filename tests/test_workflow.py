"""The ten-table DAG end to end on the smoke config, in a scratch copy of the workflow (slow: ~10 minutes; the
session fixture `smoke_run` in conftest.py runs it once)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, job_counts, snakemake

pytestmark = pytest.mark.slow
NUMBER = r"(?:\\textbf\{|\\underline\{)?-?\d+\.\d+\}?(?:\{\\tiny\[-?\d+\.\d+, -?\d+\.\d+\]\})?"
NA = r"n/a \(\d+ failed\)"  # every item of the cell failed to be judged or scored (counted, never a number)


def _measured_rows(tex: str, label: str) -> list[list[str]]:
    """Cells of the measured rows with this label (the rows after the "Measured" section title)."""
    rows, measured = [], False
    for line in tex.splitlines():
        if "\\textit{Measured" in line:
            measured = True
        elif "\\textit{" in line:
            measured = False
        elif measured and line.startswith(f"{label} &"):
            rows.append([c.strip().rstrip("\\").strip() for c in re.split(r"(?<!\\)&", line)[1:]])
    return rows


def test_all_ten_tables_render_with_measured_rows_of_numbers(smoke_run):
    manifest = (smoke_run / "reports" / "all").read_text().split("\n")
    assert sorted(Path(line.split()[1]).name for line in manifest if line) == sorted(f"table{n}.tex" for n in range(1, 11))
    columns = {"vbench_long": 10 + 9, "videoqa": 8, "suites": 6}
    for n in range(1, 11):
        tex = (smoke_run / "reports" / f"table{n}.tex").read_text()
        results = json.loads((smoke_run / "results" / "smoke" / "tables" / f"table{n}" / "results.json").read_text())
        assert "Scale: smoke" in tex, n
        for row in results["rows"]:
            label = row["label"].replace("&", "\\&").replace("_", "\\_")  # as LaTeX prints it
            cells = [c for r in _measured_rows(tex, label) for c in r]
            if n == 2:  # Table 2's "LLM size" column: printed for the paper's rows, empty for measured ones
                assert cells[0] == "", cells
                cells = cells[1:]
            i2v = 2 if n == 5 else 0  # Table 5 runs on the ti2v track: its I2V block (i2v_subject, i2v_background)
            assert len(cells) == columns[results["kind"]] + i2v, (n, row["label"], cells)
            assert all(re.fullmatch(NUMBER, c) or re.fullmatch(NA, c) for c in cells), (n, row["label"], cells)
            assert sum(bool(re.fullmatch(NA, c)) for c in cells) == len(row.get("na") or {}), (n, row["label"])


def test_table4_has_five_variant_rows(smoke_run):
    tex = (smoke_run / "reports" / "table4.tex").read_text()
    for label in ["w/o TMA", "Constant", "Step", "Linear", "Cosine"]:
        assert len(_measured_rows(tex, f"UniVid ({label})")) == 2, label  # overall and semantic blocks


def test_mlflow_has_one_run_per_variant_with_metrics(smoke_run):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{smoke_run / 'mlflow.db'}")
    exp = client.get_experiment_by_name("univid-table4")
    runs = [r for r in client.search_runs([exp.experiment_id]) if "univid.variant" in r.data.tags]
    assert sorted(r.data.tags["univid.variant"] for r in runs) == ["constant", "cosine", "linear", "step", "wo_tma"]
    for r in runs:
        assert {"total", "quality", "semantic", "subject_consistency", "overall_consistency"} <= set(r.data.metrics)
        assert r.data.tags["univid.scale"] == "smoke" and len(r.data.tags["univid.config_hash"]) == 12
        assert r.data.tags["mlflow.source.git.commit"]
        assert r.data.params["tma.schedule"] == {"wo_tma": "none"}.get(r.data.tags["univid.variant"],
                                                                         r.data.tags["univid.variant"])
    qa = client.get_experiment_by_name("univid-table7")
    qa_runs = [r for r in client.search_runs([qa.experiment_id]) if "univid.variant" in r.data.tags]
    assert len(qa_runs) == 4 and all("msvd_qa.accuracy" in r.data.metrics for r in qa_runs)


def test_second_run_does_nothing(smoke_run):
    proc = snakemake(smoke_run, "--cores", "2", "-n", "reports/all")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def test_jobs_shared_between_tables_run_once(smoke_run):
    def keys(job):
        return {p.name for p in (smoke_run / "results" / "smoke" / job).iterdir()}

    assert len(keys("stage2")) == 1 and len(keys("curate")) == 1
    # Table 4's five schedules + Table 3's base and w/o MLLM + Table 5's w/o ViT and w/o VAE; the full model's
    # stage I serves Tables 1, 3-6 (Table 5's w/o alpha_img too) and (through stage III) the understanding tables.
    assert len(keys("stage1")) == 9 and len(keys("stage3")) == 10 and len(keys("ti2v_suite")) == 1
    # 8 t2v settings + Table 6's generation from stage I + Table 5's four rows on the ti2v track
    assert len(keys("generate")) == 12 and len(keys("evaluate")) == 12


def test_scores_match_the_committed_baseline(smoke_run):
    """The regression check CI runs: smoke scores within tolerance of benchmarks/baselines/smoke.json."""
    results = sorted((smoke_run / "results" / "smoke" / "tables").glob("*/results.json"))
    assert len(results) == 10
    args = [a for p in results for a in ("--results", str(p))]
    proc = subprocess.run([sys.executable, "-m", "univid.cli", "regress", "--baseline",
                           str(ROOT / "benchmarks" / "baselines" / "smoke.json"), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_report_builds_with_tables_and_figures(smoke_run):
    proc = snakemake(smoke_run, "--cores", "1", "--report", "reports/report.html", "reports/all")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (smoke_run / "reports" / "report.html").read_bytes()
    assert len(html) > 10_000 and b"table4.tex" in html and b"tma_schedules.png" in html


# Last: it deletes an output of the shared run.
def test_removing_one_stage1_output_reruns_only_that_variant(smoke_run):
    stage1 = next(p for p in (smoke_run / "results" / "smoke" / "stage1").iterdir()
                  if json.loads((p / "job_config.json").read_text())["tma"]["schedule"] == "constant")
    (stage1 / "final" / "weights.safetensors").unlink()
    proc = snakemake(smoke_run, "--cores", "2", "-n", "reports/all")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {"stage1": 1, "stage3": 1, "generate": 1, "evaluate": 1, "collect": 1, "track": 1, "report": 1,
                      "plots": 1, "all_tables": 1}
