"""`univid plan TARGET`: what a target costs before any of it runs.

The jobs Snakemake would run for a target (those of the target's tables whose outputs are not all there yet),
grouped by rule, each priced from the per-unit costs in the config's `plan` section: GPU-seconds and bytes per unit
(a training step, a video, a question, ...) and per job, every figure labelled with its source ("measured: ..." or
"estimated: ..."). A job of a rule uses at most `max_gpus` GPUs (training: every GPU, through DDP; a job that runs
as one process: 1). Wall time on G GPUs is the GPU-hours packed onto G GPUs, or the longest chain of dependent jobs
(each at GPU-hours / min(G, max_gpus)) when that is longer.
"""

from __future__ import annotations

from pathlib import Path

from univid.config.jobs import JOBS

VIDEOQA_TEST_QUESTIONS = {"msvd_qa": 13157, "msrvtt_qa": 72821, "tgif_frameqa": 13691, "activitynet_qa": 8000}


def target_tables(plan: dict, target: str) -> list[str]:
    name = Path(target).name
    if name == "all":
        return list(plan["tables"])
    if name.endswith(".tex") and name[:-4] in plan["tables"]:
        return [name[:-4]]
    raise ValueError(f"plan target {target!r}: not known (expected reports/all or reports/tableN.tex, N one of "
                     f"{', '.join(t.removeprefix('table') for t in plan['tables'])})")


def units(job: dict, cfg: dict) -> float:
    """How many of its rule's units one job holds (steps, clips, videos, questions, ...)."""
    from univid.prompts import prompt_suite

    name = job["job"]
    if name == "curate":
        return cfg["data"]["num_gen_samples"] + cfg["data"]["num_qa_samples"]
    if name == "precompute":
        return cfg["data"]["num_gen_samples"]
    if name.startswith("stage"):
        return cfg["train"][name]["steps"]
    if name == "pretrain":  # the VAE's, the T2V DiT's and the MLLM's optimiser steps
        return sum(cfg["pretrain"][part]["steps"] for part in ("vae", "t2v", "mllm"))
    if name == "ti2v_suite":
        return len(ti2v_entries(cfg))
    if name in ("generate", "evaluate"):
        entries = (ti2v_entries(cfg) if cfg["eval"]["vbench"]["track"] == "ti2v"
                   else prompt_suite(cfg["eval"]["vbench"], cfg["seed"]))
        per = cfg["sampling"]["samples_per_prompt"]
        if name == "generate":
            return len(entries) * per
        return sum(len(e["dimension"]) for e in entries) * per  # video x dimension scorings
    if name == "videoqa":
        n = cfg["eval"]["videoqa"].get("max_questions")
        return sum(n if n is not None else size for size in VIDEOQA_TEST_QUESTIONS.values())
    if name == "suite":
        sizes = cfg["plan"]["suite_questions"]
        caps = cfg["eval"]["suites"].get("max_questions") or {}
        return sum(caps.get(b) if caps.get(b) is not None else sizes[b] for b in sizes)
    raise ValueError(f"plan: no unit count for job {name!r}")


# VBench-I2V's image suite: 355 image-prompt pairs (246 i2v_subject + 109 i2v_background, vbench2_beta_i2v/README.md)
VBENCH_I2V_PAIRS = {"i2v_subject": 246, "i2v_background": 109}


def ti2v_entries(cfg: dict) -> list[dict]:
    """The ti2v suite's entries as far as the plan needs them (their dimensions), without writing any image: the
    synthetic suite's prompts, or VBench-I2V's counts from its README when its files are not there yet."""
    from univid.prompts import I2V_QUALITY, select_per_dimension

    vb = cfg["eval"]["vbench"]
    if vb["ti2v_suite"]["source"] == "synthetic":
        from univid.data.synthetic import vbench_prompt_suite

        return select_per_dimension(vbench_prompt_suite(cfg["seed"], per_dimension=vb.get("per_dimension") or 1),
                                    vb.get("per_dimension"))
    per = vb.get("per_dimension")
    return [{"dimension": list(I2V_QUALITY[d])} for d, n in VBENCH_I2V_PAIRS.items() for _ in range(min(n, per or n))]


