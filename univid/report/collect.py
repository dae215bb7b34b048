"""Gather one table's variant scores into results.json and results.csv.

Each variant's row is read from the job its table's benchmark names (univid.config.jobs.BENCHMARK_JOBS): VBench-Long
scores from `evaluate`, Video-QA accuracy/score with bootstrap CIs from `videoqa`, the Table 10 suites from `suite`.
The rows the paper prints (peers and its own UniVid rows) come from reports/published/<table>.csv, marked published;
a VBench row carries its audit (univid.report.audit: printed totals against its own printed dimensions).
A cell whose every item failed to be judged or scored (all verdicts of a Video-QA benchmark, every video of a VBench
dimension, every MMBench-Video judge call) is n/a: None in `scores`, the count of failed items in the row's `na`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from univid.config import load_ablation
from univid.config.jobs import JOBS
from univid.config.load import deep_merge
from univid.eval.vbench.constants import DIMENSIONS
from univid.io import atomic_path, read_json, write_json
from univid.provenance import provenance
from univid.report.audit import audit_table

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_DIR = REPO_ROOT / "reports" / "published"
_JOB_ONLY = ("job", "key", "dir", "upstream", "upstream_dirs", "univid", "scale", "seed", "device", "dtype")
KINDS = {"evaluate": "vbench_long", "videoqa": "videoqa", "suite": "suites"}
SUITE_METRICS = {"mmlu": ("mmlu", "accuracy"), "mmmu": ("mmmu", "accuracy"), "videomme": ("videomme", "accuracy"),
                 "videomme_sm": ("videomme", "accuracy_short_medium"), "mmbench_video": ("mmbench_video", "score"),
                 "mlvu": ("mlvu", "accuracy")}


def job_chain(target_dir: Path) -> dict[str, dict]:
    """job name -> job config, following upstream_dirs from a table's target job back to curate."""
    chain: dict[str, dict] = {}
    todo = [target_dir]
    while todo:
        job = read_json(Path(todo.pop()) / "job_config.json")
        if job["job"] in chain:
            continue
        chain[job["job"]] = job
        todo.extend(Path(d) for d in job["upstream_dirs"].values())
    return {name: chain[name] for name in JOBS if name in chain}


def lineage_config(chain: dict[str, dict]) -> dict:
    """The resolved config as far as this row depends on it: the union of the sections its jobs read."""
    merged: dict = {}
    for job in chain.values():
        merged = deep_merge(merged, {k: v for k, v in job.items() if k not in _JOB_ONLY})
    return merged


def _id_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def all_failed(failed, n) -> bool:
    """Every one of a cell's n items failed to be judged or scored: the cell has no number (n/a), not the 0 its
    failures count as. A cell where only some failed keeps its number."""
    return bool(n) and failed is not None and failed >= n


def vbench_row(scores: dict) -> dict:
    # A suite without prompts for every dimension (VBench-I2V's has no semantic prompts), or a job scored on some
    # dimensions only (eval.vbench.dimensions a list), has no Total/Quality/Semantic and no number for the
    # dimensions it does not cover: None (printed "--"), never a 0.
    agg = scores.get("aggregate")
    row = {k: (agg[k] if agg else None) for k in ("total", "quality", "semantic")}
    row.update({d: (100.0 * scores["dimensions"][d] if d in scores["dimensions"] else None) for d in DIMENSIONS})
    i2v = scores.get("i2v") or {}  # the ti2v track: video-image consistency against each reference image
    row.update({d: 100.0 * v for d, v in (i2v.get("dimensions") or {}).items()})
    # A dimension that left out every video (color: the object never appeared) is pooled as 0 by the harness,
    # where VBench would divide by zero: n/a here. Total/Quality/Semantic keep that 0 (a partial failure).
    videos = Counter(r["dimension"] for r in scores.get("per_video") or [])
    na = {}
    for d, k in (scores.get("unscored") or {}).items():
        if d in videos and all_failed(k, videos[d]):
            row[d], na[d] = None, k
    # Each detection dimension's control (univid.eval.vbench.controls), where the scorer has one.
    controls = {d: 100.0 * v for d, v in ((scores.get("controls") or {}).get("dimensions") or {}).items()}
    return {"scores": row, "ci": {}, "backends": {**scores["backends"], **(i2v.get("backends") or {})}, "na": na,
            "controls": controls}


