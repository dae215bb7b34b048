"""The toy default's shipped pretrain checkpoints (checkpoints/pretrain/<key>): there for the key the workflow's
default config plans, intact, loadable, and still reproduced by this repository's training code, within
shipped.REPLAY_RTOL over the first REPLAY_STEPS steps of each loop (the mechanics: tests/test_pretrain.py)."""

import pytest

from univid.config import job_config, resolve
from univid.config.jobs import with_pretrained
from univid.config.load import REPO_ROOT, load_user_config
from univid.train import shipped

REPLAY_STEPS = 10


@pytest.fixture(scope="module")
def default_toy():
    """The workflow's embedded default config (workflows/config.yaml) and its pretrain job's shipped checkpoint."""
    user = load_user_config(REPO_ROOT / "workflows" / "config.yaml")
    user.pop("tables", None)
    cfg = resolve(user)
    job = job_config(cfg, "pretrain")
    src = shipped.shipped_dir(job["key"])
    assert src is not None, (f"no shipped checkpoint for the default {cfg['scale']} pretrain job {job['key']} (the "
                             f"toy pretrain config or the harness version changed): run `make ship-pretrain`")
    return cfg, job, src


def test_the_default_pretrain_job_installs_its_shipped_checkpoint_and_the_toy_model_loads_it(default_toy, tmp_path):
    from univid.models.builder import build

    cfg, job, src = default_toy
    manifest = shipped.install(src, tmp_path / "pretrain", job)
    assert manifest["shipped"]["command"] == shipped.SHIP_COMMAND
    comp = build(with_pretrained(cfg, str(tmp_path / "pretrain")), parts=("mllm", "vae"))
    # the shipped VAE with its measured latent statistics, not the preset's placeholders (0 and 1)
    assert len(set(comp.model.vae.config.latents_std)) > 1 and comp.model.mllm is not None


def test_the_training_code_still_reproduces_the_shipped_checkpoint(default_toy, tmp_path, one_torch_thread):
    cfg, _, src = default_toy
    worst = shipped.check_reproduces(cfg, src, tmp_path, steps=REPLAY_STEPS)
    assert set(worst) == {"vae", "t2v", "mllm"}, worst