def complete(job: dict) -> bool:
    from univid.workflow import JOB_OUTPUTS

    return all((Path(job["dir"]) / f).exists() for f in JOB_OUTPUTS[job["job"]])


def cost_plan(plan: dict, cfg: dict, target: str, gpus: int | None = None) -> dict:
    """{"rules": {rule: {...}}, "totals": {...}} for the pending jobs behind `target`."""
    costs = cfg["plan"]["costs"]
    gpus = int(cfg["plan"]["gpus"] if gpus is None else gpus)
    if gpus < 1:
        raise ValueError(f"plan --gpus {gpus}: expected at least 1 GPU")
    jobs = {}
    for table in target_tables(plan, target):
        for v in plan["tables"][table]["variants"]:
            for name, job in v["jobs"].items():
                jobs.setdefault(job["dir"], (job, v["config"]))
    rules: dict[str, dict] = {}
    chain: dict[str, float] = {}  # job dir -> wall hours of the longest chain of jobs ending with it
    for job, vcfg in sorted(jobs.values(), key=lambda jc: JOBS.index(jc[0]["job"])):
        name = job["job"]
        c = costs[name]
        n = units(job, vcfg)
        gpu_h = (n * c["gpu_s"] + c.get("job_gpu_s", 0)) / 3600.0
        # A sharded rule (shards.generate / shards.videoqa N > 1) runs as N shard jobs and a gather, as Snakemake plans it.
        shards = int(cfg.get("shards", {}).get(name, 1))
        width = min(gpus, shards if shards > 1 else (c.get("max_gpus") or gpus))
        up = [chain.get(d, 0.0) for d in job["upstream_dirs"].values()]
        chain[job["dir"]] = gpu_h / width + max(up, default=0.0)
        if complete(job):
            continue
        rule = f"{name}_shard" if shards > 1 else name
        r = rules.setdefault(rule, {"jobs": 0, "units": 0.0, "unit": c["unit"], "gpu_hours": 0.0, "storage_gb": 0.0,
                                    "source": c["source"]})
        r["jobs"] += shards
        r["units"] += n
        r["gpu_hours"] += gpu_h
        r["storage_gb"] += (n * c.get("bytes", 0) + c.get("job_bytes", 0)) / 1e9
        if shards > 1:
            g = rules.setdefault(name, {"jobs": 0, "units": 0.0, "unit": "gather", "gpu_hours": 0.0,
                                        "storage_gb": 0.0, "source": f"gather of {shards} shards (no model work)"})
            g["jobs"] += 1
    gpu_hours = sum(r["gpu_hours"] for r in rules.values())
    pending = {d for d, (j, _) in jobs.items() if not complete(j)}
    longest = max((chain[d] for d in pending), default=0.0)
    return {"target": target, "scale": cfg["scale"], "gpus": gpus, "rules": rules,
            "totals": {"jobs": sum(r["jobs"] for r in rules.values()), "gpu_hours": gpu_hours,
                       "storage_gb": sum(r["storage_gb"] for r in rules.values()),
                       "wall_hours": max(gpu_hours / gpus, longest), "critical_path_hours": longest}}


def render(result: dict) -> str:
    lines = [f"{'rule':<15} {'jobs':>4} {'units':>12} {'unit':<16} {'GPU-h':>10} {'storage GB':>11}  source"]
    for rule in [x for name in JOBS for x in (f"{name}_shard", name)]:
        r = result["rules"].get(rule)
        if r:
            lines.append(f"{rule:<15} {r['jobs']:>4} {r['units']:>12,.0f} {r['unit']:<16} {r['gpu_hours']:>10.1f} "
                         f"{r['storage_gb']:>11.2f}  {r['source']}")
    t = result["totals"]
    lines.append(f"wall time on {result['gpus']} GPU(s): {t['wall_hours']:.1f} h (GPU-hours / GPUs, at least the "
                 f"longest chain of dependent jobs, {t['critical_path_hours']:.1f} h) [{result['scale']} scale]")
    lines.append(f"plan {result['target']} jobs={t['jobs']} gpu_hours={t['gpu_hours']:.1f} "
                 f"storage_gb={t['storage_gb']:.2f}")
    return "\n".join(lines)
