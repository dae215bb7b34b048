"""Which backend serves each role. Roles name a backend of `llm.backends` plus their decoding parameters. A name may be
served by a stand-in (`llm.stand_ins`: smoke scale serves the paper's API and 7B backends by small offline models),
and every record says so, e.g. "qwen2-7b (smoke stand-in: gemma-3-270m)". Roles served by the same backend share
one instance (one model load) and, through the response cache keyed by the serving backend, their replies.

`understanding.routing_follows_evaluator` makes the classifier (question-type routing) use the evaluator's backend
(paper Sec. 3.2: one model evaluates and determines the type of questions), so swapping the Evaluator (Table 8)
moves routing with it; the classifier keeps its own decoding parameters."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from univid.llm.base import LLMError
from univid.llm.cache import CachedLLM, ResponseCache

ROLES = ("classifier", "summarizer", "evaluator", "reflector", "judge")


@dataclass
class RoleLLM:
    role: str
    backend_name: str
    llm: CachedLLM
    decoding: dict
    stand_in: str | None = None  # the backend actually serving `backend_name`, when it is a stand-in
    scale: str | None = None
    follows: str | None = None  # the role whose backend this role uses (routing_follows_evaluator), if any
    calls: int = 0  # generate() calls through this role (cached or not)
    failures: int = 0  # of them, the ones whose backend failed (after its own retries)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def label(self) -> str:
        """The role's backend as a table reports it: its name, plus the stand-in serving it, if any."""
        if not self.stand_in:
            return self.backend_name
        return f"{self.backend_name} ({self.scale + ' ' if self.scale else ''}stand-in: {self.stand_in})"

    def record(self) -> dict:
        return {"backend": self.label, "name": self.backend_name, "stand_in": self.stand_in,
                "backend_id": self.backend_id, "model": self.model_id, **self.decoding,
                **({"follows": self.follows} if self.follows else {})}

    @property
    def backend_id(self) -> str:
        return self.llm.backend_id

    @property
    def model_id(self) -> str:
        return self.llm.model_id

    @property
    def max_concurrency(self) -> int:
        return int(getattr(self.llm, "max_concurrency", 1))

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        """The role's decoding parameters, unless the caller gives its own. A backend failure names the role."""
        with self._lock:  # roles may be called from a pool of threads (prefetched routes)
            self.calls += 1
        schema = decoding.pop("json_schema", None)
        decoding = {**(decoding or self.decoding), **({"json_schema": schema} if schema else {})}
        try:
            return self.llm.generate(prompt, system=system, **decoding)
        except LLMError as exc:
            with self._lock:
                self.failures += 1
            raise LLMError(f"llm role {self.role} ({self.backend_id}): {exc}") from None

    def check_failures(self, max_fraction: float) -> None:
        """One line naming the role and its endpoint when more than `max_fraction` of its calls failed."""
        if self.calls and self.failures / self.calls > max_fraction:
            raise LLMError(f"llm role {self.role} ({self.backend_id}): {self.failures} of {self.calls} calls failed, "
                           f"more than llm.max_failed_fraction {max_fraction:g} (expected a reachable endpoint; no "
                           f"scores written, finished predictions kept for a rerun)")


def build_backend(spec: dict, device: str = "cpu"):
    kind = spec.get("kind")
    if kind == "transformers":
        from univid.llm.local import TransformersLLM

        return TransformersLLM(spec, device=device)
    if kind == "openai":
        from univid.llm.http import OpenAICompatLLM

        return OpenAICompatLLM(spec)
    if kind == "vocab":  # the deterministic judge of the synthetic world's closed-vocabulary answers
        from univid.eval.videoqa.vocab_judge import VocabJudge

        return VocabJudge(spec)
    if kind == "vocab-agent":  # Pyramid Reflection's roles by rule over the synthetic world's vocabulary (toy)
        from univid.llm.vocab_agent import VocabAgent

        return VocabAgent(spec)
    raise ValueError(f"llm backend kind {kind!r}: not known (expected transformers, openai, vocab or vocab-agent)")


