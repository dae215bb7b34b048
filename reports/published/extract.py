#!/usr/bin/env python
"""Extract the rows the paper prints (peers and the paper's own UniVid rows) into reports/published/tableN.csv.

    python reports/published/extract.py ../shared/paper/univid-paper.txt

The paper text holds each table as tab-separated lines followed by its caption ("Table N: ..."). Bold/underline
markup is dropped (the harness recomputes best/second-best), "–" becomes empty. tests/test_published.py re-runs this
parser and checks the committed CSVs still equal the paper.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

VBENCH_OVERALL = ["total", "quality", "semantic", "subject_consistency", "background_consistency",
                  "temporal_flickering", "motion_smoothness", "dynamic_degree", "aesthetic_quality", "imaging_quality"]
VBENCH_SEMANTIC = ["object_class", "multiple_objects", "human_action", "color", "spatial_relationship", "scene",
                   "appearance_style", "temporal_style", "overall_consistency"]
VIDEOQA = [f"{d}.{m}" for d in ("msvd_qa", "msrvtt_qa", "tgif_frameqa", "activitynet_qa") for m in ("accuracy", "score")]
SUITES = ["mmlu", "mmmu", "videomme", "videomme_sm", "mmbench_video", "mlvu"]
KIND = {1: "vbench_long", 2: "videoqa", 3: "vbench_long", 4: "vbench_long", 5: "vbench_long", 6: "vbench_long",
        7: "videoqa", 8: "videoqa", 9: "videoqa", 10: "suites"}
HEADER_WORDS = ("Method", "Model", "Methods", "Frame Num")


def _clean(cell: str) -> str:
    cell = re.sub(r"</?[bu]>", "", cell).replace("&amp;", "&").strip()
    return "" if cell in ("–", "-", "—") else cell


def _blocks(lines: list[str]) -> list[tuple[int, list[list[str]]]]:
    """Runs of tab-separated lines (a header line after data rows starts a new run): (end line index, rows)."""
    out, run = [], []
    for i, line in enumerate(lines):
        if "\t" in line:
            row = [_clean(c) for c in line.rstrip("\n").split("\t")]
            if run and row[0].startswith(("Method", "Model")) and len(run) > 2:
                out.append((i, run))
                run = []
            run.append(row)
        elif run and line.strip() == "":
            continue
        else:
            if run:
                out.append((i, run))
            run = []
    return out


def parse(text: str) -> dict[int, list[dict]]:
    lines = text.splitlines()
    captions = {int(m.group(1)): i for i, line in enumerate(lines) if (m := re.match(r"Table (\d+): ", line))}
    blocks = _blocks(lines)
    tables = {}
    for n, cap in sorted(captions.items()):
        # the blocks between the previous caption (or start) and this one
        prev = max([c for c in captions.values() if c < cap], default=-1)
        mine = [rows for end, rows in blocks if prev < end <= cap]
        tables[n] = _rows(n, mine)
    return tables


def _data_rows(rows: list[list[str]]) -> list[list[str]]:
    return [r for r in rows if r and r[0] and not r[0].startswith(HEADER_WORDS) and any(c for c in r[1:])]


def _rows(n: int, blocks: list[list[list[str]]]) -> list[dict]:
    kind = KIND[n]
    if kind == "vbench_long":
        # Table 4 prints only its overall block: its semantic columns stay empty.
        vb = [b for b in blocks if b[0] and b[0][0] in ("Method", "Model")]
        overall = next(b for b in vb if b[0][1] == "Overall Scores")
        semantic = next((b for b in vb if b[0][1] == "Semantic Fidelity"), [])
        first = {r[0]: r[1:1 + len(VBENCH_OVERALL)] for r in _data_rows(overall)}
        second = {r[0]: r[1:1 + len(VBENCH_SEMANTIC)] for r in _data_rows(semantic)}
        return [{"label": label, **dict(zip(VBENCH_OVERALL, first[label])),
                 **dict(zip(VBENCH_SEMANTIC, second.get(label, [""] * len(VBENCH_SEMANTIC))))} for label in first]
    rows, group = [], ""
    for r in blocks[-1] if kind == "videoqa" else blocks[-1]:
        if not r or not r[0]:
            continue
        if kind == "suites" and all(not c for c in r[1:]):
            group = r[0]
            continue
        if r[0].startswith(HEADER_WORDS) or not any(c for c in r[1:]):
            continue
        if kind == "videoqa":
            cells = [c for c in r[1:]]
            size, cells = (cells[0], cells[1:]) if n == 2 else ("", cells)
            rows.append({"label": r[0], **({"llm_size": size} if n == 2 else {}), **dict(zip(VIDEOQA, cells))})
        else:
            rows.append({"label": r[0], "group": group, **dict(zip(SUITES, r[1:]))})
    return rows


def main(paper: str, out_dir: str = str(Path(__file__).parent)) -> None:
    tables = parse(Path(paper).read_text())
    for n, rows in tables.items():
        path = Path(out_dir) / f"table{n}.csv"
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"{path}: {len(rows)} rows")


if __name__ == "__main__":
    main(*sys.argv[1:])
