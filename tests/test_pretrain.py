"""The toy scale's pretrain job: checkpoints trained by the harness, saved in the official layouts, loaded back through
the paper-scale loaders, keyed by content, and refused in one line when they belong to another config."""

import json

import pytest
import torch

from conftest import job_counts, scratch_workflow, snakemake
from univid.config import ConfigError, job_configs, resolve
from univid.config.jobs import with_pretrained

TINY = {"pretrain": {"data": {"n_clips": 6}, "vae": {"steps": 2, "batch_size": 2},
                     "t2v": {"steps": 2, "batch_size": 4}, "mllm": {"steps": 2, "batch_size": 2}}}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, one_torch_thread):
    """A pretrain job at toy widths with a few steps (the mechanics; the toy run itself trains for minutes)."""
    from univid.train.pretrain import run_pretrain

    cfg = resolve({"scale": "toy", **TINY})
    out = tmp_path_factory.mktemp("pretrain")
    manifest = run_pretrain(cfg, out)
    return cfg, out, manifest


def test_toy_preset_inherits_smoke_and_points_at_the_pretrain_job():
    cfg = resolve({"scale": "toy"})
    smoke = resolve({"scale": "smoke"})
    assert cfg["scale"] == "toy" and cfg["pretrain"]["enabled"] and not smoke["pretrain"]["enabled"]
    assert cfg["sampling"] == smoke["sampling"] and cfg["llm"]["roles"] == smoke["llm"]["roles"]  # smoke's harness
    jobs = job_configs(cfg)
    pre = jobs["pretrain"]["dir"]
    assert pre.startswith("results/toy/pretrain/")
    for name in ("precompute", "stage1", "stage2", "stage3", "generate", "videoqa", "suite"):
        assert "pretrain" in jobs[name]["upstream"], name
    assert jobs["stage1"]["model"]["dit"]["path"] == f"{pre}/wan"
    assert jobs["videoqa"]["model"]["mllm"]["init"] == {"checkpoint": f"{pre}/mllm"}
    assert "pretrain" not in job_configs(smoke)  # smoke and paper have no pretrain job


def test_a_job_rebuilds_its_config_with_every_pretrain_path_filled_in():
    """A job's command rebuilds the full config from the job config; the model parts it does not key on (the
    scheduler of an understanding job) come from the preset and must name its pretrain upstream too."""
    from univid.config.jobs import PLACEHOLDER, json_paths_with
    from univid.workflow import config_from_job

    jobs = job_configs(resolve({"scale": "toy"}))
    pre = jobs["pretrain"]["dir"]
    for name, job in jobs.items():
        if "pretrain" in job["upstream"]:
            model = config_from_job(job)["model"]
            assert json_paths_with(model, PLACEHOLDER) == [], name
            assert model["scheduler"]["path"] == f"{pre}/wan", name


def test_pretrain_is_keyed_by_content_and_shared_by_tma_variants():
    base = resolve({"scale": "toy"})
    step = resolve({"scale": "toy", "tma": {"schedule": "step"}})
    more = resolve({"scale": "toy", "pretrain": {"t2v": {"steps": 7}}})
    key = job_configs(base)["pretrain"]["key"]
    assert job_configs(step)["pretrain"]["key"] == key  # TMA is not pretraining's business
    # the "public checkpoints" stay fixed across the experiment's seeds and the curate job's world size (the seed
    # runs of a regression baseline share them); their own seed and the world's rendering re-key them
    reseeded = resolve({"scale": "toy", "seed": 3, "data": {"synthetic": {"n_clips": 50, "seed": 7}}})
    assert job_configs(reseeded)["pretrain"]["key"] == key
    assert job_configs(reseeded)["stage1"]["key"] != job_configs(base)["stage1"]["key"]
    for other in ({"pretrain": {"seed": 1}}, {"data": {"synthetic": {"num_frames": 9}}}):
        assert job_configs(resolve({"scale": "toy", **other}))["pretrain"]["key"] != key, other
    assert job_configs(more)["pretrain"]["key"] != key
    # ... and a new pretraining re-keys every model job downstream of it
    assert job_configs(more)["stage2"]["key"] != job_configs(base)["stage2"]["key"]


