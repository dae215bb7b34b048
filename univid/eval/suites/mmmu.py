"""MMMU (Yue et al., 2024), paper Table 10's second column.

Official release layout (Hugging Face `MMMU/MMMU`): one folder per subject (30: Accounting ... Sociology), each with
`<split>-00000-of-00001.parquet` (splits dev, validation, test; the test answers are withheld, so scores use
validation as lmms-eval's `mmmu_val` does). Columns: id (e.g. "validation_Art_1"), question (with "<image N>"
placeholders), options (a Python list written as a string, "['...', '...']"), explanation, image_1 .. image_7
({"bytes", "path"} or null), img_type, answer (a letter for multiple-choice, text for open), topic_difficulty,
question_type ("multiple-choice" | "open"), subfield. A `<subject>/<split>.json` list with the same keys (images as
file paths relative to it) is read too.

Prompt and scoring: lmms-eval `tasks/mmmu/utils.py` (whose scoring functions are the official MMMU repo's
`eval/eval_utils.py` at 51ce7f3): `construct_prompt` with its default post-prompts ("Answer with the option's letter
from the given choices directly." / "Answer the question using a single word or phrase."); the images are those the
question's "<image N>" placeholders name, in sorted order, each one frame for the Actor (up to the frame budget);
`parse_multi_choice_response` (bracketed letter, bare letter, "X.", option text in replies longer than 5 words, the
last mention when several, else a random choice), `parse_open_response` + `eval_open`; accuracy = correct /
questions * 100 (the official instance-level accuracy). The random fallback is seeded per question
(random.Random(f"{seed}:{id}")) so reruns agree; the official code draws from the global RNG.
"""

from __future__ import annotations

import ast
import io
import json
import os
import random
import re
from pathlib import Path

import numpy as np

from univid.eval.suites.common import LETTERS, cap, need_dir

NAME = "mmmu"
EXTRACTION_ID = "mmmu-parse_multi_choice_response+parse_open_response@MMMU-Benchmark/MMMU:51ce7f3 (seeded fallback)"
SCORER_ID = "mmmu-eval_multi_choice+eval_open@MMMU-Benchmark/MMMU:51ce7f3"
MC_PROMPT = "Answer with the option's letter from the given choices directly."
OPEN_PROMPT = "Answer the question using a single word or phrase."
IMAGE_KEYS = tuple(f"image_{i}" for i in range(1, 8))


def _read_subject(folder: Path, split: str) -> list[dict]:
    parquet = sorted(folder.glob(f"{split}-*.parquet"))
    if parquet:
        import pandas as pd

        return pd.concat([pd.read_parquet(p) for p in parquet]).to_dict("records")
    js = folder / f"{split}.json"
    if js.is_file():
        records = json.loads(js.read_text())
        for r in records:
            for k in IMAGE_KEYS:
                if isinstance(r.get(k), str):
                    r[k] = {"bytes": (folder / r[k]).read_bytes(), "path": r[k]}
        return records
    return []


def _image_bytes(value) -> bytes | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, dict):
        return value.get("bytes")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return None


def load(root: str | os.PathLike, max_questions: int | None = None, split: str = "validation") -> list[dict]:
    root = need_dir(Path(root), "MMMU", "one folder per subject holding <split>-00000-of-00001.parquet")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for r in _read_subject(folder, split):
            missing = [k for k in ("id", "question", "options", "answer", "question_type") if k not in r]
            if missing:
                raise ValueError(f"{folder}: MMMU record without {missing[0]!r} (expected id, question, options, "
                                 "answer, question_type, image_1..image_7)")
            names = sorted({t.strip("<>").replace(" ", "_") for t in re.findall(r"<image \d+>", r["question"]
                                                                                 + str(r["options"]))})
            images = [_image_bytes(r.get(k)) for k in names]
            if any(b is None for b in images):
                raise ValueError(f"{folder}: MMMU question {r['id']} names {names} but an image column is empty "
                                 "(expected {'bytes', 'path'} for every <image N> in the question)")
            out.append({"question_id": str(r["id"]), "subject": folder.name, "question": r["question"],
                        "options": str(r["options"]), "answer": r["answer"], "question_type": r["question_type"],
                        "visual": {"kind": "images", "names": names}, "_images": images, "group": str(r["id"])})
    if not out:
        raise FileNotFoundError(f"{root}: MMMU file not found (expected <Subject>/{split}-00000-of-00001.parquet)")
    return cap(out, max_questions)


def image_arrays(sample: dict) -> list[np.ndarray]:
    from PIL import Image

    return [np.array(Image.open(io.BytesIO(b)).convert("RGB")) for b in sample["_images"]]


def parse_options(options: list) -> str:
    return "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))


def prompt(sample: dict, n_frames: int = 0) -> str:
    if sample["question_type"] == "multiple-choice":
        return f"{sample['question']}\n{parse_options(ast.literal_eval(sample['options']))}\n\n{MC_PROMPT}"
    return f"{sample['question']}\n\n{OPEN_PROMPT}"


# ------------------------------------------------------------------------- official MMMU parsing and matching

def get_multi_choice_info(options: list) -> tuple[dict, list]:
    index2ans = {LETTERS[i]: o for i, o in enumerate(options)}
    return index2ans, list(index2ans)


