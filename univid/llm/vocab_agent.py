"""A deterministic stand-in for Pyramid Reflection's LLM roles in the synthetic world (`kind: vocab-agent`).

SmolLM2-135M, the offline stand-in for the paper's API models, answers every evaluation with score 0.9 and routes
every question the same way: with it the loop never takes a second round, so the Evaluator's tau, MMR's lambda and
the working set's order change no answer at toy scale and nothing measures them. This backend reads the same A.5
prompts the LLM roles get and replies in the same JSON shapes, by rule over the world's closed vocabulary (the
terms, synonyms and categories of the vocab judge, univid.eval.videoqa.vocab_judge). It sees only what an LLM role
sees (the question, the global caption, the Actor's answer, the notes), never the clip or the gold answer.

Rubric (`RUBRIC_ID`), one rule per prompt:
- classifier (question_type_classification): "dynamic" when the question asks about change over time (DYNAMIC_WORDS:
  move, direction, growing, shrinking, later, before, after, first, last, times, ...), else "static" - the split of
  the world's own question types (univid.data.synthetic.qa_pairs).
- summarizer (frame_summarization): the notes, in order, without repeats, joined by "; " (nothing invented).
- evaluator (evaluator_case): the question's answer category (QUESTION_CATEGORIES: "what color" -> color, "which
  direction" -> direction, "is/does ..." -> yes_no, ...); then, on the answer's terms of that category:
    no term                                                -> 0.0  (it does not answer the question)
    two or more terms                                      -> 0.3  (a hedge is not an answer)
    one term, and the caption names other terms, not it    -> 0.4  (the caption contradicts it)
    one term, and the caption names it                     -> 1.0
    one term, the caption names none of the category       -> 0.8
  yes/no answers are not checked against the caption (it states no yes/no facts); verdict "accept" iff score >= 0.7
  (the threshold the A.5 evaluator prompt states). A question outside the vocabulary scores 0.5, "reject".
- reflector (reflection): "" when the last evaluation accepted (A.5 rule 3); else the question's world terms as a
  declarative cue, e.g. "the red square moving" (shapes, colours, motion words, in the question's order), and ""
  when the question names none (the search text is then kept).
A prompt that is none of these gets a one-line reply saying so, which the role's JSON parser counts as a failure.
"""

from __future__ import annotations

import json
import re

from univid.eval.videoqa.vocab_judge import CATEGORIES, canonical, mentions

RUBRIC_ID = "synthetic-vocab-agent-v1"
ACCEPT_AT = 0.7  # the A.5 evaluator prompt: verdict "accept" if score >= 0.7
DYNAMIC_WORDS = ("move", "moves", "moving", "direction", "growing", "shrinking", "grow", "shrink", "later", "appear",
                 "appears", "before", "after", "first", "last", "times", "order", "then", "change", "changes")
# (pattern on the lower-cased question, answer category); first match wins.
QUESTION_CATEGORIES = (
    (r"^what colou?r", "color"), (r"^what shape", "shape"), (r"^how many", "number"),
    (r"^which direction", "direction"), (r"growing or shrinking", "size"),
    (r"on the left or on the right", "direction"), (r"^(is|are|does|do|did|was|were|can) ", "yes_no"),
)
CUE_WORDS = set(CATEGORIES["color"]) | set(CATEGORIES["shape"]) | {"moving", "growing", "shrinking", "later"}

_CLASSIFY = re.compile(r"^Question\. (.*)$", re.M)
_EVAL = {k: re.compile(rf"^{k}:[ \t]*(.*)$", re.M) for k in ("Question", "Global caption", "Answer")}
_NOTES = re.compile(r"^- (.*)$", re.M)
_REFLECT = re.compile(r"Question: (.*?) Global caption: (.*?) Last answer: (.*?) Evaluation JSON: (.*?)\nReturn\.", re.S)


def question_category(question: str) -> str | None:
    q = " ".join(str(question).lower().split())
    return next((cat for pattern, cat in QUESTION_CATEGORIES if re.search(pattern, q)), None)


def classify(question: str) -> str:
    words = set(re.sub(r"[^a-z ]+", " ", question.lower()).split())
    return "dynamic" if words & set(DYNAMIC_WORDS) else "static"


def evaluate(question: str, caption: str, answer: str) -> dict:
    """{score, verdict, brief_reason} by the rubric in the module doc."""
    category = question_category(question)
    if category is None:
        return {"score": 0.5, "verdict": "reject", "brief_reason": "question outside the synthetic vocabulary"}
    terms = CATEGORIES[category]
    named = mentions(answer, terms)
    if not named:
        score, reason = 0.0, f"names no {category}"
    elif len(named) > 1:
        score, reason = 0.3, f"hedges between {', '.join(sorted(named))}"
    elif category == "yes_no":
        score, reason = 0.8, "a yes/no answer"
    else:
        in_caption = mentions(caption, terms)
        if named[0] in in_caption:
            score, reason = 1.0, f"caption names {named[0]}"
        elif in_caption:
            score, reason = 0.4, f"caption names {', '.join(sorted(in_caption))}, not {named[0]}"
        else:
            score, reason = 0.8, f"one {category}; caption silent"
    return {"score": score, "verdict": "accept" if score >= ACCEPT_AT else "reject", "brief_reason": reason}


def refined_query(question: str) -> str:
    text = f" {canonical(question)} "
    for term in (t for t in CUE_WORDS if " " in t):  # "dark blue" is one cue
        text = text.replace(f" {term} ", f" {term.replace(' ', '_')} ")
    cues = [w.replace("_", " ") for w in text.split() if w.replace("_", " ") in CUE_WORDS]
    return f"the {' '.join(dict.fromkeys(cues))}" if cues else ""


def summarize(notes: list[str]) -> str:
    return "; ".join(dict.fromkeys(n.strip() for n in notes if n.strip()))


class VocabAgent:
    """An llm backend (generate(prompt, system, **decoding)) answering the A.5 role prompts by RUBRIC_ID."""

    max_concurrency = 1

    def __init__(self, spec: dict | None = None):
        self.backend_id = f"vocab:{RUBRIC_ID}"
        self.model_id = RUBRIC_ID
        self.calls = 0

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        self.calls += 1
        if prompt.startswith("Role. Classify a video question"):
            m = _CLASSIFY.search(prompt)
            if m:
                return json.dumps({"qtype": classify(m.group(1))})
        elif prompt.startswith("Role. Summarize chronologically ordered frame notes"):
            return summarize(_NOTES.findall(prompt))
        elif prompt.startswith("Role. Reflector"):
            m = _REFLECT.search(prompt)
            if m:
                try:
                    last = json.loads(m.group(4))
                except json.JSONDecodeError:
                    last = {}
                score = last.get("score") if isinstance(last, dict) else None
                good = isinstance(last, dict) and (last.get("verdict") == "accept" or (
                    isinstance(score, (int, float)) and not isinstance(score, bool) and score >= ACCEPT_AT))
                return json.dumps({"refined_query": "" if good else refined_query(m.group(1))})
        else:
            fields = {k: rx.search(prompt) for k, rx in _EVAL.items()}
            if all(fields.values()):
                return json.dumps(evaluate(*(fields[k].group(1) for k in ("Question", "Global caption", "Answer"))))
        return (f"cannot answer: not a Pyramid Reflection role prompt this rubric reads (expected the A.5 "
                f"classification, summarization, evaluation or reflection prompt): {prompt[:60]!r}")
