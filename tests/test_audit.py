"""`univid audit`: the paper's printed VBench totals against the official formula on the row's own printed dimensions."""

import csv
import re

import pytest

from univid.cli import main
from univid.eval.vbench.constants import DIMENSIONS
from univid.report.audit import audit_published, audit_table, report_lines, tolerance
from univid.report.collect import PUBLISHED_DIR

# Paper Table 1/3, UniVid row: Total 85.27, Quality 86.44, Semantic 80.58, which the formula reproduces
# (85.269, 86.441, 80.581; worked out term by term in tests/test_vbench_aggregate.py).
UNIVID = {"total": "85.27", "quality": "86.44", "semantic": "80.58",
          "subject_consistency": "98.96", "background_consistency": "97.76", "temporal_flickering": "99.88",
          "motion_smoothness": "99.25", "dynamic_degree": "61.83", "aesthetic_quality": "64.21",
          "imaging_quality": "73.03", "object_class": "94.52", "multiple_objects": "77.45", "human_action": "94.20",
          "color": "92.10", "spatial_relationship": "80.70", "scene": "46.66", "appearance_style": "23.57",
          "temporal_style": "25.91", "overall_consistency": "27.60"}


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["label", *UNIVID])
        w.writeheader()
        w.writerows(rows)
    return path


def test_tolerance_is_the_rounding_of_the_printed_digits():
    # 0.005 for the Total's own last digit + at most 0.0086 through the 16 rounded dimensions.
    assert tolerance(UNIVID, "total") == pytest.approx(0.0136, abs=1e-4)
    assert tolerance(UNIVID | {"total": "85.3"}, "total") == pytest.approx(0.0586, abs=1e-4)  # one digit: 0.05


def test_a_row_that_disagrees_is_flagged_one_that_agrees_is_not_and_a_partial_row_is_not_recomputed(tmp_path):
    path = _write(tmp_path / "table3.csv", [
        {"label": "agrees", **UNIVID},
        {"label": "within rounding", **UNIVID, "total": "85.26"},  # recomputed 85.269: 0.009 off, inside 0.0136
        {"label": "disagrees", **UNIVID, "total": "85.30", "semantic": "79.58"},  # 0.031 and 1.0 off
        {"label": "overall block only", **UNIVID, **{d: "" for d in DIMENSIONS[7:]}},
    ])
    rows = {r["label"]: r for r in audit_table(path)}
    assert [rows[k]["flagged"] for k in ("agrees", "within rounding", "disagrees")] == [False, False, True]
    bad = rows["disagrees"]["aggregates"]
    assert bad["total"]["printed"] == 85.30 and bad["total"]["recomputed"] == pytest.approx(85.269, abs=1e-3)
    assert bad["semantic"]["recomputed"] == pytest.approx(80.581, abs=1e-3) and bad["quality"]["ok"]
    partial = rows["overall block only"]
    assert partial["status"] == "partial" and partial["missing"] == list(DIMENSIONS[7:]) and not partial["aggregates"]
    lines = report_lines(list(rows.values()))
    assert "table3 disagrees: FLAGGED: printed Total 85.30, Semantic 79.58; recomputed from its dimensions " \
           "85.27, 80.58" in lines
    assert any(line.startswith("table3 overall block only: cannot be recomputed: 7 of 16 dimensions printed")
               for line in lines)
    assert not any(line.startswith(("table3 agrees", "table3 within rounding")) for line in lines)
    assert lines[-1] == "audit rows=4 checked=3 flagged=1"


def test_a_row_that_is_not_a_number_names_the_file_and_row(tmp_path):
    path = _write(tmp_path / "table1.csv", [{"label": "typo", **UNIVID, "color": "92.1O"}])
    with pytest.raises(ValueError, match=r"table1\.csv: row 'typo'"):
        audit_table(path)


def test_non_vbench_tables_are_not_audited():
    assert audit_table(PUBLISHED_DIR / "table2.csv") == [] and audit_table(PUBLISHED_DIR / "table10.csv") == []


def test_the_published_tables_audit_runs_and_checks_rows(capsys):
    rows = audit_published(PUBLISHED_DIR)
    by = {(r["table"], r["label"]): r for r in rows}
    assert sum(r["status"] == "checked" for r in rows) > 0
    # Table 4 prints only the overall block: its rows cannot be recomputed.
    assert {r["status"] for r in rows if r["table"] == "table4"} == {"partial"}
    assert not by[("table3", "UniVid (Full)")]["flagged"]
    # Checked by hand from the paper's Table 5 (w/o ViT): Quality from its 7 printed quality dimensions is
    # ((74.51-14.62)/85.38 + (72.91-26.15)/73.85 + (74.02-62.93)/37.07 + (74.23-70.6)/29.15 + 0.5*46.91/100
    #  + 47.01/100 + 55.10/100) / 6.5 = 46.37, where the paper prints 57.16 (its Semantic column holds 46.37).
    wo_vit = by[("table5", "UniVid (w/o ViT)")]
    assert wo_vit["flagged"] and wo_vit["aggregates"]["quality"]["printed"] == 57.16
    assert wo_vit["aggregates"]["quality"]["recomputed"] == pytest.approx(46.37, abs=0.01)
    assert wo_vit["aggregates"]["total"]["ok"]  # 48.53 printed, 48.527 recomputed

    main(["audit"])
    out = capsys.readouterr().out.strip().splitlines()
    last = re.fullmatch(r"audit rows=(\d+) checked=(\d+) flagged=(\d+)", out[-1])
    assert last and int(last[1]) == len(rows) and int(last[2]) > 0
    assert "table5 UniVid (w/o ViT): FLAGGED: printed Quality 57.16, Semantic 46.37; recomputed from its " \
           "dimensions 46.37, 57.16" in out