def parse_multi_choice_response(response: str, all_choices: list, index2ans: dict, rng: random.Random) -> str:
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "  # avoid partial matches
    index_ans, ans_with_brack, candidates = True, False, []
    for choice in all_choices:  # (A) (B) ...
        if f"({choice})" in response:
            candidates.append(choice)
            ans_with_brack = True
    if not candidates:
        for choice in all_choices:  # A B ...
            if f"{choice} " in response:
                candidates.append(choice)
    if not candidates:
        for choice in all_choices:  # A. B. ...
            if f"{choice}." in response:
                candidates.append(choice)
    if not candidates and len(response.split()) > 5:  # the option's text, in a longer reply
        for index, ans in index2ans.items():
            if ans.lower() in response.lower():
                candidates.append(index)
                index_ans = False
    if not candidates:
        return rng.choice(all_choices)
    if len(candidates) > 1:
        if index_ans:
            marks = [response.rfind(f"({c})") if ans_with_brack else response.rfind(f" {c} ") for c in candidates]
        else:
            marks = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
        return candidates[int(np.argmax(marks))]  # the last one mentioned
    return candidates[0]


def extract_numbers(string: str) -> list[str]:
    pattern_commas = r"-?\b\d{1,3}(?:,\d{3})+\b"
    pattern_scientific = r"-?\d+(?:\.\d+)?[eE][+-]?\d+"
    pattern_simple = r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])"
    return re.findall(pattern_commas, string) + re.findall(pattern_scientific, string) + \
        re.findall(pattern_simple, string)


def check_is_number(string: str) -> bool:
    try:
        float(string.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(string: str) -> list:
    string = string.strip()
    if check_is_number(string):
        return [round(float(string.replace(",", "")), 2)]
    string = string.lower()
    if len(string) == 1:
        return [" " + string, string + " "]  # avoid trivial matches
    return [string]


def parse_open_response(response: str) -> list:
    def get_key_subresponses(response):
        response = response.strip().strip(".").lower()
        sub_responses = re.split(r"\.\s(?=[A-Z])|\n", response)
        indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
        key_responses = []
        for index, resp in enumerate(sub_responses):
            if index == len(sub_responses) - 1:
                indicators.extend(["="])  # the last sentence may be an equation
            shortest = None
            for indicator in indicators:
                if indicator in resp:
                    tail = resp.split(indicator)[-1].strip()
                    if not shortest or len(tail) < len(shortest):
                        shortest = tail
            if shortest and shortest.strip() not in [":", ",", ".", "!", "?", ";", ":", "'"]:
                key_responses.append(shortest)
        return key_responses or [response]

    key_responses = get_key_subresponses(response)
    pred_list = key_responses.copy()
    for resp in key_responses:
        pred_list.extend(extract_numbers(resp))
    out = []
    for p in pred_list:
        out.extend(normalize_str(p))
    return list(set(out))


def eval_multi_choice(gold, pred) -> bool:
    return pred in gold if isinstance(gold, list) else gold == pred


def eval_open(gold, pred_list) -> bool:
    if isinstance(gold, list):
        norm_answers = [n for a in gold for n in normalize_str(a)]
    else:
        norm_answers = normalize_str(gold)
    for pred in pred_list:
        if isinstance(pred, str):
            if any(isinstance(a, str) and a in pred for a in norm_answers):
                return True
        elif pred in norm_answers:
            return True
    return False


def extract(reply: str, sample: dict, seed: int = 0):
    if sample["question_type"] == "multiple-choice":
        index2ans, all_choices = get_multi_choice_info(ast.literal_eval(sample["options"]))
        rng = random.Random(f"{seed}:{sample['question_id']}")
        return parse_multi_choice_response(reply, all_choices, index2ans, rng)
    return parse_open_response(reply)


def correct(pred, sample: dict) -> bool:
    if sample["question_type"] == "multiple-choice":
        return eval_multi_choice(sample["answer"], pred)
    return eval_open(sample["answer"], pred)


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    return {"accuracy": 100.0 * sum(r["correct"] for r in rows) / n if n else 0.0, "n": n}


# ------------------------------------------------------------------------------------------------ synthetic

def write_synthetic(root: Path, seed: int, n: int) -> None:
    """n questions about rendered frames of the synthetic world in `Synthetic/validation-00000-of-00001.parquet`
    (one per three is open-ended, the rest multiple-choice with the options as a list string, as MMMU has them)."""
    import pandas as pd
    from PIL import Image

    from univid.data.synthetic import render_clip, sample_clip_specs
    from univid.eval.suites.common import clip_questions

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        spec = sample_clip_specs(seed * 1000 + 500 + i, 1, num_frames=1)[0]
        buf = io.BytesIO()
        Image.fromarray(render_clip(spec)[0]).save(buf, format="PNG")
        qs = clip_questions(spec, rng, min_options=3)
        q = qs[int(rng.integers(len(qs)))]
        open_q = i % 3 == 2
        if open_q:  # open: the number of objects, written as a digit (MMMU's open answers are mostly numbers)
            question, options, answer = "How many objects are in <image 1>?", "[]", str(len(spec.objects))
        else:
            question = q["question"].replace(" in the video", "").rstrip("?") + " in <image 1>?"
            options, answer = str(q["options"]), LETTERS[q["options"].index(q["answer"])]
        rec = {"id": f"validation_Synthetic_{i + 1}", "question": question, "options": options, "explanation": "",
               "img_type": "['Diagrams']", "answer": answer, "topic_difficulty": "Easy",
               "question_type": "open" if open_q else "multiple-choice", "subfield": "Synthetic world",
               "image_1": {"bytes": buf.getvalue(), "path": f"validation_Synthetic_{i + 1}_1.png"}}
        rec.update({k: None for k in IMAGE_KEYS[1:]})
        records.append(rec)
    path = root / "Synthetic" / "validation-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_parquet(path, index=False)
