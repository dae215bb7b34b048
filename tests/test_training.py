"""Training: exact trainable sets per stage and phase, assistant-only SFT loss, TMA inside stage I, resume after a hard
kill (bitwise on CPU), a real learning check, and the CLI by hand."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from univid.config import resolve
from univid.data.curate import curate
from univid.models.builder import build
from univid.models.tma import alpha_txt
from univid.train.conversation import conversation_pieces, text_segments
from univid.train.losses import flow_matching_loss, precomputed_condition, sft_batch, sft_loss
from univid.train.precompute import run_precompute
from univid.train.stages import prepare, train_stage, train_step
from univid.train.trainable import phase_schedule, trainable_names

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
SMALL_DATA = {"data": {"synthetic": {"n_clips": 8}, "num_gen_samples": 4, "num_qa_samples": 12}}
STAGE3 = {"steps": 8, "ref_image_prob": 1.0, "phases": {"a": 0.25, "b": 0.25, "c": 0.5}}

# Independent statements of what each part is (regexes over checkpoint names, not the code under test).
LORA = r"dit\.blocks\.\d+\.attn2\.(to_q|to_k|to_v|to_out\.0)\.lora_[AB]\.default\.weight"
CONNECTOR = r"connector\..+"
VISION_PROJ = r"mllm\.vision_proj\..+"
VAE_PROJ = r"mllm\.vae_proj\..+"
VIT_LAST2 = r"mllm\.vit\.(vision_model\.)?encoder\.layers\.[12]\..+"  # smoke ViT: 3 blocks, last 2 train
SELF_LORA = r"dit\.blocks\.\d+\.attn1\.(to_q|to_k|to_v|to_out\.0)\.lora_[AB]\.default\.weight"
VAE_BLOCKS = r"vae\.encoder\.(down_blocks\.\d+\.(resnets\..+|downsampler\.resample\..+)|mid_block\..+)"  # no time_conv
EXPECTED = {
    (1, None): (CONNECTOR, LORA),
    (2, None): (VIT_LAST2, VISION_PROJ),
    (3, "a"): (VIT_LAST2, VISION_PROJ),
    (3, "b"): (CONNECTOR, VAE_PROJ, LORA),
    (3, "c"): (VIT_LAST2, VISION_PROJ, CONNECTOR, VAE_PROJ, LORA),
}




def _cfg(**train) -> dict:
    return resolve({**SMALL_DATA, "train": train})


def _expected(comp, patterns) -> set[str]:
    return {n for n, _ in comp.model.named_parameters() if any(re.fullmatch(p, n) for p in patterns)}


@pytest.fixture(scope="module")
def cfg():
    return _cfg(stage3=STAGE3)


@pytest.fixture(scope="module")
def curated(tmp_path_factory, cfg):
    out = tmp_path_factory.mktemp("curated")
    curate(cfg["data"], out, cfg["seed"])
    return out


@pytest.fixture(scope="module")
def precomputed(tmp_path_factory, cfg, curated):
    out = tmp_path_factory.mktemp("precomputed")
    run_precompute(cfg, curated, out, log=lambda msg: None)
    return out


def _grads(comp) -> set[str]:
    return {n for n, p in comp.model.named_parameters() if p.grad is not None}


def _requires_grad(comp) -> set[str]:
    return {n for n, p in comp.model.named_parameters() if p.requires_grad}


def test_phase_schedule_covers_every_step_and_rejects_bad_fractions():
    sched = phase_schedule(3, 10, {"phases": {"a": 0.2, "b": 0.3, "c": 0.5}})
    assert sched == [("a", 0, 2), ("b", 2, 5), ("c", 5, 10)]
    with pytest.raises(ValueError, match=r"train\.stage3\.phases: fractions sum to 0\.9"):
        phase_schedule(3, 10, {"phases": {"a": 0.2, "b": 0.2, "c": 0.5}})
    with pytest.raises(Exception, match="phases"):
        resolve({"train": {"stage3": {"phases": {"a": 0.5, "b": 0.5}}}})  # schema: all three phases


@pytest.mark.parametrize("stage", [1, 2])
def test_stage_trains_exactly_its_set(cfg, curated, precomputed, stage):
    run = prepare(stage, cfg, curated, max_steps=2, precompute_dir=precomputed)
    expected = _expected(run.comp, EXPECTED[(stage, None)])
    if stage == 1:  # LoRA: 2 blocks x 4 targets x A/B; the connector's own layout is the connector's business
        assert sum(bool(re.fullmatch(LORA, n)) for n in expected) == 16 and any(n.startswith("connector.") for n in expected)
    else:  # 2 SigLIP blocks x 16 tensors + the 2-layer vision projector
        assert len(expected) == 2 * 16 + 4
    assert set(run.names) == expected
    before = {n: p.detach().clone() for n, p in run.comp.model.named_parameters()}
    train_step(run, 0)
    assert _requires_grad(run.comp) == expected
    assert _grads(run.comp) == expected  # every trainable tensor is on the loss's path, nothing else has a gradient
    changed = {n for n, p in run.comp.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= expected


def test_stage3_phases_train_exactly_their_sets(cfg, curated, precomputed):
    run = prepare(3, cfg, curated, precompute_dir=precomputed)
    frozen_before = {n: p.detach().clone() for n, p in run.comp.model.named_parameters() if n not in run.names}
    assert set(run.names) == _expected(run.comp, EXPECTED[(3, "c")])
    seen: dict[str, set] = {}
    kinds: dict[str, list] = {}
    for step in range(6):  # a: 0-1 (gen, und), b: 2-3 (gen, gen), c: 4-5 (gen, und)
        row = train_step(run, step)
        phase = row["phase"]
        want = _expected(run.comp, EXPECTED[(3, phase)])
        assert _requires_grad(run.comp) == want, phase
        assert _grads(run.comp) <= want, phase
        seen.setdefault(phase, set()).update(_grads(run.comp))
        kinds.setdefault(phase, []).append(row["kind"])
        if phase == "b":
            assert row["vae_mix"] == pytest.approx((step - 2 + 1) / 2)
    assert kinds == {"a": ["gen", "und"], "b": ["gen", "gen"], "c": ["gen", "und"]}
    for phase in "abc":
        assert seen[phase] == _expected(run.comp, EXPECTED[(3, phase)]), phase
    for n, p in run.comp.model.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n


@pytest.mark.parametrize("targets, want", [("cross_attn", (CONNECTOR, LORA)),
                                           ("self_and_cross_attn", (CONNECTOR, LORA, SELF_LORA))])
def test_stage1_lora_targets_pick_the_dit_attention_it_trains(curated, precomputed, targets, want):
    """train.stage1.lora_targets: A.3's cross-attention LoRA (default) or Sec. 3.2's self- and cross-attention."""
    cfg = _cfg(stage1={"lora_targets": targets}, stage3=STAGE3)
    run = prepare(1, cfg, curated, max_steps=1, precompute_dir=precomputed)
    expected = _expected(run.comp, want)
    n_lora = sum(bool(re.fullmatch(LORA, n) or re.fullmatch(SELF_LORA, n)) for n in expected)
    assert n_lora == (16 if targets == "cross_attn" else 32)  # 2 blocks x 4 projections x A/B, per attention
    assert set(run.names) == expected
    train_step(run, 0)
    assert _requires_grad(run.comp) == expected and _grads(run.comp) == expected
    # Stage III's DiT LoRA is the same adapter (phase b: adapter + DiT LoRA)
    assert set(trainable_names(run.comp, cfg, 3, "b")) == _expected(run.comp, (VAE_PROJ,) + want)


@pytest.mark.parametrize("vae, want", [("frozen", (VIT_LAST2, VISION_PROJ)),
                                       ("trainable_blocks", (VIT_LAST2, VISION_PROJ, VAE_BLOCKS))])
def test_stage2_vae_choice_sets_what_trains(curated, vae, want):
    """train.stage2.vae: A.3's frozen VAE (default; stage II builds no VAE) or Sec. 3.2's "and the VAE blocks",
    whose encoder blocks then get gradients through the SFT's VAE tokens."""
    cfg = _cfg(stage2={"vae": vae}, stage3=STAGE3)
    run = prepare(2, cfg, curated, max_steps=1)
    assert (run.comp.model.vae is not None) == (vae == "trainable_blocks")
    expected = _expected(run.comp, want)
    assert set(run.names) == expected
    if vae == "trainable_blocks":
        assert any(n.startswith("vae.encoder.down_blocks.") for n in expected)
        assert any(n.startswith("vae.encoder.mid_block.") for n in expected)
        assert not any(n.startswith(("vae.decoder.", "vae.encoder.conv_in.", "vae.quant_conv.")) for n in expected)
    before = {n: p.detach().clone() for n, p in run.comp.model.named_parameters()}
    train_step(run, 0)
    assert _requires_grad(run.comp) == expected and _grads(run.comp) == expected
    changed = {n for n, p in run.comp.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= expected and (vae == "frozen" or any(n.startswith("vae.") for n in changed))


def test_sft_vae_tokens_are_what_the_actor_sees(cfg):
    """Stage II's VAE tokens (train.stage2.vae: trainable_blocks) follow all ViT tokens, each frame encoded as the
    Actor's frame pool encodes it (univid.reflection.frame_pool.VaeFrameEncoder)."""
    from univid.reflection.frame_pool import VaeFrameEncoder

    comp = build(cfg, parts=("mllm", "vae"))
    pieces = [conversation_pieces(comp.tokenizer, [{"from": "human", "value": "<video>\nWhat color?"},
                                                   {"from": "gpt", "value": "red"}])]
    frames = torch.randint(0, 256, (1, 2, 40, 56, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        vit_only, _, _ = sft_batch(comp, frames, pieces)
        both, _, _ = sft_batch(comp, frames, pieces, "vit+vae")
        mllm = comp.model.mllm
        vit = mllm.vit_tokens(frames[0]).flatten(0, 1)
        latents = VaeFrameEncoder(comp.model.vae).encode(frames[0].numpy())  # [K, C, h, w], crop 32x48
        vae = mllm.vae_tokens(latents.unsqueeze(2)).flatten(0, 1)
    start = next(i for i in range(both.shape[1]) if torch.equal(both[0, i], vit[0]))
    assert torch.equal(both[0, start:start + len(vit)], vit)
    assert torch.allclose(both[0, start + len(vit):start + len(vit) + len(vae)], vae, atol=1e-6)
    assert both.shape[1] == vit_only.shape[1] + len(vae) and len(vae) == 2 * (32 // 16) * (48 // 16)


def test_sft_loss_is_on_assistant_tokens_only(cfg):
    comp = build(cfg)
    tok = comp.tokenizer
    convs = [[{"from": "human", "value": "<video>\nWhat color is the circle?"}, {"from": "gpt", "value": "dark blue"}],
             [{"from": "human", "value": "<video>\nHow many objects are in the video?"}, {"from": "gpt", "value": "two"}]]
    pieces = [conversation_pieces(tok, c) for c in convs]
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 4, 32, 32, 3), generator=g, dtype=torch.uint8)
    embeds, mask, labels = sft_batch(comp, frames, pieces)
    n_visual = 4 * (32 // 8) ** 2
    for i, conv in enumerate(convs):
        answer_ids = tok(conv[1]["value"] + tok.eos_token + "\n", add_special_tokens=False).input_ids
        supervised = labels[i][labels[i] != -100].tolist()
        assert supervised == answer_ids  # exactly the answer and its end-of-turn, nothing of the user's turn
        # The supervised positions are the last tokens of the sample (after the user's turn and the visual tokens).
        n = int(mask[i].sum())
        assert (labels[i, n - len(answer_ids):n] != -100).all() and (labels[i, : n - len(answer_ids)] == -100).all()
        segs = text_segments(tok, conv)
        question = conv[0]["value"].removeprefix("<video>\n")
        assert [k for k, _ in segs].count("video") == 1 and question in "".join(t for k, t in segs if k == "text")
    # The placeholder became n_visual visual tokens: sample length = text tokens + n_visual.
    text_len = sum(len(p.ids) for p in pieces[0])
    assert int(mask[0].sum()) == text_len + n_visual

    loss = sft_loss(comp, frames, pieces)
    logits = comp.model.mllm.llm(inputs_embeds=embeds, attention_mask=mask).logits.float()
    terms = []
    for i in range(2):
        for t in range(labels.shape[1] - 1):
            if labels[i, t + 1] != -100:
                terms.append(F.cross_entropy(logits[i, t:t + 1], labels[i, t + 1:t + 2]))
    assert len(terms) == int((labels != -100).sum())
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)

    # Changing the question changes the inputs but not what is supervised.
    other = [[{"from": "human", "value": "<video>\nDescribe the background colour of this video in detail."},
              {"from": "gpt", "value": "dark blue"}]]
    _, _, labels2 = sft_batch(comp, frames[:1], [conversation_pieces(tok, other[0])])
    assert labels2[0][labels2[0] != -100].tolist() == labels[0][labels[0] != -100].tolist()


@pytest.mark.parametrize("schedule", ["cosine", "none"])
def test_tma_is_active_during_stage1(curated, precomputed, schedule):
    """Every cross-attention of every DiT call goes through TMA, each sample at the progress of its own noise level."""
    cfg = resolve({**SMALL_DATA, "tma": {"schedule": schedule}})
    comp = build(cfg)
    comp.tma.record = True
    run = prepare(1, cfg, curated, max_steps=8, comp=comp, precompute_dir=precomputed)
    n_blocks = cfg["model"]["dit"]["config"]["num_layers"]
    batch = cfg["train"]["stage1"]["batch_size"]
    boosted = 0
    for step in range(8):
        comp.tma.probe.clear()
        row = train_step(run, step)
        assert len(row["sigma_index"]) == batch
        assert len(comp.tma.probe) == n_blocks * batch  # one (u, alphas) per sample per cross-attention
        us = [i / len(run.sigmas) for i in row["sigma_index"]]
        for k, (pu, a_txt, a_img) in enumerate(comp.tma.probe):
            u = us[k % batch]
            assert pu == pytest.approx(u)
            assert a_txt == pytest.approx(alpha_txt(u, schedule, cfg["tma"]["lambda_txt"], cfg["tma"]["txt_end"]))
            boosted += a_txt > 1.0
            if schedule == "none":
                assert a_txt == 1.0 and a_img == 1.0
    if schedule == "cosine":
        assert boosted > 0  # some sampled steps fall in u < txt_end, where alpha_txt > 1


def test_loss_falls_on_the_synthetic_world(curated, precomputed):
    """Stage I on 4 clips for 200 steps: the flow-matching loss on fixed (clip, sigma, noise) probes must drop >= 15%.

    (Stage II cannot show this at smoke scale: the frozen random LLM's tied embeddings (std 0.02) bound its logits to
    about +-1.3, so answer cross-entropy has a floor near ln(vocab) - 1.3 whatever the ViT side learns.)"""
    cfg = resolve({**SMALL_DATA, "train": {"stage1": {"lr": 3e-3, "batch_size": 4}}})
    run = prepare(1, cfg, curated, max_steps=200, precompute_dir=precomputed)
    items = [run.gen_data.reader[i] for i in range(4)]

    def probe_loss() -> float:
        g = torch.Generator().manual_seed(123)
        latents = torch.stack([c["latents"] for c in items])
        conds = torch.nn.utils.rnn.pad_sequence([c["condition"] for c in items], batch_first=True)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(c["condition"]), dtype=torch.bool) for c in items],
                                               batch_first=True)
        run.comp.model.eval()
        losses = []
        with torch.no_grad():
            for i in (100, 300, 500, 700, 900):
                context, is_image = precomputed_condition(run.comp, conds, mask)
                noise = torch.randn(latents.shape, generator=g)
                losses.append(flow_matching_loss(run.comp, latents, noise, [i] * 4, run.sigmas, context,
                                                 is_image).item())
        return sum(losses) / len(losses)

    before = probe_loss()
    for step in range(200):
        train_step(run, step)
    after = probe_loss()
    assert after < 0.85 * before, (before, after)


