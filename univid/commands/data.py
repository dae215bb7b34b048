"""Data verbs: `univid curate` (the synthetic world or a real release -> OpenVid-1M / ActivityNet-QA manifests, and the
benchmark prompt suite)."""

from __future__ import annotations

import json
from pathlib import Path

from univid.commands.common import config_args, job_config_of, write_job_config


def cmd_curate(args) -> None:
    from univid.data.curate import curate
    from univid.io import write_json
    from univid.prompts import prompt_suite

    job, cfg = job_config_of(args, "curate")
    out = Path(args.out or job["dir"])
    report = curate(cfg["data"], out, cfg["seed"])
    write_json(out / "prompts.json", prompt_suite(cfg["eval"]["vbench"], cfg["seed"]))
    write_job_config(out, job)
    print(json.dumps(report))


def register(sub) -> None:
    sp = sub.add_parser("curate", help="curate training data and the benchmark prompt suite")
    config_args(sp)
    sp.add_argument("--out")
    sp.set_defaults(fn=cmd_curate)
