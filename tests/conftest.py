import json
import os
import re

import pytest

# No model hub in tests: offline everywhere (otherwise hub retries add ~50 s per miss).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# The smoke config and one built model, shared by the model and generation tests (modules may override `cfg`).
@pytest.fixture(scope="module")
def cfg():
    from univid.config import resolve

    return resolve({})


@pytest.fixture(scope="module")
def comp(cfg):
    from univid.models.builder import build

    return build(cfg)


# ---- the smoke workflow, run once per session in a scratch copy (slow: the workflow and SLURM tests share it) ----
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "workflows", "ablations", "reports/templates", "reports/published")


def scratch_workflow(dest: Path, pin_smoke: bool = True) -> Path:
    """A copy of what a workflow run reads (the package itself is installed in the venv), at `scale: smoke`: the
    workflow's embedded default is toy (a pretrain job first), and tests check mechanics. `pin_smoke` False keeps
    the default (the toy regression check)."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in WORKFLOW_FILES:
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / item)
    config = dest / "workflows" / "config.yaml"
    if not pin_smoke:
        return dest
    text = config.read_text()
    if text.count("\nscale: toy\n") != 1:
        raise AssertionError(f"{config}: expected one line 'scale: toy' (the workflow's default) to pin to smoke")
    config.write_text(text.replace("\nscale: toy\n", "\nscale: smoke\n"))
    return dest


def snakemake(work: Path, *args: str, cache: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if cache is not None:
        env["UNIVID_CACHE"] = str(cache)
    # -k: Snakemake ignores SIGTERM while cluster jobs run
    return subprocess.run(["timeout", "-k", "30", str(timeout), sys.executable, "-m", "snakemake", *args], cwd=work,
                          env=env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """`snakemake --cores 2 reports/all` at smoke scale from empty results and MLflow store (the user's UNIVID_CACHE,
    which is empty on a fresh CI machine; benchmarks/perf/all_smoke times a run with an empty one)."""
    work = scratch_workflow(tmp_path_factory.mktemp("smoke_all"))
    proc = snakemake(work, "--cores", "2", "reports/all")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def send_chat_completion(handler, text: str) -> None:
    """Answer an HTTP request (BaseHTTPRequestHandler) with an OpenAI chat-completions body whose reply is `text`."""
    import json

    out = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)


def job_counts(snakemake_output: str) -> dict[str, int]:
    """Rule -> number of jobs, from the "Job stats" table Snakemake prints (a dry run's plan)."""
    table = snakemake_output.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny-model training steps are dominated by thread hand-offs: one intra-op thread is faster, and far faster
    when the machine is busy (2 threads on a loaded 2-core box measured ~80x slower per step)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def generate_job(tmp_path_factory):
    """A smoke generate job's directory whose stage III weights are a fresh model's trainable weights (the toy_*
    benchmarks' mechanics)."""
    from univid.config import job_configs, resolve
    from univid.models.builder import build, save_weights, trainable_state_dict

    tmp = tmp_path_factory.mktemp("toy_generation")
    cfg = resolve({"results_dir": str(tmp / "results")})
    job = job_configs(cfg)["generate"]
    stage3 = Path(job["upstream_dirs"]["stage3"])
    comp = build(cfg)
    for p in comp.model.connector.parameters():
        p.requires_grad_(True)
    (stage3 / "final").mkdir(parents=True)
    save_weights(trainable_state_dict(comp.model), stage3 / "final" / "weights.safetensors")
    gen = Path(job["dir"])
    gen.mkdir(parents=True)
    (gen / "job_config.json").write_text(json.dumps(job))
    return gen
