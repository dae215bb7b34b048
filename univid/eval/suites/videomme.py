"""Video-MME (Fu et al., 2024), paper Table 10's "MME" and "MME(S&M)" columns (no subtitles).

Official release layout (Hugging Face `lmms-lab/Video-MME`): `videomme/test-00000-of-00001.parquet` with columns
video_id ("001"), duration ("short" < 2 min | "medium" 4-15 min | "long" 30-60 min), domain, sub_category, url,
videoID (the YouTube id), question_id ("001-1"), task_type, question, options (["A. ...", "B. ...", "C. ...",
"D. ..."]), answer (a letter); videos `data/<videoID>.mp4` (from the release's zip parts). A `videomme/test.json`
list with the same keys is read too.

Prompt: the official frames-only prompt (BradyFU/Video-MME README, also quoted in lmms-eval `tasks/videomme/utils.py`):
"Select the best answer to the following multiple-choice question based on the video. Respond with only the letter
(A, B, C, or D) of the correct option.\n" + question + "\n" + options one per line + "\nThe best answer is:".

Extraction: `extract_characters_regex` of the official `evaluation/eval_your_results.py`, kept as written, including
its quirks: two prefix pairs are joined by Python's implicit string concatenation ("The best option isThe correct
option is", "Best answer:Best option:"), so those prefixes are never removed, and the first capital A-D anywhere
wins ("Answer: C" -> "A"). Scoring: accuracy over every question (an unextractable reply is wrong), as lmms-eval
aggregates; `accuracy_answered` is the official script's variant, which leaves unextractable replies out of the
denominator. `accuracy_short_medium` = the same over the short and medium videos (Table 10's "MME(S&M)").
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from univid.eval.suites.common import LETTERS, cap, clip_questions, need, render_clip_file

NAME = "videomme"
EXTRACTION_ID = "videomme-extract_characters_regex@BradyFU/Video-MME:evaluation/eval_your_results.py"
SCORER_ID = "accuracy-all-questions@lmms-eval/videomme (+ answered-only @BradyFU/Video-MME)"
DURATIONS = ("short", "medium", "long")
KEYS = ("video_id", "duration", "domain", "sub_category", "videoID", "question_id", "task_type", "question",
        "options", "answer")
PROMPT_HEAD = ("Select the best answer to the following multiple-choice question based on the video. "
               "Respond with only the letter (A, B, C, or D) of the correct option.")


def _records(root: Path) -> list[dict]:
    parquet = sorted((root / "videomme").glob("test-*.parquet"))
    if parquet:
        import pandas as pd

        return pd.concat([pd.read_parquet(p) for p in parquet]).to_dict("records")
    js = need(root / "videomme" / "test.json", "Video-MME",
              "videomme/test-00000-of-00001.parquet (lmms-lab/Video-MME) or videomme/test.json")
    return json.loads(js.read_text())


def load(root: str | os.PathLike, max_questions: int | None = None) -> list[dict]:
    root = Path(root)
    out = []
    for r in _records(root):
        missing = [k for k in KEYS if k not in r]
        if missing:
            raise ValueError(f"{root}/videomme: record without {missing[0]!r} (expected {', '.join(KEYS)})")
        if r["duration"] not in DURATIONS:
            raise ValueError(f"{root}/videomme: question {r['question_id']} duration {r['duration']!r} "
                             f"(expected one of {', '.join(DURATIONS)})")
        out.append({"question_id": str(r["question_id"]), "video": str(r["videoID"]), "duration": r["duration"],
                    "domain": r["domain"], "task_type": r["task_type"], "question": r["question"],
                    "options": [str(o) for o in r["options"]], "answer": r["answer"],
                    "visual": {"kind": "video", "paths": [str(root / "data" / f"{r['videoID']}.mp4")]},
                    "group": str(r["videoID"])})
    return cap(out, max_questions)


def prompt(sample: dict, n_frames: int = 0) -> str:
    return PROMPT_HEAD + "\n" + sample["question"] + "\n" + "\n".join(sample["options"]) + "\nThe best answer is:"


def extract_characters_regex(s: str) -> str:
    s = s.strip()
    answer_prefixes = [
        "The best answer is",
        "The correct answer is",
        "The answer is",
        "The answer",
        "The best option is" "The correct option is",  # sic: implicit concatenation in the official script
        "Best answer:" "Best option:",
    ]
    for answer_prefix in answer_prefixes:
        s = s.replace(answer_prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    matches = re.search(r"[ABCD]", s)
    return "" if matches is None else matches[0]


def extract(reply: str, sample: dict | None = None) -> str:
    return extract_characters_regex(reply or "")


def correct(pred: str, sample: dict) -> bool:
    return pred == sample["answer"]


def _acc(rows: list[dict], answered_only: bool = False) -> float:
    rows = [r for r in rows if r["pred"] != ""] if answered_only else rows
    return 100.0 * sum(r["correct"] for r in rows) / len(rows) if rows else 0.0


def summarize(rows: list[dict]) -> dict:
    sm = [r for r in rows if r["sample"]["duration"] in ("short", "medium")]
    by = {d: [r for r in rows if r["sample"]["duration"] == d] for d in DURATIONS}
    return {"accuracy": _acc(rows), "accuracy_short_medium": _acc(sm), "accuracy_answered": _acc(rows, True),
            "n": len(rows), "n_short_medium": len(sm), "unextracted": sum(r["pred"] == "" for r in rows),
            "by_duration": {d: {"accuracy": _acc(v), "n": len(v)} for d, v in by.items() if v}}


# ------------------------------------------------------------------------------------------------ synthetic

def write_synthetic(root: Path, seed: int, n: int) -> None:
    """n questions, one synthetic clip each, durations cycling short/medium/long (longer clips for longer labels),
    four options each, the answer derived from the clip."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        duration = DURATIONS[i % 3]
        vid = f"synth{seed}v{i:03d}"
        spec = render_clip_file(root / "data" / f"{vid}.mp4", seed, 100 + i, num_frames=(64, 96, 128)[i % 3])
        qs = clip_questions(spec, rng, min_options=4)
        q = qs[int(rng.integers(len(qs)))]
        records.append({"video_id": f"{i + 1:03d}", "duration": duration, "domain": "Knowledge",
                        "sub_category": "Technology", "url": "", "videoID": vid, "question_id": f"{i + 1:03d}-1",
                        "task_type": "Attribute Perception", "question": q["question"],
                        "options": [f"{LETTERS[k]}. {o}" for k, o in enumerate(q["options"])],
                        "answer": LETTERS[q["options"].index(q["answer"])]})
    path = root / "videomme" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_parquet(path, index=False)
