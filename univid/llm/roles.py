"""Which backend serves each role. Roles name a backend of `llm.backends` plus their decoding parameters; roles
that name the same backend share one instance (one model load)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from univid.llm.cache import CachedLLM, ResponseCache

ROLES = ("classifier", "summarizer", "evaluator", "reflector", "judge")


@dataclass
class RoleLLM:
    role: str
    backend_name: str
    llm: CachedLLM
    decoding: dict

    @property
    def backend_id(self) -> str:
        return self.llm.backend_id

    @property
    def model_id(self) -> str:
        return self.llm.model_id

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        """The role's decoding parameters, unless the caller gives its own."""
        return self.llm.generate(prompt, system=system, **(decoding or self.decoding))


def build_backend(spec: dict, device: str = "cpu"):
    kind = spec.get("kind")
    if kind == "transformers":
        from univid.llm.local import TransformersLLM

        return TransformersLLM(spec, device=device)
    if kind == "openai":
        from univid.llm.http import OpenAICompatLLM

        return OpenAICompatLLM(spec)
    raise ValueError(f"llm backend kind {kind!r}: not known (expected transformers or openai)")


def response_cache(llm_cfg: dict) -> ResponseCache | None:
    from univid.models.tokenizer import cache_root

    if not llm_cfg.get("cache", True):
        return None
    return ResponseCache(Path(llm_cfg.get("cache_path") or cache_root() / "llm_responses.sqlite"))


def role_llms(cfg: dict, backends: dict | None = None, cache: ResponseCache | None = None) -> dict[str, RoleLLM]:
    """RoleLLM per role. `backends` (name -> backend object) replaces building from config (tests, benchmarks)."""
    llm_cfg = cfg["llm"]
    cache = cache if cache is not None else response_cache(llm_cfg)
    device = "cpu" if cfg.get("device") in (None, "cpu") else cfg["device"]
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    built: dict[str, CachedLLM] = {}
    out = {}
    for role in ROLES:
        rc = llm_cfg["roles"][role]
        name = rc["backend"]
        if name not in built:
            if backends is not None and name in backends:
                backend = backends[name]
            elif name in llm_cfg["backends"]:
                backend = build_backend(llm_cfg["backends"][name], device=device)
            else:
                known = ", ".join(sorted(llm_cfg["backends"]))
                raise ValueError(f"config key 'llm.roles.{role}.backend' = {name!r}: no such backend "
                                 f"(expected one of: {known})")
            built[name] = CachedLLM(backend, cache)
        out[role] = RoleLLM(role, name, built[name], {"max_new_tokens": rc["max_new_tokens"],
                                                      "temperature": rc.get("temperature", 0.0)})
    return out


def call_counts(roles: dict[str, RoleLLM]) -> dict:
    """Backend calls and cache hits summed over distinct backends."""
    seen = {id(r.llm): r.llm for r in roles.values()}
    return {"calls": sum(l.calls for l in seen.values()), "hits": sum(l.hits for l in seen.values())}
