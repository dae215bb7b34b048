import json
import subprocess
import sys

import pytest

from univid.report.regress import SEED_FLOOR, SEED_K, baseline_from_results, compare, read_seed_run, regress


def _results(total=70.0, color=50.0):
    return {"table": "table4", "scale": "smoke",
            "rows": [{"variant": "cosine", "scores": {"total": total, "color": color}},
                     {"variant": "wo_tma", "scores": {"total": 69.0, "color": 40.0}}]}


def test_inside_tolerance_passes_and_outside_fails_naming_the_metric(tmp_path):
    base = baseline_from_results([_results()], tolerance=0.5)
    assert compare(_results(total=70.4), base)["ok"].all()
    frame = compare(_results(color=51.0), base)
    bad = frame[~frame["ok"]]
    assert list(zip(bad["variant"], bad["metric"])) == [("cosine", "color")]


def test_a_missing_variant_is_a_failure():
    base = baseline_from_results([_results()])
    res = _results()
    res["rows"] = res["rows"][:1]
    frame = compare(res, base)
    assert not frame[frame["variant"] == "wo_tma"]["ok"].any()


def test_cli_exit_codes_and_update_is_explicit(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results()))
    baseline = tmp_path / "baseline.json"
    run = lambda *a: subprocess.run([sys.executable, "-m", "univid.cli", "regress", "--results", str(results),
                                     "--baseline", str(baseline), *a], capture_output=True, text=True)
    assert run().returncode != 0  # no baseline yet: never created silently
    assert not baseline.exists()
    assert run("--update").returncode == 0 and baseline.exists()
    assert run().returncode == 0
    results.write_text(json.dumps(_results(total=75.0)))
    proc = run()
    assert proc.returncode == 1 and "table4/cosine/total" in proc.stderr
    ok, _ = regress([results], baseline)
    assert not ok


def test_scale_mismatch_is_an_error():
    base = baseline_from_results([_results()])
    res = dict(_results(), scale="paper")
    with pytest.raises(ValueError, match="scale"):
        compare(res, base)


def test_a_metric_with_a_ci_gets_at_least_its_half_width_as_tolerance():
    res = _results()
    res["rows"][0]["ci"] = {"total": [60.0, 80.0]}
    base = baseline_from_results([res], tolerance=0.5)
    assert base["tables"]["table4"]["rows"]["cosine"]["total"]["tolerance"] == 10.0
    assert base["tables"]["table4"]["rows"]["cosine"]["color"]["tolerance"] == 0.5
    assert compare(_results(total=79.0), base)["ok"].all()
    assert not compare(_results(total=81.0), base)["ok"].all()


def _became_na(results, metric="color", failed=12):
    row = results["rows"][0]
    row["scores"][metric] = None  # every item of the cell failed (collect: None, with the count in `na`)
    row["na"] = {metric: failed}
    return results


