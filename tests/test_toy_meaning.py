"""benchmarks/perf/toy_meaning's statistics at sample points, and its report read back from a small results tree
laid out as the workflow writes it (the script's toy workflow run itself is never run by the tests)."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "perf" / "toy_meaning"
TM = runpy.run_path(str(SCRIPT))  # defines; main() only as a script


def test_mcnemar_exact_at_sample_points():
    assert TM["mcnemar_exact"](0, 0) == 1.0
    assert TM["mcnemar_exact"](5, 0) == pytest.approx(2 / 32)
    assert TM["mcnemar_exact"](10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert TM["mcnemar_exact"](3, 3) == 1.0  # capped


def test_wilson_at_a_sample_point():
    lo, hi = TM["wilson"](5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def _verdict(qid, answer, pred, failed=False, bench="msvd_qa"):
    return {"benchmark": bench, "question_id": qid, "answer": answer, "pred": pred, "failed": failed}


def test_qa_pair_is_ablated_minus_full_and_leaves_failures_out_counted():
    full = {f"b/{i}": _verdict(i, "blue", p) for i, p in enumerate(["yes", "yes", "yes", "no"])}
    abl = {f"b/{i}": _verdict(i, "blue", p) for i, p in enumerate(["yes", "no", "no", "yes"])}
    abl["b/0"]["failed"] = True
    t = TM["qa_pair"](full, abl)
    # Pairs 1..3: full right on 1, 2; ablated right on 3: accuracy 1/3 - 2/3.
    assert t["n"] == 3 and t["failed"] == 1
    assert (t["full_only"], t["ablated_only"]) == (2, 1)
    assert t["diff"] == pytest.approx(100 * (1 / 3 - 2 / 3))
    assert t["p_value"] == pytest.approx(TM["mcnemar_exact"](2, 1))


def test_majority_baseline_is_the_single_answer_the_judge_accepts_most():
    rows = {str(i): _verdict(i, a, "no") for i, a in enumerate(["blue", "blue", "red", "circle", "blue"])}
    rows["9"] = _verdict(9, "red", "no", failed=True)  # not judged: not a question the baseline is scored on
    assert TM["majority_baseline"](rows) == ("blue", 3, 5)


def _write(path: Path, body) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body) if not isinstance(body, str) else body)


def _per_video(scores: dict[tuple[str, str], float]) -> dict:
    rows = [{"video": v, "prompt": v.rsplit("-", 1)[0], "dimension": d, "score": s, "weight": 1.0}
            for (v, d), s in scores.items()]
    dims = {}
    for (v, d), s in scores.items():
        dims.setdefault(d, []).append(s)
    return {"per_video": rows, "dimensions": {d: sum(v) / len(v) for d, v in dims.items()}, "unscored": {}}


def test_the_report_reads_a_results_tree_and_pairs_each_ablation(tmp_path):
    run = tmp_path / "run"
    results = run / "results" / "smoke"
    videos = [f"prompt {i}-0.mp4" for i in range(6)]
    full = {(v, d): 1.0 for v in videos for d in ("color", "object_class", "spatial_relationship")}
    ablated = {**full, **{(v, "color"): 0.0 for v in videos[:3]}}  # TMA off loses 3 of 6 colours
    rows = []
    for name, scores in (("cosine", full), ("wo_tma", ablated)):
        rel = f"results/smoke/evaluate/{name}/scores.json"
        _write(run / rel, _per_video(scores))
        rows.append({"variant": name, "scores_path": rel})
    _write(results / "tables" / "table4" / "results.json", {"scale": "smoke", "rows": rows})
    answers = ["blue", "red", "circle", "yes", "blue", "square"]
    rows = []
    for name, preds in (("full", ["yes"] * 5 + ["no"]), ("wo_reflection", ["yes", "no", "no", "yes", "no", "no"])):
        rel = f"results/smoke/videoqa/{name}/scores.json"
        _write(run / rel, {})
        lines = [json.dumps(_verdict(i, a, p)) for i, (a, p) in enumerate(zip(answers, preds))]
        _write(run / rel.replace("scores.json", "verdicts.jsonl"), "\n".join(lines) + "\n")
        rows.append({"variant": name, "scores_path": rel})
    _write(results / "tables" / "table7" / "results.json", {"scale": "smoke", "rows": rows})

    out = subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--scale", "smoke",
                          "--tables", "table4", "table7"], capture_output=True, text=True, check=True).stdout
    last = out.strip().splitlines()[-1]
    fields = dict(kv.split("=", 1) for kv in last.split()[1:])
    assert last.startswith("toy_meaning scale=smoke ")
    assert float(fields["qa_acc"]) == pytest.approx(100 * 5 / 6, abs=0.05)
    assert float(fields["qa_majority"]) == pytest.approx(100 * 2 / 6, abs=0.05)  # "blue"
    assert float(fields["color"]) == 100.0 and float(fields["spatial"]) == 100.0
    # Pooled over the 18 (video, dimension) pairs: 3 colours lost -> -300 / 18 points.
    assert float(fields["tma_delta"]) == pytest.approx(-300 / 18, abs=0.01)
    assert float(fields["reflection_delta"]) == pytest.approx(100 * (2 / 6 - 5 / 6), abs=0.01)
    assert float(fields["reflection_p"]) == pytest.approx(TM["mcnemar_exact"](3, 0), abs=1e-3)


def test_a_results_tree_of_another_scale_is_refused_in_one_line(tmp_path):
    results = tmp_path / "results" / "toy"
    _write(results / "tables" / "table4" / "results.json", {"scale": "smoke", "rows": []})
    proc = subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--tables", "table4", "table7"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "is scale 'smoke' (expected toy)" in proc.stderr.strip().splitlines()[-1]