def test_pretrain_writes_official_layouts_that_the_toy_config_loads(pretrained):
    from diffusers import AutoencoderKLWan
    from transformers import LlavaForConditionalGeneration

    from univid.models.builder import build

    cfg, out, manifest = pretrained
    assert json.loads((out / "manifest.json").read_text())["wan"] == str(out / "wan")
    for sub in ("vae", "transformer", "text_encoder", "tokenizer", "scheduler"):
        assert (out / "wan" / sub).is_dir(), sub
    assert json.loads((out / "wan" / "model_index.json").read_text())["_class_name"] == "WanPipeline"
    llava = LlavaForConditionalGeneration.from_pretrained(out / "mllm")
    assert llava.config.vision_feature_layer == -1 and llava.config.vision_feature_select_strategy == "full"
    vae = AutoencoderKLWan.from_pretrained(out / "wan", subfolder="vae")
    assert vae.config.scale_factor_spatial == 4 and len(set(vae.config.latents_std)) > 1  # measured statistics
    comp = build(with_pretrained(cfg, str(out)))
    # the toy model is the pretrained one: the MLLM's projector and the DiT weights are the saved ones
    assert torch.equal(comp.model.mllm.vision_proj[0].weight, llava.model.multi_modal_projector.linear_1.weight)
    assert comp.model.mllm.vision_feature_layer == -1
    from diffusers import WanTransformer3DModel

    dit = WanTransformer3DModel.from_pretrained(out / "wan", subfolder="transformer")
    ours = {k.replace(".base_layer", ""): v for k, v in comp.model.dit.state_dict().items() if "lora" not in k}
    assert all(torch.equal(ours[k], v) for k, v in dit.state_dict().items())


def test_a_checkpoint_of_another_config_is_one_line(pretrained):
    from univid.models.builder import build

    cfg, out, _ = pretrained
    other = resolve({"scale": "toy", **TINY, "model": {"dit": {"config": {"num_layers": 2}}}})
    with pytest.raises(ValueError, match=r"model.dit.path '.*wan': pretrained for another model config "
                                         r"\(model.dit differs; expected the pretrain job of this config"):
        build(with_pretrained(other, str(out)))


def test_missing_pretrain_output_and_placeholder_without_the_job_are_one_line(tmp_path):
    from univid.models.builder import build

    cfg = resolve({"scale": "toy"})
    missing = with_pretrained(cfg, str(tmp_path / "results/toy/pretrain/0123456789ab"))
    with pytest.raises(FileNotFoundError, match=r"checkpoint directory not found .*run the pretrain job"):
        build(missing)
    with pytest.raises(ValueError, match=r"config key 'model\.\S+' names the pretrain job's output .* "
                                         r"pretrain.enabled is false"):
        job_configs(resolve({"scale": "toy", "pretrain": {"enabled": False}}))


def test_unknown_scale_names_the_three():
    with pytest.raises(ConfigError, match=r"'smoke', 'toy', 'paper'"):
        resolve({"scale": "tiny"})