def test_a_baseline_number_that_became_na_is_a_regression_naming_it(tmp_path):
    base = baseline_from_results([_results(color=0.0)])  # a baseline from when failures were written as 0.0
    frame = compare(_became_na(_results()), base)
    bad = frame[~frame["ok"]]
    assert list(zip(bad["variant"], bad["metric"], bad["note"], bad["failed"])) == [("cosine", "color", "became n/a", 12)]
    results, baseline = tmp_path / "results.json", tmp_path / "baseline.json"
    results.write_text(json.dumps(_became_na(_results())))
    baseline.write_text(json.dumps(base))
    proc = subprocess.run([sys.executable, "-m", "univid.cli", "regress", "--results", str(results), "--baseline",
                           str(baseline)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["regress: became n/a (every item failed): table4/cosine/color (12 failed)"]


def test_an_na_cell_is_recorded_as_such_and_may_stay_na():
    base = baseline_from_results([_became_na(_results())])
    assert base["tables"]["table4"]["rows"]["cosine"]["color"] == {"value": None, "na": 12}
    assert compare(_became_na(_results(), failed=10), base)["ok"].all()
    frame = compare(_results(color=0.0), base)  # a number where the baseline has none: accepted only by --update
    assert list(frame[~frame["ok"]]["note"]) == ["n/a in the baseline"]


# ------------------------------------------------------------------------------- seed-measured tolerances
def _seeded(seed, total=70.0, color=50.0):
    res = _results(total=total, color=color)
    for row in res["rows"]:
        row["seed"] = seed  # univid collect records each row's seed
    return res


def _runs(*bodies):
    """[(name, run)] as baseline_from_results takes them, one seed run per results.json body."""
    return [(f"s{i}", {(b["table"], b["scale"]): b}) for i, b in enumerate(bodies, 1)]


def test_seed_tolerance_is_k_times_the_sample_sd_over_main_and_seed_runs():
    # total: 70, 71, 72 -> mean 71, sample sd sqrt((1 + 0 + 1) / 2) = 1 -> tolerance 3 * 1
    base = baseline_from_results([_seeded(0)], seed_runs=_runs(_seeded(1, total=71.0), _seeded(2, total=72.0)))
    spec = base["tables"]["table4"]["rows"]["cosine"]["total"]
    assert SEED_K == 3.0
    assert spec["value"] == 70.0  # the baseline value stays the main run's
    assert spec["tolerance"] == 3.0
    assert spec["tolerance_source"] == "seeds:3 sd=1.0000" and spec["seeds"] == 3
    assert base["seeds"] == [0, 1, 2]
    assert base["tolerance"] == {"rule": "seeds", "k": SEED_K, "floor": SEED_FLOOR, "runs": 3}
    # two runs, 70.0 and 70.5: sd = 0.5 / sqrt(2) = 0.353553 -> 3 * sd = 1.0607
    base = baseline_from_results([_seeded(0)], seed_runs=_runs(_seeded(1, total=70.5)))
    assert base["tables"]["table4"]["rows"]["cosine"]["total"]["tolerance"] == 1.0607


def test_identical_seed_runs_get_the_floor():
    base = baseline_from_results([_seeded(0)], seed_runs=_runs(_seeded(1), _seeded(2)))
    spec = base["tables"]["table4"]["rows"]["cosine"]["color"]
    assert spec["tolerance"] == SEED_FLOOR == 0.05
    assert spec["tolerance_source"] == "seeds:3 sd=0.0000"
    assert compare(_results(color=50.04), base)["ok"].all()  # float noise across CPUs
    assert not compare(_results(color=50.1), base)["ok"].all()


def test_a_shift_of_4_sd_is_caught_and_2_sd_is_not():
    base = baseline_from_results([_seeded(0)], seed_runs=_runs(_seeded(1, total=71.0), _seeded(2, total=72.0)))
    sd = 1.0
    assert compare(_results(total=70.0 + 2 * sd), base)["ok"].all()
    assert compare(_results(total=70.0 - 2 * sd), base)["ok"].all()
    frame = compare(_results(total=70.0 + 4 * sd), base)
    bad = frame[~frame["ok"]]
    assert list(zip(bad["variant"], bad["metric"], bad["source"])) == [("cosine", "total", "seeds:3 sd=1.0000")]


def test_a_seed_run_missing_a_metric_variant_or_table_is_a_one_line_error():
    lacking = _seeded(1)
    del lacking["rows"][0]["scores"]["color"]
    with pytest.raises(ValueError, match=r"^seed run s1: table4/cosine has no metric 'color'$"):
        baseline_from_results([_seeded(0)], seed_runs=_runs(lacking))
    lacking = _seeded(1)
    lacking["rows"] = lacking["rows"][:1]
    with pytest.raises(ValueError, match=r"^seed run s1: table table4 has no variant 'wo_tma'$"):
        baseline_from_results([_seeded(0)], seed_runs=_runs(lacking))
    with pytest.raises(ValueError, match=r"^seed run s1: no table table4 at scale smoke"):
        baseline_from_results([_seeded(0)], seed_runs=_runs(dict(_seeded(1), table="table5")))


def test_a_seed_run_at_the_main_runs_seed_or_another_config_is_refused():
    with pytest.raises(ValueError, match="appears twice"):
        baseline_from_results([_seeded(0)], seed_runs=_runs(_seeded(1), _seeded(0)))
    main, other = _seeded(0), _seeded(1)
    main["rows"][0]["config"], other["rows"][0]["config"] = {"tma": {"schedule": "cosine"}}, {"tma": {"schedule": "none"}}
    with pytest.raises(ValueError, match="another config"):
        baseline_from_results([main], seed_runs=_runs(other))


def test_na_at_some_seeds_measures_the_spread_of_the_numbers():
    other = _seeded(2, total=72.0)
    other["rows"][0]["scores"]["total"], other["rows"][0]["na"] = None, {"total": 3}
    base = baseline_from_results([_seeded(0)], seed_runs=_runs(_seeded(1, total=71.0), other))
    spec = base["tables"]["table4"]["rows"]["cosine"]["total"]
    assert spec["tolerance_source"].startswith("seeds:2 ") and spec["na_seed_runs"] == 1
    base = baseline_from_results([_seeded(0)], seed_runs=_runs(other))
    assert base["tables"]["table4"]["rows"]["cosine"]["total"]["tolerance_source"].startswith("flat")


def test_without_seed_runs_tolerances_are_flat_and_labelled_so():
    base = baseline_from_results([_seeded(0)])
    assert base["tables"]["table4"]["rows"]["cosine"]["total"]["tolerance_source"] == "flat"
    assert base["seeds"] == [0] and base["tolerance"]["rule"] == "flat"


def _write_run(root, body):
    path = root / body["scale"] / "tables" / body["table"] / "results.json"  # a workflow's results_dir layout
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(body))
    return path


def test_cli_update_with_seed_runs(tmp_path):
    main = _write_run(tmp_path / "main", _seeded(0))
    _write_run(tmp_path / "seed1", _seeded(1, total=71.0))
    _write_run(tmp_path / "seed2", _seeded(2, total=72.0))
    assert set(read_seed_run(tmp_path / "seed1")) == {("table4", "smoke")}
    baseline = tmp_path / "baseline.json"
    run = lambda *a: subprocess.run([sys.executable, "-m", "univid.cli", "regress", "--results", str(main),
                                     "--baseline", str(baseline), *a], capture_output=True, text=True)
    proc = run("--update", "--seed-runs", str(tmp_path / "seed1"), str(tmp_path / "seed2"))
    assert proc.returncode == 0, proc.stderr
    assert "tolerances: 4 from seeds, 0 flat" in proc.stdout
    body = json.loads(baseline.read_text())
    assert body["seeds"] == [0, 1, 2]
    assert body["tables"]["table4"]["rows"]["cosine"]["total"]["tolerance"] == 3.0
    assert run().returncode == 0
    proc = run("--seed-runs", str(tmp_path / "seed1"))  # tolerances are measured only when writing the baseline
    assert proc.returncode == 2 and "only with --update" in proc.stderr
    lacking = _seeded(3)
    del lacking["rows"][1]["scores"]["total"]
    _write_run(tmp_path / "seed3", lacking)
    proc = run("--update", "--seed-runs", str(tmp_path / "seed1"), str(tmp_path / "seed3"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"univid regress: error: seed run {tmp_path / 'seed3'}: table4/wo_tma has no metric 'total'"]


def _qa(seed, answers, accuracy=50.0, retrieval=None):
    retrieval = retrieval or {q: [[1, 2]] for q in answers}
    return {"table": "table7", "scale": "toy",
            "rows": [{"variant": "full", "seed": seed, "scores": {"msvd_qa.accuracy": accuracy},
                      "answers": dict(answers), "retrieval": retrieval}]}


def test_seed_runs_pin_the_answers_every_seed_gave_and_a_changed_pinned_answer_is_caught():
    main = {"msvd_qa/q0": "red", "msvd_qa/q1": "left", "msvd_qa/q2": "two"}
    base = baseline_from_results([_qa(0, main)], seed_runs=_runs(_qa(1, main), _qa(2, {**main, "msvd_qa/q2": "one"})))
    spec = base["tables"]["table7"]["answers"]["full"]
    assert spec["pinned"] == {"msvd_qa/q0": "red", "msvd_qa/q1": "left"} and spec["questions"] == 3
    assert compare(_qa(0, main), base)["ok"].all()
    assert compare(_qa(0, {**main, "msvd_qa/q2": "three"}), base)["ok"].all()  # q2 varied between seeds: not pinned
    # one wrong answer for another: accuracy is where it was, the answers are not
    frame = compare(_qa(0, {**main, "msvd_qa/q1": "right"}), base)
    bad = frame[~frame["ok"]]
    assert list(bad["metric"]) == ["answers.changed"] and bad["value"].tolist() == [1.0]
    assert bad["note"].tolist() == ["msvd_qa/q1"] and bad["source"].tolist() == ["seeds:3 pinned=2/3"]
    lost = _qa(0, main)
    del lost["rows"][0]["answers"]
    assert not compare(lost, base)["ok"].all()


def test_answers_are_pinned_only_with_seed_runs_and_a_seed_run_without_them_is_an_error():
    main = {"msvd_qa/q0": "red"}
    assert "answers" not in baseline_from_results([_qa(0, main)])["tables"]["table7"]
    older = _qa(1, main)
    del older["rows"][0]["answers"]
    with pytest.raises(ValueError, match="s1: table7/full has no per-question answers"):
        baseline_from_results([_qa(0, main)], seed_runs=_runs(older))


def test_retrieval_is_pinned_in_the_order_shown_and_a_reordered_working_set_is_caught():
    main = {"msvd_qa/q0": "red", "msvd_qa/q1": "left"}
    frames = {"msvd_qa/q0": [[4, 9]], "msvd_qa/q1": [[0, 5, 9, 15], [0, 2, 5, 7, 9, 11, 13, 15]]}
    base = baseline_from_results([_qa(0, main, retrieval=frames)], seed_runs=_runs(_qa(1, main, retrieval=frames)))
    assert base["tables"]["table7"]["retrieval"]["full"]["pinned"] == frames
    reordered = {**frames, "msvd_qa/q0": [[9, 4]]}  # the same frames, shown in another order; the same answers
    frame = compare(_qa(0, main, retrieval=reordered), base)
    bad = frame[~frame["ok"]]
    assert list(bad["metric"]) == ["retrieval.changed"] and bad["note"].tolist() == ["msvd_qa/q0"]
    one_round_less = {**frames, "msvd_qa/q1": frames["msvd_qa/q1"][:1]}  # accepted a round earlier
    assert list(compare(_qa(0, main, retrieval=one_round_less), base).query("not ok")["metric"]) == \
        ["retrieval.changed"]
