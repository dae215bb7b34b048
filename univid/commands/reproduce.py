"""Reproduction verbs: `univid regress` (scores against a committed baseline) and `univid compare` (MLflow runs)."""

from __future__ import annotations

import sys
from pathlib import Path


def cmd_regress(args) -> None:
    from univid.report.regress import regress

    paths = [Path(p) for p in args.results] or sorted(Path(args.results_dir).glob("smoke/tables/*/results.json"))
    if not paths:
        raise FileNotFoundError(f"{args.results_dir}/smoke/tables/*/results.json: no results found (expected a smoke "
                                f"run first: snakemake --cores all reports/table4.tex)")
    ok, frame = regress(paths, Path(args.baseline), update=args.update, tolerance=args.tolerance)
    bad = frame[~frame["ok"]]
    shown = frame if args.all else bad
    if len(shown):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.update:
        print(f"baseline rewritten on request: {args.baseline} ({len(frame)} metrics)")
    print(f"regress: {len(frame) - len(bad)} of {len(frame)} metrics within tolerance")
    if not ok:
        names = ", ".join(f"{r.table}/{r.variant}/{r.metric}" for r in bad.itertuples())
        print(f"regress: outside tolerance: {names}", file=sys.stderr)
        raise SystemExit(1)


def cmd_compare(args) -> None:
    import mlflow
    import pandas as pd

    from univid.track.mlflow_log import resolve_tracking_uri

    mlflow.set_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    name = f"{args.experiment_prefix}-table{args.table}"
    runs = mlflow.search_runs(experiment_names=[name], order_by=["attributes.start_time DESC"])
    if runs.empty:
        raise ValueError(f"MLflow experiment {name!r}: no runs (expected `snakemake ... reports/table{args.table}.tex`)")
    runs = runs.drop_duplicates("tags.univid.variant")  # newest run per variant
    metrics = [c for c in runs.columns if c.startswith("metrics.")]
    keep = ["metrics.total", "metrics.quality", "metrics.semantic"] if not args.all else metrics
    frame = runs.set_index("tags.univid.label")[[c for c in keep if c in runs.columns]].sort_index()
    frame.index.name = "variant"
    frame.columns = [c.removeprefix("metrics.") for c in frame.columns]
    scale = ", ".join(sorted(set(runs["tags.univid.scale"])))
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(f"table {args.table} ({scale} scale), experiment {name}:")
        print(frame.to_string(float_format=lambda v: f"{v:.2f}"))


def register(sub, cfg_args) -> None:
    sp = sub.add_parser("regress", help="compare the last smoke scores with a committed baseline; exit 1 outside tolerance")
    sp.add_argument("--baseline", default="benchmarks/baselines/smoke.json")
    sp.add_argument("--results", action="append", default=[], help="results.json (default: every smoke table)")
    sp.add_argument("--results-dir", default="results")
    sp.add_argument("--update", action="store_true", help="rewrite the baseline from these results, on purpose")
    sp.add_argument("--tolerance", type=float, default=0.5, help="with --update: per-metric tolerance (points)")
    sp.add_argument("--all", action="store_true", help="print every metric, not only those outside tolerance")
    sp.set_defaults(fn=cmd_regress)

    sp = sub.add_parser("compare", help="a table's variants side by side, from MLflow (search_runs)")
    sp.add_argument("--table", type=int, required=True)
    sp.add_argument("--tracking-uri")
    sp.add_argument("--experiment-prefix", default="univid")
    sp.add_argument("--all", action="store_true", help="every metric, not only Total/Quality/Semantic")
    sp.set_defaults(fn=cmd_compare)
