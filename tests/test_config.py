import subprocess
import sys
from pathlib import Path

import pytest

from univid.config import ConfigError, apply_overrides, config_hash, job_configs, load_ablation, parse_set, resolve

ROOT = Path(__file__).resolve().parents[1]


def test_default_scale_is_smoke_and_validates():
    cfg = resolve({})
    assert cfg["scale"] == "smoke"
    assert cfg["model"]["llm"]["path"] is None
    assert cfg["tma"]["schedule"] == "cosine" and cfg["tma"]["lambda_txt"] == 0.3


@pytest.mark.parametrize("bad, named", [
    ({"scale": "huge"}, "'scale'"),
    ({"sedd": 1}, "'sedd'"),
    ({"tma": {"schedul": "cosine"}}, "'tma.schedul'"),
    ({"tma": {"schedule": "exponential"}}, "'tma.schedule'"),
    ({"seed": "zero"}, "'seed'"),
    ({"train": {"stage1": {"steps": 0}}}, "'train.stage1.steps'"),
])
def test_bad_config_is_one_line_naming_the_key(bad, named):
    with pytest.raises(ConfigError) as err:
        resolve(bad)
    msg = str(err.value)
    assert named in msg and "\n" not in msg


def test_paper_scale_names_the_checkpoints():
    cfg = resolve({"scale": "paper"})
    assert cfg["model"]["dit"]["path"] == "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
    assert cfg["sampling"]["num_frames"] == 121 and cfg["sampling"]["steps"] == 50


def test_parse_set_nests_and_types():
    assert parse_set(["tma.schedule=step", "seed=3"]) == {"tma": {"schedule": "step"}, "seed": 3}
    with pytest.raises(ConfigError):
        parse_set(["tma.schedule"])


def test_stage2_is_shared_across_tma_variants_and_stage1_is_not():
    base = resolve({})
    ablation = load_ablation(ROOT / "ablations" / "tma_schedule.yaml")
    keys = [job_configs(apply_overrides(base, v["overrides"])) for v in ablation["variants"]]
    assert len({k["stage2"]["key"] for k in keys}) == 1
    assert len({k["curate"]["key"] for k in keys}) == 1
    assert len({k["stage1"]["key"] for k in keys}) == 5
    assert len({k["evaluate"]["key"] for k in keys}) == 5


def _changed_jobs(overrides: dict) -> set[str]:
    base, other = job_configs(resolve({})), job_configs(resolve(overrides))
    return {name for name in base if base[name]["key"] != other[name]["key"]}


def test_new_choices_re_key_exactly_the_jobs_they_change():
    """train.stage1.lora_targets changes the DiT adapter (stage I, III and generation build it); train.stage2.vae
    changes stage II (and reads the VAE spec only when its blocks train); each re-keys what follows."""
    after_stage3 = {"stage3", "generate", "evaluate", "videoqa", "suite"}
    assert _changed_jobs({"train": {"stage1": {"lora_targets": "self_and_cross_attn"}}}) == {"stage1"} | after_stage3
    assert _changed_jobs({"train": {"stage2": {"vae": "trainable_blocks"}}}) == {"stage2"} | after_stage3
    assert "vae" not in job_configs(resolve({}))["stage2"]["model"]
    assert "vae" in job_configs(resolve({"train": {"stage2": {"vae": "trainable_blocks"}}}))["stage2"]["model"]
    with pytest.raises(ConfigError, match="train.stage2.vae"):
        resolve({"train": {"stage2": {"vae": "trainable"}}})
    # where the MLLM starts: every job that builds it (all but the data jobs, which build no model)
    everything = set(job_configs(resolve({}))) - {"curate", "ti2v_suite"}
    assert _changed_jobs({"model": {"mllm": {"init": {"checkpoint": "some/llava"}}}}) == everything
    # who routes questions changes only the jobs that run Pyramid Reflection's roles
    assert _changed_jobs({"understanding": {"routing_follows_evaluator": True}}) == {"videoqa", "suite"}


def test_hash_changes_with_content_only():
    a = resolve({})
    b = resolve({"tma": {"lambda_txt": 0.31}})
    assert config_hash(a) == config_hash(resolve({}))
    assert config_hash(a) != config_hash(b)
    assert job_configs(a)["stage2"]["key"] == job_configs(b)["stage2"]["key"]


def test_ablation_with_a_bad_override_names_the_variant(tmp_path):
    bad = tmp_path / "abl.yaml"
    bad.write_text("name: x\ntable: 4\nvariants:\n  - {name: a, label: A, overrides: {tma: {shedule: step}}}\n")
    with pytest.raises(ConfigError, match=r"variant 'a'.*'tma.shedule'"):
        load_ablation(bad)


def test_workflow_rejects_a_misspelled_key_before_any_job(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text((ROOT / "workflows" / "config.yaml").read_text() + "\nsede: 1\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "reports/table4.tex", "--configfile", str(cfg)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "config key 'sede' is not known" in proc.stdout + proc.stderr
