"""Generation branch: TI2V (reference first frame pinned, image through the configured encoders, per-branch TMA
provenance), the time-indexed connector g_phi(Z_u, t), `univid generate`, and the TMA progress definition recorded
with every run (manifest, run record, MLflow params)."""

import json
import types
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from univid.cli import main
from univid.config import job_configs, resolve
from univid.data.video import read_video
from univid.models.builder import save_weights, trainable_state_dict
from univid.models.conditioning import encode_condition, tokenize
from univid.models.connector import Connector
from univid.models.generator import condition, generate, make_pipeline, sample
from univid.models.tma import SCHEDULES, TMAState, TMAWanAttnProcessor, alpha_img, alpha_txt

STEPS = 3
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ref():
    img = np.full((64, 64, 3), 30, np.uint8)
    img[16:48, 20:44] = (230, 40, 40)
    img[:, :10] = (20, 60, 220)
    return img


@pytest.fixture(scope="module")
def sampling(cfg):
    return dict(cfg["sampling"], steps=STEPS)


def _dit_calls(comp, fn):
    """Run fn while recording every DiT call's (first latent frame, timestep, token provenance at the call)."""
    seen = []

    def hook(module, args, kwargs):
        seen.append((kwargs["hidden_states"][:, :, 0].clone(), kwargs["timestep"].clone(), comp.tma.token_is_image))

    h = comp.model.dit.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        out = fn()
    finally:
        h.remove()
    return out, seen


def test_ti2v_pins_the_reference_latent_at_every_step(comp, ref, sampling):
    pipe = make_pipeline(comp, ti2v=True)
    cond = condition(comp, pipe, "a red square", sampling["negative_prompt"], sampling, ref)
    # The pinned latent, computed independently of the pipeline: VAE mode of the [-1, 1] image, normalised.
    x = torch.from_numpy(ref).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1.0
    vae = comp.model.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        expected = (vae.encode(x).latent_dist.mode() - mean) / std
    assert torch.allclose(cond.image_latent, expected, atol=1e-5)

    latents, seen = _dit_calls(comp, lambda: sample(comp, pipe, cond, sampling, seed=3, output_type="latent"))
    assert len(seen) == 2 * STEPS  # CFG: two calls per step
    per_frame = expected.shape[-1] * expected.shape[-2] // 4  # tokens of one latent frame (patch 2x2)
    for first, timestep, _ in seen:
        assert torch.equal(first, cond.image_latent[:, :, 0])  # exactly the reference latent
        assert (timestep[:, :per_frame] == 0).all() and (timestep[:, per_frame:] > 0).all()  # t = 0 there only
    assert torch.equal(latents[:, :, 0], cond.image_latent[:, :, 0])


def test_ti2v_decoded_first_frame_is_the_reference(comp, ref, sampling):
    video = generate(comp, make_pipeline(comp, ti2v=True), "a red square", sampling["negative_prompt"], sampling,
                     seed=3, image=ref)
    t2v = generate(comp, make_pipeline(comp), "a red square", sampling["negative_prompt"], sampling, seed=3)
    # Through this (random-init, smoke) VAE the best any video can do is the VAE's own reconstruction of the reference.
    pipe = make_pipeline(comp, ti2v=True)
    x = torch.from_numpy(ref).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1.0
    with torch.no_grad():
        recon = comp.model.vae.decode(comp.model.vae.encode(x).latent_dist.mode()).sample
    recon = (pipe.video_processor.postprocess_video(recon, output_type="np")[0][0] * 255).round().astype(np.int16)
    assert np.abs(video[0].astype(np.int16) - recon).max() <= 1
    assert np.abs(t2v[0].astype(np.int16) - recon).mean() > 5  # a T2V first frame is not the reference
    assert video.shape == t2v.shape == (sampling["num_frames"], 64, 64, 3)


