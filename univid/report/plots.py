"""A table's figures (PNG) for the Snakemake report: TMA schedules, scores per variant, training losses, and Pyramid
Reflection working sets on a timeline.

Everything is read from results.json and the job directories it points at (each row's `scores_path`, whose
job_config.json `upstream_dirs` lead back to the training stages). A figure whose inputs are missing is skipped with a
note (returned, and written to notes.txt) instead of failing the table. Figures are built on matplotlib's Figure
directly (Agg canvas, no pyplot state), one function per figure, so tests can read the plotted data back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from univid.io import atomic_dir, read_json

DPI = 110
MAX_TIMELINE_QUESTIONS = 3  # per variant: the traces with the most rounds
HEADLINE = ("total", "quality", "semantic")  # VBench aggregates, drawn before the dimensions


def _labels(results: dict) -> list[str]:
    return [r["label"] for r in results["rows"]]


# ------------------------------------------------------------------------------------------------- TMA schedules
def tma_figure(results: dict, notes: list[str], points: int = 201) -> Figure | None:
    """alpha_txt(u) and alpha_img(u) (paper Eq. 3 and 5, and Table 4's alternatives) for every distinct TMA setting."""
    settings: dict[str, tuple[dict, list[str]]] = {}
    for row in results["rows"]:
        tma = (row.get("config") or {}).get("tma")
        if tma is None:
            continue
        key = json.dumps(tma, sort_keys=True)
        settings.setdefault(key, (tma, []))[1].append(row["label"])
    if not settings:
        notes.append("tma_schedules.png: no row carries a tma config (not a generation table)")
        return None
    # The torch-free schedule module: univid.models.tma would pull in torch and diffusers (~15 s on 2 busy cores).
    from univid.models.tma_schedule import alpha_img, alpha_txt

    u = np.linspace(0.0, 1.0, points)
    fig = Figure(figsize=(10, 3.8), dpi=DPI, layout="constrained")
    ax_txt, ax_img = fig.subplots(1, 2, sharey=True)
    for tma, labels in settings.values():
        name = f"{tma['schedule']} ({', '.join(labels)})"
        ax_txt.plot(u, [alpha_txt(x, tma["schedule"], tma["lambda_txt"], tma["txt_end"]) for x in u], label=name)
        ax_img.plot(u, [alpha_img(x, tma["schedule"], tma["lambda_img"], tma["img_start"]) for x in u], label=name)
    for ax, title in ((ax_txt, r"text keys: $\alpha_{txt}(u)$"), (ax_img, r"reference-image keys: $\alpha_{img}(u)$")):
        ax.set_title(title)
        ax.set_xlabel("denoising progress u")
        ax.grid(alpha=0.3)
    ax_txt.set_ylabel(r"$\alpha$ (multiplies pre-softmax scores)")
    ax_img.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{results['table']}: TMA schedules ({results['scale']} scale)")
    return fig


# ---------------------------------------------------------------------------------------------- scores per variant
def _numeric(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _group(kind: str, metric: str) -> str:
    if "." in metric:  # "benchmark.measure": msvd_qa.accuracy, msvd_qa.score
        return metric.rsplit(".", 1)[1]
    if kind == "suites":  # Table 10 columns: percent accuracies, and MMBench-Video's 0-3 score
        from univid.report.collect import SUITE_METRICS

        return "score" if SUITE_METRICS.get(metric, ("", "accuracy"))[1] == "score" else "accuracy"
    return ""


def score_groups(results: dict) -> dict[str, list[str]]:
    """Metrics by what they measure: VBench's (Total/Quality/Semantic, the dimensions; percent) in group "";
    "benchmark.measure" names (msvd_qa.accuracy, msvd_qa.score) and the suites grouped by measure."""
    groups: dict[str, list[str]] = {"": [m for m in HEADLINE if any(_numeric(r["scores"].get(m)) is not None
                                                                     for r in results["rows"])]}
    for row in results["rows"]:
        kind = row.get("kind") or results.get("kind") or "vbench_long"
        for metric, value in row["scores"].items():
            if _numeric(value) is None:
                continue
            group = _group(kind, metric)
            if metric not in groups.setdefault(group, []):
                groups[group].append(metric)
    return {g: ms for g, ms in groups.items() if ms}


def _bars(ax, results: dict, metrics: list[str], names: list[str], horizontal: bool) -> None:
    rows = results["rows"]
    width = 0.8 / len(rows)
    pos = np.arange(len(metrics))
    for i, row in enumerate(rows):
        vals = [_numeric(row["scores"].get(m)) for m in metrics]
        heights = [np.nan if v is None else v for v in vals]
        ci = row.get("ci") or {}
        err = None
        if any(ci.get(m) for m in metrics):
            # NaN: no interval for that metric, so no error bar is drawn (rather than a zero-width one)
            err = np.array([[h - ci[m][0], ci[m][1] - h] if ci.get(m) and not np.isnan(h) else [np.nan, np.nan]
                            for m, h in zip(metrics, heights)]).T
        offset = pos - 0.4 + width * (i + 0.5)
        if horizontal:
            ax.barh(offset, heights, height=width, xerr=err, label=row["label"], capsize=2)
        else:
            ax.bar(offset, heights, width=width, yerr=err, label=row["label"], capsize=3)
    if horizontal:
        ax.set_yticks(pos, names, fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(pos, names, fontsize=8, rotation=20)
        ax.grid(axis="y", alpha=0.3)


def dimension_figure(results: dict, metrics: list[str]) -> Figure:
    """Grouped horizontal bars: one group per VBench dimension (and Total/Quality/Semantic), one bar per variant."""
    fig = Figure(figsize=(9, 1.0 + 0.12 * len(metrics) * len(results["rows"])), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    _bars(ax, results, metrics, [m.replace("_", " ") for m in metrics], horizontal=True)
    ax.set_xlabel("score (%)")
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{results['table']}: per-dimension scores per variant ({results['scale']} scale)")
    return fig


def benchmark_figure(results: dict, groups: dict[str, list[str]]) -> Figure:
    """One panel per measure (accuracy, score, ...): one group per benchmark, one bar per variant, CI error bars."""
    measures = [g for g in groups if g]
    fig = Figure(figsize=(max(6.0, 1.2 * max(len(groups[m]) for m in measures) * (1 + len(results["rows"]) / 4)),
                          3.4 * len(measures)), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(measures), 1, squeeze=False)[:, 0])
    for ax, measure in zip(axes, measures):
        metrics = groups[measure]
        _bars(ax, results, metrics, [m.rsplit(".", 1)[0] for m in metrics], horizontal=False)
        ax.set_ylabel(measure.replace("_", " "))
        ax.legend(fontsize=7)
    fig.suptitle(f"{results['table']}: per-benchmark scores per variant ({results['scale']} scale)\n"
                 f"error bars: bootstrap confidence intervals, where computed", fontsize=10)
    return fig


# -------------------------------------------------------------------------------------------------- training loss
def job_chain(job_dir: Path) -> dict[str, Path]:
    """job name -> directory, following job_config.json upstream_dirs back from a job directory (missing: skipped)."""
    chain: dict[str, Path] = {}
    todo = [Path(job_dir)]
    while todo:
        d = todo.pop()
        cfg_path = d / "job_config.json"
        if not cfg_path.is_file():
            continue
        job = read_json(cfg_path)
        if job["job"] in chain:
            continue
        chain[job["job"]] = d
        todo.extend(Path(u) for u in job.get("upstream_dirs", {}).values())
    return chain


def training_logs(results: dict, notes: list[str]) -> dict[str, dict[Path, list[str]]]:
    """stage -> {train directory: labels of the variants that use it}; shared stages appear once."""
    stages: dict[str, dict[Path, list[str]]] = {}
    for row in results["rows"]:
        chain = job_chain(Path(row["scores_path"]).parent)
        found = {j: d for j, d in chain.items() if j.startswith("stage")}
        if not found:
            notes.append(f"training_loss.png: no training stage reachable from {Path(row['scores_path']).parent} "
                         f"({row['variant']})")
        for stage, d in found.items():
            if not (d / "train_log.json").is_file():
                notes.append(f"training_loss.png: {d / 'train_log.json'} missing ({row['variant']}, {stage})")
                continue
            stages.setdefault(stage, {}).setdefault(d, []).append(row["label"])
    return dict(sorted(stages.items()))


def loss_figure(results: dict, stages: dict[str, dict[Path, list[str]]]) -> Figure:
    """One panel per stage and loss kind (gen: flow matching, und: SFT cross-entropy; their scales differ tenfold),
    one line per training run, coloured by variant (a stage shared by several variants is one line)."""
    colours = {label: f"C{i}" for i, label in enumerate(_labels(results))}
    panels = []  # (title, [(label, colour, steps, losses)])
    for stage, dirs in stages.items():
        logs = {d: read_json(d / "train_log.json")["steps"] for d in dirs}
        for kind in ("gen", "und"):
            lines = []
            for d, labels in dirs.items():
                pts = [(s["step"], s["loss"]) for s in logs[d] if s.get("kind") == kind]
                if pts:
                    who = labels[0] if len(labels) == 1 else f"shared by {len(labels)} variants"
                    lines.append((who, colours[labels[0]] if len(labels) == 1 else "0.3", *zip(*pts)))
            if lines:
                panels.append((f"{stage} [{kind}]", lines))
    fig = Figure(figsize=(3.8 * len(panels), 3.6), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    for ax, (title, lines) in zip(axes, panels):
        for who, colour, x, y in lines:
            ax.plot(x, y, color=colour, label=who, lw=1.2)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("loss")
    fig.suptitle(f"{results['table']}: training losses ({results['scale']} scale)")
    return fig


# ------------------------------------------------------------------------------------ Pyramid Reflection timeline
def read_traces(path: Path) -> list[dict]:
    """traces.jsonl lines: a trace dict (PyramidReflection.ask) or {"trace": {...}, ...} with the trace inside."""
    traces = []
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            trace = dict(rec["trace"], **{k: v for k, v in rec.items() if k != "trace"}) if "trace" in rec else rec
            traces.append(trace)
    return traces


def reflection_traces(results: dict, notes: list[str]) -> dict[str, list[dict]]:
    """label -> that variant's traces (Video-QA rows only; other rows have no reflection)."""
    out = {}
    for row in results["rows"]:
        path = Path(row["scores_path"]).parent / "traces.jsonl"
        if path.is_file():
            traces = [t for t in read_traces(path) if t.get("rounds")]
            if traces:
                out[row["label"]] = traces
            else:
                notes.append(f"reflection_timeline.png: {path} has no trace with rounds ({row['variant']})")
        elif (row.get("kind") or results.get("kind")) == "videoqa":
            notes.append(f"reflection_timeline.png: {path} missing ({row['variant']})")
    return out


def _fps(trace: dict) -> float | None:
    for rec in trace["rounds"]:
        for frame, ts in zip(rec.get("frames", []), rec.get("timestamps", [])):
            if frame and ts:
                return frame / ts
    return None


def timeline_figure(results: dict, traces: dict[str, list[dict]]) -> Figure:
    """Per variant, the questions with the most rounds: each round's working set as points on the video's time axis
    (round 0: the whole frame pool), so expansion (static route) and MMR shrinking (dynamic route) are visible."""
    ncols = min(MAX_TIMELINE_QUESTIONS, max(len(t) for t in traces.values()))
    fig = Figure(figsize=(4.2 * ncols, 2.3 * len(traces) + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(traces), ncols, squeeze=False)
    for r, (label, variant_traces) in enumerate(traces.items()):
        ranked = sorted(range(len(variant_traces)), key=lambda i: (-len(variant_traces[i]["rounds"]), i))
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(ranked):
                ax.set_axis_off()
                continue
            trace = variant_traces[ranked[c]]
            fps = _fps(trace)
            pool = (trace.get("pool") or {}).get("frames") or []
            if fps and pool:
                ax.scatter(np.asarray(pool) / fps, np.zeros(len(pool)), s=6, c="0.6", label="pool")
            for rec in trace["rounds"]:
                colour = "tab:green" if rec.get("accepted") else "tab:blue"
                ax.scatter(rec["timestamps"], np.full(len(rec["timestamps"]), rec["round"]), s=14, c=colour)
            n_rounds = max(rec["round"] for rec in trace["rounds"])
            ax.set_yticks(range(n_rounds + 1), ["pool"] + [f"round {i}" for i in range(1, n_rounds + 1)], fontsize=7)
            ax.set_ylim(n_rounds + 0.5, -0.5)
            question = (f"{trace['benchmark']}: " if trace.get("benchmark") else "") + trace.get("question", "")
            ax.set_title(f"{question[:42]}{'...' if len(question) > 42 else ''}\n"
                         f"route {trace.get('route', '?')}, stopped by {trace.get('stopped_by', '?')}", fontsize=7)
            ax.grid(axis="x", alpha=0.3)
            if r == len(traces) - 1:
                ax.set_xlabel("time in video (s)")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{results['table']}: Pyramid Reflection working sets per round (green: accepted by the Evaluator; "
                 f"{results['scale']} scale)", fontsize=9)
    return fig


def rounds_figure(results: dict, traces: dict[str, list[dict]]) -> Figure:
    """Per variant: mean working-set size at each round, and how many questions reached that round."""
    fig = Figure(figsize=(9, 3.4), dpi=DPI, layout="constrained")
    ax_size, ax_count = fig.subplots(1, 2)
    for label, variant_traces in traces.items():
        sizes: dict[int, list[int]] = {}
        for t in variant_traces:
            for rec in t["rounds"]:
                sizes.setdefault(rec["round"], []).append(len(rec["timestamps"]))
        rounds = sorted(sizes)
        ax_size.plot(rounds, [np.mean(sizes[i]) for i in rounds], "o-", label=label)
        ax_count.plot(rounds, [len(sizes[i]) for i in rounds], "o-", label=label)
    ax_size.set_ylabel("frames in working set (mean)")
    ax_count.set_ylabel("questions reaching the round")
    for ax in (ax_size, ax_count):
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    ax_count.legend(fontsize=7)
    fig.suptitle(f"{results['table']}: Pyramid Reflection rounds ({results['scale']} scale)")
    return fig


# ------------------------------------------------------------------------------------------------------ all of them
def figures(results: dict) -> tuple[dict[str, Figure], list[str]]:
    notes: list[str] = []
    figs: dict[str, Figure] = {}
    fig = tma_figure(results, notes)
    if fig is not None:
        figs["tma_schedules"] = fig
    groups = score_groups(results)
    if groups.get(""):
        figs["dimensions"] = dimension_figure(results, groups[""])
    if any(g for g in groups):
        figs["benchmarks"] = benchmark_figure(results, groups)
    if not groups:
        notes.append("scores: no numeric score in any row")
    stages = training_logs(results, notes)
    if stages:
        figs["training_loss"] = loss_figure(results, stages)
    traces = reflection_traces(results, notes)
    if traces:
        figs["reflection_timeline"] = timeline_figure(results, traces)
        figs["reflection_rounds"] = rounds_figure(results, traces)
    return figs, notes


def write_plots(results_path: Path, out_dir: Path) -> dict:
    """Write every figure the inputs allow as <name>.png (+ notes.txt naming what was skipped); all or nothing."""
    results = read_json(results_path)
    if not results.get("rows"):
        raise ValueError(f"{results_path}: no rows (expected one row per variant, written by `univid collect`)")
    figs, notes = figures(results)
    with atomic_dir(out_dir) as tmp:
        for name, fig in figs.items():
            fig.savefig(tmp / f"{name}.png")
        if notes:
            (tmp / "notes.txt").write_text("\n".join(notes) + "\n")
    return {"written": [f"{n}.png" for n in figs], "notes": notes}
