"""The workflow plan: tables -> ablation variants -> resolved configs -> content-keyed jobs.

The Snakefile asks this module which jobs exist and which job config each output directory belongs to; the logic
lives here so it can be tested without Snakemake.
"""

from __future__ import annotations

import json
from pathlib import Path

from univid.config import ConfigError, apply_overrides, job_configs, load_ablation, resolve, validate
from univid.config.jobs import BENCHMARK_JOBS, lineage_jobs

# What each job writes (relative to its directory); the first file is written last and marks completion.
JOB_OUTPUTS = {
    "pretrain": ["manifest.json", "pretrain_log.json"],  # beside them: wan/, mllm/ (official layouts), world/
    "curate": ["curation_report.json", "gen_train.jsonl", "qa_train.json", "qa_test.json", "prompts.json"],
    "ti2v_suite": ["prompts.json"],  # beside it: images/ (synthetic reference frames) and job_config.json
    "precompute": ["index.json", "null.safetensors"],
    "stage1": ["train_log.json", "final/weights.safetensors"],
    "stage2": ["train_log.json", "final/weights.safetensors"],
    "stage3": ["train_log.json", "final/weights.safetensors"],
    "generate": ["manifest.json"],
    "evaluate": ["scores.json"],
    "videoqa": ["scores.json", "predictions.jsonl", "verdicts.jsonl", "traces.jsonl"],
    "suite": ["scores.json", "predictions.jsonl"],
}
_WEIGHTS = ["final/weights.safetensors"]
_PRETRAINED = {"pretrain": ["manifest.json"]}  # toy scale: the checkpoints the harness pretrained
JOB_INPUTS = {  # which upstream files a job reads
    "pretrain": {},
    "curate": {},
    "ti2v_suite": {},
    "precompute": {"curate": ["gen_train.jsonl"]},
    "stage1": {"precompute": ["index.json"]},
    "stage2": {"curate": ["qa_train.json"]},
    "stage3": {"curate": ["qa_train.json"], "precompute": ["index.json"], "stage1": ["final/weights.safetensors"],
               "stage2": ["final/weights.safetensors"]},
    # generate reads stage I or stage III weights (sampling.from_stage), and on the ti2v track the ti2v suite's
    # prompts and reference images; understanding reads stage III or none
    "generate": {"curate": ["prompts.json"], "stage1": _WEIGHTS, "stage3": _WEIGHTS, "ti2v_suite": ["prompts.json"]},
    "evaluate": {"curate": ["prompts.json"], "generate": ["manifest.json"], "ti2v_suite": ["prompts.json"]},
    "videoqa": {"curate": ["qa_test.json"], "stage3": _WEIGHTS},
    "suite": {"curate": ["qa_test.json"], "stage3": _WEIGHTS},
}
for _job in ("precompute", "stage1", "stage2", "stage3", "generate", "videoqa", "suite"):
    JOB_INPUTS[_job].update(_PRETRAINED)  # only where the job has a pretrain upstream (job_input_files)


def job_input_files(job: dict) -> list[str]:
    """The upstream files one job reads (only from the upstream jobs it actually has)."""
    return [f"{job['upstream_dirs'][up]}/{f}" for up, files in JOB_INPUTS[job["job"]].items()
            if up in job["upstream_dirs"] for f in files]
_JOB_ONLY_KEYS = ("job", "upstream", "key", "dir", "upstream_dirs", "univid")


def plan(user_cfg: dict, root: str | Path = ".") -> dict:
    """{"tables": {table: {"ablation", "title", "benchmark", "variants": [{name, label, config, jobs}]}},
    "jobs": {dir: job}}. A variant's `jobs` are only those its table's rows depend on (e.g. no generation for a
    Video-QA table)."""
    validate(user_cfg)
    base = resolve(user_cfg)
    root = Path(root)
    tables, jobs = {}, {}
    for table, spec in (user_cfg.get("tables") or {}).items():
        ablation = load_ablation(root / spec["ablation"])
        variants = []
        target = BENCHMARK_JOBS[spec["benchmark"]]
        for v in ablation["variants"]:
            try:
                cfg = apply_overrides(base, v.get("overrides") or {})
            except ConfigError as exc:
                raise ConfigError(f"{spec['ablation']} variant {v['name']!r}: {exc}") from None
            vjobs = lineage_jobs(job_configs(cfg), target)
            for job in vjobs.values():
                jobs.setdefault(job["dir"], job)
            variants.append({"name": v["name"], "label": v["label"], "published": v.get("published"), "config": cfg,
                             "jobs": vjobs, "target": vjobs[target]})
        tables[table] = {"ablation": spec["ablation"], "name": ablation["name"], "title": ablation.get("title", ""),
                         "benchmark": spec["benchmark"], "target_job": target, "variants": variants}
    return {"config": base, "tables": tables, "jobs": jobs}


def lineage_holes(jobs: dict[str, dict]) -> list[str]:
    """Output files of jobs whose outputs are (partly) missing while a job downstream of them still has outputs.

    Snakemake does not rebuild a deleted intermediate when what consumes it looks up to date (snakemake#1978); the
    Snakefile forces these files, and Snakemake then reruns exactly the jobs downstream of them.
    """
    def complete(job):
        return all((Path(job["dir"]) / f).exists() for f in JOB_OUTPUTS[job["job"]])

    def started(job):
        return any((Path(job["dir"]) / f).exists() for f in JOB_OUTPUTS[job["job"]])

    holes = []
    for job in jobs.values():
        if complete(job):
            continue
        consumers = [j for j in jobs.values() if job["dir"] in j["upstream_dirs"].values()]
        if any(started(c) for c in consumers):
            holes.append(str(Path(job["dir"]) / JOB_OUTPUTS[job["job"]][0]))
    return sorted(holes)


def job_dir(cfg: dict, job: str, key: str) -> str:
    return str(Path(cfg["results_dir"]) / cfg["scale"] / job / key)


def config_from_job(job_cfg: dict) -> dict:
    """Rebuild a full config from a job config: the job's sections, defaults for what the job does not read."""
    from univid.config.jobs import with_pretrained

    sections = {k: v for k, v in job_cfg.items() if k not in _JOB_ONLY_KEYS}
    cfg = resolve(sections)
    # A model part the job does not key on (e.g. the scheduler, which `build` loads for an understanding job too)
    # comes from the scale preset, `{pretrain}` and all: it names this job's pretrain upstream as the keyed ones do.
    pretrain_dir = (job_cfg.get("upstream_dirs") or {}).get("pretrain")
    if pretrain_dir is not None:
        cfg = with_pretrained(cfg, pretrain_dir)
    return cfg


def parse_job_config(text: str) -> dict:
    try:
        job = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--job-config: not valid JSON ({exc.msg} at char {exc.pos})") from None
    for key in ("job", "key", "dir"):
        if key not in job:
            raise ConfigError(f"--job-config: missing key '{key}' (expected a job config written by the workflow)")
    return job
