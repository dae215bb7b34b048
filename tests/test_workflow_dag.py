"""The dry-run DAG of reports/all (fast: no job runs): every table, and jobs shared between tables planned once."""


from conftest import job_counts, scratch_workflow, snakemake


def test_dry_run_of_reports_all_has_every_table_and_shares_upstream_jobs(tmp_path):
    work = scratch_workflow(tmp_path)
    proc = snakemake(work, "-n", "--cores", "2", "reports/all")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    for n in range(1, 11):
        assert f"reports/table{n}.tex" in out, n
    assert counts["report"] == counts["collect"] == counts["track"] == 10
    # One curation and one stage II for everything; one stage I per distinct generation setting (Table 4's five
    # schedules, Table 3's two T5-conditioned variants, Table 5's two encoder settings), not one per table row.
    assert counts["curate"] == 1 and counts["stage2"] == 1 and counts["stage1"] == 9 and counts["stage3"] == 9
    # One precompute per frozen caption encoder: the MLLM's (every variant but two) and Wan's UMT5 (Table 3).
    assert counts["precompute"] == 2
    rows = 1 + 4 + 5 + 3 + 2  # VBench-Long rows of Tables 1, 3, 4, 5, 6
    assert counts["generate"] == 10 < rows  # the full model's generation serves Tables 1, 3, 4, 5 and 6
    assert counts["videoqa"] == 10 < 1 + 4 + 5 + 3 and counts["suite"] == 1



def test_table4_precomputes_once_for_its_five_schedules(tmp_path):
    """Latents and MLLM outputs do not depend on the TMA schedule: Table 4's five stage-I jobs read one precompute."""
    work = scratch_workflow(tmp_path)
    proc = snakemake(work, "-n", "--cores", "2", "reports/table4.tex")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["precompute"] == 1 and counts["stage1"] == 5
