"""Render a table's results.json as LaTeX through reports/templates/<table>.tex.j2 (Jinja, LaTeX-safe delimiters).

Layouts mirror the paper: VBench-Long tables (1, 3-6) as an overall/technical/aesthetic block and a semantic block,
Video-QA tables (2, 7-9) as four benchmarks x (Acc, Score), Table 10 as six benchmark columns with group rows.
Published rows (reports/published/<table>.csv) and measured rows are separate sections, each with its own best in
bold (Table 10: second best underlined, as the paper does); a measured row that has a published counterpart gets a
"Delta vs. paper" line (measured minus published), and Video-QA cells carry their 95% bootstrap CI. A cell whose
every item failed is "n/a (k failed)", never a number. A published VBench row whose printed Total/Quality/Semantic
the official formula does not reproduce from its own printed dimensions (univid audit) gets a dagger and a note.
"""

from __future__ import annotations

import math
from pathlib import Path

import jinja2

from univid.eval.vbench.constants import QUALITY_DIMS, SEMANTIC_DIMS
from univid.io import read_json, write_text
from univid.report.audit import disagreement

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "reports" / "templates"

# The paper's column headers for VBench-Long tables (Tables 1, 3-6).
HEADERS = {"total": "Total Score", "quality": "Quality", "semantic": "Semantic",
           "subject_consistency": "Subject", "background_consistency": "Background",
           "temporal_flickering": "Temporal", "motion_smoothness": "Motion", "dynamic_degree": "Dynamic",
           "aesthetic_quality": "Aesthetic", "imaging_quality": "Imaging", "object_class": "Object",
           "multiple_objects": "Multi-Obj", "human_action": "Action", "color": "Color",
           "spatial_relationship": "Spatial", "scene": "Scene", "appearance_style": "Appearance",
           "temporal_style": "Temporal", "overall_consistency": "Overall",
           "mmlu": "MMLU", "mmmu": "MMMU", "videomme": "MME", "videomme_sm": "MME(S\\&M)",
           "mmbench_video": "MMBench", "mlvu": "MLVU", "i2v_subject": "I2V Subject", "i2v_background": "I2V Background"}
I2V_COLUMNS = ["i2v_subject", "i2v_background"]  # VBench-I2V's video-image consistency (the ti2v track)
OVERALL = ["total", "quality", "semantic"]
QA_DATASETS = {"msvd_qa": "MSVD-QA", "msrvtt_qa": "MSRVTT-QA", "tgif_frameqa": "TGIF-QA",
               "activitynet_qa": "ActivityNet-QA"}
QA_COLUMNS = [f"{d}.{m}" for d in QA_DATASETS for m in ("accuracy", "score")]
SUITE_COLUMNS = ["mmlu", "mmmu", "videomme", "videomme_sm", "mmbench_video", "mlvu"]
SUITE_FRAMES = {"mmlu": 32, "mmmu": 32, "videomme": 64, "videomme_sm": 64, "mmbench_video": 64, "mlvu": 64}
_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{", block_end_string="}", variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}", line_statement_prefix="%%", line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["tex"] = latex_escape
    return env


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def ranks(rows: list[dict], columns: list[str], decimals: dict[str, int]) -> dict[str, tuple[float | None, float | None]]:
    """Per column: (best, second best) rounded value among the rows (higher is better everywhere in these tables);
    a column where every row ties has no best."""
    out = {}
    for c in columns:
        values = sorted({round(v, decimals[c]) for r in rows if (v := _num(r["scores"].get(c))) is not None},
                        reverse=True)
        out[c] = (values[0] if len(values) > 1 else None, values[1] if len(values) > 2 else None)
    return out


def cell(value, column: str, decimals: dict[str, int], rank=(None, None), ci=None, failed: int | None = None) -> str:
    v = _num(value)
    if v is None:
        return f"n/a ({failed} failed)" if failed else "--"
    text = f"{v:.{decimals[column]}f}"
    if rank[0] is not None and round(v, decimals[column]) == rank[0]:
        text = rf"\textbf{{{text}}}"
    elif rank[1] is not None and round(v, decimals[column]) == rank[1]:
        text = rf"\underline{{{text}}}"
    if ci:
        text += rf"{{\tiny[{ci[0]:.{decimals[column]}f}, {ci[1]:.{decimals[column]}f}]}}"
    return text


def _delta(measured: dict, published: dict, column: str, decimals: dict[str, int]) -> str:
    m, p = _num(measured.get(column)), _num(published.get(column))
    return "--" if m is None or p is None else f"{m - p:+.{decimals[column]}f}"


def _flagged(row: dict) -> bool:
    return bool((row.get("audit") or {}).get("flagged"))


def audit_notes(published_rows: list[dict]) -> list[str]:
    """One note per flagged published row: "<label>: printed Total X; recomputed from its dimensions Y"."""
    notes = []
    for p in published_rows:
        if _flagged(p):
            printed, recomputed = disagreement(p["audit"])
            notes.append(f"{p['label']}: printed {printed}; recomputed from its dimensions {recomputed}")
    return notes


