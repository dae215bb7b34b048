"""What every score carries: git commit, package versions, python."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "diffusers", "peft", "snakemake", "mlflow", "vbench", "open_clip_torch", "decord",
            "av", "pandas", "numpy")
REPO_ROOT = Path(__file__).resolve().parents[1]


def git_state(root: Path = REPO_ROOT) -> dict:
    def run(*cmd):
        return subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True, timeout=10)

    try:
        head = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    if head.returncode != 0:
        return {"commit": "unknown", "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict:
    return {"git": git_state(), "packages": package_versions(), "python": platform.python_version()}
