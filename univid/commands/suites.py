"""`univid evaluate-suite`: paper Table 10's benchmark suites (MMLU, MMMU, Video-MME, MMBench-Video, MLVU) answered by
the UniVid Actor on uniformly sampled frames (univid/eval/suites)."""

from __future__ import annotations

import sys
from pathlib import Path

from univid.commands.common import config_args, job_config_of, upstream, write_job_config


def cmd_evaluate_suite(args) -> None:
    from univid.eval.suites.runner import run_suite
    from univid.reflection import build_reflection

    job, cfg = job_config_of(args, "suite")
    out = Path(args.out or job["dir"])
    weights = args.weights
    if weights is None and cfg["understanding"]["weights"] == "stage3":
        weights = str(upstream(job, "stage3", None) / "final" / "weights.safetensors")
    reflection = build_reflection(cfg, weights=weights)
    write_job_config(out, job)  # before scores.json, the job's completion marker, which run_suite writes last

    def progress(name, i, n):
        if not args.quiet:
            print(f"\r{name}: {i}/{n}", end="\n" if i == n else "", file=sys.stderr, flush=True)

    scores = run_suite(cfg, job, reflection, out, weights=weights, progress=progress)
    parts = []
    for name, b in scores["benchmarks"].items():
        main = f"score {b['score']:.2f}" if "score" in b else f"acc {b['accuracy']:.1f}"
        extra = f" S&M {b['accuracy_short_medium']:.1f}" if "accuracy_short_medium" in b else ""
        parts.append(f"{name} {main}{extra} (n={b['n']}, {b['frames']} frames)")
    c = scores["counts"]
    print(f"Table 10 suites ({scores['scale']}): " + "; ".join(parts) +
          f" [actor calls {c['actor_calls']}, cached {c['actor_hits']}; judge calls {c['judge_calls']}] -> {out}")


def register(sub) -> None:
    sp = sub.add_parser("evaluate-suite", help="paper Table 10: MMLU, MMMU, Video-MME, MMBench-Video, MLVU with the "
                        "UniVid Actor")
    config_args(sp)
    sp.add_argument("--out", help="output directory (default: the suite job's directory)")
    sp.add_argument("--weights", help="UniVid weights (default: stage III's final weights when "
                    "understanding.weights is stage3, none otherwise)")
    sp.set_defaults(fn=cmd_evaluate_suite)