def section(rows: list[dict], columns: list[str], decimals: dict[str, int], underline: bool,
            published: dict[str, dict] | None = None, rank_over: list[dict] | None = None) -> list[dict]:
    """Template rows for one section: {label, mark, cells, kind (published|measured|control|delta), extra (e.g.
    llm size)}; a measured row with controls is followed by its control line.
    Best/second best are taken over `rank_over` (default: the section's own rows). The mark (a dagger) goes on a
    flagged published row in the block that shows its totals."""
    rk = ranks(rank_over if rank_over is not None else rows, columns, decimals)
    if not underline:
        rk = {c: (b, None) for c, (b, _) in rk.items()}
    out = []
    for r in rows:
        out.append({"label": r["label"], "kind": r.get("_kind", "measured"), "extra": r.get("llm_size", ""),
                    "mark": r"$^\dagger$" if _flagged(r) and "total" in columns else "",
                    "cells": [cell(r["scores"].get(c), c, decimals, rk[c], (r.get("ci") or {}).get(c),
                                   (r.get("na") or {}).get(c)) for c in columns]})
        if any(c in (r.get("controls") or {}) for c in columns):
            out.append({"label": r"\quad control", "kind": "control", "extra": "", "mark": "",
                        "cells": [cell(r["controls"].get(c), c, decimals) for c in columns]})
        pub = (published or {}).get(r.get("published_label") or "")
        if pub is not None:
            out.append({"label": r"\quad $\Delta$ vs.\ paper", "kind": "delta", "extra": "", "mark": "",
                        "cells": [_delta(r["scores"], pub["scores"], c, decimals) for c in columns]})
    return out


def layout(kind: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Column blocks and decimals per column for a benchmark kind."""
    if kind == "vbench_long":
        blocks = {"overall": OVERALL + list(QUALITY_DIMS), "semantic": list(SEMANTIC_DIMS)}
        return blocks, {c: 2 for cols in blocks.values() for c in cols}
    if kind == "videoqa":
        return {"qa": QA_COLUMNS}, {c: 1 for c in QA_COLUMNS}
    if kind == "suites":
        return {"suites": SUITE_COLUMNS}, {c: 2 for c in SUITE_COLUMNS}
    raise ValueError(f"results.json kind {kind!r}: expected vbench_long, videoqa or suites")


def context(results: dict) -> dict:
    kind = results.get("kind", "vbench_long")
    blocks, decimals = layout(kind)
    # Rows generated on the ti2v track carry their video-image consistency: a block of its own, measured rows only
    # (the paper prints none).
    if kind == "vbench_long" and any(c in r["scores"] for r in results["rows"] for c in I2V_COLUMNS):
        blocks["i2v"] = list(I2V_COLUMNS)
        decimals.update({c: 2 for c in I2V_COLUMNS})
    underline = kind == "suites"  # Table 10 marks the second best too
    published_rows = [{**p, "_kind": "published"} for p in (results.get("published") or {}).get("rows", [])]
    by_label = {p["label"]: p for p in published_rows}
    groups = []
    for p in published_rows:  # Table 10's "Und.Only Models" / "Unified Models" groups, in the paper's order
        if p.get("group") and p["group"] not in groups:
            groups.append(p["group"])
    sections = {}
    for name, cols in blocks.items():
        # Table 10 ranks across both groups, as the paper does.
        pub_sections = ([{"title": g, "rows": section([p for p in published_rows if p.get("group") == g], cols,
                                                      decimals, underline, rank_over=published_rows)}
                         for g in groups]
                        if groups else ([{"title": "Published (paper)", "rows": section(published_rows, cols, decimals,
                                                                                         underline)}]
                                        if published_rows else []))
        measured = {"title": f"Measured ({results['scale']} scale)",
                    "rows": section(results["rows"], cols, decimals, underline, None if name == "i2v" else by_label)}
        sections[name] = ([] if name == "i2v" else pub_sections) + [measured]
    backends = sorted({f"{k}: {b}" for r in results["rows"] for k, b in r["backends"].items()})
    return {
        "title": results["title"], "table": results["table"], "scale": results["scale"], "kind": kind,
        "headers": {k: [HEADERS.get(c, c) for c in cols] for k, cols in blocks.items()},
        "ncols": {k: len(cols) for k, cols in blocks.items()},
        "sections": sections, "frames": [SUITE_FRAMES[c] for c in SUITE_COLUMNS],
        "qa_datasets": list(QA_DATASETS.values()),
        "has_published": bool(published_rows), "published_source": (results.get("published") or {}).get("source"),
        "has_llm_size": any(p.get("llm_size") for p in published_rows),
        "commit": results["provenance"]["git"]["commit"][:10],
        "config_hashes": ", ".join(f"{r['variant']}={r['config_hash']}" for r in results["rows"]),
        "backends": backends,
        # Video-ChatGPT protocol: an unparseable judge reply counts as ("no", 0); the caption says how often
        "judge_failures": sum(sum((r.get("failures") or {}).values()) for r in results["rows"]),
        "judged": sum(sum(v or 0 for v in (r.get("n") or {}).values()) for r in results["rows"]),
        "na_cells": sum(len(r.get("na") or {}) for r in results["rows"]),
        "agreement": judge_agreement_totals(results["rows"]),
        "audit_notes": audit_notes(published_rows),
        "tracks": sorted({r["track"] for r in results["rows"] if r.get("track")}),
        "has_controls": any(r.get("controls") for r in results["rows"]),
    }


def judge_agreement_totals(rows: list[dict]) -> dict | None:
    """The second judge's agreement with the table's judge, summed over the measured rows (None: no second judge)."""
    recs = [r["judge_agreement"] for r in rows if r.get("judge_agreement")]
    if not recs:
        return None
    t = {k: sum(a[k] for a in recs) for k in ("items", "both_judged", "agree", "second_failures")}
    return {**t, "judge": ", ".join(sorted({a["judge"] for a in recs})),
            "percent": 100.0 * t["agree"] / t["both_judged"] if t["both_judged"] else None}


def render_table(results_path: Path, out: Path, template: str | None = None) -> str:
    results = read_json(results_path)
    name = template or f"{results['table']}.tex.j2"
    text = environment().get_template(name).render(**context(results))
    write_text(out, text)
    return text
