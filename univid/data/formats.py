"""The official on-disk formats the paper's data come in: OpenVid-1M's CSV, ActivityNet-QA's q/a JSON pairs, and the
Video-ChatGPT conversation format the QA training data are converted to (paper, appendix 'Data curation')."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from univid.io import atomic_path, write_json

# Header of the released OpenVid-1M.csv, in order.
OPENVID_COLUMNS = ("video", "caption", "aesthetic score", "motion score", "temporal consistency score",
                   "camera motion", "frame", "fps", "seconds")
ACTIVITYNET_SPLITS = ("train", "val", "test")
_TEXT_COLUMNS = ("video", "caption", "camera motion")


class FormatError(ValueError):
    """A data file exists but does not have the official layout."""


# --------------------------------------------------------------------------------------------- OpenVid

def write_openvid_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write rows (dicts keyed by OPENVID_COLUMNS) as an OpenVid-1M-style CSV."""
    df = pd.DataFrame(list(rows), columns=list(OPENVID_COLUMNS))
    missing = [c for c in OPENVID_COLUMNS if rows and any(c not in r for r in rows)]
    if missing:
        raise FormatError(f"{path}: rows lack column(s) {missing} (expected every row to have {list(OPENVID_COLUMNS)})")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def read_openvid_csv(path: str | os.PathLike) -> pd.DataFrame:
    """The CSV as a DataFrame with the official columns; empty text cells become '' (not NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: OpenVid-1M CSV not found "
                                f"(expected a CSV with columns {list(OPENVID_COLUMNS)})")
    try:
        df = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False,
                         na_values={c: ["", "NaN", "nan"] for c in OPENVID_COLUMNS if c not in _TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not a readable CSV ({type(e).__name__}; expected OpenVid-1M's CSV)") from None
    missing = [c for c in OPENVID_COLUMNS if c not in df.columns]
    if missing:
        raise FormatError(f"{path}: missing column(s) {missing} (expected OpenVid-1M's header {list(OPENVID_COLUMNS)})")
    return df


# -------------------------------------------------------------------------------------- ActivityNet-QA

def _check_split(split: str) -> None:
    if split not in ACTIVITYNET_SPLITS:
        raise FormatError(f"ActivityNet-QA split {split!r}: unknown (expected one of {ACTIVITYNET_SPLITS})")


def write_activitynet_qa(directory: str | os.PathLike, split: str, items: list[dict]) -> None:
    """Write `{split}_q.json` and `{split}_a.json` from items with question_id, video_name, question, answer, type."""
    _check_split(split)
    directory = Path(directory)
    questions, answers = [], []
    for it in items:
        questions.append({"question": it["question"], "question_id": it["question_id"], "video_name": it["video_name"]})
        answers.append({"answer": it["answer"], "question_id": it["question_id"], "type": int(it["type"])})
    write_json(directory / f"{split}_q.json", questions)
    write_json(directory / f"{split}_a.json", answers)


def load_json_list(path: Path, keys: tuple[str, ...], what: str = "a list of objects") -> list[dict]:
    """A JSON file holding a list of objects that all carry `keys` (the shape of every QA release file)."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: invalid JSON at line {e.lineno} (expected {what})") from None
    if not isinstance(data, list) or any(not isinstance(d, dict) or any(k not in d for k in keys) for d in data):
        raise FormatError(f"{path}: entries lack keys (expected a list of objects with {list(keys)})")
    return data


def _load_list(path: Path, keys: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ActivityNet-QA file not found (expected {path.name} in the official "
                                f"layout: {{train,val,test}}_{{q,a}}.json)")
    return load_json_list(path, keys)


def read_activitynet_qa(directory: str | os.PathLike, split: str) -> list[dict]:
    """Questions joined with their answers: dicts with question_id, video_name, question, answer, type."""
    _check_split(split)
    directory = Path(directory)
    qs = _load_list(directory / f"{split}_q.json", ("question", "question_id", "video_name"))
    ans = _load_list(directory / f"{split}_a.json", ("answer", "question_id", "type"))
    by_id = {a["question_id"]: a for a in ans}
    unanswered = [q["question_id"] for q in qs if q["question_id"] not in by_id]
    if unanswered:
        raise FormatError(f"{directory / f'{split}_a.json'}: no answer for {len(unanswered)} question(s), e.g. "
                          f"{unanswered[0]!r} (expected one answer per question_id in {split}_q.json)")
    return [{"question_id": q["question_id"], "video_name": q["video_name"], "question": q["question"],
             "answer": by_id[q["question_id"]]["answer"], "type": int(by_id[q["question_id"]]["type"])} for q in qs]


# --------------------------------------------------------------------------------------- Video-ChatGPT

def video_path_for(video_dir: str | os.PathLike, video_name: str, video_ext: str = ".mp4") -> Path:
    """Where a QA item's video lives. The released ActivityNet videos are named `v_<video_name>`, which
    Video-ChatGPT's evaluation scripts prepend; that name is used when only it exists."""
    video_dir = Path(video_dir)
    plain = video_dir / f"{video_name}{video_ext}"
    prefixed = video_dir / f"v_{video_name}{video_ext}"
    return prefixed if not plain.exists() and prefixed.exists() else plain


def to_conversations(qa_items: list[dict], video_dir: str | os.PathLike, video_ext: str = ".mp4") -> list[dict]:
    """QA items -> Video-ChatGPT training records: id, video, and a human turn (`<video>` + question) answered by
    a gpt turn."""
    return [{"id": str(it["question_id"]),
             "video": str(video_path_for(video_dir, it["video_name"], video_ext)),
             "conversations": [{"from": "human", "value": "<video>\n" + it["question"]},
                               {"from": "gpt", "value": it["answer"]}]}
            for it in qa_items]
