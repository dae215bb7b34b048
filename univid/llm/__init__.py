"""LLM backends behind one interface: `generate(prompt, system=None, **decoding) -> str`.

- `local.TransformersLLM`: a local transformers causal LM (a hub id / directory, or a GGUF file shipped in a Python
  package, converted once and cached by the GGUF's content hash);
- `http.OpenAICompatLLM`: any OpenAI-compatible chat-completions endpoint (key read from an environment variable);
- `cache.CachedLLM`: a SQLite response cache in front of either (a rerun makes no call);
- `jsonout.ask_json`: JSON extraction + validation with one retry, then a recorded fallback;
- `roles.role_llms(cfg)`: the backend of each role (classifier, summarizer, evaluator, reflector, judge).
"""

from univid.llm.base import LLM, LLMError, decoding_params
from univid.llm.cache import CachedLLM, ResponseCache
from univid.llm.jsonout import JsonResult, ask_json, extract_json
from univid.llm.roles import ROLES, build_backend, role_llms

__all__ = ["LLM", "LLMError", "decoding_params", "CachedLLM", "ResponseCache", "JsonResult", "ask_json",
           "extract_json", "ROLES", "build_backend", "role_llms"]