def response_cache(llm_cfg: dict) -> ResponseCache | None:
    from univid.models.tokenizer import cache_root

    if not llm_cfg.get("cache", True):
        return None
    return ResponseCache(Path(llm_cfg.get("cache_path") or cache_root() / "llm_responses.sqlite"))


def llm_device(cfg: dict) -> str:
    """Where local LLM backends run: the config's device (auto: cuda when visible)."""
    device = "cpu" if cfg.get("device") in (None, "cpu") else cfg["device"]
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device


def role_decoding(rc: dict) -> dict:
    """A role's decoding parameters from its llm.roles entry."""
    return {"max_new_tokens": rc["max_new_tokens"], "temperature": rc.get("temperature", 0.0),
            **({"response_prefix": rc["response_prefix"]} if rc.get("response_prefix") else {})}


def role_llms(cfg: dict, backends: dict | None = None, cache: ResponseCache | None = None) -> dict[str, RoleLLM]:
    """RoleLLM per role. `backends` (name -> backend object) replaces building from config (tests, benchmarks)."""
    llm_cfg = cfg["llm"]
    cache = cache if cache is not None else response_cache(llm_cfg)
    device = llm_device(cfg)
    built: dict[str, CachedLLM] = {}
    out = {}
    for role in ROLES:
        rc = llm_cfg["roles"][role]
        follows = followed_role(cfg, role)
        name = llm_cfg["roles"][follows or role]["backend"]
        serving = serving_backend(llm_cfg, name, f"llm.roles.{follows or role}.backend")
        if serving not in built:
            if backends is not None and serving in backends:
                backend = backends[serving]
            else:
                backend = build_backend(llm_cfg["backends"][serving], device=device)
            built[serving] = CachedLLM(backend, cache)
        decoding = role_decoding(rc)
        out[role] = RoleLLM(role, name, built[serving], decoding,
                            stand_in=serving if serving != name else None, scale=cfg.get("scale"), follows=follows)
    return out


def followed_role(cfg: dict, role: str) -> str | None:
    """The role whose backend serves `role`: the evaluator's for the classifier when
    understanding.routing_follows_evaluator is on; None (its own llm.roles.<role>.backend) otherwise."""
    if role == "classifier" and (cfg.get("understanding") or {}).get("routing_follows_evaluator", False):
        return "evaluator"
    return None


def role_on_backend(cfg: dict, role: str, name: str, cache: ResponseCache | None = None,
                    where: str = "llm backend") -> RoleLLM:
    """The role with its configured decoding, served by backend `name` (its stand-in at this scale) instead."""
    llm_cfg = cfg["llm"]
    serving = serving_backend(llm_cfg, name, where)
    backend = build_backend(llm_cfg["backends"][serving], device=llm_device(cfg))
    return RoleLLM(role, name, CachedLLM(backend, cache if cache is not None else response_cache(llm_cfg)),
                   role_decoding(llm_cfg["roles"][role]),
                   stand_in=serving if serving != name else None, scale=cfg.get("scale"))


def serving_backend(llm_cfg: dict, name: str, where: str = "llm backend") -> str:
    """The backend that serves `name` at this scale: its stand-in (llm.stand_ins), else itself; both must exist."""
    known = ", ".join(sorted(llm_cfg["backends"]))
    if name not in llm_cfg["backends"] and name not in (llm_cfg.get("stand_ins") or {}):
        raise ValueError(f"config key '{where}' = {name!r}: no such backend (expected one of: {known})")
    serving = (llm_cfg.get("stand_ins") or {}).get(name, name)
    if serving not in llm_cfg["backends"]:
        raise ValueError(f"config key 'llm.stand_ins.{name}' = {serving!r}: no such backend (expected one of: {known})")
    return serving


def call_counts(roles: dict[str, RoleLLM]) -> dict:
    """Backend calls and cache hits summed over distinct backends."""
    seen = {id(r.llm): r.llm for r in roles.values()}
    return {"calls": sum(l.calls for l in seen.values()), "hits": sum(l.hits for l in seen.values())}