def videoqa_row(scores: dict) -> dict:
    row, ci, na = {}, {}, {}
    for dataset, s in scores["benchmarks"].items():
        if all_failed(s.get("failures"), s.get("n")):  # every verdict failed: ("no", 0) each, not a measured 0
            for metric in ("accuracy", "score"):
                row[f"{dataset}.{metric}"], na[f"{dataset}.{metric}"] = None, s["failures"]
            continue
        for metric in ("accuracy", "score"):
            row[f"{dataset}.{metric}"] = float(s[metric])
            if s.get("ci", {}).get(metric) is not None:
                ci[f"{dataset}.{metric}"] = [float(x) for x in s["ci"][metric]]
    ids = {k: _id_text(scores[k]) for k in ("judge", "actor") if k in scores}
    ids.update({f"role.{r}": _id_text(v) for r, v in (scores.get("roles") or {}).items()})
    return {"scores": row, "ci": ci, "backends": ids, "na": na, "judge_agreement": scores.get("judge_agreement"),
            "failures": {d: s.get("failures", 0) for d, s in scores["benchmarks"].items()},
            "n": {d: s.get("n") for d, s in scores["benchmarks"].items()}}


def _per_question(path: Path, what: str, value) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected the videoqa job's {what} beside its scores.json)")
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    raise ValueError(f"{path}:{n}: not JSON (expected one whole record a line, as the videoqa job "
                                     f"writes; rerun the job to resume it)") from None
                out[f"{rec['benchmark']}/{rec['question_id']}"] = value(rec)
    return dict(sorted(out.items()))


def videoqa_answers(predictions: Path) -> dict[str, str]:
    """"benchmark/question_id" -> the Actor's answer (`pred`), from a videoqa job's predictions.jsonl."""
    return _per_question(predictions, "predictions", lambda rec: rec["pred"])


def videoqa_retrieval(traces: Path) -> dict[str, str]:
    """"benchmark/question_id" -> a digest (sha256, 12 hex digits) of the frames the Actor was shown in each round, in
    the order shown (traces.jsonl has the frames): a results.json stays small with ~150k questions at paper scale."""
    def digest(rec: dict) -> str:
        frames = json.dumps([r["frames"] for r in rec["rounds"]], separators=(",", ":"))
        return hashlib.sha256(frames.encode()).hexdigest()[:12]

    return _per_question(traces, "traces", digest)


def suites_row(scores: dict) -> dict:
    row, ids, na = {}, {}, {}
    bench = scores["benchmarks"]
    for metric, (name, field) in SUITE_METRICS.items():
        if name in bench and all_failed(bench[name].get("judge_failures"), bench[name].get("n")):
            row[metric], na[metric] = None, bench[name]["judge_failures"]  # MMBench-Video: every judge call failed
        elif name in bench and bench[name].get(field) is not None:
            row[metric] = float(bench[name][field])
    for name, s in bench.items():
        for key in ("scorer", "extraction", "judge"):
            if key in s:
                ids[f"{name}.{key}"] = _id_text(s[key])
    return {"scores": row, "ci": {}, "backends": ids, "na": na,
            "n": {name: s.get("n") for name, s in bench.items()}}


READERS = {"vbench_long": vbench_row, "videoqa": videoqa_row, "suites": suites_row}


