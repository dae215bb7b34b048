"""Pieces the Table 10 benchmarks share: option letters, file checks, multiple-choice questions from the synthetic
video world (smoke scale), and the content-keyed place synthetic releases are written to."""

from __future__ import annotations

import hashlib
import json
import os
import string
from pathlib import Path

import numpy as np

LETTERS = string.ascii_uppercase
SYNTHETIC_VERSION = 1  # bump when a synthetic writer changes what it writes: the content key changes with it


def need(path: Path, benchmark: str, what: str) -> Path:
    """`path` when it is a file, else one line naming it and what the benchmark's official release has there."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: {benchmark} file not found (expected {what})")
    return Path(path)


def need_dir(path: Path, benchmark: str, what: str) -> Path:
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: {benchmark} directory not found (expected {what})")
    return Path(path)


def cap(items: list, max_questions: int | None) -> list:
    """The first `max_questions` items in release order (all when None): a stable prefix, never a random draw."""
    return items if max_questions is None else items[:max_questions]


def synthetic_dir(root: str | os.PathLike, benchmark: str, seed: int, n: int) -> Path:
    """Where a synthetic release lives: keyed by everything that decides its bytes."""
    blob = json.dumps({"benchmark": benchmark, "seed": seed, "n": n, "version": SYNTHETIC_VERSION}, sort_keys=True)
    return Path(root) / "suites_synthetic" / f"{benchmark}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


# ------------------------------------------------------------------------------------- synthetic world questions

def answer_pool(question: str) -> list[str] | None:
    """Every answer a question of this template can have (the synthetic world's vocabulary), or None."""
    from univid.data.synthetic import BACKGROUNDS, COLORS, SHAPES

    if question == "What color is the background?":
        return list(BACKGROUNDS)
    if question.startswith("What color is the "):
        return list(COLORS)
    if question.startswith("What shape is the "):
        return list(SHAPES)
    if question.startswith("How many objects"):
        return ["one", "two", "three", "four"]
    if question.startswith("Which direction"):
        return ["left", "right", "up", "down"]
    if question.startswith("Is the ") and " growing or shrinking" in question:
        return ["growing", "shrinking"]
    if question.startswith(("Is the ", "Does the ")):
        return ["yes", "no"]
    return None


def clip_questions(spec, rng: np.random.Generator, min_options: int = 2, max_options: int = 4) -> list[dict]:
    """Multiple-choice questions about a synthetic clip: {question, options (texts), answer (text), kind}.

    The answer is the one the clip determines (univid.data.synthetic.qa_pairs); distractors are other words of the
    same vocabulary, so every option is a plausible answer and exactly one is right."""
    from univid.data.synthetic import qa_pairs

    out = []
    for qa in qa_pairs(spec):
        pool = answer_pool(qa["question"])
        if pool is None or len(pool) < min_options or qa["answer"] not in pool:
            continue
        others = [w for w in pool if w != qa["answer"]]
        k = min(max_options, len(pool)) - 1
        picked = [others[i] for i in rng.choice(len(others), size=k, replace=False)]
        options = picked + [qa["answer"]]
        rng.shuffle(options)
        out.append({"question": qa["question"], "options": [str(o) for o in options], "answer": qa["answer"],
                    "kind": qa["anet_type"], "open_question": qa["question"]})
    return out


def render_clip_file(path: Path, seed: int, index: int, num_frames: int, fps: float = 8.0):
    """Render one synthetic clip to an mp4 at `path`; returns its ClipSpec (the clip's answers come from it)."""
    from univid.data.synthetic import render_clip, sample_clip_specs
    from univid.data.video import write_video

    spec = sample_clip_specs(seed * 1000 + index, 1, num_frames=num_frames, fps=fps)[0]
    write_video(path, render_clip(spec), fps)
    return spec