def _train_cmd(out: Path, curated: Path, init: Path, precomputed: Path, extra=()) -> list[str]:
    return [sys.executable, "-m", "univid.cli", "train", "--stage", "3", "--quiet", "--out", str(out),
            "--curate", str(curated), "--init1", str(init / "s1"), "--init2", str(init / "s2"),
            "--precompute", str(precomputed),
            "--set", "data.num_gen_samples=4", "--set", "data.synthetic.n_clips=8", "--set", "data.num_qa_samples=12",
            "--set", "train.stage3.steps=24", "--save-every", "2", *extra]


def test_resume_after_sigkill_is_bitwise_identical(tmp_path, cfg, curated, precomputed):
    init = tmp_path / "init"
    for stage in (1, 2):
        train_stage(stage, cfg, curated, init / f"s{stage}", max_steps=2, progress=False, precompute_dir=precomputed)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    whole = subprocess.Popen(_train_cmd(tmp_path / "whole", curated, init, precomputed), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    killed = tmp_path / "killed"
    victim_log = tmp_path / "victim.log"
    with open(victim_log, "w") as log:
        victim = subprocess.Popen(_train_cmd(killed, curated, init, precomputed), env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not (killed / "checkpoints" / "step-2").is_dir():
        assert victim.poll() is None and time.time() < deadline, \
            f"the run ended before its first checkpoint: {victim_log.read_text()[-2000:]}"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (killed / "final").exists(), "killed too late: the run had already finished"
    resumed = subprocess.run(_train_cmd(killed, curated, init, precomputed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed at step" in resumed.stdout
    out, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out

    a = load_file(str(tmp_path / "whole" / "final" / "weights.safetensors"))
    b = load_file(str(killed / "final" / "weights.safetensors"))
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = json.loads((tmp_path / "whole" / "train_log.json").read_text())
    log_b = json.loads((killed / "train_log.json").read_text())
    assert [s["loss"] for s in log_a["steps"]] == [s["loss"] for s in log_b["steps"]]
    assert log_b["resumed_from"] in range(2, 24, 2) and log_a["resumed_from"] is None
    # Only what trains is checkpointed: the union of Stage III's phases, as safetensors.
    ckpt = sorted((killed / "checkpoints").iterdir())[-1]
    assert set(load_file(str(ckpt / "weights.safetensors"))) == set(log_b["trainable"])


def test_train_by_hand_curates_first(tmp_path):
    cache = Path(os.environ.get("UNIVID_CACHE", Path.home() / ".cache" / "univid"))
    if (cache / "tokenizers").is_dir():  # the GGUF -> tokenizer conversion is cached by content; reuse it
        shutil.copytree(cache / "tokenizers", tmp_path / "cache" / "tokenizers")
    env = dict(os.environ, HF_HUB_OFFLINE="1", UNIVID_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "univid.cli", "train", "--stage", "2", "--max-steps", "2", "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "curating it first" in proc.stderr
    curate_dirs = list((tmp_path / "results" / "smoke" / "curate").iterdir())
    stage_dirs = list((tmp_path / "results" / "smoke" / "stage2").iterdir())
    assert len(curate_dirs) == 1 and (curate_dirs[0] / "qa_train.json").is_file()
    assert len(stage_dirs) == 1
    log = json.loads((stage_dirs[0] / "train_log.json").read_text())
    assert log["total_steps"] == 2 and len(log["steps"]) == 2
    assert (stage_dirs[0] / "final" / "weights.safetensors").is_file()
    job = json.loads((stage_dirs[0] / "job_config.json").read_text())
    assert job["train"]["stage2"]["steps"] == 2  # a shortened run is keyed as such


def test_t5_conditioning_trains_the_dit_lora_only(curated, tmp_path):
    """model.conditioning t5 (Table 3 "w/o MLLM"): stage I trains the DiT LoRA on the frozen UMT5's context
    (precomputed: the UMT5 never runs during training); nothing of the MLLM -> DiT adapter (connector, VAE-feature
    projection) trains in stage I or III."""
    cfg = resolve({**SMALL_DATA, "model": {"conditioning": "t5"}, "train": {"stage3": STAGE3}})
    run_precompute(cfg, curated, tmp_path, log=lambda msg: None)
    run = prepare(1, cfg, curated, max_steps=3, precompute_dir=tmp_path)
    comp = run.comp
    lora = _expected(comp, (LORA,))
    assert set(run.names) == lora and len(lora) == 16
    before = {n: p.detach().clone() for n, p in comp.model.named_parameters()}
    calls = []
    h = comp.model.text_encoder.register_forward_hook(lambda m, a, out: calls.append(m.training))
    try:
        for step in range(3):
            train_step(run, step)
            assert _requires_grad(comp) == lora and _grads(comp) == lora
    finally:
        h.remove()
    assert calls == []  # the frozen UMT5's context was precomputed: it does not run in the training loop
    # ... and the precomputed context is the stock WanPipeline encoding of the caption, by the job's own UMT5
    from univid.models.conditioning import encode_t5

    item = run.gen_data.reader[0]
    assert torch.equal(item["condition"], encode_t5(comp, [item["caption"]])[0][0])
    changed = {n for n, p in comp.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= lora  # connector, MLLM and text encoder untouched
    for phase, want in {"a": (VIT_LAST2, VISION_PROJ), "b": (LORA,), "c": (VIT_LAST2, VISION_PROJ, LORA)}.items():
        assert set(trainable_names(comp, cfg, 3, phase)) == _expected(comp, want), phase
