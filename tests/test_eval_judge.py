"""Video-ChatGPT judge: prompts verbatim (snapshots), verdict parsing on replies seen in the wild, protocol maths,
failure accounting, caching (a second run makes zero judge calls), JSONL verdicts."""

import json
from pathlib import Path

import pytest

from univid.eval.cache import EvalCache
from univid.eval.videoqa.judge import (JudgeBackend, judge_id, judge_one, judge_predictions, parse_verdict, summarize, system_prompt,
                               user_prompt)

SNAP = Path(__file__).parent / "snapshots"


class Scripted:
    """A judge backend that replays scripted replies and records every call."""

    backend_id = "scripted"
    model_id = "scripted-v1"

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def generate(self, prompt, system=None, **decoding):
        self.calls.append({"prompt": prompt, "system": system, **decoding})
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_prompts_match_snapshots_verbatim():
    assert system_prompt() == (SNAP / "judge_system.txt").read_text()
    got = user_prompt("what is the man doing?", "playing guitar", "He is playing a guitar on {stage}.")
    assert got == (SNAP / "judge_user.txt").read_text()
    # details of the original that a paraphrase would lose
    assert "task:------##INSTRUCTIONS: - Focus" in system_prompt()
    assert "'pred' is  a string" in got and "not STRING.DO NOT PROVIDE" in got


@pytest.mark.parametrize("reply, expected", [
    ("{'pred': 'yes', 'score': 4}", ("yes", 4)),
    ("{'pred': 'yes', 'score': 4.8}", ("yes", 4)),              # float score: int() truncates as the script
    ('{"pred": "no", "score": 1}', ("no", 1)),                  # JSON quoting
    ("{'pred': 'Yes', 'score': '3'}", ("yes", 3)),              # quoted score, capitalised pred
    ("Sure! Here is my evaluation:\n{'pred': 'no', 'score': 0}\nThe answer is wrong.", ("no", 0)),  # prose
    ("```python\n{'pred': 'yes', 'score': 5}\n```", ("yes", 5)),  # code fence
    ("pred: yes, score: 2", ("yes", 2)),                        # no braces at all
    ("{'pred': 'yes'}", None),                                  # missing score
    ("{'score': 3}", None),                                     # missing pred
    ("{'pred': 'maybe', 'score': 3}", None),                    # neither yes nor no
    ("{'pred': 'yes', 'score': 7}", None),                      # out of range
    ("{'pred': 'yes', 'score': None}", None),
    ("I cannot evaluate this.", None),
    ("", None),
])
def test_parse_verdict_in_the_wild(reply, expected):
    assert parse_verdict(reply) == expected


def test_judge_decoding_failures_and_summary():
    b = Scripted(["{'pred': 'yes', 'score': 4.8}"])
    v = judge_one(b, "q", "a", "p")
    assert (v["pred"], v["score"], v["failed"]) == ("yes", 4, False)
    assert b.calls[0]["temperature"] == 0.0 and b.calls[0]["max_tokens"] == 64
    assert b.calls[0]["system"] == system_prompt()
    bad = judge_one(Scripted(["no idea"]), "q", "a", "p")
    assert (bad["pred"], bad["score"], bad["failed"]) == ("no", 0, True)
    flaky = Scripted([RuntimeError("rate limited"), RuntimeError("rate limited"), "{'pred': 'no', 'score': 2}"])
    v = judge_one(flaky, "q", "a", "p", retries=5)
    assert (v["pred"], v["score"], v["attempts"]) == ("no", 2, 3)
    down = judge_one(Scripted([RuntimeError("down")]), "q", "a", "p", retries=2)
    assert down["failed"] and down["attempts"] == 3 and "down" in down["error"]
    s = summarize([{"pred": "yes", "score": 4, "failed": False}, {"pred": "no", "score": 1, "failed": False},
                   {"pred": "yes", "score": 5, "failed": False}, {"pred": "no", "score": 0, "failed": True}])
    assert s == {"n": 4, "yes": 2, "no": 2, "failures": 1, "accuracy": 50.0, "score": 2.5}


