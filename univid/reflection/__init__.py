"""Pyramid Reflection (paper Sec. 2.4, Algorithm 1, Appendix A.5-A.6).

frame_pool.py  N uniformly sampled frames, encoded once by the retrieval image tower (frozen SigLIP2 by default),
               L2-normalised, cached by content
retrieval.py   Eq. 6 similarity, Eq. 8 expand (top-m unseen), Eq. 9 MMR shrink; working sets in temporal order
templates.py   the six A.5 prompts as Jinja templates (prompts/*.j2) + the harness's Actor/Evaluator-case prompts
actor.py       the UniVid MLLM answering from the ordered working set in the stage II chat format; it sees ViT
               and/or VAE tokens (understanding.encoders, Table 9) from per-frame caches
loop.py        Algorithm 1 with the Evaluator's stop rule, the Reflector, R <= 3 and the global-answer fallback

`build_reflection(cfg, weights=None)` assembles it from a resolved config.
"""

from __future__ import annotations

import copy
from pathlib import Path

# frozen: the public SigLIP2 image tower + its text tower (the paper); univid_vit: the fine-tuned UniVid ViT's pooled
# embeddings against that text tower (two spaces once stage II/III have moved the ViT: a named option only).
RETRIEVAL_SPACES = ("frozen", "univid_vit")


def build_reflection(cfg: dict, weights: str | Path | None = None, backends: dict | None = None):
    """A PyramidReflection from a resolved config. `weights`: a trained UniVid checkpoint (stage II/III output);
    `backends`: name -> LLM object replacing the configured backend of that name (tests, benchmarks)."""
    from univid.config.load import config_hash
    from univid.llm.roles import response_cache, role_llms
    from univid.models.builder import build, load_weights
    from univid.models.tokenizer import _file_sha256
    from univid.reflection.actor import UniVidActor
    from univid.reflection.frame_pool import TextEncoder, VisionEncoder
    from univid.reflection.loop import PyramidReflection

    u = cfg["understanding"]
    encoders = u.get("encoders", "vit")
    # Only what understanding uses: the MLLM, and the VAE when the Actor reads VAE tokens (Table 9). Never the DiT.
    comp = build(cfg, parts=("mllm", "vae") if "vae" in encoders else ("mllm",))
    space = u["retriever"].get("space", "frozen")
    if space not in RETRIEVAL_SPACES:
        raise ValueError(f"config key 'understanding.retriever.space' = {space!r}: expected one of "
                         f"{', '.join(RETRIEVAL_SPACES)}")
    # Retrieval compares one space (Sec. 3.2: SigLIP2 cosine similarity): the image tower as built from the public
    # checkpoint, before stage II/III weights fine-tune its last blocks, against that checkpoint's text tower.
    frozen_vit = copy.deepcopy(comp.model.mllm.vit) if space == "frozen" and weights else None
    weights_sha = None
    if weights:
        load_weights(comp.model, weights)
        weights_sha = _file_sha256(Path(weights))[:16]
    encoder = VisionEncoder(frozen_vit or comp.model.mllm.vit, batch_size=u["encode_batch_size"])  # pooled only
    # A random-init text tower stands in for a public checkpoint: its seed is its own (retriever.text.seed), not the
    # experiment's, so a baseline's seed runs rank frames in one space as the paper's runs share SigLIP2's.
    text_seed = u["retriever"]["text"].get("seed")
    text = TextEncoder(u["retriever"]["text"], tokenizer=comp.tokenizer,
                       seed=cfg["seed"] if text_seed is None else text_seed, device=comp.device)
    vdim = comp.model.mllm.vit.config.hidden_size
    if text.dim != vdim:
        raise ValueError(f"config key 'understanding.retriever.text': text embeddings of size {text.dim} but the "
                         f"ViT's pooled embeddings have size {vdim} (expected the two towers of one SigLIP model)")
    cache = response_cache(cfg["llm"])
    roles = role_llms(cfg, backends=backends, cache=cache)
    m = cfg["model"]
    spec_keys = ("tokenizer", "llm", "vit") + (("vae",) if "vae" in encoders else ())
    spec = {k: m[k] for k in spec_keys}
    if m["mllm"]["init"] != "fresh":  # a pretrained MLLM replaces llm/vit; fresh keeps the identity (and caches)
        spec["mllm"] = m["mllm"]
    actor_vit = VisionEncoder(comp.model.mllm.vit, feature_layer=comp.model.mllm.vision_feature_layer)
    identity = {"spec": config_hash(spec), "seed": cfg["seed"], "weights": weights_sha, "vit": actor_vit.encoder_id}
    actor = UniVidActor(comp, identity, max_new_tokens=u["actor"]["max_new_tokens"],
                        max_tokens_per_frame=u["actor"]["max_tokens_per_frame"], cache=cache, encoders=encoders,
                        cache_dir=u.get("cache_dir"), batch_size=u["encode_batch_size"])
    return PyramidReflection(u, encoder, text, actor, roles)
