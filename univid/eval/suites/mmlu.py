"""MMLU (Hendrycks et al., 2021), paper Table 10's first column.

Official release layout (hendrycks/test, `data.tar`): `data/test/<subject>_test.csv` (and `data/dev/`,
`data/val/`), comma-separated, NO header, six columns: question, A, B, C, D, answer (a letter). `dir` may be the
release root (holding `data/`) or `data/` itself.

Prompt: the format of the official evaluation script (hendrycks/test `evaluate.py`, `format_example` +
`gen_prompt`), zero-shot: "The following are multiple choice questions (with answers) about {}.\n\n" +
question + "\nA. ..." per choice + "\nAnswer:". `format_subject` joins the subject's words each preceded by a space,
so the header has two spaces after "about"; kept as the script prints it.

Scoring: the official script compares log-likelihoods of the four letters; the UniVid Actor answers by generation
(Table 10 evaluates every model generatively), so the letter is extracted from the reply (`extract`, id
EXTRACTION_ID, a harness rule: a leading letter, else "answer is X", else the first standalone capital A-D) and
accuracy = correct / questions * 100. A reply with no letter counts as wrong. Text only: MMLU has no images, so the
Actor sees no frames (Table 10's "32" is the frame budget it could use).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from univid.eval.suites.common import LETTERS, cap, need_dir

NAME = "mmlu"
EXTRACTION_ID = "mmlu-letter@univid-v1"
SCORER_ID = "accuracy@hendrycks/test"
CHOICES = LETTERS[:4]


def _data_dir(root: Path) -> Path:
    return root / "data" if (root / "data" / "test").is_dir() else root


def load(root: str | os.PathLike, max_questions: int | None = None, split: str = "test") -> list[dict]:
    root = Path(root)
    test = need_dir(_data_dir(root) / split, "MMLU", f"data/{split}/<subject>_{split}.csv files (hendrycks/test)")
    files = sorted(test.glob(f"*_{split}.csv"))
    if not files:
        raise FileNotFoundError(f"{test}: MMLU file not found (expected <subject>_{split}.csv files)")
    out = []
    for path in files:
        subject = path.name[: -len(f"_{split}.csv")]
        with path.open(newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.reader(f)):
                if len(row) != 6 or row[5].strip() not in CHOICES:
                    raise ValueError(f"{path}:{i + 1}: {row[:1]}... (expected 6 columns question,A,B,C,D,answer "
                                     "with answer one of A-D, no header)")
                out.append({"question_id": f"{subject}_{i}", "subject": subject, "question": row[0],
                            "options": row[1:5], "answer": row[5].strip(), "visual": {"kind": "none", "paths": []},
                            "group": subject})
    return cap(out, max_questions)


def format_subject(subject: str) -> str:
    return "".join(" " + w for w in subject.split("_"))  # evaluate.py: s += " " + entry


def prompt(sample: dict, n_frames: int = 0) -> str:
    subject = format_subject(sample["subject"])
    header = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
    body = sample["question"] + "".join(f"\n{c}. {o}" for c, o in zip(CHOICES, sample["options"]))
    return header + body + "\nAnswer:"


_LEAD = re.compile(r"^\s*[\(\[]?([A-D])(?:[\)\]\.:,]|\s|$)")
_STATED = re.compile(r"answer\s*(?:is|:)?\s*:?\s*[\(\[]?([A-D])\b", re.I)
_ANY = re.compile(r"(?<![A-Za-z])([A-D])(?![A-Za-z])")


def extract(reply: str, sample: dict | None = None) -> str:
    """The chosen letter, or "" when the reply names none."""
    for pattern in (_LEAD, _STATED, _ANY):
        m = pattern.search(reply or "")
        if m:
            return m.group(1).upper()
    return ""


def correct(pred: str, sample: dict) -> bool:
    return pred == sample["answer"]


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    return {"accuracy": 100.0 * sum(r["correct"] for r in rows) / n if n else 0.0, "n": n,
            "unextracted": sum(r["pred"] == "" for r in rows)}


# ------------------------------------------------------------------------------------------------ synthetic

def write_synthetic(root: Path, seed: int, n: int) -> None:
    """n arithmetic questions as `data/test/elementary_mathematics_test.csv` (the official layout)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a, b = (int(x) for x in rng.integers(2, 20, size=2))
        right = a + b
        wrong = sorted({right + int(d) for d in rng.choice([-3, -2, -1, 1, 2, 3], size=3, replace=False)})
        options = [str(x) for x in wrong + [right]]
        rng.shuffle(options)
        rows.append([f"What is {a} + {b}?", *options, CHOICES[options.index(str(right))]])
    path = root / "data" / "test" / "elementary_mathematics_test.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