def test_judge_predictions_jsonl_and_cache(tmp_path):
    samples = [{"question_id": f"q{i}", "video": f"v{i // 2}", "question": f"question {i}", "answer": "a",
                "pred": f"pred {i}"} for i in range(6)]
    replies = ["{'pred': 'yes', 'score': 5}", "{'pred': 'no', 'score': 1}", "garbage",
               "{'pred': 'yes', 'score': 3.5}", "{'pred': 'no', 'score': 0}", "{'pred': 'yes', 'score': 4}"]
    cache = EvalCache(tmp_path / "cache")
    b = Scripted(replies)
    assert isinstance(b, JudgeBackend)
    out = tmp_path / "preds" / "verdicts.jsonl"
    first = judge_predictions(samples, b, out, cache=cache)
    assert len(b.calls) == 6 and first["judge_calls"] == 6
    assert (first["yes"], first["no"], first["failures"]) == (3, 3, 1)
    assert first["accuracy"] == 50.0 and first["score"] == pytest.approx((5 + 1 + 0 + 3 + 0 + 4) / 6)
    assert first["judge"]["backend"] == "scripted" and first["judge"]["model"] == "scripted-v1"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["question_id"] for r in lines] == [s["question_id"] for s in samples]
    assert lines[2]["failed"] and lines[2]["reply"] == "garbage" and lines[0]["judge"]["model"] == "scripted-v1"
    again = Scripted(["{'pred': 'no', 'score': 0}"])
    second = judge_predictions(samples, again, out, cache=cache)
    assert again.calls == [] and second["judge_calls"] == 0 and second["cached"] == 6
    assert {k: second[k] for k in ("yes", "no", "failures", "accuracy", "score")} == \
           {k: first[k] for k in ("yes", "no", "failures", "accuracy", "score")}
    other = Scripted(["{'pred': 'no', 'score': 0}"])
    other.model_id = "scripted-v2"  # another judge model is another key: judged afresh
    judge_predictions(samples, other, tmp_path / "v2.jsonl", cache=cache)
    assert len(other.calls) == 6
    with pytest.raises(ValueError, match="missing 'pred'"):
        judge_predictions([{"question_id": 1, "video": "v", "question": "q", "answer": "a"}], b, out)


