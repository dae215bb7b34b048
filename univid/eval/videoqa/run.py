"""The `videoqa` job (paper Tables 2, 7, 8, 9): Pyramid Reflection answers every question of the configured Video-QA
benchmarks, the Video-ChatGPT judge scores the answers, clustered bootstrap CIs go with every number.

Outputs in the job directory (scores.json LAST, atomically: it marks completion):
- predictions.jsonl  one line per answered question {benchmark, question_id, video, question, answer, pred, ...},
                     appended as answers come (a killed run resumes: predictions already there are not recomputed);
- traces.jsonl       the Pyramid Reflection trace of each newly answered question (route, rounds, frames, counts);
- verdicts.jsonl     one judge verdict per prediction (written whole, atomically);
- job_config.json    the job config (written by the CLI verb);
- scores.json        per benchmark accuracy (%), score (0-5), n, failures, 95% CIs clustered by video; the judge,
                     Actor and role ids (with any smoke stand-in), call counts, scale, eval_metadata.

Reruns cost nothing: the frame pools, the Actor's and every role's replies (SQLite response cache) and the judge's
verdicts (EvalCache) are all content-keyed caches.

Sharded (`shards.videoqa` N): shard I answers every N-th question (all benchmarks in order) into
shards/I-of-N.jsonl (+ .traces.jsonl), resumable the same way; the gather (`shard=None, gather=N`) merges the N
shard files into predictions.jsonl and traces.jsonl, then judges and scores as one job would.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from univid.eval.videoqa import judge as judge_mod
from univid.eval.videoqa import datasets as videoqa
from univid.eval.cache import EvalCache
from univid.eval.stats import qa_intervals
from univid.io import atomic_path, write_json
from univid.llm.roles import role_on_backend

PREDICTIONS, TRACES, VERDICTS, SCORES = "predictions.jsonl", "traces.jsonl", "verdicts.jsonl", "scores.json"


def benchmark_samples(vq: dict, cache_dir: str | None = None) -> dict[str, list[dict]]:
    """{dataset: samples} for the configured benchmarks, read through the official loaders (the synthetic source is
    first written in each release's layout), each cut to max_questions in file order."""
    from univid.eval.videoqa.synthetic import write_synthetic_dataset

    out = {}
    for ds in vq["benchmarks"]:
        if vq["source"] == "synthetic":
            root, vdir = write_synthetic_dataset(ds, vq["synthetic"], vq["split"], cache_dir), None
        else:
            d = (vq.get("dirs") or {}).get(ds) or {}
            if not d.get("root"):
                raise ValueError(f"config key 'eval.videoqa.dirs.{ds}.root': not set (expected the official "
                                 f"{ds} release directory for eval.videoqa.source 'files')")
            root, vdir = Path(d["root"]).expanduser(), d.get("videos")
        samples = videoqa.load(ds, root, vq["split"], video_dir=vdir)
        if vq.get("max_questions"):
            samples = samples[: vq["max_questions"]]
        if not samples:
            raise ValueError(f"{ds} at {root}: no questions in split {vq['split']!r} (expected at least one)")
        out[ds] = samples
    return out


def _whole_records(path: Path):
    """The JSON objects of a JSONL file this job appends to; a line cut short by a kill (the last one) is skipped."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            yield rec


def read_predictions(path: Path) -> dict[tuple[str, str], dict]:
    """Completed predictions by (benchmark, question_id); a line cut short by a kill (the last one) is dropped."""
    return {(row["benchmark"], str(row["question_id"])): row for row in _whole_records(path)
            if not row.get("error") and "pred" in row}


def read_traces(path: Path, keep) -> dict[tuple[str, str], dict]:
    """The whole trace lines of the questions in `keep` by (benchmark, question_id), the last one of each (a
    question asked again after a failure or with another Actor); a line cut short by a kill is dropped."""
    traces = {}
    for tr in _whole_records(path):
        key = (tr.get("benchmark"), str(tr.get("question_id")))
        if key in keep:
            traces[key] = tr
    return traces


def _append(path: Path, row: dict) -> None:
    """One JSON line, written with one call and flushed to disk, so a kill leaves whole lines (and maybe a cut last)."""
    with path.open("a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _rewrite_clean(path: Path, rows: list[dict]) -> None:
    """Drop a cut last line or stale failed rows before appending more (atomically)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def shard_path(out: Path, shard: int, shards: int, traces: bool = False) -> Path:
    return Path(out) / "shards" / f"{shard}-of-{shards}{'.traces' if traces else ''}.jsonl"


def gather_shards(out: Path, shards: int) -> int:
    """Merge N finished shard files into predictions.jsonl / traces.jsonl (rows already there are kept); returns the
    number of rows added."""
    have = read_predictions(out / PREDICTIONS)
    added = 0
    for k in range(shards):
        path = shard_path(out, k, shards)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: Video-QA shard {k} of {shards} not finished (expected `univid "
                                    f"evaluate-qa --shard {k} --shards {shards}` to have written it)")
        rows = read_predictions(path)
        traces = {}
        tpath = shard_path(out, k, shards, traces=True)
        if tpath.is_file():
            for line in tpath.read_text().splitlines():
                try:
                    tr = json.loads(line)
                except json.JSONDecodeError:
                    continue
                traces[(tr["benchmark"], str(tr["question_id"]))] = tr
        for key, row in rows.items():
            if key not in have:
                if key in traces:
                    _append(out / TRACES, traces[key])
                _append(out / PREDICTIONS, row)
                have[key] = row
                added += 1
    return added


def judge_agreement(cfg: dict, name: str, rows: list[dict], decoding: dict, retries: int, cache) -> dict:
    """A second judge (`name`, a backend of llm.backends, served by its stand-in at this scale) on the verdict rows
    that had a prediction: how often its yes/no equals the judge's, over the items both could judge. Its
    unparseable replies are counted, never guessed."""
    second = role_on_backend(cfg, "judge", name, where="eval.videoqa.judge.agreement")
    judged = [r for r in rows if r.get("pred_answer") is not None]
    other = judge_mod.judge_many(second, [(str(r["question"]), str(r["answer"]), str(r["pred_answer"]))
                                          for r in judged], retries=retries, decoding=decoding, cache=cache)
    both = [(r, o) for r, o in zip(judged, other) if not r["failed"] and not o["failed"]]
    agree = sum(r["pred"] == o["pred"] for r, o in both)
    return {"judge": second.label, **judge_mod.judge_id(second), "items": len(judged), "both_judged": len(both),
            "second_failures": sum(o["failed"] for o in other), "agree": agree,
            "agreement": 100.0 * agree / len(both) if both else None,
            "score_mean_abs_diff": (sum(abs(r["score"] - o["score"]) for r, o in both) / len(both)) if both else None}


def run_videoqa(job: dict, cfg: dict, out: Path, weights: Path | None, backends: dict | None = None,
                progress: bool = False, shard: tuple[int, int] | None = None, gather: int | None = None) -> dict:
    """Answer, judge and score; returns the scores.json body. shard (I, N): only answer every N-th question into
    the shard's file (returns its counts; no judging). gather N: merge N shard files first."""
    from univid.eval.results import eval_metadata
    from univid.llm.base import LLMError
    from univid.reflection import build_reflection

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ev, u = cfg["eval"], cfg["understanding"]
    vq = ev["videoqa"]
    samples = benchmark_samples(vq, ev.get("cache_dir"))

    if gather:
        gather_shards(out, gather)
    system = build_reflection(cfg, weights=weights, backends=backends)
    predictions, traces = out / PREDICTIONS, out / TRACES
    if shard is not None:
        predictions, traces = shard_path(out, *shard), shard_path(out, *shard, traces=True)
        predictions.parent.mkdir(parents=True, exist_ok=True)
    done = read_predictions(predictions)
    # Predictions made by another Actor (another config in the same directory) are never reused.
    done = {k: r for k, r in done.items() if r.get("actor_id") == system.actor.actor_id}
    resumed = sum(1 for ds, ss in samples.items() for s in ss if (ds, str(s["question_id"])) in done)
    _rewrite_clean(predictions, list(done.values()))
    _rewrite_clean(traces, list(read_traces(traces, done).values()))  # each kept prediction's trace, once
    before = system.counters()
    asked, failed_predictions = 0, 0
    every = [(ds, s) for ds, ss in samples.items() for s in ss]
    if shard is not None:
        k, n = shard
        if n < 1 or not 0 <= k < n:
            raise ValueError(f"--shard {k} --shards {n}: expected 0 <= shard < shards and shards >= 1")
        every = every[k::n]
    todo = [(ds, s) for ds, s in every if (ds, str(s["question_id"])) not in done]
    classifier = system.roles["classifier"]
    if classifier.max_concurrency > 1 and len(todo) > 1:  # a remote classifier: every route at once, bounded
        system.prefetch_routes([str(s["question"]) for _, s in todo], classifier.max_concurrency)
    for i, (ds, s) in enumerate(todo, 1):
        row = {"benchmark": ds, "question_id": str(s["question_id"]), "video": s["video"],
               "video_path": s["video_path"], "question": s["question"], "answer": s["answer"],
               "actor_id": system.actor.actor_id}
        try:
            trace = system.ask(s["video_path"], s["question"])
        except LLMError as e:  # a backend outage: recorded as a failure, asked again on the next run
            failed_predictions += 1
            _append(predictions, {**row, "pred": "", "error": str(e)})
            continue
        asked += 1
        row.update(pred=trace["answer"], route=trace.get("route"), rounds=trace["counts"]["rounds"],
                   stopped_by=trace.get("stopped_by"))
        done[(ds, row["question_id"])] = row
        _append(traces, {"benchmark": ds, "question_id": row["question_id"], **trace})
        _append(predictions, row)
        if progress:
            print(f"[{i}/{len(todo)}] {ds} {row['question_id']}: {row['pred'][:60]!r}", flush=True)
    after = system.counters()
    max_failed = cfg["llm"].get("max_failed_fraction", 0.1)
    for role in system.roles.values():  # an outage fails the job here, before anything is judged or scored
        role.check_failures(max_failed)
    if shard is not None:  # a shard only answers; the gather judges and scores
        return {"shard": list(shard), "questions": len(every), "asked": asked, "failed": failed_predictions,
                "resumed": len(every) - len(todo), "wall_s": round(time.perf_counter() - t0, 2)}

    # The judge: llm.roles.judge (its backend, stand-in and decoding), or eval.videoqa.judge.backend with that
    # decoding; the Video-ChatGPT protocol.
    judge = system.roles["judge"]
    if vq["judge"].get("backend"):
        judge = role_on_backend(cfg, "judge", vq["judge"]["backend"], where="eval.videoqa.judge.backend")
    decoding = {"temperature": judge.decoding["temperature"], "max_tokens": judge.decoding["max_new_tokens"],
                **({"response_prefix": judge.decoding["response_prefix"]} if judge.decoding.get("response_prefix") else {})}
    jcache = EvalCache(ev.get("cache_dir"))
    judge_calls0, judge_hits0 = judge.llm.calls, judge.llm.hits
    verdict_rows, benchmarks = [], {}
    bs = vq["bootstrap"]
    for ds, ss in samples.items():
        preds = [done.get((ds, str(s["question_id"]))) for s in ss]
        # Independent requests: up to the judge backend's max_concurrency in flight (1 for an in-process model).
        judged = iter(judge_mod.judge_many(judge, [(str(s["question"]), str(s["answer"]), str(p["pred"]))
                                                   for s, p in zip(ss, preds) if p is not None],
                                           retries=vq["judge"]["retries"], decoding=decoding, cache=jcache))
        rows = []
        for s, p in zip(ss, preds):
            if p is None:  # its prediction failed this run: counted as ("no", 0) and as a failure
                v = {"pred": "no", "score": 0, "failed": True, "reply": None, "error": "no prediction",
                     "attempts": 0, "cached": False}
            else:
                v = next(judged)
            rows.append({"benchmark": ds, "question_id": str(s["question_id"]), "video": s["video"],
                         "question": s["question"], "answer": s["answer"],
                         "pred_answer": p["pred"] if p else None, **v})
        summary = judge_mod.summarize(rows)
        ci = qa_intervals(rows, samples=bs["samples"], confidence=bs["confidence"], seed=bs["seed"])
        benchmarks[ds] = {"accuracy": summary["accuracy"], "score": summary["score"], "n": summary["n"],
                          "yes": summary["yes"], "no": summary["no"], "failures": summary["failures"],
                          "ci": {"accuracy": [ci["accuracy"]["low"], ci["accuracy"]["high"]],
                                 "score": [ci["score"]["low"], ci["score"]["high"]]},
                          "ci_level": bs["confidence"], "videos": ci["accuracy"]["clusters"]}
        verdict_rows += rows
    agreement = None
    if vq["judge"].get("agreement"):
        agreement = judge_agreement(cfg, vq["judge"]["agreement"], verdict_rows, decoding, vq["judge"]["retries"],
                                    jcache)
    jcache.close()
    judge.check_failures(max_failed)  # verdicts of an unreachable judge are failures, never written as scores
    with atomic_path(out / VERDICTS) as tmp:
        Path(tmp).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in verdict_rows))

    judge_rec = {**judge_mod.judge_id(judge), "name": judge.label, "stand_in": judge.stand_in,
                 "decoding": decoding, "retries": vq["judge"]["retries"]}
    actor_rec = {"id": system.actor.actor_id, "encoders": u.get("encoders", "vit"), "reflection": u["reflection"],
                 "weights": u["weights"], "weights_file": str(weights) if weights else None,
                 "weights_sha256": system.actor.identity.get("weights"), "retrieval": system.encoder.encoder_id,
                 "text_encoder": system.text.encoder_id}
    roles = {r: rl.record() for r, rl in system.roles.items()}
    counts = {"questions": sum(len(ss) for ss in samples.values()), "predictions_resumed": resumed,
              "asked": asked, "prediction_failures": failed_predictions,
              **{k: after[k] - before[k] for k in after},
              "judge_calls": judge.llm.calls - judge_calls0, "judge_llm_cache_hits": judge.llm.hits - judge_hits0,
              "wall_s": round(time.perf_counter() - t0, 2)}
    counts["total_llm_calls"] = counts["llm_calls"] + counts["judge_calls"]  # llm_calls: before judging
    scores = {"benchmarks": benchmarks, "judge": judge_rec, "judge_agreement": agreement, "actor": actor_rec,
              "roles": roles, "counts": counts,
              "scale": cfg["scale"], "source": vq["source"], "split": vq["split"],
              "metadata": eval_metadata(job, cfg, seeds={"bootstrap": bs["seed"], "synthetic": vq["synthetic"]["seed"]
                                                         if vq["source"] == "synthetic" else None},
                                        judge=judge_rec, actor=actor_rec, roles=roles)}
    write_json(out / SCORES, scores)
    return scores