def test_toy_table4_plans_one_pretrain_job_for_every_schedule(tmp_path):
    work = scratch_workflow(tmp_path)
    (work / "scale.yaml").write_text("scale: toy\n")
    proc = snakemake(work, "-n", "--cores", "2", "reports/table4.tex", "--configfile", "scale.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["pretrain"] == 1 and counts["precompute"] == 1 and counts["stage1"] == 5, counts


def test_mllm_pretrain_data_carry_the_actors_system_turn_in_the_given_share(tmp_path):
    from univid.reflection.templates import render
    from univid.train.pretrain import _mllm_items

    videos = [f"v{i}.mp4" for i in range(40)]
    (tmp_path / "gen_train.jsonl").write_text("".join(json.dumps({"video": v, "caption": f"caption of {v}"}) + "\n"
                                                      for v in videos))
    qa = [{"id": f"{v}_{k}", "video": v, "conversations": [{"from": "human", "value": "<video>\nq"},
                                                            {"from": "gpt", "value": "a"}]}
          for v in videos for k in range(10)]
    (tmp_path / "qa_train.json").write_text(json.dumps(qa))

    items = _mllm_items(tmp_path, "Describe the video.", 0.5, seed=3)
    with_system = [i for i in items if i["conversations"][0]["from"] == "system"]
    assert len(items) == len(qa) + len(videos)
    assert 0.4 < len(with_system) / len(qa) < 0.6
    assert all(i["conversations"][1:] == qa[0]["conversations"] for i in with_system)
    own = [i for i in with_system
           if i["conversations"][0]["value"] == render("actor", global_caption=f"caption of {i['video']}")]
    assert 0.3 < len(own) / len(with_system) < 0.7  # the rest carry another clip's caption
    assert all(i["conversations"][0]["value"].startswith(render("actor", global_caption="")) for i in with_system)
    assert _mllm_items(tmp_path, "Describe the video.", 0.5, seed=3) == items
    assert not any(i["conversations"][0]["from"] == "system" for i in _mllm_items(tmp_path, "x", 0.0))
    with pytest.raises(ValueError, match="system_fraction"):
        _mllm_items(tmp_path, "x", 1.5)


def _finished_job(cfg, out):
    """The pretrain fixture's output as `univid pretrain` leaves it (with its job_config.json)."""
    from univid.config import job_config
    from univid.io import write_json

    job = job_config(cfg, "pretrain")
    write_json(out / "job_config.json", job)
    return job


def test_shipped_checkpoints_install_sha256_checked_and_refuse_another_key_or_a_changed_byte(pretrained, tmp_path):
    from univid.eval.cache import file_sha256
    from univid.train import shipped

    cfg, out, manifest = pretrained
    job = _finished_job(cfg, out)
    root = tmp_path / "checkpoints"
    src = shipped.ship(out, job, root=root)
    assert shipped.shipped_dir(job["key"], root) == src and shipped.shipped_dir("0123456789ab", root) is None
    record = json.loads((src / shipped.RECORD).read_text())
    assert record["key"] == job["key"] and "wan/transformer/config.json" in record["files"]
    assert not (src / "world").exists()  # the world is re-rendered, not shipped

    installed = shipped.install(src, tmp_path / "job", job)
    assert installed["final_loss_mean_last20"] == manifest["final_loss_mean_last20"]
    assert installed["shipped"]["command"] == shipped.SHIP_COMMAND
    for rel, digest in record["files"].items():
        if rel.startswith(("wan/", "mllm/")):
            assert file_sha256(tmp_path / "job" / rel) == digest, rel

    other = {**job, "key": "0123456789ab"}
    with pytest.raises(ValueError, match=r"pretrain output '.*': job key \w+ \(expected 0123456789ab, the pretrain "
                                         r"job of this config\)"):
        shipped.ship(out, other, root=root)
    with pytest.raises(ValueError, match=r"shipped checkpoint '.*': key \w+ \(expected 0123456789ab\)"):
        shipped.install(src, tmp_path / "other", other)
    weights = next((src / "wan" / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match=r"wan/transformer/\S+ does not match its recorded sha256"):
        shipped.install(src, tmp_path / "tampered", job)
    assert not (tmp_path / "tampered" / "manifest.json").exists()


def test_a_replay_of_the_first_steps_reproduces_the_logged_losses_and_catches_a_changed_recipe(pretrained, tmp_path):
    from univid.train import shipped

    cfg, out, _ = pretrained
    job = _finished_job(cfg, out)
    src = shipped.ship(out, job, root=tmp_path / "checkpoints")
    worst = shipped.check_reproduces(cfg, src, tmp_path / "replay", steps=2)
    assert set(worst) == {"vae", "t2v", "mllm"} and max(worst.values()) <= shipped.REPLAY_RTOL
    changed = resolve({"scale": "toy", **TINY, "pretrain": {**TINY["pretrain"], "vae": {"steps": 2, "fg_weight": 5}}})
    with pytest.raises(ValueError, match=r"pretrain vae step 1 loss \S+ \(expected \S+ within rtol 0.001: the "
                                         r"training code no longer reproduces it"):
        shipped.check_reproduces(changed, src, tmp_path / "replay", steps=2)


def test_univid_pretrain_installs_the_shipped_checkpoint_of_its_key_and_trains_with_train(pretrained, tmp_path,
                                                                                          monkeypatch, capsys):
    from univid.cli import main
    from univid.train import shipped

    cfg, out, _ = pretrained
    job = _finished_job(cfg, out)
    monkeypatch.setattr(shipped, "SHIPPED_ROOT", tmp_path / "checkpoints")
    sets = ["scale=toy", "pretrain.data.n_clips=6", "pretrain.vae.steps=2", "pretrain.vae.batch_size=2",
            "pretrain.t2v.steps=2", "pretrain.t2v.batch_size=4", "pretrain.mllm.steps=2", "pretrain.mllm.batch_size=2"]
    argv = [a for s in sets for a in ("--set", s)]
    main(["pretrain", *argv, "--ship", "--from", str(out)])
    assert shipped.shipped_dir(job["key"]) == tmp_path / "checkpoints" / job["key"]
    main(["pretrain", *argv, "--out", str(tmp_path / "job")])
    assert "shipped checkpoint" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "job" / "manifest.json").read_text())
    assert manifest["shipped"]["from"].endswith(job["key"])
    assert json.loads((tmp_path / "job" / "job_config.json").read_text())["key"] == job["key"]
    main(["pretrain", *argv, "--train", "--out", str(tmp_path / "trained")])
    assert "shipped" not in json.loads((tmp_path / "trained" / "manifest.json").read_text())
    with pytest.raises(SystemExit, match="expected --ship with it"):
        main(["pretrain", *argv, "--from", str(out)])


