"""Tables: published rows equal the paper, collect reads every benchmark kind, render mirrors the paper's layouts."""

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from univid.config import job_configs, load_ablation, resolve
from univid.eval.vbench.constants import DIMENSIONS
from univid.report.collect import collect, load_published, suites_row
from univid.report.render import render_table
from univid.track.mlflow_log import _child_tags, row_metrics

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "paper" / "univid-paper.txt"
QA = ("msvd_qa", "msrvtt_qa", "tgif_frameqa", "activitynet_qa")


def _extract_module():
    spec = importlib.util.spec_from_file_location("extract", ROOT / "reports" / "published" / "extract.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not PAPER.is_file(), reason="../shared/paper/univid-paper.txt is not beside the checkout")
def test_published_csvs_equal_the_paper_text():
    parsed = _extract_module().parse(PAPER.read_text())
    assert sorted(parsed) == list(range(1, 11))
    for n, rows in parsed.items():
        committed = load_published(f"table{n}")
        assert [r["label"] for r in committed] == [r["label"] for r in rows], n
        for c, p in zip(committed, rows):
            values = {k: float(v) for k, v in p.items() if k not in ("label", "group", "llm_size") and v != ""}
            assert c["scores"] == pytest.approx(values), (n, c["label"])


def test_published_spot_values():
    t1 = {r["label"]: r for r in load_published("table1")}
    assert t1["UniVid (Ours)"]["scores"]["total"] == 85.27 and t1["UniVid (Ours)"]["scores"]["imaging_quality"] == 73.03
    t2 = {r["label"]: r for r in load_published("table2")}
    assert "msvd_qa.score" not in t2["FrozenBiLM (Yang et al., 2022)"]["scores"]  # printed as "–"
    assert t2["UniVid (Ours)"]["llm_size"] == "7B" and t2["UniVid (Ours)"]["scores"]["activitynet_qa.accuracy"] == 58.8
    t10 = {r["label"]: r for r in load_published("table10")}
    assert t10["Ours-7B"]["group"] == "Unified Models" and t10["Ours-7B"]["scores"]["videomme_sm"] == 78.4


def test_every_ablation_variant_names_a_published_row():
    """A variant names the paper row it reproduces, or says explicitly (`published: null`) that the paper has none."""
    for path in sorted((ROOT / "ablations").glob("*.yaml")):
        ab = load_ablation(path)
        labels = {r["label"] for r in load_published(f"table{ab['table']}")}
        for v in ab["variants"]:
            assert v.get("published") in labels or ("published" in v and v["published"] is None), \
                (path.name, v["name"])


def _chain(tmp_path: Path, target: str, scores: dict, overrides=None) -> Path:
    jobs = job_configs(resolve(overrides or {}))
    for name, job in jobs.items():
        d = tmp_path / "chain" / name
        d.mkdir(parents=True, exist_ok=True)
        job = dict(job, upstream_dirs={u: str(tmp_path / "chain" / u) for u in job["upstream_dirs"]})
        (d / "job_config.json").write_text(json.dumps(job))
    (tmp_path / "chain" / target / "scores.json").write_text(json.dumps(scores))
    if target == "videoqa":  # the job writes its answers beside its scores
        preds = [{"benchmark": d, "question_id": f"{d}_{i}", "pred": "red"} for d in scores["benchmarks"] for i in range(2)]
        (tmp_path / "chain" / target / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
        traces = [{**p, "rounds": [{"frames": [3, 1]}, {"frames": [1, 3, 5]}]} for p in preds]
        (tmp_path / "chain" / target / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    return tmp_path / "chain" / target


def _qa_scores(acc):
    return {"benchmarks": {d: {"accuracy": acc, "score": 2.5, "n": 4, "failures": 1,
                               "ci": {"accuracy": [acc - 10, acc + 10], "score": [2.0, 3.0]}} for d in QA},
            "judge": {"backend": "transformers:gguf:x", "model": "SmolLM2"}, "roles": {"evaluator": "smollm2"}}


def test_videoqa_table_collects_cis_and_renders_published_and_delta(tmp_path):
    target = _chain(tmp_path, "videoqa", _qa_scores(50.0))
    out = tmp_path / "t7" / "results.json"
    res = collect("table7", ROOT / "ablations" / "und_components.yaml", [("full", target)], out)
    row = res["rows"][0]
    assert res["kind"] == "videoqa" and row["scores"]["tgif_frameqa.accuracy"] == 50.0
    assert row["ci"]["msvd_qa.accuracy"] == [40.0, 60.0] and row["published_label"] == "UniVid (Full)"
    assert row["config"]["understanding"]["reflection"] is True and "tma" in row["config"]  # lineage incl. stage I
    tex = render_table(out, tmp_path / "table7.tex")
    measured = next(line for line in tex.splitlines() if line.startswith("UniVid (Full) &") and "tiny" in line)
    assert measured.count("&") == 8 and "50.0{\\tiny[40.0, 60.0]}" in measured
    delta = next(line for line in tex.splitlines() if "vs.\\ paper" in line)
    assert "& -30.1 &" in delta  # 50.0 - 80.1 on MSVD-QA accuracy
    assert "Scale: smoke" in tex and "Published (paper)" in tex and "\\textbf{80.1}" in tex
    assert "count as (no, 0): 4 of 16 in the measured rows" in tex


def test_vbench_table_has_two_blocks_and_bold_best_per_section(tmp_path):
    scores = {"aggregate": {"total": 50.0, "quality": 60.0, "semantic": 10.0},
              "dimensions": {d: 0.5 for d in DIMENSIONS}, "backends": {d: "stand-in" for d in DIMENSIONS}}
    target = _chain(tmp_path, "evaluate", scores)
    out = tmp_path / "t3" / "results.json"
    collect("table3", ROOT / "ablations" / "components.yaml", [("full", target)], out)
    tex = render_table(out, tmp_path / "table3.tex")
    rows = [line for line in tex.splitlines() if line.startswith("UniVid (Full) &")]
    assert len(rows) == 4  # published + measured, in each of the two blocks
    assert rows[0].startswith("UniVid (Full) & \\textbf{85.27}")  # the paper's best, bold within published rows
    assert rows[1].split("&")[1].strip() == "50.00"  # a single measured row has no "best"
    assert len([line for line in tex.splitlines() if "vs.\\ paper" in line]) == 2


def test_a_vbench_row_with_controls_is_followed_by_its_control_line(tmp_path):
    scores = {"aggregate": {"total": 50.0, "quality": 60.0, "semantic": 10.0},
              "dimensions": {d: 0.5 for d in DIMENSIONS}, "backends": {d: "stand-in" for d in DIMENSIONS},
              "controls": {"dimensions": {"color": 0.25, "object_class": 0.125, "spatial_relationship": 0.5},
                           "readings": {"color": 2, "object_class": 2, "spatial_relationship": 1}, "method": "m"}}
    out = tmp_path / "t3" / "results.json"
    res = collect("table3", ROOT / "ablations" / "components.yaml", [("full", _chain(tmp_path, "evaluate", scores))],
                  out)
    assert res["rows"][0]["controls"] == {"color": 25.0, "object_class": 12.5, "spatial_relationship": 50.0}
    assert res["rows"][0]["scores"]["color"] == 50.0  # the score itself is untouched
    assert row_metrics(res["rows"][0])["color.control"] == 25.0  # logged to MLflow beside the score
    tex = render_table(out, tmp_path / "table3.tex")
    lines = tex.splitlines()
    controls = [line for line in lines if line.startswith("\\quad control &")]
    assert len(controls) == 1  # in the semantic block only: the overall block has no control dimension
    header = next(i for i, line in enumerate(lines) if "Semantic Fidelity" in line) + 1
    columns = [c.strip().removesuffix("$\\uparrow$") for c in lines[header].split("&")[1:]]
    cells = dict(zip(columns, _cells(controls[0])))
    assert (cells["Color"], cells["Object"], cells["Spatial"]) == ("25.00", "12.50", "50.00")
    assert cells["Scene"] == "--"
    measured = lines.index(controls[0]) - 1
    assert lines[measured].startswith("UniVid (Full) &")  # right below its measured row
    assert "Control lines: the row's own videos scored as if another shape" in tex


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.rstrip().removesuffix("\\\\").split("&")[1:]]


def test_a_videoqa_cell_whose_every_verdict_failed_is_na_not_zero(tmp_path):
    scores = _qa_scores(50.0)
    # MSVD-QA: all 4 verdicts failed, which the judge protocol counts as ("no", 0) each: 0.0 was never measured.
    scores["benchmarks"]["msvd_qa"].update(accuracy=0.0, score=0.0, failures=4,
                                           ci={"accuracy": [0.0, 0.0], "score": [0.0, 0.0]})
    target = _chain(tmp_path, "videoqa", scores)
    out = tmp_path / "t7" / "results.json"
    res = collect("table7", ROOT / "ablations" / "und_components.yaml", [("full", target)], out)
    row = res["rows"][0]
    assert row["answers"]["msvd_qa/msvd_qa_1"] == "red" and len(row["answers"]) == 8  # per question, for regress
    # each round's frames in the order shown, as a digest: sha256 of "[[3,1],[1,3,5]]"
    assert row["retrieval"]["msvd_qa/msvd_qa_1"] == hashlib.sha256(b"[[3,1],[1,3,5]]").hexdigest()[:12]
    assert row["scores"]["msvd_qa.accuracy"] is None and row["scores"]["msvd_qa.score"] is None
    assert row["na"] == {"msvd_qa.accuracy": 4, "msvd_qa.score": 4} and "msvd_qa.accuracy" not in row["ci"]
    assert row["scores"]["msrvtt_qa.accuracy"] == 50.0  # 1 of 4 failed: a partial failure keeps its number
    tex = render_table(out, tmp_path / "table7.tex")
    measured = next(line for line in tex.splitlines() if line.startswith("UniVid (Full) &") and "failed" in line)
    cells = _cells(measured)
    assert cells[:2] == ["n/a (4 failed)", "n/a (4 failed)"] and cells[2] == "50.0{\\tiny[40.0, 60.0]}"
    delta = next(line for line in tex.splitlines() if "vs.\\ paper" in line)
    assert _cells(delta)[:3] == ["--", "--", "-11.4"]  # no delta for a cell with no number; 50.0 - 61.4
    assert "n/a ($k$ failed): every one of the cell's $k$ items failed" in tex
    # MLflow: no metric (nor CI bound) for the n/a cells; a tag says why they are absent.
    metrics = row_metrics(row)
    assert not [m for m in metrics if m.startswith("msvd_qa.")] and metrics["msrvtt_qa.accuracy"] == 50.0
    assert json.loads(_child_tags(res, row, "key", "parent")["univid.na"]) == \
        {"msvd_qa.accuracy": "4 failed", "msvd_qa.score": "4 failed"}


def test_a_vbench_dimension_whose_every_video_went_unscored_is_na(tmp_path):
    # color: no video showed its object (3 of 3 unscored), pooled as 0 by the harness; scene: 1 of 3 unscored.
    unscored = {"color": 3, "scene": 1}
    per_video = [{"video": f"v{i}.mp4", "dimension": d, "score": None if i < unscored.get(d, 0) else 0.5}
                 for d in DIMENSIONS for i in range(3)]
    scores = {"aggregate": {"total": 50.0, "quality": 60.0, "semantic": 10.0},
              "dimensions": {d: 0.5 for d in DIMENSIONS} | {"color": 0.0},
              "backends": {d: "stand-in" for d in DIMENSIONS}, "per_video": per_video,
              "unscored": {d: unscored.get(d, 0) for d in DIMENSIONS}}
    target = _chain(tmp_path, "evaluate", scores)
    out = tmp_path / "t3" / "results.json"
    row = collect("table3", ROOT / "ablations" / "components.yaml", [("full", target)], out)["rows"][0]
    assert row["scores"]["color"] is None and row["na"] == {"color": 3}
    assert row["scores"]["scene"] == 50.0 and row["scores"]["total"] == 50.0
    assert "color" not in row_metrics(row)
    tex = render_table(out, tmp_path / "table3.tex")
    overall, semantic = [_cells(line) for line in tex.splitlines()
                         if line.startswith("UniVid (Full) &") and "85.27" not in line and "94.52" not in line]
    assert overall[0] == "50.00" and "n/a" not in " ".join(overall)
    assert semantic[3] == "n/a (3 failed)" and semantic[5] == "50.00"  # color; scene keeps its number
    assert "count an n/a dimension as 0" in tex


def test_a_published_row_whose_printed_total_its_dimensions_do_not_give_is_marked(tmp_path):
    univid = (ROOT / "reports" / "published" / "table3.csv").read_text().splitlines()[-1]  # UniVid (Full): agrees
    assert univid.startswith("UniVid (Full),85.27,")
    published = tmp_path / "published"
    published.mkdir()
    header = (ROOT / "reports" / "published" / "table3.csv").read_text().splitlines()[0]
    # Peer: the UniVid row's dimensions under a Total of 85.30, where they give 85.269 (0.031 > 0.0136 of rounding).
    (published / "table3.csv").write_text("\n".join([header, univid, univid.replace("UniVid (Full),85.27,",
                                                                                 "Peer,85.30,")]) + "\n")
    scores = {"aggregate": {"total": 50.0, "quality": 60.0, "semantic": 10.0},
              "dimensions": {d: 0.5 for d in DIMENSIONS}, "backends": {d: "stand-in" for d in DIMENSIONS}}
    out = tmp_path / "t3" / "results.json"
    res = collect("table3", ROOT / "ablations" / "components.yaml", [("full", _chain(tmp_path, "evaluate", scores))],
                  out, published_dir=published)
    assert [r["audit"]["flagged"] for r in res["published"]["rows"]] == [False, True]
    tex = render_table(out, tmp_path / "table3.tex")
    assert len([line for line in tex.splitlines() if line.startswith("Peer$^\\dagger$ & ")]) == 1  # overall block
    assert len([line for line in tex.splitlines() if line.startswith("Peer & ")]) == 1  # semantic block: no totals
    assert not [line for line in tex.splitlines() if line.startswith("UniVid (Full)$")]
    assert "(beyond rounding; \\texttt{univid audit}): Peer: printed Total 85.30; recomputed from its dimensions " \
           "85.27." in tex


def test_mmbench_video_whose_every_judge_call_failed_is_na():
    row = suites_row({"benchmarks": {"mmbench_video": {"score": 0.0, "n": 5, "judge_failures": 5},
                                     "mlvu": {"accuracy": 0.0, "n": 5}}})
    assert row["scores"] == {"mmbench_video": None, "mlvu": 0.0} and row["na"] == {"mmbench_video": 5}
    partial = suites_row({"benchmarks": {"mmbench_video": {"score": 0.4, "n": 5, "judge_failures": 4}}})
    assert partial["scores"] == {"mmbench_video": 0.4} and partial["na"] == {}


def test_suites_table_groups_and_second_best(tmp_path):
    scores = {"benchmarks": {"mmlu": {"accuracy": 25.0, "n": 4}, "mmmu": {"accuracy": 50.0, "n": 4},
                             "videomme": {"accuracy": 30.0, "accuracy_short_medium": 40.0, "n": 4},
                             "mmbench_video": {"score": 1.0, "n": 4}, "mlvu": {"accuracy": 20.0, "n": 4}}}
    target = _chain(tmp_path, "suite", scores)
    out = tmp_path / "t10" / "results.json"
    res = collect("table10", ROOT / "ablations" / "unified_benchmarks.yaml", [("full", target)], out)
    assert res["rows"][0]["scores"] == {"mmlu": 25.0, "mmmu": 50.0, "videomme": 30.0, "videomme_sm": 40.0,
                                        "mmbench_video": 1.0, "mlvu": 20.0}
    tex = render_table(out, tmp_path / "table10.tex")
    assert "Frame Num & 32 & 32 & 64 & 64 & 64 & 64" in tex
    assert "\\textit{Und.Only Models}" in tex and "\\textit{Unified Models}" in tex
    qwen3 = next(line for line in tex.splitlines() if line.startswith("Qwen3-VL-8B"))
    assert qwen3.count("\\textbf") == 6  # best everywhere among the Und.Only models
    ours = next(line for line in tex.splitlines() if line.startswith("Ours-7B"))
    assert "\\underline{59.41}" in ours or "\\textbf{59.41}" in ours
    assert re.search(r"Ours-7B & 25\.00 & 50\.00", tex)


def test_collect_rejects_a_variant_not_in_the_ablation(tmp_path):
    target = _chain(tmp_path, "videoqa", _qa_scores(50.0))
    with pytest.raises(ValueError, match="variant 'nope' is not in"):
        collect("table7", ROOT / "ablations" / "und_components.yaml", [("nope", target)], tmp_path / "r.json")


def test_a_vbench_job_scored_on_some_dimensions_has_no_total_rather_than_a_crash():
    """eval.vbench.dimensions as a list (or a per-dimension shard read alone): aggregate is null in scores.json; the
    row leaves the other dimensions and Total/Quality/Semantic empty instead of failing on None."""
    from univid.report.collect import vbench_row

    scores = {"aggregate": None, "dimensions": {"color": 0.5, "scene": 0.25}, "backends": {}, "unscored": {},
              "per_video": []}
    row = vbench_row(scores)["scores"]
    assert row["color"] == 50.0 and row["scene"] == 25.0 and row["total"] is None and row["subject_consistency"] is None
