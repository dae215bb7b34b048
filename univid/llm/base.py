"""The interface every LLM backend implements, and the decoding parameters it accepts."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# Decoding parameters a backend understands; anything else is a caller error (and would silently split the cache).
# max_tokens: OpenAI's name for max_new_tokens. response_prefix: text the reply is forced to start with (the
# assistant turn is pre-filled with it; the returned reply includes it), e.g. a judge's "{'pred': '".
DECODING_KEYS = ("max_new_tokens", "temperature", "max_tokens", "response_prefix", "json_schema")


class LLMError(RuntimeError):
    """A backend could not produce a response (HTTP failure after retries, missing API key, ...). One line."""


@runtime_checkable
class LLM(Protocol):
    backend_id: str  # what serves the model (e.g. "transformers:gguf:<sha16>", "openai:https://api.deepseek.com")
    model_id: str    # the model name as the backend knows it

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str: ...


def decoding_params(decoding: dict) -> dict:
    """Validated decoding parameters with defaults: greedy (temperature 0), max_new_tokens required."""
    unknown = sorted(set(decoding) - set(DECODING_KEYS))
    if unknown:
        raise ValueError(f"decoding parameter {unknown[0]!r}: not known (expected one of {', '.join(DECODING_KEYS)})")
    if "max_tokens" in decoding:
        if "max_new_tokens" in decoding and decoding["max_new_tokens"] != decoding["max_tokens"]:
            raise ValueError("decoding: max_tokens and max_new_tokens disagree (expected one of them)")
        decoding = {**decoding, "max_new_tokens": decoding["max_tokens"]}
    out = {"max_new_tokens": int(decoding.get("max_new_tokens", 64)), "temperature": float(decoding.get("temperature", 0.0))}
    if decoding.get("response_prefix"):
        out["response_prefix"] = str(decoding["response_prefix"])
    if decoding.get("json_schema") is not None:  # the reply's JSON shape: constrained decoding where supported
        if not isinstance(decoding["json_schema"], dict):
            raise ValueError("decoding json_schema: expected a JSON schema object (dict)")
        out["json_schema"] = decoding["json_schema"]
    if out["max_new_tokens"] < 1:
        raise ValueError(f"decoding max_new_tokens={out['max_new_tokens']}: expected >= 1")
    if out["temperature"] < 0:
        raise ValueError(f"decoding temperature={out['temperature']}: expected >= 0")
    return out


def messages(prompt: str, system: str | None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