def test_judging_sends_up_to_max_concurrency_requests_at_once_and_caches_them(tmp_path):
    """A real OpenAI-compatible server on 127.0.0.1 holds every request 0.3 s and records how many are in flight:
    12 verdicts through a backend with max_concurrency 4 keep exactly 4 in flight (never more), in order; a rerun
    is answered from the cache without a request."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from conftest import send_chat_completion

    from univid.eval.videoqa.judge import judge_many
    from univid.llm.http import OpenAICompatLLM

    state = {"now": 0, "max": 0, "total": 0}
    lock = threading.Lock()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["now"] += 1
                state["total"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.3)
            with lock:
                state["now"] -= 1
            pred = body["messages"][-1]["content"].split("Predicted Answer: ")[1].split("\n")[0]
            send_chat_completion(self, "{'pred': 'yes', 'score': %d}" % int(pred[-1]))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = OpenAICompatLLM({"base_url": f"http://127.0.0.1:{server.server_port}/v1", "model": "judge",
                               "max_retries": 0, "max_concurrency": 4})
        items = [(f"question {i}", "answer", f"prediction {i % 6}") for i in range(12)]
        cache = EvalCache(tmp_path)
        verdicts = judge_many(llm, items, retries=0, cache=cache)
        assert state == {"now": 0, "max": 4, "total": 12}, state
        assert [v["score"] for v in verdicts] == [i % 6 for i in range(12)]  # in the items' order
        again = judge_many(llm, items, retries=0, cache=cache)
        assert state["total"] == 12 and all(v["cached"] for v in again)
        assert [v["score"] for v in again] == [v["score"] for v in verdicts]
    finally:
        server.shutdown()


# ------------------------------------------------------------------------------------------- rubric judge

@pytest.mark.parametrize("answer, pred, expected", [
    ("red", "The triangle is red.", ("yes", 5)),
    ("gray", "It looks grey to me", ("yes", 5)),                       # synonym
    ("dark blue", "a navy background", ("yes", 5)),
    ("dark blue", "blue", ("no", 1)),                                  # blue is another colour than dark blue
    ("blue", "dark blue", ("no", 1)),
    ("red", "red or blue", ("no", 2)),                                 # a hedge is not an answer
    ("two", "There are 2 objects.", ("yes", 5)),
    ("circle", "a round shape", ("yes", 5)),
    ("left", "It moves leftwards", ("yes", 5)),
    ("growing", "it gets bigger", ("yes", 5)),
    ("yes", "Yes, it is moving.", ("yes", 5)),
    ("no", "yes", ("no", 1)),
    ("square", "meadow meadow meadow", ("no", 0)),                     # names nothing of the category
])
def test_rubric_judge_verdicts_at_sample_points(answer, pred, expected):
    from univid.eval.videoqa.vocab_judge import verdict

    assert verdict(answer, pred) == expected


def test_rubric_judge_speaks_the_video_chatgpt_protocol_and_names_itself():
    """It reads the judge prompt an LLM gets and answers in the protocol's dict; its id is recorded with verdicts;
    an answer outside the vocabulary is a counted failure, never a score."""
    from univid.eval.videoqa.vocab_judge import RUBRIC_ID, VocabJudge
    from univid.llm.roles import build_backend

    j = build_backend({"kind": "vocab"})
    assert isinstance(j, VocabJudge)
    v = judge_one(j, "What color is the square?", "purple", "It is violet.", retries=0)
    assert (v["pred"], v["score"], v["failed"]) == ("yes", 5, False) and v["reply"] == "{'pred': 'yes', 'score': 5}"
    assert judge_id(j) == {"backend": f"vocab:{RUBRIC_ID}", "model": RUBRIC_ID, "protocol": judge_id(j)["protocol"]}
    out = judge_one(j, "What is the man doing?", "playing guitar", "guitar", retries=0)
    assert out["failed"] and (out["pred"], out["score"]) == ("no", 0) and "outside the synthetic vocabulary" in \
        out["reply"]


def test_smoke_judges_with_the_rubric_and_reports_the_llm_judges_agreement(tmp_path):
    from univid.config import resolve
    from univid.eval.videoqa.run import judge_agreement
    from univid.llm.roles import role_llms

    from univid.llm.roles import role_on_backend

    cfg = resolve({"llm": {"cache_path": str(tmp_path / "llm.sqlite")}})
    assert cfg["eval"]["videoqa"]["judge"] == {"retries": 5, "backend": "synthetic-vocab", "agreement": "gpt-4o"}
    # the judge role itself stays the paper's LLM judge (MMBench-Video's, and Video-QA's agreement judge)
    roles = role_llms(cfg, backends={"smollm2-135m": Scripted(["x"]), "gemma-3-270m": Scripted(["x"])})
    assert roles["judge"].label == "gpt-4o (smoke stand-in: smollm2-135m)"
    judge = role_on_backend(cfg, "judge", "synthetic-vocab")
    assert judge.label == "synthetic-vocab" and judge.backend_id.startswith("vocab:")
    assert judge.decoding == {"max_new_tokens": 24, "temperature": 0.0}
    rows = [{"question": "What color is the square?", "answer": "red", "pred_answer": p, "failed": False, **v}
            for p, v in (("red", {"pred": "yes", "score": 5}), ("blue", {"pred": "no", "score": 1}),
                         ("red", {"pred": "yes", "score": 5}))]
    cfg2 = {**cfg, "llm": {**cfg["llm"], "backends": {**cfg["llm"]["backends"], "synthetic-vocab": {"kind": "vocab"}},
                           "stand_ins": {**cfg["llm"]["stand_ins"], "gpt-4o": "synthetic-vocab"}}}
    agree = judge_agreement(cfg2, "gpt-4o", rows, {"temperature": 0.0, "max_tokens": 24}, 0, None)
    assert agree["judge"] == "gpt-4o (smoke stand-in: synthetic-vocab)"
    assert (agree["items"], agree["both_judged"], agree["agree"], agree["agreement"]) == (3, 3, 3, 100.0)
    rows[1]["pred"] = "yes"  # a judge that said yes to a wrong answer disagrees with the rubric
    again = judge_agreement(cfg2, "gpt-4o", rows, {"temperature": 0.0, "max_tokens": 24}, 0, None)
    assert again["agree"] == 2 and again["agreement"] == pytest.approx(200 / 3)


def test_agreement_totals_for_the_caption():
    from univid.report.render import judge_agreement_totals

    rec = {"judge": "gpt-4o (smoke stand-in: smollm2-135m)", "items": 4, "both_judged": 2, "agree": 1,
           "second_failures": 2}
    t = judge_agreement_totals([{"judge_agreement": rec}, {"judge_agreement": rec}, {}])
    assert t == {"items": 8, "both_judged": 4, "agree": 2, "second_failures": 4, "percent": 50.0,
                 "judge": "gpt-4o (smoke stand-in: smollm2-135m)"}
    assert judge_agreement_totals([{}]) is None
