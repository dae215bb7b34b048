"""The smoke Table-4 workflow through the SLURM profile on a real single-node SLURM cluster started on localhost
(workflows/cluster/slurm-local; Debian's slurm-wlm + munge, installed with apt-get when missing), compared with the
local run. The SLURM run starts from empty results and an empty UNIVID_CACHE; the local run (conftest's smoke_run)
from empty results and the user's cache, which is empty on a fresh CI machine. Equal tables there are the check that
two cold smoke runs on one machine produce identical tables (issue #7 item 7). Slow: a few minutes."""

import os
import re
import subprocess

import pytest

from conftest import ROOT, scratch_workflow, snakemake

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "workflows" / "cluster" / "slurm-local"


def _cluster(cmd: str, state) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), cmd], env=dict(os.environ, SLURM_LOCAL_STATE=str(state)),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:  # e.g. a GitHub-hosted runner (passwordless sudo, not root): the CI machine runs as root
        pytest.skip("starting a local SLURM cluster needs root (apt-get install slurm-wlm munge, daemons as root)")
    state = tmp_path_factory.mktemp("slurm_state")
    up = _cluster("start", state)
    if up.returncode != 0:
        _cluster("stop", state)  # a half-started cluster's daemons would hold the ports for the next run
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield state
    finally:
        _cluster("stop", state)


def test_table4_through_slurm_equals_the_local_run(slurm, smoke_run, tmp_path):
    node = subprocess.run(["scontrol", "show", "node"], capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"Gres=gpu:2\b", node), node  # the local cluster advertises two GPUs as a GRES
    work = scratch_workflow(tmp_path / "wf")
    proc = snakemake(work, "--profile", "workflows/profiles/slurm", "--verbose", "reports/table4.tex",
                     cache=tmp_path / "cache", timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    # Every GPU rule's job went to sbatch with its GPU request (and was scheduled against the GRES: an unknown
    # request is refused at submission); the CPU-only curate job asked for none.
    by_rule = {}
    for call in re.findall(r"sbatch call: (.*)", log):  # --verbose: the plugin logs every sbatch command line
        rule = re.search(r"--comment '?rule_([a-z0-9]+)", call)
        by_rule.setdefault(rule.group(1) if rule else "?", []).append(call)
    for r in ("precompute", "stage1", "stage2", "stage3", "generate", "evaluate"):
        assert by_rule.get(r) and all("--gpus=1" in c for c in by_rule[r]), (r, sorted(by_rule))
    assert by_rule.get("curate") and not any("--gpus" in c for c in by_rule["curate"]), by_rule.get("curate")
    # every job that is not a local rule went through sbatch (the plugin deletes the logs of successful jobs)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) >= 12, log[-3000:]  # curate, stage I/II/III, generate and evaluate for five variants
    assert (work / "reports" / "table4.tex").read_text() == (smoke_run / "reports" / "table4.tex").read_text()
