"""JSON out of chatty LLM text: extract the object, validate fields and ranges, retry once, then a recorded fallback.

A failed parse never raises and never invents a value: `JsonResult.ok` is False, `value` is None and the raw
responses and the reason are kept for the trace.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from typing import Callable

# Appended to the prompt for the single retry (a harness addition, not a paper prompt): the retry must differ from
# the first request, or a deterministic decoder and the response cache would return the same text again.
RETRY_SUFFIX = "\n\nYour previous reply was not valid. Reply with the JSON object only, on a single line."


class InvalidOutput(ValueError):
    """The LLM's object is missing a field, has a wrong type or an out-of-range value."""


def _candidates(text: str):
    """Every balanced {...} span in text, outermost first, in order of appearance."""
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        depth, in_str, esc, quote = 0, False, False, ""
        for j in range(start, len(text)):
            ch = text[j]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == quote:
                    in_str = False
            elif ch in "\"'":
                in_str, quote = True, ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    yield text[start:j + 1]
                    break


def extract_json(text: str) -> dict | None:
    """The first JSON object in text (also Python-dict style with single quotes), or None."""
    if not isinstance(text, str):
        return None
    for cand in _candidates(text):
        for parse in (json.loads, ast.literal_eval):
            try:
                obj = parse(cand)
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                continue
            if isinstance(obj, dict):
                return obj
    return None


# ------------------------------------------------------------------------------------------------ validators

def _text(obj: dict, key: str, allow_list: bool = False) -> str:
    if key not in obj:
        raise InvalidOutput(f"missing key {key!r}")
    value = obj[key]
    if allow_list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if not isinstance(value, str):
        raise InvalidOutput(f"{key!r} is {type(value).__name__} (expected a string)")
    return value.strip()


def _choice(obj: dict, key: str, choices: tuple[str, ...]) -> str:
    value = _text(obj, key).lower().strip(" .\"'`“”")
    if value not in choices:
        raise InvalidOutput(f"{key!r} = {obj[key]!r} (expected one of {', '.join(choices)})")
    return value


def validate_classification(obj: dict) -> dict:
    return {"qtype": _choice(obj, "qtype", ("static", "dynamic")),
            "rationale": _text(obj, "rationale", allow_list=True) if "rationale" in obj else ""}


def validate_evaluation(obj: dict) -> dict:
    if "score" not in obj:
        raise InvalidOutput("missing key 'score'")
    score = obj["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise InvalidOutput(f"'score' is {type(score).__name__} (expected a number in [0, 1])")
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise InvalidOutput(f"'score' = {score} (expected a number in [0, 1])")
    return {"score": float(score), "verdict": _choice(obj, "verdict", ("accept", "reject")),
            "brief_reason": _text(obj, "brief_reason", allow_list=True)}


def validate_reflection(obj: dict) -> dict:
    return {"refined_query": _text(obj, "refined_query")}


# The JSON shape of each reply, for constrained decoding: `response_format` over HTTP, grammar-constrained sampling
# for local models (univid.llm.constrained). Free-text fields are bounded so a short token budget can close them.
SCHEMAS: dict[Callable[[dict], dict], dict] = {
    # the route only: the rationale the A.5 prompt also asks for is optional (the validator records it when sent)
    validate_classification: {"type": "object", "additionalProperties": False, "required": ["qtype"],
                              "properties": {"qtype": {"type": "string", "enum": ["static", "dynamic"]}}},
    validate_evaluation: {"type": "object", "additionalProperties": False,
                          "required": ["score", "verdict", "brief_reason"],
                          "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1},
                                         "verdict": {"type": "string", "enum": ["accept", "reject"]},
                                         "brief_reason": {"type": "string", "maxLength": 40}}},
    validate_reflection: {"type": "object", "additionalProperties": False, "required": ["refined_query"],
                          "properties": {"refined_query": {"type": "string", "maxLength": 80}}},
}

VALIDATORS: dict[str, Callable[[dict], dict]] = {
    "classification": validate_classification,
    "evaluation": validate_evaluation,
    "reflection": validate_reflection,
}


@dataclass
class JsonResult:
    value: dict | None
    ok: bool
    raw: list[str] = field(default_factory=list)  # every response, in order
    error: str | None = None  # why the last attempt failed (None when ok)

    def record(self) -> dict:
        return {"ok": self.ok, "value": self.value, "attempts": len(self.raw), "raw": self.raw, "error": self.error}


def parse(text: str, validator: Callable[[dict], dict]) -> tuple[dict | None, str | None]:
    obj = extract_json(text)
    if obj is None:
        return None, "no JSON object in the reply"
    try:
        return validator(obj), None
    except InvalidOutput as e:
        return None, str(e)


def ask_json(llm, prompt: str, validator: Callable[[dict], dict], system: str | None = None,
             retries: int = 1, **decoding) -> JsonResult:
    """Ask (constrained to the validator's JSON schema, when it has one), parse, validate; on failure ask once more
    with RETRY_SUFFIX; then give up with a recorded failure."""
    result = JsonResult(None, False)
    schema = SCHEMAS.get(validator)
    if schema is not None:
        decoding = {**decoding, "json_schema": schema}
    for attempt in range(retries + 1):
        text = llm.generate(prompt if attempt == 0 else prompt + RETRY_SUFFIX, system=system, **decoding)
        result.raw.append(text)
        value, error = parse(text, validator)
        if value is not None:
            result.value, result.ok, result.error = value, True, None
            return result
        result.error = error
    return result