@pytest.mark.parametrize("encoders,vit,vae", [("vit+vae", True, True), ("vit", True, False), ("vae", False, True)])
def test_reference_image_enters_through_the_configured_encoders(comp, ref, sampling, encoders, vit, vae):
    pipe = make_pipeline(comp, ti2v=True)
    old = comp.encoders
    comp.encoders = encoders
    try:
        cond = condition(comp, pipe, "a red square", "bad", sampling, ref)
        frames = torch.from_numpy(ref)[None].float() / 255.0
        latent = cond.image_latent
        mllm, (ids, mask) = comp.model.mllm, tokenize(comp, ["a red square"])
        with torch.no_grad():
            z, _, is_img = mllm.encode_for_generation(ids, mask, encoders, frames, latent)
            z_other_vit, _, _ = mllm.encode_for_generation(ids, mask, encoders, 1.0 - frames, latent)
            z_other_vae, _, _ = mllm.encode_for_generation(ids, mask, encoders, frames, latent.flip(-1))
    finally:
        comp.encoders = old
    n_vit = (mllm.vit.config.image_size // mllm.vit.config.patch_size) ** 2
    n_vae = latent.shape[-1] * latent.shape[-2]
    assert int(is_img.sum()) == vit * n_vit + vae * n_vae
    assert is_img[0, : int(is_img.sum())].all() and not is_img[0, int(is_img.sum()):].any()  # visual tokens first
    assert (not torch.equal(z, z_other_vit)) == vit  # the ViT path is used iff configured
    assert (not torch.equal(z, z_other_vae)) == vae
    assert cond.is_image.any() and not cond.is_image.all()  # the DiT context keeps image- and text-derived tokens


def test_each_cfg_branch_gets_its_own_provenance_and_the_same_alpha(comp, ref, sampling):
    pipe = make_pipeline(comp, ti2v=True)
    cond = condition(comp, pipe, "a red square", sampling["negative_prompt"], sampling, ref)
    assert not torch.equal(cond.is_image, cond.negative_is_image)  # different text lengths split differently
    comp.tma.probe.clear()
    comp.tma.record = True
    try:
        _, seen = _dit_calls(comp, lambda: sample(comp, pipe, cond, sampling, seed=0, output_type="latent"))
    finally:
        comp.tma.record = False
    for i, (_, _, mask) in enumerate(seen):
        assert torch.equal(mask, cond.is_image if i % 2 == 0 else cond.negative_is_image)  # pipeline: cond, uncond
    per_step = 2 * len(comp.model.dit.blocks)
    for i in range(STEPS):
        u = i / STEPS
        assert set(comp.tma.probe[i * per_step:(i + 1) * per_step]) == {
            (u, alpha_txt(u, "cosine", 0.3), alpha_img(u, "cosine", 0.3))}
    assert comp.tma.branch_contexts == [] and comp.tma.token_is_image is None  # nothing leaks past the run
    # A context the sampler did not register is an error, not a silent wrong mask.
    comp.tma.branch_contexts = [(cond.context, cond.is_image, None)]
    try:
        with pytest.raises(RuntimeError, match="did not register"):
            comp.model.dit(hidden_states=torch.zeros(1, 48, 2, 4, 4), timestep=torch.tensor([500.0]),
                           encoder_hidden_states=cond.context.clone())
    finally:
        comp.tma.branch_contexts = []


def test_processor_paths_equal_the_explicit_softmax_for_every_schedule(comp):
    """Both folds (per-key gain on K for mixed alphas; SDPA scale for one alpha) against softmax(alpha * q.k / sqrt(d))."""
    import math

    attn = comp.model.dit.blocks[1].attn2
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 20, attn.inner_dim, generator=g)
    context = torch.randn(2, 9, attn.inner_dim, generator=g)
    mask = torch.rand(2, 9, generator=g) < 0.5
    with torch.no_grad():
        q = attn.norm_q(attn.to_q(hidden)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        k = attn.norm_k(attn.to_k(context)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        v = attn.to_v(context).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        for schedule in SCHEDULES:
            for lam_img in (0.3, 0.2):  # equal lambdas make `constant` a single temperature (the scale path)
                for u in (0.0, 0.2, 0.5, 0.8, 1.0):
                    for m in (None, mask):
                        state = TMAState(schedule=schedule, lambda_txt=0.3, lambda_img=lam_img, u=u, token_is_image=m)
                        a_txt, a_img = state.alphas()
                        gain = torch.full((2, 9), a_txt) if m is None else torch.where(m, a_img, a_txt)
                        ref = ((logits * gain[:, None, None, :]).softmax(-1) @ v).transpose(1, 2).flatten(2)
                        ours = TMAWanAttnProcessor(state)(attn, hidden, context)
                        assert torch.allclose(ours, attn.to_out[0](ref), atol=1e-6), (schedule, lam_img, u, m is None)


@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_time_modulation_is_the_identity_until_trained(kind):
    torch.manual_seed(0)
    con = Connector(kind, 24, 16, num_tokens=8)
    z, mask = torch.randn(2, 10, 24), torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    ctx, is_img = con(z, mask, torch.zeros_like(mask))
    assert ctx.shape == (2, 8, 16) and not is_img.any()
    for t in (torch.tensor([0.0, 999.0]), torch.full((2, 40), 500.0)):
        assert torch.equal(con.at_time(ctx, t), ctx)
    torch.nn.init.normal_(con.time.mlp[-1].weight)
    assert not torch.allclose(con.at_time(ctx, torch.tensor([100.0])), con.at_time(ctx, torch.tensor([900.0])))
    assert torch.equal(Connector(kind, 24, 16, 8, time_conditioning=False).at_time(ctx, torch.tensor([1.0])), ctx)


def _contexts_seen(comp, fn):
    seen = []

    def hook(module, args, kwargs):  # what the DiT's own text projection receives
        seen.append((args[0].clone(), args[1].clone()))

    h = comp.model.dit.condition_embedder.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        fn()
    finally:
        h.remove()
    return seen


def test_connector_is_time_indexed_in_sampling_and_training(comp, sampling):
    con = comp.model.connector
    last = con.time.mlp[-1]
    saved = last.weight.detach().clone()
    try:
        with torch.no_grad():
            last.weight.normal_(std=0.5)
        pipe = make_pipeline(comp)
        cond = condition(comp, pipe, "a red square", sampling["negative_prompt"], sampling)
        seen = _contexts_seen(comp, lambda: sample(comp, pipe, cond, sampling, seed=0, output_type="latent"))
        assert len(seen) == 2 * STEPS
        for i, (timestep, context) in enumerate(seen):
            t = timestep.max()  # per-token timesteps, flattened by the DiT
            base = cond.context if i % 2 == 0 else cond.negative
            with torch.no_grad():
                assert torch.equal(context, con.at_time(base, t.view(1)))  # C_t at this step's t, both branches
        assert not torch.allclose(seen[0][1], seen[2][1])  # the condition changes with t
        # Training calls the DiT with one timestep per sample: the same modulation, and it receives gradients.
        last.weight.requires_grad_(True)
        ctx, _ = encode_condition(comp, ["a red square", "a blue circle"])
        x = torch.randn(2, 48, 2, 4, 4)
        out = comp.model.dit(hidden_states=x, timestep=torch.tensor([100.0, 800.0]), encoder_hidden_states=ctx,
                             return_dict=False)[0]
        out.square().mean().backward()
        assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0
    finally:
        with torch.no_grad():
            last.weight.copy_(saved)
        last.weight.grad = None
        comp.model.requires_grad_(False)
    assert torch.equal(con.at_time(cond.context, torch.tensor([700.0])), cond.context)


def test_empty_text_is_the_null_caption_on_the_mllm_path(comp):
    from univid.models.conditioning import null_text

    with torch.no_grad():
        empty, _ = encode_condition(comp, ["", "a red square"])
        null, _ = encode_condition(comp, [null_text(comp), "a red square"])
        alone, _ = encode_condition(comp, [""])  # alone it was a zero-length sequence: the LLM raised
        null_alone, _ = encode_condition(comp, [null_text(comp)])
    assert torch.equal(empty, null) and torch.equal(alone, null_alone)


def test_cli_generate_ti2v_writes_video_and_run_record(tmp_path, ref, capsys):
    PIL.Image.fromarray(ref).resize((80, 70)).save(tmp_path / "ref.png")
    out = tmp_path / "out" / "video.mp4"
    main(["generate", "--prompt", "a red square moving right", "--image", str(tmp_path / "ref.png"),
          "--out", str(out), "--set", "sampling.steps=2", "--set", "tma.progress=one_minus_sigma", "--quiet"])
    video = read_video(out)
    assert video.frames.shape == (17, 64, 64, 3)
    record = json.loads((tmp_path / "out" / "video.json").read_text())
    assert record["mode"] == "ti2v" and record["tma"]["progress"] == "one_minus_sigma"
    assert record["tma"]["schedule"] == "cosine" and record["scale"] == "smoke"
    assert "TI2V" in capsys.readouterr().out


def test_cli_generate_bad_image_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--prompt", "x", "--image", str(tmp_path / "bad.png"), "--out", str(tmp_path / "v.mp4")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.png" in err and "expected" in err
    assert not (tmp_path / "v.mp4").exists()


def test_tma_progress_is_recorded_in_manifest_and_mlflow(tmp_path, cfg, comp, monkeypatch):
    run_cfg = resolve({"results_dir": str(tmp_path / "results"), "tma": {"progress": "one_minus_sigma"},
                       "sampling": {"steps": 2}})
    jobs = job_configs(run_cfg)
    assert jobs["generate"]["tma"]["progress"] == "one_minus_sigma"
    assert jobs["generate"]["key"] != job_configs(resolve({"results_dir": str(tmp_path / "results"),
                                                           "sampling": {"steps": 2}}))["generate"]["key"]
    curate = tmp_path / "curate"
    curate.mkdir()
    (curate / "prompts.json").write_text(json.dumps([{"prompt_en": "a red square", "dimension": ["color"]}]))
    for p in comp.model.connector.parameters():
        p.requires_grad_(True)
    try:
        save_weights(trainable_state_dict(comp.model), tmp_path / "w.safetensors")
    finally:
        comp.model.requires_grad_(False)
    gen_dir = tmp_path / "gen"
    main(["generate-suite", "--out", str(gen_dir), "--curate", str(curate), "--weights", str(tmp_path / "w.safetensors"),
          "--set", "tma.progress=one_minus_sigma", "--set", "sampling.steps=2", "--quiet"])
    manifest = json.loads((gen_dir / "manifest.json").read_text())
    assert manifest["tma"]["progress"] == "one_minus_sigma" and len(manifest["videos"]) == 1
    assert manifest["track"] == "t2v" and "image" not in manifest["videos"][0]  # text only unless the track is ti2v
    assert json.loads((gen_dir / "job_config.json").read_text())["tma"]["progress"] == "one_minus_sigma"

    # Through collect (which reads the generate job's config) to the MLflow run's params.
    from univid.eval.vbench.constants import DIMENSIONS
    from univid.report.collect import collect
    from univid.track.mlflow_log import log_table

    import mlflow

    for name, job in jobs.items():
        d = tmp_path / "chain" / name
        d.mkdir(parents=True)
        job = dict(job, upstream_dirs={u: str(tmp_path / "chain" / u) for u in job["upstream_dirs"]})
        (d / "job_config.json").write_text(json.dumps(job))
    (tmp_path / "chain" / "evaluate" / "scores.json").write_text(json.dumps({
        "aggregate": {"total": 50.0, "quality": 60.0, "semantic": 10.0},
        "dimensions": {d: 0.5 for d in DIMENSIONS}, "backends": {d: "test" for d in DIMENSIONS}}))
    results = tmp_path / "table4" / "results.json"
    collect("table4", ROOT / "ablations" / "tma_schedule.yaml", [("cosine", tmp_path / "chain" / "evaluate")], results)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    previous = mlflow.get_tracking_uri()
    try:
        runs = log_table(results, tmp_path / "table4" / "mlflow.json", tracking_uri=uri)
        params = mlflow.MlflowClient(tracking_uri=uri).get_run(runs[0]["run_id"]).data.params
    finally:
        mlflow.set_tracking_uri(previous)
    assert params["tma.progress"] == "one_minus_sigma" and params["tma.schedule"] == "cosine"


# model.conditioning: t5 (paper Table 3 "w/o MLLM"): Wan's own UMT5 conditions the DiT; no MLLM, no connector.
@pytest.fixture(scope="module")
def t5_comp():
    from univid.models.builder import build

    return build(resolve({"model": {"conditioning": "t5"}}))


def test_t5_conditioning_samples_t2v_and_ti2v(t5_comp, ref, sampling):
    comp = t5_comp
    pipe = make_pipeline(comp, ti2v=True)
    cond = condition(comp, pipe, "a red square", sampling["negative_prompt"], sampling, ref)
    contexts = []

    def hook(module, args, kwargs):
        contexts.append(kwargs["encoder_hidden_states"])

    h = comp.model.dit.register_forward_pre_hook(hook, with_kwargs=True)
    comp.tma.probe.clear()
    comp.tma.record = True
    try:
        latents, seen = _dit_calls(comp, lambda: sample(comp, pipe, cond, sampling, seed=3, output_type="latent"))
    finally:
        comp.tma.record = False
        h.remove()
    assert comp.model.connector._hook is None  # the connector's time modulation is never attached
    assert len(contexts) == 2 * STEPS
    for i, ctx in enumerate(contexts):  # the UMT5 contexts reach the DiT untouched (pipeline order: cond, uncond)
        assert torch.equal(ctx, cond.context if i % 2 == 0 else cond.negative)
    for first, _, mask in seen:
        assert torch.equal(first, cond.image_latent[:, :, 0]) and mask is None  # reference via the VAE path; all text
    assert torch.equal(latents[:, :, 0], cond.image_latent[:, :, 0])
    per_step = 2 * len(comp.model.dit.blocks)
    for i in range(STEPS):  # TMA still scales the (all-text) cross-attention
        u = i / STEPS
        assert {a for _, a, _ in comp.tma.probe[i * per_step:(i + 1) * per_step]} == {alpha_txt(u, "cosine", 0.3)}
    assert alpha_txt(0.0, "cosine", 0.3) > 1.0
    video = generate(comp, make_pipeline(comp), "a red square", sampling["negative_prompt"], sampling, seed=3)
    assert video.shape == (sampling["num_frames"], 64, 64, 3) and video.dtype == np.uint8


def test_job_keys_follow_model_conditioning(tmp_path):
    """Generation-side jobs re-key with model.conditioning and carry it to the rebuilt config; stage II does not."""
    from univid.workflow import config_from_job

    base = {"results_dir": str(tmp_path)}
    mllm, t5 = job_configs(resolve(base)), job_configs(resolve({**base, "model": {"conditioning": "t5"}}))
    for job in ("stage1", "stage3", "generate", "evaluate"):
        assert mllm[job]["key"] != t5[job]["key"], job
    for job in ("curate", "stage2"):
        assert mllm[job]["key"] == t5[job]["key"], job
    for job in ("stage1", "stage3", "generate"):
        rebuilt = config_from_job(t5[job])["model"]
        assert rebuilt["conditioning"] == "t5" and rebuilt["text_encoder"] == resolve(base)["model"]["text_encoder"]


def test_make_pipeline_refuses_a_dit_patch_the_ti2v_sampler_cannot_time(comp):
    # diffusers' expand_timesteps subsamples the latent mask by 2: a [1, 4, 4] DiT would fail deep inside a block.
    dit = types.SimpleNamespace(config=types.SimpleNamespace(**{**dict(comp.model.dit.config), "patch_size": [1, 4, 4]}))
    fake = types.SimpleNamespace(model=types.SimpleNamespace(dit=dit, vae=comp.model.vae), scheduler=comp.scheduler)
    with pytest.raises(ValueError, match=r"model.dit.config.patch_size \[1, 4, 4\]: expected spatial patch 2"):
        make_pipeline(fake)
