"""Audit of the paper's printed VBench rows (reports/published/*.csv, paper scale): Total, Quality and Semantic
recomputed with the official formula (univid.eval.vbench.aggregate) from each row's own printed dimensions, and
flagged where the printed ones disagree beyond rounding.

Tolerance, per aggregate: half a unit of its last printed digit, plus the most that rounding the 16 printed
dimensions (half a unit of each one's last digit) can move it through the formula, which is linear in them. For the
paper's two-decimal tables that is 0.005 + 0.0086 = 0.0136 points. A row that prints only some dimensions (Table 4
prints only the overall block) cannot be recomputed: it is reported as such, never filled in.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from univid.eval.vbench.aggregate import aggregate
from univid.eval.vbench.constants import DIMENSIONS

AGGREGATES = ("total", "quality", "semantic")
NAMES = {"total": "Total", "quality": "Quality", "semantic": "Semantic"}


def decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


@functools.lru_cache(maxsize=1)
def sensitivity() -> dict[str, dict[str, float]]:
    """d aggregate / d dimension, both in points. The formula is affine in the raw scores, so one step from any
    point gives it exactly."""
    mid = {d: 0.5 for d in DIMENSIONS}
    base = aggregate(mid)
    out: dict[str, dict[str, float]] = {m: {} for m in AGGREGATES}
    for d in DIMENSIONS:
        moved = aggregate(mid | {d: 0.6})  # +10 points
        for m in AGGREGATES:
            out[m][d] = (moved[m] - base[m]) / 10.0
    return out


def _half_unit(text: str) -> float:
    return 0.5 * 10.0 ** -decimals(text)


def tolerance(printed: dict[str, str], metric: str) -> float:
    """How far the recomputed aggregate may lie from the printed one through rounding of the printed digits alone."""
    return _half_unit(printed[metric]) + sum(abs(sensitivity()[metric][d]) * _half_unit(printed[d])
                                             for d in DIMENSIONS)


def audit_row(printed: dict[str, str]) -> dict:
    """printed: column -> the cell as printed ("" where the paper prints none). Returns {status: checked | partial,
    missing (dimensions not printed), flagged, aggregates: {metric: {printed, recomputed, tolerance, ok}}}."""
    printed = {c: (t or "").strip() for c, t in printed.items()}
    missing = [d for d in DIMENSIONS if not printed.get(d)]
    if missing:
        return {"status": "partial", "missing": missing, "flagged": False, "aggregates": {}}
    recomputed = aggregate({d: float(printed[d]) / 100.0 for d in DIMENSIONS})
    aggs = {}
    for m in AGGREGATES:
        if printed.get(m):
            value, tol = float(printed[m]), tolerance(printed, m)
            aggs[m] = {"printed": value, "decimals": decimals(printed[m]), "recomputed": recomputed[m],
                       "tolerance": tol, "ok": abs(recomputed[m] - value) <= tol}
    return {"status": "checked", "missing": [], "flagged": not all(a["ok"] for a in aggs.values()),
            "aggregates": aggs}


def audit_table(path: str | Path) -> list[dict]:
    """Every row of one published table with VBench dimension columns (other tables: none), in file order:
    {table, label, **audit_row}."""
    path = Path(path)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "label" not in rows[0] or not set(DIMENSIONS) & set(rows[0]):
        return []
    out = []
    for r in rows:
        try:
            out.append({"table": path.stem, "label": r["label"], **audit_row({c: r.get(c) for c in (*AGGREGATES,
                                                                                             *DIMENSIONS)})})
        except ValueError as e:  # a cell that is not a number, or a dimension outside 0-100
            raise ValueError(f"{path}: row {r['label']!r}: {e}") from None
    return out


def audit_published(published_dir: str | Path) -> list[dict]:
    """audit_table over every tableN.csv in the directory, in table order."""
    paths = sorted(Path(published_dir).glob("table*.csv"), key=lambda p: (len(p.stem), p.stem))
    if not paths:
        raise FileNotFoundError(f"{published_dir}: no table*.csv (expected the paper's printed rows, "
                                f"reports/published/)")
    return [row for p in paths for row in audit_table(p)]


def disagreement(row: dict) -> tuple[str, str]:
    """A flagged row's printed and recomputed aggregates that disagree, e.g. ("Total 83.41, Semantic 77.65",
    "83.63, 78.76")."""
    bad = [(m, a) for m, a in row["aggregates"].items() if not a["ok"]]
    printed = ", ".join(f"{NAMES[m]} {a['printed']:.{a['decimals']}f}" for m, a in bad)
    return printed, ", ".join(f"{a['recomputed']:.{a['decimals']}f}" for _, a in bad)


def report_lines(rows: list[dict]) -> list[str]:
    """What `univid audit` prints: the rule, one line per flagged or partial row, then the counts."""
    checked = [r for r in rows if r["status"] == "checked"]
    flagged = [r for r in checked if r["flagged"]]
    tols = sorted({round(a["tolerance"], 4) for r in checked for a in r["aggregates"].values()})
    out = [f"audit: published (paper) VBench rows; Total/Quality/Semantic recomputed with the official formula from "
           f"each row's own printed dimensions, flagged beyond rounding (tolerance {', '.join(map(str, tols)) or '-'} "
           f"points: half the aggregate's last digit + what the dimensions' rounding can move it)"]
    for r in rows:
        if r["status"] == "partial":
            out.append(f"{r['table']} {r['label']}: cannot be recomputed: {len(DIMENSIONS) - len(r['missing'])} of {len(DIMENSIONS)} dimensions "
                       f"printed (missing {', '.join(r['missing'])})")
        elif r["flagged"]:
            printed, recomputed = disagreement(r)
            out.append(f"{r['table']} {r['label']}: FLAGGED: printed {printed}; recomputed from its dimensions "
                       f"{recomputed}")
    out.append(f"audit rows={len(rows)} checked={len(checked)} flagged={len(flagged)}")
    return out
