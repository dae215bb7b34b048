"""`univid plan`: the jobs Snakemake would run for a target, priced from the config's per-unit costs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import job_counts, scratch_workflow, snakemake

from univid.planning import cost_plan, render
from univid.workflow import JOB_OUTPUTS, plan

ROOT = Path(__file__).resolve().parents[1]


def _workflow(root: Path, **sets) -> dict:
    from univid.config.load import deep_merge, load_user_config

    user = deep_merge(load_user_config(root / "workflows" / "config.yaml"), sets)
    return plan(user, root=root)


@pytest.mark.parametrize("scale", ["smoke", "paper"])  # paper: 64 generate shards per variant
def test_the_plan_counts_the_jobs_a_snakemake_dry_run_would_run(tmp_path, scale):
    work = scratch_workflow(tmp_path)
    (work / "scale.yaml").write_text(f"scale: {scale}\n")
    proc = snakemake(work, "-n", "--cores", "1", "reports/table4.tex", "--configfile", "scale.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dry = job_counts(proc.stdout + proc.stderr)
    wf = _workflow(work, scale=scale)
    planned = cost_plan(wf, wf["config"], "reports/table4.tex")
    rules = set(JOB_OUTPUTS) | {f"{r}_shard" for r in JOB_OUTPUTS}
    assert {r: v["jobs"] for r, v in planned["rules"].items()} == {r: n for r, n in dry.items() if r in rules}


def test_finished_jobs_leave_the_plan(tmp_path):
    work = scratch_workflow(tmp_path)
    wf = _workflow(work)
    before = cost_plan(wf, wf["config"], "reports/table4.tex")
    curate = next(j for j in wf["jobs"].values() if j["job"] == "curate")
    for f in JOB_OUTPUTS["curate"]:
        (work / curate["dir"] / f).parent.mkdir(parents=True, exist_ok=True)
        (work / curate["dir"] / f).write_text("{}")
    import os

    cwd = os.getcwd()
    os.chdir(work)  # job dirs are relative to the workflow
    try:
        after = cost_plan(wf, wf["config"], "reports/table4.tex")
    finally:
        os.chdir(cwd)
    assert "curate" in before["rules"] and "curate" not in after["rules"]
    assert after["totals"]["jobs"] == before["totals"]["jobs"] - 1


def test_paper_costs_are_units_times_their_per_unit_cost():
    wf = _workflow(ROOT, scale="paper")
    cfg = wf["config"]
    result = cost_plan(wf, cfg, "reports/table4.tex", gpus=8)
    gen = result["rules"]["generate_shard"]  # paper: shards.generate 64 shard jobs per generate job, and a gather
    c = cfg["plan"]["costs"]["generate"]
    shards = cfg["shards"]["generate"]
    assert gen["jobs"] == 5 * shards and result["rules"]["generate"]["jobs"] == 5
    assert gen["units"] == 5 * 946 * 5  # VBench_full_info's 946 prompts, 5 samples each
    assert gen["gpu_hours"] == pytest.approx(gen["units"] * c["gpu_s"] / 3600)
    assert gen["source"].startswith("estimated: ")
    s1 = result["rules"]["stage1"]
    assert s1["units"] == 5 * cfg["train"]["stage1"]["steps"]
    t = result["totals"]
    assert t["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in result["rules"].values()))
    # A generate job's 946 x 5 videos spread over its shards: no chain is shorter than one shard's share.
    assert t["critical_path_hours"] >= 946 * 5 * c["gpu_s"] / 3600 / shards
    assert t["wall_hours"] == max(t["gpu_hours"] / 8, t["critical_path_hours"])
    last = render(result).splitlines()[-1]
    ev_shards = cfg["shards"]["evaluate"]  # 16 official VBench jobs (one per dimension) per evaluate job, a gather
    assert result["rules"]["evaluate_shard"]["jobs"] == 5 * ev_shards
    assert re.fullmatch(rf"plan reports/table4\.tex jobs={23 - 10 + 5 * shards + 5 + 5 * ev_shards + 5} "
                        r"gpu_hours=[0-9.]+ "
                        r"storage_gb=[0-9.]+", last), last


def test_bad_targets_and_gpu_counts_are_one_line(tmp_path):
    for args, msg in ((["reports/table11.tex"], "plan target 'reports/table11.tex': not known"),
                      (["reports/all", "--gpus", "0"], "plan --gpus 0: expected at least 1 GPU")):
        proc = subprocess.run([sys.executable, "-m", "univid", "plan", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and msg in proc.stderr, proc.stderr


@pytest.mark.parametrize("scale", ["smoke", "paper"])
def test_table5_plans_one_ti2v_suite_and_prices_its_prompts(scale):
    """Table 5 runs on the ti2v track: one ti2v_suite job, and its generate jobs priced by the ti2v suite's prompts
    (the synthetic suite at smoke; VBench-I2V's 355 image-prompt pairs at paper, 5 samples each)."""
    wf = _workflow(ROOT, scale=scale)
    cfg = wf["config"]
    result = cost_plan(wf, cfg, "reports/table5.tex")
    suite = result["rules"]["ti2v_suite"]
    prompts = 11 if scale == "smoke" else 246 + 109
    assert suite["jobs"] == 1 and suite["units"] == prompts and suite["gpu_hours"] == 0
    gen = result["rules"]["generate_shard" if scale == "paper" else "generate"]
    assert gen["units"] == 4 * prompts * cfg["sampling"]["samples_per_prompt"]  # Table 5's four rows
