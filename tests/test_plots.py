"""`univid plots`: the figures show the planted numbers (read back from the matplotlib artists), tolerate missing
inputs with a note, and the plots rule feeds `snakemake --report`."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from univid.report import plots

ROOT = Path(__file__).resolve().parents[1]
PROV = {"git": {"commit": "0123456789abcdef", "dirty": False}, "packages": {}, "python": "3.11"}
TMA = {"schedule": "cosine", "lambda_txt": 0.3, "lambda_img": 0.5, "txt_end": 0.4, "img_start": 0.6,
       "progress": "step_fraction"}


def _job(d: Path, name: str, upstream: dict[str, Path], **files) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "job_config.json").write_text(json.dumps({"job": name, "key": d.name, "upstream_dirs":
                                                   {k: str(v) for k, v in upstream.items()}}))
    for fname, obj in files.items():
        fname = ".".join(fname.rsplit("_", 1))  # train_log_json -> train_log.json
        (d / fname).write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return d


def _log(kind_losses: dict[str, list[float]]) -> dict:
    return {"steps": [{"step": i, "kind": k, "loss": v, "phase": "-"} for k, vs in kind_losses.items()
                      for i, v in enumerate(vs)]}


def _trace(question: str, rounds: list[list[float]], accepted_last: bool) -> dict:
    fps = 8.0
    return {"question": question, "route": "static", "stopped_by": "evaluator" if accepted_last else "fallback",
            "pool": {"frames": [0, 8, 16, 24, 32], "size": 5},
            "rounds": [{"round": i + 1, "timestamps": ts, "frames": [int(t * fps) for t in ts],
                        "accepted": accepted_last and i == len(rounds) - 1} for i, ts in enumerate(rounds)]}


def _bar_sets(ax):
    from matplotlib.container import BarContainer

    return [c for c in ax.containers if isinstance(c, BarContainer)]  # one per variant (error bars are separate)


@pytest.fixture
def planted(tmp_path):
    """Two variants sharing stage II; a VBench results.json and a Video-QA results.json over the same chains."""
    stage2 = _job(tmp_path / "stage2" / "s2", "stage2", {}, train_log_json=_log({"und": [4.0, 3.0, 2.5]}))
    vb_rows, qa_rows = [], []
    for i, (variant, schedule) in enumerate((("wo_tma", "none"), ("cosine", "cosine"))):
        s1 = _job(tmp_path / "stage1" / variant, "stage1", {}, train_log_json=_log({"gen": [1.5 - i, 1.2, 1.0]}))
        s3 = _job(tmp_path / "stage3" / variant, "stage3", {"stage1": s1, "stage2": stage2},
                  train_log_json=_log({"gen": [1.1, 1.0], "und": [2.0, 1.9]}))
        ev = _job(tmp_path / "evaluate" / variant, "evaluate", {"stage3": s3}, scores_json={})
        label = f"UniVid ({variant})"
        vb_rows.append({"variant": variant, "label": label, "config": {"tma": dict(TMA, schedule=schedule)},
                        "scores": {"total": 60.0 + i, "quality": 70.0, "semantic": 20.0 + i,
                                   "subject_consistency": 90.0 - i}, "scores_path": str(ev / "scores.json")})
        traces = [_trace("what colour is the ball?", [[0.0, 1.0], [0.0, 1.0, 2.0, 3.0]], accepted_last=True),
                  _trace("what happens first?", [[2.0]], accepted_last=False)]
        qa = _job(tmp_path / "videoqa" / variant, "videoqa", {"stage3": s3}, scores_json={},
                  traces_jsonl="\n".join(json.dumps(t) for t in traces) + "\n")
        qa_rows.append({"variant": variant, "label": label, "kind": "videoqa", "config": {},
                        "scores": {"msvd_qa.accuracy": 40.0 + 10 * i, "msvd_qa.score": 2.0 + i,
                                   "activitynet_qa.accuracy": 30.0, "activitynet_qa.score": [None, 1.0][i]},
                        "ci": {"msvd_qa.accuracy": [35.0 + 10 * i, 46.0 + 10 * i], "msvd_qa.score": [1.5 + i, 2.5 + i]},
                        "scores_path": str(qa / "scores.json")})
    vb = {"table": "table4", "ablation": "tma_schedule", "title": "", "scale": "smoke", "rows": vb_rows,
          "provenance": PROV}
    qa = {"table": "table7", "ablation": "reflection", "title": "", "scale": "smoke", "kind": "videoqa",
          "rows": qa_rows, "provenance": PROV}
    paths = {}
    for name, obj in (("vbench", vb), ("qa", qa)):
        paths[name] = tmp_path / "tables" / name / "results.json"
        paths[name].parent.mkdir(parents=True)
        paths[name].write_text(json.dumps(obj))
    return tmp_path, vb, qa, paths


def test_tma_curves_follow_eq3_and_eq5(planted):
    _, vb, _, _ = planted
    fig = plots.tma_figure(vb, [])
    ax_txt, ax_img = fig.axes
    (u_none, txt_none), (u, txt) = [(l.get_xdata(), l.get_ydata()) for l in ax_txt.lines]
    img = ax_img.lines[1].get_ydata()
    assert np.all(txt_none == 1.0) and np.all(ax_img.lines[0].get_ydata() == 1.0)
    lam_t, lam_i, end, start = TMA["lambda_txt"], TMA["lambda_img"], TMA["txt_end"], TMA["img_start"]
    for k in (0, 20, 40, 80, 150):  # u = k / 200
        uk = u[k]
        eq3 = 1 + lam_t / 2 * (1 + math.cos(math.pi * uk / end)) if uk <= end else 1.0
        eq5 = 1.0 if uk <= start else 1 + lam_i / 2 * (1 - math.cos(math.pi * (uk - start) / (1 - start)))
        assert txt[k] == pytest.approx(eq3) and img[k] == pytest.approx(eq5)
    assert txt[0] == pytest.approx(1.3) and img[-1] == pytest.approx(1.5)


def test_vbench_bars_are_the_scores_in_order(planted):
    _, vb, _, _ = planted
    groups = plots.score_groups(vb)
    assert groups == {"": ["total", "quality", "semantic", "subject_consistency"]}
    ax = plots.dimension_figure(vb, groups[""]).axes[0]
    for row, bars in zip(vb["rows"], _bar_sets(ax)):
        assert [b.get_width() for b in bars] == [row["scores"][m] for m in groups[""]]


def test_qa_bars_carry_the_bootstrap_interval(planted):
    _, _, qa, _ = planted
    groups = plots.score_groups(qa)
    assert groups == {"accuracy": ["msvd_qa.accuracy", "activitynet_qa.accuracy"], "score": ["msvd_qa.score",
                                                                                             "activitynet_qa.score"]}
    ax_acc, ax_score = plots.benchmark_figure(qa, groups).axes
    for row, bars in zip(qa["rows"], _bar_sets(ax_acc)):
        assert [b.get_height() for b in bars] == [row["scores"]["msvd_qa.accuracy"], 30.0]
        (_, lo), (_, hi) = bars.errorbar.lines[2][0].get_segments()[0]  # the msvd_qa bar's error bar
        assert [lo, hi] == pytest.approx(row["ci"]["msvd_qa.accuracy"])
    assert math.isnan(_bar_sets(ax_score)[0][1].get_height())  # a missing score is a gap, not a zero


def test_suite_columns_split_percentages_from_the_mmbench_score():
    rows = [{"label": "UniVid", "kind": "suites", "scores": {"mmlu": 50.0, "videomme_sm": 40.0, "mmbench_video": 1.2}}]
    groups = plots.score_groups({"kind": "suites", "rows": rows})
    assert groups == {"accuracy": ["mmlu", "videomme_sm"], "score": ["mmbench_video"]}


def test_losses_per_stage_and_kind_with_shared_stage_once(planted):
    _, vb, _, _ = planted
    notes = []
    stages = plots.training_logs(vb, notes)
    assert notes == [] and {s: len(d) for s, d in stages.items()} == {"stage1": 2, "stage2": 1, "stage3": 2}
    fig = plots.loss_figure(vb, stages)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["stage1 [gen]", "stage2 [und]", "stage3 [gen]", "stage3 [und]"]
    stage2 = fig.axes[1].lines
    assert len(stage2) == 1 and list(stage2[0].get_ydata()) == [4.0, 3.0, 2.5]
    assert stage2[0].get_label() == "shared by 2 variants"
    assert list(fig.axes[0].lines[1].get_ydata()) == [0.5, 1.2, 1.0]


def test_reflection_timeline_puts_each_working_set_on_its_round(planted):
    _, _, qa, _ = planted
    traces = plots.reflection_traces(qa, [])
    fig = plots.timeline_figure(qa, traces)
    ax = fig.axes[0]  # first variant, the question with the most rounds
    pool, r1, r2 = [c.get_offsets() for c in ax.collections]
    assert pool[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and set(pool[:, 1]) == {0}
    assert r1.tolist() == [[0.0, 1], [1.0, 1]] and r2.tolist() == [[0.0, 2], [1.0, 2], [2.0, 2], [3.0, 2]]
    sizes = plots.rounds_figure(qa, traces).axes[0].lines[0]
    assert list(sizes.get_xdata()) == [1, 2] and list(sizes.get_ydata()) == [1.5, 4.0]


def test_cli_writes_valid_pngs_and_notes_what_is_missing(planted, capsys):
    from matplotlib.image import imread

    from univid.cli import main

    tmp, _, _, paths = planted
    (tmp / "stage3" / "cosine" / "train_log.json").unlink()
    (tmp / "videoqa" / "wo_tma" / "traces.jsonl").unlink()
    out = tmp / "plots"
    main(["plots", "--results", str(paths["qa"]), "--out-dir", str(out)])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["benchmarks.png", "notes.txt", "reflection_rounds.png", "reflection_timeline.png",
                     "training_loss.png"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(png).shape[0] > 100
    notes = (out / "notes.txt").read_text()
    assert "stage3/cosine/train_log.json missing" in notes and "videoqa/wo_tma/traces.jsonl missing" in notes
    assert "no row carries a tma config" in notes
    assert "train_log.json missing" in capsys.readouterr().err


@pytest.mark.slow
def test_plots_rule_builds_a_snakemake_report(planted):
    """The rule of workflows/rules/plots.smk in a scratch workflow: run it, then `snakemake --report` (~20 s)."""
    tmp, _, _, paths = planted
    work = tmp / "wf"
    shutil.copytree(ROOT / "workflows" / "rules", work / "workflows" / "rules")
    shutil.copytree(ROOT / "workflows" / "report", work / "workflows" / "report")
    target = work / "results" / "smoke" / "tables" / "table7"
    target.mkdir(parents=True)
    shutil.copy(paths["qa"], target / "results.json")
    (work / "Snakefile").write_text(
        'R = "results/smoke"\n'
        'def lineage(table):\n    return []\n'
        'report: "workflows/report/workflow.rst"\n'
        'include: "workflows/rules/plots.smk"\n')
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    run = lambda *a: subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *a], cwd=work, env=env,
                                    capture_output=True, text=True, timeout=300)
    proc = run("results/smoke/tables/table7/plots")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run("--report", "report.html", "results/smoke/tables/table7/plots")
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (work / "report.html").read_text()
    assert "reflection_timeline.png" in html and "benchmarks.png" in html and "Pyramid Reflection" in html
