"""MLVU (Zhou et al., 2024), paper Table 10's last column: M-Avg over the multiple-choice tasks of the dev set.

Official release layout (JUNJIE99/MLVU, Hugging Face `MLVU/MVLU`): `json/<k>_<task>.json` per task (1_plotQA,
2_needle, 3_ego, 4_count, 5_order, 6_anomaly_reco, 7_topic_reasoning: multiple choice; 8_sub_scene, 9_summary:
generation, not part of M-Avg) = [{"video", "duration", "question", "candidates", "answer" (the option TEXT),
"question_type"}], videos `video/<k>_<task>/<video>`.

Prompt and scoring: the official multiple-choice template (`videochat2/choice_bench.py`): the system line "Carefully
watch this video and pay attention to every detail. Based on your observations, select the best option that
accurately addresses the question.", then `qa_template` ("Question: ...\nOptions:\n(A) ...\n(B) ..."), then
"\nOnly give the best option.", and the answer opened with "Best option:(" (VideoChat2's "###Human:/###Assistant:"
separators are that model's chat format and are left out). `check_ans`: the reply up to its first ")" must equal
the correct letter. Per-task accuracy; M-Avg = the mean over the multiple-choice tasks present (MLVU's M-Avg is the
mean over all seven).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from univid.eval.suites.common import LETTERS, cap, clip_questions, need_dir, render_clip_file

NAME = "mlvu"
EXTRACTION_ID = "mlvu-check_ans@JUNJIE99/MLVU:videochat2/choice_bench.py"
SCORER_ID = "mlvu-m-avg (mean of per-task accuracy)@JUNJIE99/MLVU"
MC_TASKS = ("1_plotQA", "2_needle", "3_ego", "4_count", "5_order", "6_anomaly_reco", "7_topic_reasoning")
SYSTEM = ("Carefully watch this video and pay attention to every detail. Based on your observations, select the best "
          "option that accurately addresses the question.\n")


def load(root: str | os.PathLike, max_questions: int | None = None) -> list[dict]:
    root = Path(root)
    jdir = need_dir(root / "json", "MLVU", "json/<k>_<task>.json files (JUNJIE99/MLVU dev set)")
    out = []
    found = [t for t in MC_TASKS if (jdir / f"{t}.json").is_file()]
    if not found:
        raise FileNotFoundError(f"{jdir}/1_plotQA.json: MLVU file not found (expected json/<k>_<task>.json for "
                                f"the multiple-choice tasks {', '.join(MC_TASKS)})")
    for task in found:
        for i, d in enumerate(json.loads((jdir / f"{task}.json").read_text())):
            if d.get("answer") not in d.get("candidates", []):
                raise ValueError(f"{jdir / f'{task}.json'}[{i}]: answer {d.get('answer')!r} is not one of its "
                                 "candidates (expected the answer's option text)")
            out.append({"question_id": f"{task}_{i}", "task": task, "video": d["video"], "question": d["question"],
                        "candidates": list(d["candidates"]), "answer": LETTERS[d["candidates"].index(d["answer"])],
                        "answer_text": d["answer"],
                        "visual": {"kind": "video", "paths": [str(root / "video" / task / d["video"])]},
                        "group": f"{task}/{d['video']}"})
    return cap(out, max_questions)


def qa_template(sample: dict) -> str:
    q = f"Question: {sample['question']}\nOptions:\n"
    q += "".join(f"({LETTERS[i]}) {c}\n" for i, c in enumerate(sample["candidates"]))
    return q.rstrip()


def prompt(sample: dict, n_frames: int = 0) -> str:
    return SYSTEM + qa_template(sample) + "\nOnly give the best option.\nBest option:("


def extract(reply: str, sample: dict | None = None) -> str:
    """check_ans: the reply up to its first ")" (the prompt already opened the bracket)."""
    reply = reply or ""
    return reply[:reply.index(")")] if ")" in reply else reply


def correct(pred: str, sample: dict) -> bool:
    return pred == sample["answer"]


def summarize(rows: list[dict]) -> dict:
    tasks = sorted({r["sample"]["task"] for r in rows})
    per = {t: 100.0 * np.mean([r["correct"] for r in rows if r["sample"]["task"] == t]) for t in tasks}
    return {"accuracy": float(np.mean(list(per.values()))) if per else 0.0, "n": len(rows),
            "per_task": {t: float(v) for t, v in per.items()}, "tasks": tasks}


# ------------------------------------------------------------------------------------------------ synthetic

def _task(question: str) -> str:
    # Synthetic questions go to the task closest in kind: counting, ordering/motion, else plot questions.
    if question.startswith("How many"):
        return "4_count"
    if question.startswith(("Which direction", "Is the ", "Does the ")):
        return "5_order"
    return "1_plotQA"


def write_synthetic(root: Path, seed: int, n: int) -> None:
    """n questions (one synthetic clip each) in `json/<k>_<task>.json` + `video/<k>_<task>/<video>`, candidates
    from the world's vocabulary, the answer (option text) derived from the clip."""
    from univid.data.synthetic import sample_clip_specs

    rng = np.random.default_rng(seed)
    tasks: dict[str, list] = {}
    for i in range(n):
        name = f"synth{seed}l{i:03d}.mp4"
        # The question decides the task, and so the video's folder: pick it from the spec, then render that spec.
        spec = sample_clip_specs(seed * 1000 + 300 + i, 1, num_frames=72)[0]
        qs = clip_questions(spec, rng, min_options=2)
        q = qs[int(rng.integers(len(qs)))]
        task = _task(q["question"])
        render_clip_file(root / "video" / task / name, seed, 300 + i, num_frames=72)
        tasks.setdefault(task, []).append({"video": name, "duration": 9.0, "question": q["question"],
                                           "candidates": q["options"], "answer": q["answer"],
                                           "question_type": task.split("_", 1)[1]})
    (root / "json").mkdir(parents=True, exist_ok=True)
    for task, items in tasks.items():
        (root / "json" / f"{task}.json").write_text(json.dumps(items, indent=2))