def test_the_vae_foreground_weight_at_sample_points():
    from univid.train.pretrain import foreground_weight

    x = -torch.ones(1, 3, 2, 8, 8)  # black clip, 2 frames
    x[0, 0, 1, 3:6, 3:6] = 1.0  # a red 3x3 object in frame 1 only
    plain = foreground_weight(x, 20.0)
    assert plain.shape == (1, 1, 2, 8, 8) and int((plain == 21.0).sum()) == 9 and float(plain.min()) == 1.0
    ring = foreground_weight(x, 20.0, dilate=1)
    assert int((ring[0, 0, 1] == 21.0).sum()) == 25  # grown by a pixel on every side: 5x5
    assert bool((ring[0, 0, 0] == 1.0).all())  # within its frame only
    assert bool((ring[0, 0, 1, 2:7, 2:7] == 21.0).all())


def test_the_foreground_options_are_opt_in_and_key_the_pretrain_job():
    from univid.config import job_configs, resolve

    shipped = job_configs(resolve({"scale": "toy"}))["pretrain"]
    dilated = job_configs(resolve({"scale": "toy", "pretrain": {"vae": {"fg_dilate": 2}}}))["pretrain"]
    assert "fg_dilate" not in shipped["pretrain"]["vae"]  # the shipped recipe's key is unchanged
    assert dilated["pretrain"]["vae"]["fg_dilate"] == 2 and dilated["key"] != shipped["key"]
    with pytest.raises(Exception, match="fg_dilate"):
        resolve({"scale": "toy", "pretrain": {"vae": {"fg_dilate": -1}}})
    weighted = job_configs(resolve({"scale": "toy", "pretrain": {"t2v": {"fg_weight": 20.0, "fg_dilate": 2}}}))
    assert not {"fg_weight", "fg_dilate"} & set(shipped["pretrain"]["t2v"])
    assert weighted["pretrain"]["key"] not in (shipped["key"], dilated["key"])
    with pytest.raises(Exception, match="fg_weight"):
        resolve({"scale": "toy", "pretrain": {"t2v": {"fg_weight": -1}}})


