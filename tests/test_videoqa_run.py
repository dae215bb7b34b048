"""The videoqa job (`univid evaluate-qa`): the synthetic world written in the four Video-QA releases' official layouts
and read back through the official loaders; the job end to end through the CLI and --job-config, with every LLM
role (classifier, summarizer, evaluator, reflector, judge) on an OpenAI-compatible server on 127.0.0.1 that counts
requests; scores.json fields and values recomputed from verdicts.jsonl; a rerun that makes zero LLM and Actor calls;
resumption from a predictions.jsonl cut short by a kill."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from univid.eval.videoqa import datasets as videoqa
from univid.eval.videoqa.synthetic import synthetic_items, write_synthetic_dataset
from conftest import send_chat_completion

SYN = {"seed": 500, "clips": 2, "num_frames": 9, "height": 64, "width": 64, "fps": 8}


# ------------------------------------------------------------------------------------------------ layouts

@pytest.mark.parametrize("dataset", videoqa.DATASETS)
def test_synthetic_release_round_trips_through_the_official_loader(dataset, tmp_path):
    from univid.data.synthetic import render_clip
    from univid.data.video import read_video

    root = write_synthetic_dataset(dataset, SYN, "test", str(tmp_path))
    samples = videoqa.load(dataset, root, "test")
    items = synthetic_items(dataset, SYN)
    want = [(q["question"], q["answer"]) for _, qs in items for q in qs]
    assert [(s["question"], s["answer"]) for s in samples] == want and len(want) > 2
    assert len({s["question_id"] for s in samples}) == len(samples)
    by_video = {}
    for s in samples:
        by_video.setdefault(s["video"], s["video_path"])
    assert len(by_video) == SYN["clips"]  # questions cluster by their video
    suffix = {"msvd_qa": ".avi", "msrvtt_qa": ".mp4", "tgif_frameqa": ".gif", "activitynet_qa": ".mp4"}[dataset]
    for (spec, _), path in zip(items, by_video.values()):
        assert path.endswith(suffix)
        frames, world = read_video(path).frames.astype(float), render_clip(spec).astype(float)
        if dataset == "tgif_frameqa":
            # A GIF stores a run of identical frames once (with the summed duration): the decoded frames are the
            # world's frames in order, and no world frame is missing from them.
            assert 1 <= len(frames) <= len(world) and frames.shape[1:] == (64, 64, 3)
            match = [int(np.argmin([np.abs(f - w).mean() for w in world])) for f in frames]
            assert match == sorted(match) and match[0] == 0
            assert all(min(np.abs(w - f).mean() for f in frames) < 6 for w in world)
            world = world[match]
        assert frames.shape == world.shape
        # The decoded pixels are the world's (codec / palette noise only): mean absolute error in 0..255.
        assert np.abs(frames - world).mean() < 6
    if dataset == "tgif_frameqa":
        assert {s["type"] for s in samples} <= {0, 1, 2, 3}  # FrameQA's object / number / colour / location
    # Content-keyed: the same config is the same directory, written once.
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert write_synthetic_dataset(dataset, SYN, "test", str(tmp_path)) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp


def test_each_dataset_draws_its_own_clips():
    names = {ds: {spec.clip_id for spec, _ in synthetic_items(ds, SYN)} for ds in videoqa.DATASETS}
    assert all(not (names[a] & names[b]) for a in names for b in names if a < b)


# ------------------------------------------------------------------------------------------------ the job

class _Stub(BaseHTTPRequestHandler):
    """Replies per role; the judge says yes (4) to colour questions, no (1) to others and garbage to shape ones."""

    requests: list[str] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        msgs = body["messages"]
        user, system = msgs[-1]["content"], msgs[0]["content"] if len(msgs) > 1 else ""
        if user.startswith("Role. Classify"):
            kind, text = "classify", '{"qtype": "static", "rationale": "attribute"}'
        elif system.startswith("Role. Precise evaluator"):
            kind, text = "evaluate", '{"score": 0.9, "verdict": "accept", "brief_reason": "plausible"}'
        elif system.startswith("You are an intelligent chatbot"):
            kind = "judge"
            question = user.split("Question: ")[1].split("\n")[0]
            text = ("I cannot tell." if "shape" in question else
                    "{'pred': 'yes', 'score': 4}" if "color" in question else "{'pred': 'no', 'score': 1}")
        else:
            kind, text = "other", "A coloured shape on a plain background."
        type(self).requests.append(kind)
        send_chat_completion(self, text)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def _job(tmp_path, stub_url, weights="none", videoqa=None, stub=None):
    from univid.config import job_config, resolve

    cfg = resolve(overrides={
        "results_dir": str(tmp_path / "results"),
        "understanding": {"weights": weights, "cache_dir": str(tmp_path / "pool")},
        "llm": {"cache_path": str(tmp_path / "llm.sqlite"),
                "backends": {"stub": {"kind": "openai", "base_url": stub_url, "model": "stub", "timeout_s": 5,
                                      "max_retries": 0, **(stub or {})}},
                # the paper's role backends by name (smoke roles), each served by the stub
                "stand_ins": {"deepseek-v3.1": "stub", "qwen-plus": "stub", "gpt-4o": "stub"}},
        "eval": {"cache_dir": str(tmp_path / "eval"), "videoqa": {"max_questions": 3, "synthetic": SYN,
                                                                   "judge": {"retries": 0, "backend": None, "agreement": None},  # the LLM judge
                                                                   **(videoqa or {})}}})
    job = job_config(cfg, "videoqa")
    if weights == "none":
        assert job["upstream"] == {"curate": job["upstream"]["curate"]}  # no stage III upstream
    return job


def _run(job, capsys):
    from pathlib import Path

    from univid.cli import main

    _Stub.requests = []
    main(["evaluate-qa", "--quiet", "--job-config", json.dumps(job)])
    capsys.readouterr()
    out = Path(job["dir"])
    return json.loads((out / "scores.json").read_text()), out


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_videoqa_job_end_to_end_rerun_and_resume(tmp_path, stub_url, capsys):
    job = _job(tmp_path, stub_url)
    scores, out = _run(job, capsys)
    assert sorted(p.name for p in out.iterdir()) == ["job_config.json", "predictions.jsonl", "scores.json",
                                                     "traces.jsonl", "verdicts.jsonl"]
    preds, verdicts, traces = (_lines(out / f) for f in ("predictions.jsonl", "verdicts.jsonl", "traces.jsonl"))
    n = 4 * 3
    assert len(preds) == len(verdicts) == len(traces) == n
    assert set(scores["benchmarks"]) == set(videoqa.DATASETS)
    for ds, b in scores["benchmarks"].items():
        vs = [v for v in verdicts if v["benchmark"] == ds]
        yes = [v["question"] for v in vs if "color" in v["question"] and "shape" not in v["question"]]
        fails = [v for v in vs if "shape" in v["question"]]
        assert b["n"] == 3 and b["failures"] == len(fails)
        assert b["accuracy"] == pytest.approx(100.0 * len(yes) / 3)
        assert b["score"] == pytest.approx(4 * len(yes) / 3 + (3 - len(yes) - len(fails)) / 3)
        lo, hi = b["ci"]["accuracy"]
        assert 0 <= lo <= b["accuracy"] <= hi <= 100 and b["ci_level"] == 0.95
        assert all(f["pred"] == "no" and f["score"] == 0 and f["failed"] for f in fails)
    assert any(b["failures"] for b in scores["benchmarks"].values())  # the judge's garbage is counted, not dropped
    # Who produced the numbers: judge, Actor, every role with its stand-in.
    assert scores["judge"]["name"] == "gpt-4o (smoke stand-in: stub)" and scores["judge"]["model"] == "stub"
    assert scores["judge"]["backend"] == f"openai:{stub_url}" and "Video-ChatGPT" in scores["judge"]["protocol"]
    assert scores["roles"]["reflector"]["backend"] == "qwen-plus (smoke stand-in: stub)"
    assert scores["actor"]["id"].startswith("univid-mllm:") and scores["actor"]["encoders"] == "vit"
    assert scores["actor"]["weights"] == "none" and scores["scale"] == "smoke" and scores["source"] == "synthetic"
    md = scores["metadata"]
    assert md["job_key"] == job["key"] and md["config_hash"] and md["provenance"]["packages"]
    c = scores["counts"]
    assert c["asked"] == n and c["predictions_resumed"] == 0 and c["actor_calls"] > 0
    assert c["judge_calls"] == _Stub.requests.count("judge") == n
    assert c["total_llm_calls"] == len(_Stub.requests)  # every request the server saw is counted
    assert all(t["route"] == "static" and t["stopped_by"] == "evaluator" for t in traces)

    # Rerun (scores.json gone): nothing is recomputed, nothing is asked of any LLM or of the Actor.
    (out / "scores.json").unlink()
    again, _ = _run(job, capsys)
    assert _Stub.requests == []
    c2 = again["counts"]
    assert c2["asked"] == 0 and c2["predictions_resumed"] == n
    assert c2["actor_calls"] == c2["llm_calls"] == c2["judge_calls"] == c2["total_llm_calls"] == 0
    assert again["benchmarks"] == scores["benchmarks"]

    # Killed mid-run: 5 whole prediction lines and a cut sixth. Only the 7 missing questions are asked again
    # (answered from the response cache: the same answers, still no request).
    lines = (out / "predictions.jsonl").read_text().splitlines(keepends=True)
    (out / "predictions.jsonl").write_text("".join(lines[:5]) + lines[5][:20])
    tlines = (out / "traces.jsonl").read_text().splitlines(keepends=True)  # its trace cut at the same point
    (out / "traces.jsonl").write_text("".join(tlines[:6]) + tlines[6][:30])
    (out / "scores.json").unlink()
    resumed, _ = _run(job, capsys)
    c3 = resumed["counts"]
    assert c3["predictions_resumed"] == 5 and c3["asked"] == n - 5 and c3["actor_calls"] == 0
    assert _Stub.requests == [] and resumed["benchmarks"] == scores["benchmarks"]
    assert [p["question_id"] for p in _lines(out / "predictions.jsonl")] == [p["question_id"] for p in preds]
    # one whole trace per question again: the cut line and the trace of the re-asked sixth question are gone
    assert [t["question_id"] for t in _lines(out / "traces.jsonl")] == [p["question_id"] for p in preds]


def test_files_source_needs_the_release_dirs(tmp_path):
    from univid.eval.videoqa.run import benchmark_samples

    vq = {"benchmarks": ["msvd_qa"], "source": "files", "split": "test", "max_questions": None,
          "dirs": {"msvd_qa": {"root": None, "videos": None}}}
    with pytest.raises(ValueError, match="eval.videoqa.dirs.msvd_qa.root"):
        benchmark_samples(vq)
    vq["dirs"]["msvd_qa"]["root"] = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="test_qa.json"):
        benchmark_samples(vq)


def test_stage3_weights_are_read_from_the_upstream_job_and_recorded(tmp_path, stub_url, capsys):
    """understanding.weights: stage3 loads the stage III job's final/weights.safetensors into the Actor; its hash is
    part of the Actor id, so the predictions of the untrained Actor are never reused for it."""
    from pathlib import Path

    from safetensors.torch import save_file

    from univid.config import resolve
    from univid.models.builder import build

    one = {"max_questions": 1, "benchmarks": ["msrvtt_qa"]}
    job = _job(tmp_path, stub_url, weights="stage3", videoqa=one)
    assert set(job["upstream"]) == {"curate", "stage3"}
    cfg = resolve(overrides={k: job[k] for k in ("understanding", "llm", "eval", "model")})
    weights = Path(job["upstream_dirs"]["stage3"]) / "final" / "weights.safetensors"
    weights.parent.mkdir(parents=True)
    proj = build(cfg).model.mllm.vision_proj
    save_file({f"mllm.vision_proj.{k}": (v + 0.01).contiguous() for k, v in proj.state_dict().items()}, str(weights))
    scores, out = _run(job, capsys)
    assert scores["actor"]["weights"] == "stage3" and scores["actor"]["weights_file"] == str(weights)
    assert scores["actor"]["weights_sha256"] and scores["counts"]["asked"] == 1
    untrained, _ = _run(_job(tmp_path, stub_url, weights="none", videoqa=one), capsys)
    assert untrained["actor"]["id"] != scores["actor"]["id"] and untrained["actor"]["weights_sha256"] is None


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: every connection is refused
    return port


def test_an_endpoint_refusing_every_call_fails_the_job_and_writes_no_scores(tmp_path, capsys):
    from pathlib import Path

    from univid.cli import main

    job = _job(tmp_path, f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate-qa", "--quiet", "--job-config", json.dumps(job)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    m = re.search(r"univid evaluate-qa: error: llm role (\w+) \(openai:http://127\.0\.0\.1:\d+/v1\): "
                  r"(\d+) of \2 calls failed, more than llm\.max_failed_fraction 0\.1", err[0])
    assert m and m.group(1) in ("classifier", "summarizer"), err[0]  # the first role each question calls
    out = Path(job["dir"])
    assert not (out / "scores.json").exists() and not (out / "verdicts.jsonl").exists()
    failed = _lines(out / "predictions.jsonl")  # kept (as failures) so that a rerun asks again
    assert failed and all(r["pred"] == "" and "connection error" in r["error"] for r in failed)


def test_an_unreachable_judge_fails_the_job_after_the_predictions(tmp_path, stub_url, capsys):
    from pathlib import Path

    from univid.cli import main

    job = _job(tmp_path, stub_url)
    port = _closed_port()
    job["llm"]["backends"]["deadjudge"] = {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
                                           "model": "x", "timeout_s": 5, "max_retries": 0}
    job["llm"]["stand_ins"]["gpt-4o"] = "deadjudge"
    with pytest.raises(SystemExit):
        main(["evaluate-qa", "--quiet", "--job-config", json.dumps(job)])
    err = capsys.readouterr().err
    assert f"llm role judge (openai:http://127.0.0.1:{port}/v1)" in err and "calls failed" in err
    out = Path(job["dir"])
    assert not (out / "scores.json").exists()
    preds = _lines(out / "predictions.jsonl")
    assert preds and all("error" not in r for r in preds)  # the predictions are kept for the rerun


def test_two_shards_and_a_gather_give_one_jobs_predictions_and_scores(tmp_path, stub_url, capsys):
    from pathlib import Path

    from univid.cli import main

    job = _job(tmp_path, stub_url)
    one, _ = _run(job, capsys)
    sharded = tmp_path / "sharded"
    for k in (1, 0):
        main(["evaluate-qa", "--quiet", "--job-config", json.dumps(job), "--out", str(sharded), "--shard", str(k),
              "--shards", "2"])
    assert not (sharded / "scores.json").exists()
    main(["evaluate-qa", "--quiet", "--job-config", json.dumps(job), "--out", str(sharded), "--gather", "2"])
    capsys.readouterr()
    two = json.loads((sharded / "scores.json").read_text())
    preds = lambda d: {(r["benchmark"], r["question_id"]): r["pred"] for r in _lines(Path(d) / "predictions.jsonl")}  # noqa: E731
    assert preds(job["dir"]) == preds(sharded) and len(preds(sharded)) >= 4
    for ds, b in one["benchmarks"].items():
        assert {k: b[k] for k in ("accuracy", "score", "n", "failures")} == \
            {k: two["benchmarks"][ds][k] for k in ("accuracy", "score", "n", "failures")}
    assert two["counts"]["asked"] == 0  # the gather answered nothing itself
    with pytest.raises(SystemExit):
        main(["evaluate-qa", "--quiet", "--job-config", json.dumps(job), "--out", str(tmp_path / "x"), "--gather", "3"])
    assert "shards/0-of-3.jsonl: Video-QA shard 0 of 3 not finished" in capsys.readouterr().err


class _SlowClassifier(_Stub):
    """The stub, holding each classifier request 0.2 s and recording how many are in flight."""

    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        classify = json.loads(raw)["messages"][-1]["content"].startswith("Role. Classify")
        if classify:
            with self.lock:
                self.state["now"] += 1
                self.state["max"] = max(self.state["max"], self.state["now"])
            time.sleep(0.2)
            with self.lock:
                self.state["now"] -= 1
        self.rfile = io.BytesIO(raw)
        super().do_POST()


def test_a_remote_classifier_routes_every_question_concurrently(tmp_path, capsys):
    """With an OpenAI-compatible classifier of max_concurrency 4, the job's routing requests go out 4 at a time
    (never more) against a real server on 127.0.0.1, and the routes and answers equal a one-at-a-time run's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowClassifier)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        runs = {}
        for conc in (1, 4):
            _SlowClassifier.state.update(now=0, max=0)
            job = _job(tmp_path / f"c{conc}", url, stub={"max_concurrency": conc})
            scores, out = _run(job, capsys)
            runs[conc] = [(t["question"], t["route"], t["answer"]) for t in _lines(out / "traces.jsonl")]
            assert _SlowClassifier.state["max"] == (conc if conc > 1 else 1), (conc, _SlowClassifier.state)
            assert scores["counts"]["total_llm_calls"] == len(_Stub.requests)
        assert runs[4] == runs[1] and len(runs[1]) == 12
    finally:
        server.shutdown()
