"""The regression check CI runs at the workflow's default scale, toy: Tables 4 and 7 cold (the shipped pretrain
checkpoints, then the paper's three stages, generation, VBench and Video-QA), every score within its seed-measured
tolerance of benchmarks/baselines/toy.json (slow: ~7 minutes). Unlike smoke's, these scores move when a component
breaks (benchmarks/perf/regress_power counts which planted defects this check catches)."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, scratch_workflow, snakemake

pytestmark = pytest.mark.slow
TABLES = ("table4", "table7")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    work = scratch_workflow(tmp_path_factory.mktemp("toy_regress"), pin_smoke=False)
    targets = [f"results/toy/tables/{t}/results.json" for t in TABLES]
    proc = snakemake(work, "--cores", "2", *targets, cache=work / "cache")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def test_the_toy_run_installed_the_shipped_pretrain_checkpoints(toy_run):
    manifests = list((toy_run / "results" / "toy" / "pretrain").glob("*/manifest.json"))
    assert len(manifests) == 1 and "shipped" in json.loads(manifests[0].read_text())


def test_toy_scores_match_the_committed_baseline(toy_run):
    baseline = json.loads((ROOT / "benchmarks" / "baselines" / "toy.json").read_text())
    assert sorted(baseline["tables"]) == sorted(TABLES) and len(baseline.get("seeds") or []) >= 2
    args = [a for t in TABLES for a in ("--results", str(toy_run / "results" / "toy" / "tables" / t / "results.json"))]
    proc = subprocess.run([sys.executable, "-m", "univid.cli", "regress", "--baseline",
                           str(ROOT / "benchmarks" / "baselines" / "toy.json"), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
