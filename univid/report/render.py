"""Render a table's results.json as LaTeX through reports/templates/<table>.tex.j2 (Jinja, LaTeX-safe delimiters)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pandas as pd

from univid.eval.vbench_constants import QUALITY_DIMS, SEMANTIC_DIMS
from univid.io import read_json, write_text

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "reports" / "templates"

# The paper's column headers for VBench-Long tables (Tables 1, 3-6).
HEADERS = {"total": "Total Score", "quality": "Quality", "semantic": "Semantic",
           "subject_consistency": "Subject", "background_consistency": "Background",
           "temporal_flickering": "Temporal", "motion_smoothness": "Motion", "dynamic_degree": "Dynamic",
           "aesthetic_quality": "Aesthetic", "imaging_quality": "Imaging", "object_class": "Object",
           "multiple_objects": "Multi-Obj", "human_action": "Action", "color": "Color",
           "spatial_relationship": "Spatial", "scene": "Scene", "appearance_style": "Appearance",
           "temporal_style": "Temporal", "overall_consistency": "Overall"}
OVERALL = ["total", "quality", "semantic"]
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


def formatted_rows(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Two decimals, best (highest: every VBench column is 'higher is better') in bold; a column where every row
    ties has no best."""
    best = {c: frame[c].round(2).max() for c in columns if frame[c].round(2).nunique() > 1}
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in columns:
            text = f"{r[c]:.2f}"
            cells.append(rf"\textbf{{{text}}}" if c in best and round(r[c], 2) == best[c] else text)
        rows.append({"label": r["label"], "cells": cells})
    return rows


def render_table(results_path: Path, out: Path, template: str | None = None) -> str:
    results = read_json(results_path)
    frame = pd.DataFrame([{"label": r["label"], **r["scores"]} for r in results["rows"]])
    blocks = {"overall": OVERALL + list(QUALITY_DIMS), "semantic": list(SEMANTIC_DIMS)}
    backends = sorted({f"{dim}: {b}" for r in results["rows"] for dim, b in r["backends"].items()})
    context = {
        "title": results["title"], "table": results["table"], "scale": results["scale"],
        "headers": {k: [HEADERS[c] for c in cols] for k, cols in blocks.items()},
        "rows": {k: formatted_rows(frame, cols) for k, cols in blocks.items()},
        "commit": results["provenance"]["git"]["commit"][:10],
        "config_hashes": ", ".join(f"{r['variant']}={r['config_hash']}" for r in results["rows"]),
        "backends": backends,
    }
    name = template or f"{results['table']}.tex.j2"
    text = environment().get_template(name).render(**context)
    write_text(out, text)
    return text
