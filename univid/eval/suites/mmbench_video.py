"""MMBench-Video (Fang et al., 2024), paper Table 10's "MMBench" column: open-ended questions scored 0-3 by an LLM
judge.

Official release layout (Hugging Face `opencompass/MMBench-Video`, as VLMEvalKit `vlmeval/dataset/mmbench_video.py`
reads it): `MMBench-Video.tsv` (tab-separated; columns index, video, video_type, question, answer, dimensions (a
Python list written as a string, e.g. "['Counting']"), video_path) and `video/<video>.mp4` (unpacked from the
release's `video_pkl/` pickles).

Prompt: VLMEvalKit's unpacked frames prompt (`FRAMES_TMPL_NOPACK`, then "Question: {q}\nAnswer: "). VLMEvalKit puts
the template before the frames; the Actor reads its frames first and then the whole text.

Judge: verbatim from VLMEvalKit `vlmeval/dataset/utils/mmbench_video.py` (`system_prompt`, `build_prompt`), asked
through the `judge` role (llm.roles.judge). The reply is a score when it reads as a Python int (VLMEvalKit's
`istype(x, int)` then `int(x)`; here via ast.literal_eval, and a bool is not taken as an int); anything else, or a
judge that fails, is -1. Like VLMEvalKit, the range is not checked. Score = mean of max(score, 0) over every question
(VLMEvalKit's "coarse_all" Overall, failures as 0: the number MMBench-Video tables print); `score_valid` = the mean
over judged questions only ("coarse_valid").
"""

from __future__ import annotations

import ast
import csv
import os
from pathlib import Path

import numpy as np

from univid.eval.suites.common import cap, clip_questions, need, render_clip_file

NAME = "mmbench_video"
EXTRACTION_ID = "mmbench-video-open-ended (whole reply)@open-compass/VLMEvalKit"
SCORER_ID = "mmbench-video-judge-0to3@open-compass/VLMEvalKit:vlmeval/dataset/utils/mmbench_video.py"
COLUMNS = ("index", "video", "question", "answer", "dimensions")

FRAMES_TMPL_NOPACK = """
You will be provided with {} separate frames uniformly sampled from a video, \
the frames are provided in chronological order of the video.
Please analyze these images and provide the answer to the question about the video content.
Please directly reply with your response to the only question.
"""

JUDGE_SYSTEM = """
As an AI assistant, your task is to evaluate a candidate answer in comparison to a given correct answer.
The question itself, the correct 'groundtruth' answer, and the candidate answer will be provided to you.
Your assessment should range from 0 to 3, \
based solely on the semantic similarity between the groundtruth and the candidate answer, \
disregarding any grammatical differences.
A rating of 0 suggests no similarity, implying the candidate answer is entirely incorrect.
A rating of 1 suggests low similarity, meaning the candidate answer is largely incorrect.
A rating of 2 suggests high similarity, meaning the candidate answer is largely correct.
Lastly, a rating of 3 indicates complete similarity, which means the candidate answer is entirely correct.
Your response should be a single integer from 0, 1, 2, or 3.
"""


def load(root: str | os.PathLike, max_questions: int | None = None) -> list[dict]:
    root = Path(root)
    path = need(root / "MMBench-Video.tsv", "MMBench-Video",
                "MMBench-Video.tsv from opencompass/MMBench-Video (columns index, video, question, answer, dimensions)")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows and any(c not in rows[0] for c in COLUMNS):
        raise ValueError(f"{path}: columns {list(rows[0])} (expected tab-separated {', '.join(COLUMNS)}, ...)")
    out = []
    for r in rows:
        out.append({"question_id": str(r["index"]), "video": r["video"], "question": r["question"],
                    "answer": r["answer"], "dimensions": r["dimensions"],
                    "visual": {"kind": "video", "paths": [str(root / "video" / f"{r['video']}.mp4")]},
                    "group": r["video"]})
    return cap(out, max_questions)


def prompt(sample: dict, n_frames: int = 0) -> str:
    return FRAMES_TMPL_NOPACK.format(n_frames) + "Question: {}\nAnswer: ".format(sample["question"])


def judge_prompt(question: str, answer: str, prediction: str) -> str:
    return "Question: {}\nGroundtruth answer: {}\nCandidate answer: {}\nYour response: ".format(
        question, answer, prediction)


def parse_score(reply: str | None) -> int:
    """The judge's integer, or -1 (VLMEvalKit: `int(x) if istype(x, int) else -1`)."""
    if not isinstance(reply, str):
        return -1
    try:
        value = ast.literal_eval(reply.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return -1
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def extract(reply: str, sample: dict | None = None) -> str:
    return reply  # open-ended: the judge reads the whole reply


def summarize(rows: list[dict]) -> dict:
    scores = [r["judge_score"] for r in rows]
    valid = [s for s in scores if s >= 0]
    return {"score": float(np.mean([max(s, 0) for s in scores])) if scores else 0.0,
            "score_valid": float(np.mean(valid)) if valid else 0.0, "n": len(rows),
            "judge_failures": len(scores) - len(valid)}


# ------------------------------------------------------------------------------------------------ synthetic

_DIMENSION = {0: "Human Motion", 1: "Spatial Relationship", 2: "Event Recognition", 3: "Hallucination",
              4: "Attribute Recognition", 5: "Object Recognition", 7: "Counting"}


def write_synthetic(root: Path, seed: int, n: int) -> None:
    """n open-ended questions (one synthetic clip each) in `MMBench-Video.tsv` + `video/<video>.mp4`; the reference
    answer is the one the clip determines; the dimension follows the question's kind."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = f"synth{seed}m{i:03d}"
        spec = render_clip_file(root / "video" / f"{name}.mp4", seed, 200 + i, num_frames=72)
        qs = clip_questions(spec, rng, min_options=2)
        q = qs[int(rng.integers(len(qs)))]
        rows.append({"index": i, "video": name, "video_type": "synthetic", "question": q["question"],
                     "answer": q["answer"], "dimensions": str([_DIMENSION.get(q["kind"], "Attribute Recognition")]),
                     "video_path": f"./video/{name}.mp4"})
    with (root / "MMBench-Video.tsv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
