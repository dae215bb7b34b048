import json
import subprocess
import sys

import pytest

from univid.report.regress import baseline_from_results, compare, regress


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
