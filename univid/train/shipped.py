"""Shipped toy checkpoints: the pretrain job's output, committed to this repository so a cold toy run need not
retrain it (make report cold would otherwise spend most of its time in the pretrain job).

`checkpoints/pretrain/<key>/` holds a pretrain job's `wan/` and `mllm/` (the official layouts), its
`pretrain_log.json` (every step's loss) and `job_config.json`, plus `SHIPPED.json`: the sha256 of every file, the
command that trained it, the git commit and package versions. The key is the pretrain job's content key, so only a
job of exactly that config (model parts, pretrain settings, world, seed, harness version) is served; any other
trains as before. What the key cannot see, a change of the training code, `check_reproduces` can: it reruns the
first steps of each loop with this code and compares them with the shipped log (tests/test_shipped.py; the
mechanics in tests/test_pretrain.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from univid.config.load import REPO_ROOT
from univid.eval.cache import file_sha256
from univid.io import atomic_dir, read_json, write_json

SHIPPED_ROOT = REPO_ROOT / "checkpoints" / "pretrain"
RECORD = "SHIPPED.json"
SHIPPED_PARTS = ("wan", "mllm", "pretrain_log.json", "job_config.json")
# The command that trains and ships the toy default's checkpoints (Makefile: ship-pretrain).
SHIP_COMMAND = "univid pretrain --train --ship --set scale=toy"
# Losses of a replay against the shipped log: relative, per step. Measured on this machine: a replay repeats the
# logged VAE and MLLM losses exactly and the T2V losses to ~1e-6 (the VAE's saved latent statistics are rounded to
# 6 decimals); the margin covers another CPU's kernels. A change of recipe moves the first steps by far more.
REPLAY_RTOL = 1e-3


def _files(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under the shipped parts of `root`."""
    out = {}
    for part in SHIPPED_PARTS:
        path = root / part
        for f in sorted([path] if path.is_file() else path.rglob("*")):
            if f.is_file():
                out[str(f.relative_to(root))] = file_sha256(f)
    return out


def shipped_dir(key: str, root: Path | None = None) -> Path | None:
    """The shipped checkpoint of pretrain job `key`, if this repository (or `root`) has one."""
    path = Path(root or SHIPPED_ROOT) / key
    return path if (path / RECORD).is_file() else None


def ship(job_dir: Path, job: dict, root: Path | None = None, command: str = SHIP_COMMAND) -> Path:
    """Copy a finished pretrain job's output into `root/<key>` with its record; `job` is the config it must be the
    output of (its job_config.json's key must be job['key'])."""
    from univid.provenance import git_state, package_versions

    job_dir, root = Path(job_dir), Path(root or SHIPPED_ROOT)
    if not (job_dir / "manifest.json").is_file():
        raise ValueError(f"pretrain output '{job_dir}': no manifest.json (expected a finished pretrain job)")
    done = read_json(job_dir / "job_config.json") if (job_dir / "job_config.json").is_file() else {}
    if done.get("key") != job["key"]:
        raise ValueError(f"pretrain output '{job_dir}': job key {done.get('key')} (expected {job['key']}, the "
                         f"pretrain job of this config)")
    with atomic_dir(root / job["key"]) as tmp:
        for part in SHIPPED_PARTS:
            src = job_dir / part
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / part)
        write_json(tmp / RECORD, {"key": job["key"], "command": command, "git": git_state(),
                                  "packages": package_versions(), "files": _files(tmp),
                                  "timings": read_json(job_dir / "manifest.json").get("timings")})
    return root / job["key"]


def install(src: Path, out: Path, job: dict) -> dict:
    """Copy shipped checkpoint `src` into pretrain job directory `out` after checking every file's sha256; writes
    the manifest last, as the job does."""
    src, out = Path(src), Path(out)
    record = read_json(src / RECORD)
    if record.get("key") != job["key"]:
        raise ValueError(f"shipped checkpoint '{src}': key {record.get('key')} (expected {job['key']})")
    found = _files(src)
    bad = sorted(set(record["files"]) ^ set(found)) or sorted(f for f in found if found[f] != record["files"][f])
    if bad:
        raise ValueError(f"shipped checkpoint '{src}': {bad[0]} does not match its recorded sha256 (expected the "
                         f"files {RECORD} lists; re-ship with `{SHIP_COMMAND}`)")
    out.mkdir(parents=True, exist_ok=True)
    for part in ("wan", "mllm"):
        with atomic_dir(out / part) as tmp:
            shutil.rmtree(tmp)
            shutil.copytree(src / part, tmp)
    shutil.copy2(src / "pretrain_log.json", out / "pretrain_log.json")
    log = read_json(src / "pretrain_log.json")
    manifest = {"wan": str(out / "wan"), "mllm": str(out / "mllm"),
                "final_loss_mean_last20": log["final_loss_mean_last20"], "timings": log["timings"],
                "shipped": {"from": str(src.relative_to(REPO_ROOT) if src.is_relative_to(REPO_ROOT) else src),
                            "command": record["command"], "git_commit": record["git"].get("commit")}}
    write_json(out / "manifest.json", manifest)
    return manifest


def check_reproduces(cfg: dict, src: Path, work: Path, steps: int, rtol: float = REPLAY_RTOL, log=None) -> dict:
    """Rerun the first `steps` of each pretrain loop with this code and compare with shipped checkpoint `src`'s
    logged losses: {loop: worst relative difference}; one line naming the first step that differs beyond `rtol`."""
    from univid.train.pretrain import replay_first_steps

    logged = read_json(Path(src) / "pretrain_log.json")["losses"]
    replayed = replay_first_steps(cfg, Path(src), Path(work), steps, log)
    worst = {}
    for loop, losses in replayed.items():
        diffs = [abs(a - b) / max(abs(b), 1e-8) for a, b in zip(losses, logged[loop])]
        for step, d in enumerate(diffs):
            if d > rtol:
                raise ValueError(f"shipped checkpoint '{src}': pretrain {loop} step {step + 1} loss {losses[step]} "
                                 f"(expected {logged[loop][step]} within rtol {rtol}: the training code no longer "
                                 f"reproduces it; re-ship with `{SHIP_COMMAND}`)")
        worst[loop] = max(diffs)
    return worst

