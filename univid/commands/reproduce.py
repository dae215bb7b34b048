"""Reproduction verbs: `univid collect` (a table's variants -> results.json/.csv), `univid track` (MLflow),
`univid report` (LaTeX through Jinja), `univid regress` (scores against a committed baseline), `univid compare` (MLflow runs),
`univid plots` (a table's figures for the Snakemake report) and `univid audit` (the paper's printed VBench totals
against its own printed dimensions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cmd_regress(args) -> None:
    from univid.report.regress import regress

    paths = [Path(p) for p in args.results] or sorted(Path(args.results_dir).glob("smoke/tables/*/results.json"))
    if not paths:
        raise FileNotFoundError(f"{args.results_dir}/smoke/tables/*/results.json: no results found (expected a smoke "
                                f"run first: snakemake --cores all reports/table4.tex)")
    ok, frame = regress(paths, Path(args.baseline), update=args.update, tolerance=args.tolerance,
                        seed_runs=[Path(p) for p in args.seed_runs])
    bad = frame[~frame["ok"]]
    shown = frame if args.all else bad
    if len(shown):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.update:
        print(f"baseline rewritten on request: {args.baseline} ({len(frame)} metrics, tolerances "
              f"{'from ' + str(len(args.seed_runs) + 1) + ' seeds' if args.seed_runs else 'flat'})")
    sources = frame["source"].dropna()
    seeded = int(sources.str.startswith("seeds:").sum())
    print(f"regress: {len(frame) - len(bad)} of {len(frame)} metrics within tolerance "
          f"(tolerances: {seeded} from seeds, {len(sources) - seeded} flat)")
    if not ok:
        became_na = bad["note"] == "became n/a"
        if became_na.any():
            names = ", ".join(f"{r.table}/{r.variant}/{r.metric} ({int(r.failed)} failed)"
                              for r in bad[became_na].itertuples())
            print(f"regress: became n/a (every item failed): {names}", file=sys.stderr)
        if (~became_na).any():
            names = ", ".join(f"{r.table}/{r.variant}/{r.metric}" for r in bad[~became_na].itertuples())
            print(f"regress: outside tolerance: {names}", file=sys.stderr)
        raise SystemExit(1)


def cmd_audit(args) -> None:
    from univid.report.audit import audit_published, report_lines
    from univid.report.collect import PUBLISHED_DIR

    # Exit 0 with flagged rows: they are the paper's, to be reported, not a fault of this checkout.
    for line in report_lines(audit_published(Path(args.published_dir or PUBLISHED_DIR))):
        print(line)


def _table_name(table: str) -> str:
    return table if str(table).startswith("table") else f"table{table}"


def compare_frame(tracking_uri: str | None, table: str, prefix: str = "univid", parent: str | None = None,
                  all_metrics: bool = False):
    """(header, frame): one row per variant of the newest parent run (or `parent`), one column per metric.

    Cells are "value [lo, hi]" where the run carries `<metric>.ci_lo` / `.ci_hi`. Stores written before parent runs
    existed fall back to the newest run per variant."""
    import mlflow
    import pandas as pd

    from univid.track.mlflow_log import resolve_tracking_uri

    mlflow.set_tracking_uri(resolve_tracking_uri(tracking_uri))
    name = f"{prefix}-{_table_name(table)}"
    if mlflow.get_experiment_by_name(name) is None:
        raise ValueError(f"MLflow experiment {name!r} not found in {mlflow.get_tracking_uri()} (expected "
                         f"`snakemake ... reports/{_table_name(table)}.tex` to have logged it)")
    parents = mlflow.search_runs(experiment_names=[name], order_by=["attributes.start_time DESC"],
                                 filter_string="tags.`univid.role` = 'parent' and attributes.status = 'FINISHED'")
    if parent:
        parents = parents[parents["run_id"] == parent]
        if parents.empty:
            raise ValueError(f"MLflow experiment {name!r}: no parent run {parent!r}")
    if len(parents):
        top = parents.iloc[0]
        runs = mlflow.search_runs(experiment_names=[name],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{top['run_id']}'")
        header = (f"{_table_name(table)} ({top['tags.univid.scale']} scale), experiment {name}, "
                  f"run {top['tags.mlflow.runName']} ({top['run_id']})")
    else:
        runs = mlflow.search_runs(experiment_names=[name], order_by=["attributes.start_time DESC"])
        if "tags.univid.variant" in runs.columns:  # newest run per variant
            runs = runs[runs["tags.univid.variant"].notna()].drop_duplicates("tags.univid.variant")
        header = f"{_table_name(table)} ({', '.join(sorted(set(runs['tags.univid.scale'])))} scale), experiment {name}"
    if runs.empty:
        raise ValueError(f"MLflow experiment {name!r}: no variant runs (expected `univid track` to have logged them)")
    metrics = sorted(c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics."))
    values = [m for m in metrics if not m.endswith((".ci_lo", ".ci_hi"))]
    headline = [m for m in ("total", "quality", "semantic") if m in values]
    shown = values if all_metrics or not headline else headline

    def cell(run, m):
        v = run.get(f"metrics.{m}")
        if v is None or pd.isna(v):
            return ""
        lo, hi = run.get(f"metrics.{m}.ci_lo"), run.get(f"metrics.{m}.ci_hi")
        if lo is not None and hi is not None and not pd.isna(lo) and not pd.isna(hi):
            return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
        return f"{v:.2f}"

    frame = pd.DataFrame([{m: cell(run, m) for m in shown} for _, run in runs.iterrows()],
                         index=pd.Index(runs["tags.univid.label"], name="variant"))
    if len(parents) and isinstance(top.get("tags.univid.variants"), str):  # the ablation's order of variants
        order = json.loads(top["tags.univid.variants"])
        rank = [order.index(v) if v in order else len(order) for v in runs["tags.univid.variant"]]
        return header, frame.iloc[sorted(range(len(rank)), key=rank.__getitem__)]
    return header, frame.sort_index()


def cmd_compare(args) -> None:
    import pandas as pd

    header, frame = compare_frame(args.tracking_uri, args.table, args.experiment_prefix, args.parent, args.all)
    with pd.option_context("display.width", 250, "display.max_columns", 60, "display.max_colwidth", 40):
        print(f"{header}:")
        print(frame.to_string())


def cmd_plan(args) -> None:
    from univid.config import parse_set
    from univid.config.load import deep_merge, load_user_config
    from univid.planning import cost_plan, render
    from univid.workflow import plan

    root = Path(args.root)
    user = deep_merge(load_user_config(Path(args.config) if args.config else root / "workflows" / "config.yaml"),
                      parse_set(args.set))
    workflow = plan(user, root=root)  # the jobs the Snakefile plans, from the same config
    print(render(cost_plan(workflow, workflow["config"], args.target, gpus=args.gpus)))


def cmd_plots(args) -> None:
    from univid.report.plots import write_plots

    made = write_plots(Path(args.results), Path(args.out_dir))
    for note in made["notes"]:
        print(f"univid plots: {note}", file=sys.stderr)
    print(f"wrote {len(made['written'])} plots to {args.out_dir}: {', '.join(made['written']) or '-'}")


def cmd_collect(args) -> None:
    from univid.report.collect import collect

    pairs = []
    for item in args.variant:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"univid collect: --variant {item!r}: expected NAME=RESULTS_DIR")
        pairs.append((name, Path(path)))
    collect(args.table, args.ablation, pairs, Path(args.out))


def cmd_track(args) -> None:
    from univid.track.mlflow_log import log_table

    runs = log_table(Path(args.results), Path(args.out), tracking_uri=args.tracking_uri,
                     prefix=args.experiment_prefix, artifacts=[Path(a) for a in args.artifact])
    print(f"MLflow: parent run {runs[0]['parent_run_id']} with {len(runs)} variant runs in experiment "
          f"{runs[0]['experiment']}")


def cmd_report(args) -> None:
    from univid.report.render import render_table

    render_table(Path(args.results), Path(args.out), template=args.template)
    if args.mlflow:
        from univid.track.mlflow_log import log_to_parent

        run_id = log_to_parent(Path(args.mlflow), Path(args.out))
        print(f"wrote {args.out} (logged to MLflow run {run_id})")
    else:
        print(f"wrote {args.out}")


def register(sub) -> None:
    sp = sub.add_parser("plan", help="the jobs a target would run, grouped by rule, with GPU-hours, wall time and "
                        "storage from the config's per-unit costs")
    sp.add_argument("target", help="reports/all or reports/tableN.tex")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="e.g. scale=paper")
    sp.add_argument("--config", help="workflow config (default: workflows/config.yaml under --root)")
    sp.add_argument("--root", default=".", help="the workflow's directory (ablations/ and workflows/ under it)")
    sp.add_argument("--gpus", type=int, help="wall time on this many GPUs (default: plan.gpus)")
    sp.set_defaults(fn=cmd_plan)

    sp = sub.add_parser("regress", help="compare the last smoke scores with a committed baseline; exit 1 outside tolerance")
    sp.add_argument("--baseline", default="benchmarks/baselines/smoke.json")
    sp.add_argument("--results", action="append", default=[], help="results.json (default: every smoke table)")
    sp.add_argument("--results-dir", default="results")
    sp.add_argument("--update", action="store_true", help="rewrite the baseline from these results, on purpose")
    sp.add_argument("--tolerance", type=float, default=0.5,
                    help="with --update and no --seed-runs: the flat per-metric tolerance (points; at least the "
                    "metric's CI half-width)")
    sp.add_argument("--seed-runs", nargs="+", action="extend", default=[], metavar="RUN",
                    help="with --update: the same tables from the same config at other seeds, one RUN each (a "
                    "results dir searched for results.json, or one results.json); each metric's tolerance becomes "
                    "max(floor, k x its sample sd over the main run and these), k and floor: SEED_K and SEED_FLOOR "
                    "in univid/report/regress.py")
    sp.add_argument("--all", action="store_true", help="print every metric, not only those outside tolerance")
    sp.set_defaults(fn=cmd_regress)

    sp = sub.add_parser("audit", help="recompute each published VBench row's Total/Quality/Semantic from its own printed "
                        "dimensions (official formula) and flag rows whose printed ones disagree beyond rounding")
    sp.add_argument("--published-dir", help="default: reports/published")
    sp.set_defaults(fn=cmd_audit)

    sp = sub.add_parser("compare", help="a table's variants side by side, from MLflow (search_runs)")
    sp.add_argument("--table", required=True, help="4 or table4")
    sp.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    sp.add_argument("--experiment-prefix", default="univid")
    sp.add_argument("--parent", help="a parent run id (default: the newest)")
    sp.add_argument("--all", action="store_true", help="every metric, not only Total/Quality/Semantic (VBench)")
    sp.set_defaults(fn=cmd_compare)

    sp = sub.add_parser("plots", help="a table's figures as PNG: TMA schedules, scores per variant, training losses, "
                        "Pyramid Reflection working sets")
    sp.add_argument("--results", required=True, help="results.json (written by `univid collect`)")
    sp.add_argument("--out-dir", required=True)
    sp.set_defaults(fn=cmd_plots)

    sp = sub.add_parser("collect", help="gather a table's variant scores into results.json/.csv")
    sp.add_argument("--table", required=True)
    sp.add_argument("--ablation", required=True)
    sp.add_argument("--variant", action="append", required=True, metavar="NAME=EVALUATE_DIR")
    sp.add_argument("--out", required=True, help="results.json (results.csv is written beside it)")
    sp.set_defaults(fn=cmd_collect)

    sp = sub.add_parser("track", help="log a table to MLflow (one experiment per table, a parent run with one child run per variant)")
    sp.add_argument("--results", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    sp.add_argument("--experiment-prefix", default="univid")
    sp.add_argument("--artifact", action="append", default=[], metavar="PATH",
                    help="a file or directory (the table's .tex, its plots) to log on the parent run; repeatable")
    sp.set_defaults(fn=cmd_track)

    sp = sub.add_parser("report", help="render a table as LaTeX through its Jinja template")
    sp.add_argument("--results", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--template")
    sp.add_argument("--mlflow", help="the table's mlflow.json (written by `univid track`): log the .tex to its parent run")
    sp.set_defaults(fn=cmd_report)
