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


def _results_tree(run: Path, cosine_extra: dict | None = None) -> Path:
    """Tables 4 and 7 as the workflow lays them out: TMA off loses 3 of 6 colours, w/o Reflection 3 answers."""
    results = run / "results" / "smoke"
    videos = [f"prompt {i}-0.mp4" for i in range(6)]
    full = {(v, d): 1.0 for v in videos for d in ("color", "object_class", "spatial_relationship")}
    ablated = {**full, **{(v, "color"): 0.0 for v in videos[:3]}}  # TMA off loses 3 of 6 colours
    rows = []
    for name, scores in (("cosine", full), ("wo_tma", ablated)):
        rel = f"results/smoke/evaluate/{name}/scores.json"
        _write(run / rel, {**_per_video(scores), **(cosine_extra if name == "cosine" and cosine_extra else {})})
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
    return results


def _report(results: Path) -> tuple[str, dict]:
    out = subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--scale", "smoke",
                          "--tables", "table4", "table7"], capture_output=True, text=True, check=True).stdout
    last = out.strip().splitlines()[-1]
    return out, dict(kv.split("=", 1) for kv in last.split()[1:])


def test_the_report_reads_a_results_tree_and_pairs_each_ablation(tmp_path):
    results = _results_tree(tmp_path / "run")
    out, fields = _report(results)
    assert out.strip().splitlines()[-1].startswith("toy_meaning scale=smoke ")
    assert float(fields["qa_acc"]) == pytest.approx(100 * 5 / 6, abs=0.05)
    assert float(fields["qa_majority"]) == pytest.approx(100 * 2 / 6, abs=0.05)  # "blue"
    assert float(fields["color"]) == 100.0 and float(fields["spatial"]) == 100.0
    # Pooled over the 18 (video, dimension) pairs: 3 colours lost -> -300 / 18 points.
    assert float(fields["tma_delta"]) == pytest.approx(-300 / 18, abs=0.01)
    assert float(fields["reflection_delta"]) == pytest.approx(100 * (2 / 6 - 5 / 6), abs=0.01)
    assert float(fields["reflection_p"]) == pytest.approx(TM["mcnemar_exact"](3, 0), abs=1e-3)
    # These scores name no videos: the controls are said not to be scored, never shown as numbers.
    assert "controls: not scored" in out and "color_control" not in fields


def test_the_controls_score_the_full_models_videos_as_if_something_else_were_asked(tmp_path):
    from univid.data.synthetic import render_clip, spec_from_prompt
    from univid.data.video import write_video

    run = tmp_path / "run"
    suite = [{"prompt_en": "a red circle", "dimension": ["color"], "auxiliary_info": {"color": {"color": "red"}}},
             {"prompt_en": "a square", "dimension": ["object_class"],
              "auxiliary_info": {"object_class": {"object": "square"}}},
             {"prompt_en": "a circle on the left of a square", "dimension": ["spatial_relationship"],
              "auxiliary_info": {"spatial_relationship": {"spatial_relationship": {
                  "object_a": "circle", "object_b": "square", "relationship": "on the left of"}}}},
             {"prompt_en": "a red circle moving right", "dimension": ["dynamic_degree"]}]
    _write(run / "results/smoke/curate/c/prompts.json", suite)
    for e in suite:  # videos that follow their prompts
        write_video(run / "results/smoke/generate/g/videos" / f"{e['prompt_en']}-0.mp4",
                    render_clip(spec_from_prompt(e["prompt_en"], 0)), 8.0)
    config = {"sampling": {"fps": 8}, "eval": {"vbench": {"long": {"enabled": False}}}}
    results = _results_tree(run, {"prompt_suite": "results/smoke/curate/c/prompts.json", "samples_per_prompt": 1,
                                  "video_dir": "results/smoke/generate/g/videos", "config": config})
    out, fields = _report(results)
    assert (fields["color_control"], fields["object_class_control"], fields["spatial_control"]) == ("0.0",) * 3
    assert "table4 cosine controls (another shape, colour or axis asked): color 0.0" in out


def test_a_results_tree_of_another_scale_is_refused_in_one_line(tmp_path):
    results = tmp_path / "results" / "toy"
    _write(results / "tables" / "table4" / "results.json", {"scale": "smoke", "rows": []})
    proc = subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--tables", "table4", "table7"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "is scale 'smoke' (expected toy)" in proc.stderr.strip().splitlines()[-1]