def load_published(table: str, published_dir: Path = PUBLISHED_DIR) -> list[dict]:
    """The paper's printed rows for a table: [{label, scores, **extra columns}] (empty cells dropped)."""
    path = Path(published_dir) / f"{table}.csv"
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype={"label": str, "group": str, "llm_size": str}, keep_default_na=True)
    extra = [c for c in ("group", "llm_size") if c in frame.columns]
    rows = []
    for _, r in frame.iterrows():
        scores = {c: float(r[c]) for c in frame.columns if c not in ("label", *extra) and pd.notna(r[c])}
        rows.append({"label": r["label"], "scores": scores,
                     **{c: ("" if pd.isna(r[c]) else str(r[c])) for c in extra}})
    return rows


def collect(table: str, ablation_path: str | Path, variants: list[tuple[str, Path]], out: Path,
            published_dir: Path = PUBLISHED_DIR) -> dict:
    ablation = load_ablation(ablation_path)
    spec = {v["name"]: v for v in ablation["variants"]}
    published = load_published(table, published_dir)
    if published:  # VBench rows: printed totals against their own printed dimensions (univid audit)
        audits = {a["label"]: a for a in audit_table(Path(published_dir) / f"{table}.csv")}
        published = [{**p, "audit": audits[p["label"]]} if p["label"] in audits else p for p in published]
    published_labels = {p["label"] for p in published}
    rows, kinds = [], set()
    for name, target_dir in variants:
        if name not in spec:
            raise ValueError(f"collect: variant {name!r} is not in {ablation_path} (expected one of {', '.join(spec)})")
        chain = job_chain(Path(target_dir))
        target = list(chain.values())[-1]
        kind = KINDS[target["job"]]
        kinds.add(kind)
        scores = read_json(Path(target_dir) / "scores.json")
        pub = spec[name].get("published")
        if pub and published and pub not in published_labels:
            raise ValueError(f"collect: variant {name!r} names published row {pub!r}, which is not in "
                             f"{published_dir}/{table}.csv (expected one of its labels)")
        config = lineage_config(chain)
        rows.append({
            "variant": name, "label": spec[name]["label"], "kind": kind, **READERS[kind](scores),
            "published_label": pub if pub in published_labels else None,
            "config_hash": target["key"], "job_keys": {job: cfg["key"] for job, cfg in chain.items()},
            "seed": target["seed"], "scale": target["scale"], "config": config,
            "scores_path": str(Path(target_dir) / "scores.json"),
        })
        if kind == "videoqa":  # each question's answer, for univid regress's per-question check
            rows[-1]["answers"] = videoqa_answers(Path(target_dir) / "predictions.jsonl")
            rows[-1]["retrieval"] = videoqa_retrieval(Path(target_dir) / "traces.jsonl")
        if kind == "vbench_long":  # the generation track the row's videos come from (eval.vbench.track)
            rows[-1]["track"] = (config.get("eval") or {}).get("vbench", {}).get("track", "t2v")
    scales = {r["scale"] for r in rows}
    if len(scales) != 1 or len(kinds) != 1:
        raise ValueError(f"collect: variants come from scales {sorted(scales)} and benchmarks {sorted(kinds)} "
                         f"(expected one of each per table)")
    result = {"table": table, "ablation": ablation["name"], "title": ablation.get("title", ""),
              "kind": kinds.pop(), "scale": scales.pop(), "rows": rows,
              "published": {"source": f"reports/published/{table}.csv", "rows": published} if published else None,
              "provenance": provenance()}
    write_json(out, result)
    frame = pd.DataFrame([{"variant": r["variant"], "label": r["label"], "scale": r["scale"],
                           "config_hash": r["config_hash"], **r["scores"],
                           **{f"{m}.ci_lo": ci[0] for m, ci in r["ci"].items()},
                           **{f"{m}.ci_hi": ci[1] for m, ci in r["ci"].items()},
                           **{f"{m}.failed": k for m, k in r["na"].items()}} for r in rows])
    with atomic_path(out.with_suffix(".csv")) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    return result
