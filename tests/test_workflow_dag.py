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
    # Table 5's w/o alpha_img shares the full model's stage I (no reference image there), not its stage III.
    assert counts["curate"] == 1 and counts["stage2"] == 1 and counts["stage1"] == 9 and counts["stage3"] == 10
    # One precompute per frozen caption encoder: the MLLM's (every variant but two) and Wan's UMT5 (Table 3).
    assert counts["precompute"] == 2
    rows = 1 + 4 + 5 + 4 + 2  # VBench-Long rows of Tables 1, 3, 4, 5, 6
    # The full model's t2v generation serves Tables 1, 3, 4 and 6; Table 5's four rows are on the ti2v track.
    assert counts["generate"] == 12 < rows and counts["ti2v_suite"] == 1
    assert counts["videoqa"] == 10 < 1 + 4 + 5 + 3 and counts["suite"] == 1



def test_table4_precomputes_once_for_its_five_schedules(tmp_path):
    """Latents and MLLM outputs do not depend on the TMA schedule: Table 4's five stage-I jobs read one precompute."""
    work = scratch_workflow(tmp_path)
    proc = snakemake(work, "-n", "--cores", "2", "reports/table4.tex")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["precompute"] == 1 and counts["stage1"] == 5


def test_table5_plans_the_ti2v_track_and_its_alpha_img_row(tmp_path):
    """Table 5 generates and evaluates on the ti2v track (one ti2v suite for its rows); its w/o alpha_img row trains
    its own stage III but shares the full model's stage I. Paper scale plans the same jobs (nothing is read)."""
    work = scratch_workflow(tmp_path)
    for scale in ("smoke", "paper"):
        (work / "scale.yaml").write_text(f"scale: {scale}\n")
        proc = snakemake(work, "-n", "--cores", "2", "reports/table5.tex", "--configfile", "scale.yaml")
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts = job_counts(proc.stdout + proc.stderr)
        assert counts["ti2v_suite"] == 1 and counts["generate"] == counts["evaluate"] == 4, (scale, counts)
        assert counts["stage1"] == 3 and counts["stage3"] == 4, (scale, counts)  # paper: 64 shards each, gathered
    proc = snakemake(work, "-n", "--cores", "2", "reports/table4.tex")
    assert "ti2v_suite" not in job_counts(proc.stdout + proc.stderr)  # t2v tables never need it
