"""Paper Table 10's benchmark suites: MMLU, MMMU, Video-MME (all + short/medium), MMBench-Video, MLVU.

One module per benchmark, each with the same plain functions: `load(root, max_questions)` (the official release
layout, stated in its docstring; a missing file is one line naming it), `prompt(sample, n_frames)`,
`extract(reply, sample)` (the official answer extraction), `correct`/judge and `summarize(rows)` (the official
scoring), `write_synthetic(root, seed, n)` (tiny instances in the official layout, smoke scale), and the ids
EXTRACTION_ID / SCORER_ID recorded with every score. `runner.run_suite` answers them with the UniVid Actor on
uniformly sampled frames (Table 10's frame counts: `eval.suites.frames`).
"""

from __future__ import annotations

import importlib

BENCHMARKS = ("mmlu", "mmmu", "videomme", "mmbench_video", "mlvu")


def module(name: str):
    if name not in BENCHMARKS:
        raise ValueError(f"eval.suites benchmark {name!r}: not known (expected one of {', '.join(BENCHMARKS)})")
    return importlib.import_module(f"univid.eval.suites.{name}")
