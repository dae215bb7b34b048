"""The Video-ChatGPT LLM-judge protocol for open-ended Video-QA (MSVD-QA, MSRVTT-QA, TGIF-QA, ActivityNet-QA).

Prompts: verbatim from mbzuai-oryx/Video-ChatGPT `quantitative_evaluation/evaluate_activitynet_qa.py` (templates
`templates/judge_system.j2`, `templates/judge_user.j2`; snapshot-tested). Decoding: temperature 0 (lmms-eval's
setting; the original script left OpenAI's default), max_tokens 64, up to `retries` extra attempts when the backend
raises. Verdict: the reply's `{'pred', 'score'}` dict; `pred` counts as yes when it contains "yes", else as no when
it contains "no" (the script's rule); `score` is truncated to an integer as the script's `int(score)` does and must
lie in 0..5. A reply that gives no usable verdict, or a backend that keeps failing, is a failure: counted as
("no", 0), as lmms-eval does, and counted in `failures`. Accuracy = yes / (yes + no) * 100; score = mean integer.

The judge is any object with `generate(prompt, system=None, **decoding) -> str` (JudgeBackend); its `backend_id`
and `model_id` attributes are recorded with every verdict and every summary. In the `videoqa` job
(univid.eval.videoqa.run) the judge is `llm.roles.judge` — the one config place that picks its backend, stand-in and
decoding — and `eval.videoqa.judge.retries` is the protocol's retry count.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

from univid.eval.cache import EvalCache, key_of
from univid.io import atomic_path

PROTOCOL_ID = "video-chatgpt-judge@mbzuai-oryx/Video-ChatGPT:quantitative_evaluation/evaluate_activitynet_qa.py"
DEFAULT_DECODING = {"temperature": 0.0, "max_tokens": 64}


@runtime_checkable
class JudgeBackend(Protocol):
    """What the judge needs from an LLM (univid.llm's interface); backend_id/model_id name it in the results."""

    backend_id: str
    model_id: str

    def generate(self, prompt: str, system: str | None = None, **decoding: Any) -> str: ...


@functools.lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
                              autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def system_prompt() -> str:
    return _env().get_template("judge_system.j2").render()


def user_prompt(question: str, answer: str, pred: str) -> str:
    return _env().get_template("judge_user.j2").render(question=question, answer=answer, pred=pred)


_DICT = re.compile(r"\{[^{}]*\}", re.S)
_PRED = re.compile(r"""['"]?pred['"]?\s*[:=]\s*['"]?\s*(yes|no)\b""", re.I)
_SCORE = re.compile(r"""['"]?score['"]?\s*[:=]\s*['"]?\s*(-?\d+(?:\.\d+)?)""", re.I)


def parse_verdict(reply: str) -> tuple[str, int] | None:
    """(pred 'yes'|'no', integer score 0..5) from a judge reply, or None when the reply holds no usable verdict.

    Accepts what judges actually send: the dict alone or inside prose or a code fence, JSON or Python quoting, a
    float score (4.8 -> 4, as the script's int()), a quoted score ('4'); rejects a missing key, a pred that is
    neither yes nor no, and a score outside 0..5."""
    if not isinstance(reply, str):
        return None
    for candidate in _DICT.findall(reply):
        try:
            d = ast.literal_eval(candidate)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            try:
                d = json.loads(candidate)
            except ValueError:
                continue
        if isinstance(d, dict) and "pred" in d and "score" in d:
            verdict = _verdict(d["pred"], d["score"])
            if verdict is not None:
                return verdict
    pred, score = _PRED.search(reply), _SCORE.search(reply)
    if pred and score:
        return _verdict(pred.group(1), score.group(1))
    return None


def _verdict(pred: Any, score: Any) -> tuple[str, int] | None:
    if not isinstance(pred, str):
        return None
    p = pred.lower()
    label = "yes" if "yes" in p else "no" if "no" in p else None
    if label is None or isinstance(score, bool):
        return None
    try:
        value = int(float(score))  # int() truncates as the script's int(score_match); '4' and 4.8 both accepted
    except (TypeError, ValueError, OverflowError):
        return None
    return (label, value) if 0 <= value <= 5 else None


def judge_id(backend: JudgeBackend) -> dict:
    return {"backend": str(getattr(backend, "backend_id", type(backend).__name__)),
            "model": str(getattr(backend, "model_id", "unknown")), "protocol": PROTOCOL_ID}


def judge_one(backend: JudgeBackend, question: str, answer: str, pred: str, *, retries: int = 5,
              decoding: dict | None = None, cache: EvalCache | None = None) -> dict:
    """One verdict: {"pred", "score", "failed", "reply", "error", "attempts", "cached"}."""
    system, user = system_prompt(), user_prompt(question, answer, pred)
    decoding = {**DEFAULT_DECODING, **(decoding or {})}
    jid = judge_id(backend)
    key = key_of(judge=jid, system=system, user=user, decoding=decoding)
    if cache is not None:
        hit = cache.get("judge", key)
        if hit is not None:
            return {**hit, "cached": True}
    reply, error, attempts = None, None, 0
    for attempts in range(1, retries + 2):
        try:
            reply = backend.generate(user, system=system, **decoding)
            error = None
            break
        except Exception as e:  # any backend failure (network, rate limit, ...) is retried, then counted
            error = f"{type(e).__name__}: {e}"
    verdict = parse_verdict(reply) if reply is not None else None
    if verdict is None and error is None:
        error = "unparseable reply (expected a dict with 'pred' yes/no and an integer 'score' 0..5)"
    rec = {"pred": verdict[0] if verdict else "no", "score": verdict[1] if verdict else 0,
           "failed": verdict is None, "reply": reply, "error": error, "attempts": attempts}
    if cache is not None and reply is not None:  # a backend outage is not cached: a rerun asks again
        cache.put("judge", key, rec)
    return {**rec, "cached": False}


def judge_many(backend: JudgeBackend, items: list[tuple[str, str, str]], *, retries: int = 5,
               decoding: dict | None = None, cache: EvalCache | None = None,
               concurrency: int | None = None) -> list[dict]:
    """judge_one over (question, answer, pred) items, in order. Cached verdicts are read first; the rest are sent
    through a pool of `concurrency` threads (default: the backend's max_concurrency; 1 for in-process models), then
    stored. The cache is touched from this thread only."""
    from concurrent.futures import ThreadPoolExecutor

    out: list[dict | None] = [None] * len(items)
    todo = []
    for i, (q, a, p) in enumerate(items):
        if cache is not None:
            system, user = system_prompt(), user_prompt(q, a, p)
            key = key_of(judge=judge_id(backend), system=system, user=user,
                         decoding={**DEFAULT_DECODING, **(decoding or {})})
            hit = cache.get("judge", key)
            if hit is not None:
                out[i] = {**hit, "cached": True}
                continue
        todo.append(i)
    workers = max(1, int(concurrency or getattr(backend, "max_concurrency", 1)))

    def one(i: int) -> dict:
        q, a, p = items[i]
        return judge_one(backend, q, a, p, retries=retries, decoding=decoding, cache=None)

    if workers == 1 or len(todo) < 2:
        results = [one(i) for i in todo]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
            results = list(pool.map(one, todo))
    for i, rec in zip(todo, results):
        out[i] = rec
        if cache is not None and rec["reply"] is not None:  # an outage is not cached: a rerun asks again
            q, a, p = items[i]
            key = key_of(judge=judge_id(backend), system=system_prompt(), user=user_prompt(q, a, p),
                         decoding={**DEFAULT_DECODING, **(decoding or {})})
            cache.put("judge", key, {k: v for k, v in rec.items() if k != "cached"})
    return out


def summarize(verdicts: Iterable[dict]) -> dict:
    """accuracy = yes/(yes+no)*100, score = mean integer score, counts; failures are ("no", 0) and counted."""
    vs = list(verdicts)
    yes = sum(v["pred"] == "yes" for v in vs)
    no = sum(v["pred"] == "no" for v in vs)
    return {"n": len(vs), "yes": yes, "no": no, "failures": sum(bool(v["failed"]) for v in vs),
            "accuracy": 100.0 * yes / (yes + no) if yes + no else 0.0,
            "score": sum(v["score"] for v in vs) / len(vs) if vs else 0.0}


def judge_predictions(samples: list[dict], backend: JudgeBackend, out_jsonl: str | os.PathLike, *,
                      retries: int = 5, decoding: dict | None = None, cache: EvalCache | None = None) -> dict:
    """Judge every {"question_id", "video", "question", "answer", "pred"} sample; write one verdict per line to
    out_jsonl (atomically, next to the predictions) and return the summary with the judge's id and call counts."""
    if not isinstance(backend, JudgeBackend):
        raise TypeError(f"judge backend {type(backend).__name__}: expected generate(prompt, system=None, **decoding)"
                        " and backend_id/model_id attributes")
    jid = judge_id(backend)
    rows = []
    for s in samples:
        missing = [k for k in ("question_id", "video", "question", "answer", "pred") if k not in s]
        if missing:
            raise ValueError(f"prediction {str(s)[:80]}: missing {missing[0]!r} (expected question_id, video, "
                             "question, answer, pred)")
        v = judge_one(backend, str(s["question"]), str(s["answer"]), str(s["pred"]), retries=retries,
                      decoding=decoding, cache=cache)
        rows.append({"question_id": s["question_id"], "video": s["video"], "question": s["question"],
                     "answer": s["answer"], "pred_answer": s["pred"], **v, "judge": jid})
    with atomic_path(out_jsonl) as tmp:
        Path(tmp).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    summary = summarize(rows)
    summary.update({"judge": jid, "decoding": {**DEFAULT_DECODING, **(decoding or {})}, "retries": retries,
                    "judge_calls": sum(r["attempts"] for r in rows if not r["cached"]),
                    "cached": sum(r["cached"] for r in rows), "verdicts": str(out_jsonl)})
    return summary