def test_the_latent_foreground_on_the_causal_vae_grid_at_sample_points():
    from univid.train.pretrain import latent_foreground

    clips = torch.zeros(1, 9, 16, 16, 3, dtype=torch.uint8)  # black, 9 frames: latent frames {0}, {1-4}, {5-8}
    clips[0, 6, 5, 9] = 255  # one white pixel in frame 6 at (5, 9)
    plain = latent_foreground(clips, dilate=0, spatial=4, temporal=4)
    assert plain.shape == (1, 1, 3, 4, 4) and int(plain.sum()) == 1 and float(plain[0, 0, 2, 1, 2]) == 1.0
    grown = latent_foreground(clips, dilate=1, spatial=4, temporal=4)  # rows 4-6, cols 8-10: still cell (1, 2)
    assert int(grown.sum()) == 1
    grown = latent_foreground(clips, dilate=3, spatial=4, temporal=4)  # rows 2-8, cols 6-12: cells rows 0-2, cols 1-3
    assert int(grown.sum()) == 9 and float(grown[0, 0, 2, 0:3, 1:4].min()) == 1.0 and float(grown[0, 0, :2].sum()) == 0
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        latent_foreground(clips[:, :8], dilate=0, spatial=4, temporal=4)


def test_the_t2v_foreground_weight_changes_the_loss_only_when_set(one_torch_thread):
    from univid.train.pretrain import pretrain_t2v

    cfg = resolve({"scale": "toy"})
    m = cfg["model"]
    latents = torch.randn(2, 16, 2, 8, 8)
    fg = torch.zeros(2, 1, 2, 8, 8)
    fg[:, :, :, 2:4, 2:4] = 1.0
    base = {"steps": 2, "batch_size": 2, "lr": 1.0e-3, "cfg_dropout": 0.0}
    run = lambda p, f=None: pretrain_t2v(m, latents, ["a red circle", "a blue square"], p, 0, None, foreground=f)[4]
    plain = run(base)
    assert run({**base, "fg_weight": 0.0}, fg) == plain  # 0: the unweighted loss whatever the mask
    weighted = run({**base, "fg_weight": 20.0}, fg)
    assert weighted[0] != plain[0]
    with pytest.raises(ValueError, match="fg_weight > 0 needs the clips' latent foreground"):
        run({**base, "fg_weight": 20.0})


def test_a_foreground_weighted_t2v_job_replays_its_logged_losses(tmp_path, one_torch_thread):
    """run_pretrain and the replay behind the shipped check both hand the T2V loop its latent foreground."""
    from univid.train.pretrain import replay_first_steps, run_pretrain

    tiny = {**TINY["pretrain"], "t2v": {**TINY["pretrain"]["t2v"], "fg_weight": 20.0, "fg_dilate": 2}}
    cfg = resolve({"scale": "toy", **TINY, "pretrain": tiny})
    run_pretrain(cfg, tmp_path / "job")
    logged = json.loads((tmp_path / "job" / "pretrain_log.json").read_text())["losses"]["t2v"]
    replayed = replay_first_steps(cfg, tmp_path / "job", tmp_path / "replay", steps=2)["t2v"]
    assert replayed == pytest.approx(logged[:2], rel=1e-3)
    plain = resolve({"scale": "toy", **TINY})
    assert replay_first_steps(plain, tmp_path / "job", tmp_path / "replay2", steps=1)["t2v"][0] != pytest.approx(
        logged[0], rel=1e-3)
