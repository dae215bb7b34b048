"""Per-job configs: each job sees only the config sections it reads, plus the keys of the jobs it consumes.

A job's outputs live under `{results_dir}/{scale}/{job}/{key}`, key = hash of its job config. Variants that agree on
everything a job reads therefore share that job (e.g. stage II does not read `tma`, so every TMA variant shares it),
and a change upstream changes every key downstream of it.
"""

from __future__ import annotations

from pathlib import Path

from univid import __version__
from univid.config.load import config_hash

JOBS = ("pretrain", "curate", "ti2v_suite", "precompute", "stage1", "stage2", "stage3", "generate", "evaluate", "videoqa", "suite")
# The job whose outputs a table's rows are read from, per benchmark kind (workflows/config.yaml `tables.*.benchmark`).
BENCHMARK_JOBS = {"vbench_long": "evaluate", "videoqa": "videoqa", "suites": "suite"}

# model sub-sections each job reads
# (`mllm`: where the MLLM starts, fresh or a pretrained checkpoint; every job that builds the MLLM reads it)
_GEN_MODEL = ("tokenizer", "mllm", "llm", "vit", "vae", "dit", "scheduler", "connector", "encoders", "max_text_tokens",
              "conditioning", "text_encoder")
_UND_MODEL = ("tokenizer", "mllm", "llm", "vit", "max_text_tokens")
# The precompute job's frozen encoders: the VAE, and the caption's encoder (MLLM or UMT5). Not the DiT, connector
# or encoders choice (its captions are text-only), and not `tma`: every Table-4 variant reads the same shards.
_PRECOMPUTE_MODEL = ("tokenizer", "mllm", "llm", "vit", "vae", "max_text_tokens", "conditioning", "text_encoder")
# The Actor may read VAE latents too (understanding.encoders, paper Table 9).
_ACTOR_MODEL = ("tokenizer", "mllm", "llm", "vit", "vae", "max_text_tokens")
# Stage I trains on precomputed text-only conditions (no reference image, univid.train.losses.precomputed_condition):
# the image half of TMA (alpha_img, Eq. 5) never acts there, so it is not part of stage I's key.
_TMA_IMAGE_KEYS = ("lambda_img", "img_start")


def _pick(section: dict, keys) -> dict:
    return {k: section[k] for k in keys if k in section}


# A model path that names the pretrain job's output (toy scale): `{pretrain}/wan`, `{pretrain}/mllm`.
PLACEHOLDER = "{pretrain}"
# What the pretrain job builds its models from (their `config`; the `path` of each names the job's own output).
_PRETRAIN_MODEL = ("tokenizer", "llm", "vit", "vae", "dit", "scheduler", "max_text_tokens", "text_encoder")


def _substitute(value, placeholder: str, path: str):
    if isinstance(value, dict):
        return {k: _substitute(v, placeholder, path) for k, v in value.items()}
    if isinstance(value, str) and placeholder in value:
        return value.replace(placeholder, path)
    return value


def with_pretrained(cfg: dict, pretrain_dir: str | None) -> dict:
    """cfg with `{pretrain}` in model paths replaced by the pretrain job's directory; one line if a path names it
    while no pretrain job runs (pretrain.enabled false)."""
    if pretrain_dir is None:
        used = json_paths_with(cfg["model"], PLACEHOLDER)
        if used:
            raise ValueError(f"config key 'model.{used[0]}' names the pretrain job's output ({PLACEHOLDER}) but "
                             f"pretrain.enabled is false (expected pretrain.enabled: true, or a checkpoint path)")
        return cfg
    return {**cfg, "model": _substitute(cfg["model"], PLACEHOLDER, pretrain_dir)}


def json_paths_with(node, needle: str, prefix: str = "") -> list[str]:
    """Dotted keys of the strings under `node` that contain `needle`."""
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in json_paths_with(v, needle, f"{prefix}{key}.")]
    return [prefix[:-1]] if isinstance(node, str) and needle in node else []


def training_clip(cfg: dict) -> dict:
    """train.clip with each null key taken from `sampling`: training clips match inference by default (A.3)."""
    c, s = cfg["train"].get("clip") or {}, cfg["sampling"]
    return {k: (c.get(k) if c.get(k) is not None else s[k]) for k in ("height", "width", "num_frames", "fps")}


