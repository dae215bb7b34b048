"""`univid config`: the resolved config, its hash and every job's output directory."""

from __future__ import annotations

import json

from univid.commands.common import config_args, full_config


def cmd_config(args) -> None:
    from univid.config import config_hash, job_configs

    cfg = full_config(args)
    jobs = job_configs(cfg)
    print(json.dumps({"config_hash": config_hash(cfg), "jobs": {k: v["dir"] for k, v in jobs.items()},
                      "config": cfg}, indent=2))


def register(sub) -> None:
    sp = sub.add_parser("config", help="print the resolved config, its hash and each job's output directory")
    config_args(sp, job=False)
    sp.set_defaults(fn=cmd_config)
