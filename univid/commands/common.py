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
        verb = {"curate": "curate", "ti2v_suite": "ti2v-suite", "generate": "generate-suite"}.get(name, "train")
        raise SystemExit(f"univid: upstream {name} output '{path}' not found (expected the workflow or "
                         f"`univid {verb} ...` to have produced it)")
    return path


def suite_entries(job: dict, track: str, args) -> tuple[list[dict], dict[str, Path]]:
    """The prompt suite a generate or evaluate job works on, and each prompt's reference image (ti2v track): t2v
    reads curate's prompts.json; ti2v reads the ti2v_suite job's, whose images must still be the ones it hashed."""
    from univid.eval.cache import file_sha256
    from univid.io import read_json
    from univid.prompts import reference_path

    if track != "ti2v":
        return read_json(upstream(job, "curate", getattr(args, "curate", None)) / "prompts.json"), {}
    suite_dir = upstream(job, "ti2v_suite", getattr(args, "ti2v_suite", None))
    entries = read_json(suite_dir / "prompts.json")
    images = {}
    for e in entries:
        if not e.get("image"):
            raise ValueError(f"{suite_dir / 'prompts.json'}: prompt {e.get('prompt_en')!r} has no reference image "
                             f"(expected a ti2v suite written by `univid ti2v-suite`)")
        path = reference_path(suite_dir, e)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: reference image of {e['prompt_en']!r} not found (expected the ti2v "
                                    f"suite's image)")
        if file_sha256(path) != e["image_sha256"]:
            raise ValueError(f"{path}: reference image changed since the ti2v suite hashed it (expected sha256 "
                             f"{e['image_sha256'][:12]}...; rerun the ti2v_suite job)")
        images[e["prompt_en"]] = path
    return entries, images
