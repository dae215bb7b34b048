"""What every evaluation's results JSON carries besides the scores: config, its hash, seeds, git commit, package
versions (univid.provenance), and the ids of whatever produced the numbers (scorers, judge)."""

from __future__ import annotations

from importlib import metadata

from univid.config import config_hash
from univid.provenance import provenance

EXTRA_PACKAGES = ("opencv-python-headless", "opencv-python", "open_clip_torch", "jinja2", "scipy")


def eval_metadata(job: dict, cfg: dict | None = None, *, seeds: dict | None = None, **ids) -> dict:
    """{"config", "config_hash", "job_key", "seeds", "provenance", **ids} for an evaluation run.

    job: the job config the evaluation ran under (univid.config.job_config); cfg: the full config, when known.
    ids: e.g. scorers={dim: backend id} or judge={"backend", "model"}."""
    prov = provenance()
    for name in EXTRA_PACKAGES:
        try:
            prov["packages"].setdefault(name, metadata.version(name))
        except metadata.PackageNotFoundError:
            pass
    body = {k: v for k, v in job.items() if k not in ("dir", "upstream_dirs")}
    return {
        "config": body,
        "config_hash": config_hash(body),
        "job_key": job.get("key"),
        "scale": job.get("scale"),
        "seeds": {"seed": job.get("seed"), **(seeds or {})},
        "provenance": prov,
        **({"full_config_hash": config_hash(cfg)} if cfg is not None else {}),
        **ids,
    }
