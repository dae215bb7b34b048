"""What every verb module shares: the config options of a subparser, the config of a run by hand
(`--config/--set`, optionally an ablation variant), a job's config (`--job-config` from the workflow, or built from
the former), and the paths of a job's upstream outputs."""

from __future__ import annotations

from pathlib import Path


def config_args(sp, job: bool = True) -> None:
    """Add --config/--set/--ablation/--variant (and --job-config when `job`) and --quiet to a subparser."""
    sp.add_argument("--config", default=None, help="YAML config (default: packaged defaults, scale smoke)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. tma.schedule=step")
    sp.add_argument("--ablation", help="ablation YAML; with --variant, applies that variant's overrides")
    sp.add_argument("--variant")
    if job:
        sp.add_argument("--job-config", help="a job's resolved config as JSON (what the workflow passes)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")


def full_config(args) -> dict:
    """The resolved config of a run by hand: --config, then --set, then the ablation variant's overrides."""
    from univid.config import load_ablation, parse_set, resolve
    from univid.config.load import load_user_config

    user = load_user_config(args.config) if getattr(args, "config", None) else {}
    user.pop("tables", None)
    cfg = resolve(user, parse_set(getattr(args, "set", None)))
    if getattr(args, "ablation", None):
        from univid.config import apply_overrides

        ablation = load_ablation(args.ablation)
        match = [v for v in ablation["variants"] if v["name"] == args.variant]
        if not match:
            names = ", ".join(v["name"] for v in ablation["variants"])
            raise SystemExit(f"univid: variant {args.variant!r} not in {args.ablation} (expected one of: {names})")
        cfg = apply_overrides(cfg, match[0].get("overrides") or {})
    return cfg


def job_config_of(args, name: str) -> tuple[dict, dict]:
    """(job config, full config) from --job-config, or from --config/--set for a run by hand."""
    from univid.config import job_config
    from univid.workflow import config_from_job, parse_job_config

    if args.job_config:
        job = parse_job_config(args.job_config)
        if job["job"] != name:
            raise SystemExit(f"univid: --job-config is for job {job['job']!r} (expected {name!r})")
        return job, config_from_job(job)
    cfg = full_config(args)
    return job_config(cfg, name), cfg


def write_job_config(out: Path, job: dict) -> None:
    from univid.io import write_json

    write_json(out / "job_config.json", job)


def upstream(job: dict, name: str, args_value: str | None) -> Path:
    """An upstream job's output directory: the one given on the command line, else the job config's (which must
    exist)."""
    if args_value:
        return Path(args_value)
    path = Path(job["upstream_dirs"][name])
    if not path.exists():
        raise SystemExit(f"univid: upstream {name} output '{path}' not found (expected the workflow or "
                         f"`univid {name if name == 'curate' else 'train'} ...` to have produced it)")
    return path
