"""A deterministic Video-ChatGPT judge for the synthetic world's closed-vocabulary answers (`kind: vocab`).

The synthetic questions (univid.data.synthetic.qa_pairs) have one- or two-word answers from a closed vocabulary:
colours, shapes, counts, directions, growing/shrinking, yes/no. A tiny LLM cannot judge them (SmolLM2 answers the
judge prompt with code), so at smoke/toy scale this judge reads the same Video-ChatGPT user prompt an LLM judge gets
and replies with the same Python-dict verdict, by rule:

Rubric (`RUBRIC_ID`). Words are lower-cased, punctuation dropped, synonyms mapped to the world's terms (SYNONYMS:
grey -> gray, violet -> purple, navy -> dark blue, digits -> number words, round/circular -> circle, upward(s) ->
up, bigger/larger/grows -> growing, smaller/shrinks -> shrinking, yeah/yep -> yes, nope -> no, ...). The answer's
category is the category of its term; the prediction's mentions are the terms of that category it contains
(longest first, so "dark blue" is not also "blue").
  - names the answer and nothing else of its category     -> {'pred': 'yes', 'score': 5}
  - names the answer and another term of its category     -> {'pred': 'no', 'score': 2}   (a hedge is not an answer)
  - names only other terms of the category                -> {'pred': 'no', 'score': 1}
  - names no term of the category                         -> {'pred': 'no', 'score': 0}
An answer outside the vocabulary cannot be judged by rule: the reply says so, the verdict parser finds no verdict,
and the sample is counted as a failure (never a score). The LLM judge stays available (llm.roles.judge naming any
other backend); eval.videoqa.judge.agreement names a second judge whose agreement with this one is reported.
"""

from __future__ import annotations

import re

from univid.data.synthetic import BACKGROUNDS, COLORS, SHAPES

RUBRIC_ID = "synthetic-vocab-v1"

CATEGORIES = {
    "color": tuple(COLORS) + tuple(BACKGROUNDS),
    "shape": SHAPES,
    "number": ("zero", "one", "two", "three", "four"),
    "direction": ("left", "right", "up", "down"),
    "size": ("growing", "shrinking"),
    "yes_no": ("yes", "no"),
}
SYNONYMS = {
    "grey": "gray", "violet": "purple", "navy": "dark blue", "navy blue": "dark blue",
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "none": "zero", "single": "one",
    "round": "circle", "circular": "circle", "circles": "circle", "squares": "square", "triangular": "triangle",
    "triangles": "triangle",
    "upward": "up", "upwards": "up", "downward": "down", "downwards": "down", "leftward": "left",
    "leftwards": "left", "rightward": "right", "rightwards": "right",
    "grows": "growing", "grew": "growing", "bigger": "growing", "larger": "growing", "expanding": "growing",
    "shrinks": "shrinking", "shrank": "shrinking", "smaller": "shrinking", "contracting": "shrinking",
    "yeah": "yes", "yep": "yes", "nope": "no",
}
_FIELD = {k: re.compile(rf"^{k}:[ \t]*(.*)$", re.M) for k in ("Question", "Correct Answer", "Predicted Answer")}


def canonical(text: str) -> str:
    words = re.sub(r"[^a-z0-9 ]+", " ", str(text).lower()).split()
    out, i = [], 0
    while i < len(words):  # two-word synonyms first (navy blue)
        pair = " ".join(words[i:i + 2])
        if pair in SYNONYMS:
            out.append(SYNONYMS[pair])
            i += 2
            continue
        out.append(SYNONYMS.get(words[i], words[i]))
        i += 1
    return " ".join(out)


def mentions(text: str, terms: tuple[str, ...]) -> list[str]:
    """The category terms in the text, longest first and without overlaps ("dark blue" is not also "blue")."""
    found, rest = [], f" {canonical(text)} "
    for t in sorted(terms, key=len, reverse=True):
        if f" {t} " in rest:
            found.append(t)
            rest = rest.replace(f" {t} ", " | ")
    return found


def verdict(answer: str, pred: str) -> tuple[str, int] | None:
    """(yes|no, 0-5) by the rubric, or None when the answer is not a term of the world's vocabulary."""
    a = canonical(answer)
    category = next((c for c, terms in CATEGORIES.items() if a in terms), None)
    if category is None:
        return None
    named = mentions(pred, CATEGORIES[category])
    if a in named:
        return ("yes", 5) if len(named) == 1 else ("no", 2)
    return ("no", 1) if named else ("no", 0)


class VocabJudge:
    """An llm backend (generate(prompt, system, **decoding)) that judges the Video-ChatGPT user prompt by RUBRIC_ID."""

    max_concurrency = 1

    def __init__(self, spec: dict | None = None):
        self.backend_id = f"vocab:{RUBRIC_ID}"
        self.model_id = RUBRIC_ID
        self.calls = 0

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        self.calls += 1
        fields = {k: rx.search(prompt) for k, rx in _FIELD.items()}
        if not all(fields.values()):
            return ("cannot judge: the prompt has no Question / Correct Answer / Predicted Answer lines "
                    "(expected the Video-ChatGPT judge prompt)")
        v = verdict(fields["Correct Answer"].group(1), fields["Predicted Answer"].group(1))
        if v is None:
            return f"cannot judge: answer {fields['Correct Answer'].group(1)!r} is outside the synthetic vocabulary"
        return "{'pred': '%s', 'score': %d}" % v