def job_configs(cfg: dict) -> dict[str, dict]:
    """Every job's config for one resolved config, with `key` and `dir` filled in."""
    # The harness version is part of every key: a release that changes what a job computes re-keys its outputs
    # (Snakemake itself does not rerun a job when only imported package code changed).
    base = {"univid": __version__, "scale": cfg["scale"], "seed": cfg["seed"], "device": cfg["device"],
            "dtype": cfg["dtype"]}
    jobs: dict[str, dict] = {}

    def add(name: str, body: dict, upstream: tuple[str, ...]) -> None:
        job = {"job": name, **base, **body, "upstream": {u: jobs[u]["key"] for u in upstream}}
        key = config_hash(job)
        job["key"] = key
        job["dir"] = str(Path(cfg["results_dir"]) / cfg["scale"] / name / key)
        job["upstream_dirs"] = {u: jobs[u]["dir"] for u in upstream}
        jobs[name] = job

    pre = cfg.get("pretrain") or {}
    if pre.get("enabled"):
        # The toy scale's checkpoints: trained on its own world, keyed by the model configs and its own settings:
        # its own seed (the "public checkpoints" stay fixed across the experiment's seeds, as the paper's do) and
        # the world's rendering settings, not the curate job's seed and size (pretrain.data replaces those).
        world = {k: v for k, v in cfg["data"]["synthetic"].items() if k not in pre["data"]}
        add("pretrain", {"model": _pick(cfg["model"], _PRETRAIN_MODEL), "pretrain": pre, "seed": pre["seed"],
                         "data": {"synthetic": world, "filters": cfg["data"].get("filters")}}, ())
    cfg = with_pretrained(cfg, jobs["pretrain"]["dir"] if "pretrain" in jobs else None)
    pre_up = ("pretrain",) if "pretrain" in jobs else ()
    vb = cfg["eval"]["vbench"]
    add("curate", {"data": cfg["data"], "eval": {"vbench": _pick(vb, ("prompt_suite", "per_dimension"))}}, ())
    # The ti2v track's prompts with their reference images: synthetic first frames are rendered at the video's size.
    add("ti2v_suite", {"eval": {"vbench": _pick(vb, ("ti2v_suite", "per_dimension"))},
                       "sampling": _pick(cfg["sampling"], ("height", "width", "num_frames", "fps"))}, ())
    tr = cfg["train"]
    add("precompute", {"model": _pick(cfg["model"], _PRECOMPUTE_MODEL),
                       "train": {"clip": training_clip(cfg), "precompute": tr["precompute"]}}, ("curate", *pre_up))
    # How a stage trains (precision, checkpointing, workers) is part of its key: bf16 and float32 runs differ.
    engine = {k: tr[k] for k in ("mixed_precision", "gradient_checkpointing", "num_workers")}
    tma_text = {k: v for k, v in cfg["tma"].items() if k not in _TMA_IMAGE_KEYS}
    add("stage1", {"model": _pick(cfg["model"], _GEN_MODEL), "tma": tma_text,
                   "train": {"stage1": tr["stage1"], **engine}}, ("curate", "precompute", *pre_up))
    # Stage II reads the VAE only when its blocks train (train.stage2.vae: trainable_blocks, Sec. 3.2's reading).
    stage2_model = _UND_MODEL + (("vae",) if tr["stage2"]["vae"] != "frozen" else ())
    add("stage2", {"model": _pick(cfg["model"], stage2_model), "train": {"stage2": tr["stage2"], **engine}},
        ("curate", *pre_up))
    add("stage3", {"model": _pick(cfg["model"], _GEN_MODEL), "tma": cfg["tma"],
                   "train": {"stage1": tr["stage1"], "stage3": tr["stage3"], **engine}},
        ("curate", "precompute", "stage1", "stage2", *pre_up))
    # sampling.from_stage picks the weights generation loads: 3 (joint) or 1 (paper Table 6's "Stage I" row).
    gen_from = f"stage{cfg['sampling']['from_stage']}"
    # eval.vbench.track: ti2v generates (and evaluates) the ti2v suite's prompts, each from its reference image.
    track = vb["track"]
    suite = ("ti2v_suite",) if track == "ti2v" else ()
    add("generate", {"model": _pick(cfg["model"], _GEN_MODEL), "tma": cfg["tma"], "sampling": cfg["sampling"],
                     "train": {"stage1": cfg["train"]["stage1"]}, "eval": {"vbench": {"track": track}}},
        ("curate", gen_from, *suite, *pre_up))
    ev = cfg["eval"]
    # Where the ti2v prompts come from is the ti2v_suite job's business (its key is upstream of a ti2v evaluate job).
    scoring = {k: v for k, v in vb.items() if k != "ti2v_suite"}
    add("evaluate", {"eval": {"cache_dir": ev["cache_dir"], "vbench": scoring},
                     "sampling": _pick(cfg["sampling"], ("samples_per_prompt", "fps", "num_frames"))},
        ("curate", "generate", *suite))
    # Understanding reads the joint (stage III) weights, or none (paper Table 7's "w/o finetune" and "Base" rows).
    und_from = ("curate", "stage3") if cfg["understanding"]["weights"] == "stage3" else ("curate",)
    und_from += pre_up
    und = {"model": _pick(cfg["model"], _ACTOR_MODEL), "understanding": cfg["understanding"], "llm": cfg["llm"]}
    add("videoqa", {**und, "eval": {k: ev[k] for k in ("cache_dir", "videoqa")}}, und_from)
    add("suite", {**und, "eval": {k: ev[k] for k in ("cache_dir", "suites")}}, und_from)
    return jobs


def lineage_jobs(jobs: dict[str, dict], target: str) -> dict[str, dict]:
    """The jobs `target` depends on (itself included), following upstream keys."""
    out, todo = {}, [target]
    while todo:
        name = todo.pop()
        if name not in out:
            out[name] = jobs[name]
            todo.extend(jobs[name]["upstream"])
    return {name: out[name] for name in JOBS if name in out}


def job_config(cfg: dict, name: str) -> dict:
    return job_configs(cfg)[name]
