"""Data verbs: `univid curate` (the synthetic world or a real release -> OpenVid-1M / ActivityNet-QA manifests, and the
benchmark prompt suite) and `univid ti2v-suite` (the ti2v track's prompts, each with a reference image)."""

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


def cmd_ti2v_suite(args) -> None:
    """The ti2v_suite job: the ti2v track's prompts (prompts.json, written last) with a reference image each."""
    from univid.io import write_json
    from univid.prompts import ti2v_suite

    job, cfg = job_config_of(args, "ti2v_suite")
    out = Path(args.out or job["dir"])
    vb = cfg["eval"]["vbench"]
    entries = ti2v_suite(vb, cfg["sampling"], cfg["seed"], out)
    write_job_config(out, job)
    write_json(out / "prompts.json", entries)
    print(f"ti2v suite ({vb['ti2v_suite']['source']}, {cfg['scale']} scale): {len(entries)} prompts with reference "
          f"images -> {out / 'prompts.json'}")


def register(sub) -> None:
    sp = sub.add_parser("curate", help="curate training data and the benchmark prompt suite")
    config_args(sp)
    sp.add_argument("--out")
    sp.set_defaults(fn=cmd_curate)

    sp = sub.add_parser("ti2v-suite", help="the ti2v track's prompt suite, a reference image per prompt")
    config_args(sp)
    sp.add_argument("--out")
    sp.set_defaults(fn=cmd_ti2v_suite)
