"""Checks on generated videos before any scoring: naming, frame count, frame rate, duration.

Each failure is one line naming the file and what was expected; scoring never starts on a partial or wrong suite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")
_NAME = re.compile(r"^(?P<prompt>.+)-(?P<index>\d+)\.mp4$")


class VideoCheckError(ValueError):
    """A generated video does not match what the benchmark expects."""


def check_names(video_dir: str | os.PathLike, expected: list[str], allowed: list[str] | None = None) -> None:
    """Every expected `{prompt}-{i}.mp4` is present and every video file in the directory is an allowed one
    (allowed: the whole suite's names when only some dimensions are scored; default: expected)."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise FileNotFoundError(f"{video_dir}: video directory not found (expected the generate job's videos/)")
    present = {p.name for p in video_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES}
    missing = [n for n in expected if n not in present]
    if missing:
        raise VideoCheckError(f"{video_dir / missing[0]}: video not found (expected every '{{prompt_en}}-{{i}}.mp4' "
                              f"of the suite; {len(missing)} of {len(expected)} missing)")
    unexpected = sorted(present - set(allowed if allowed is not None else expected))
    if unexpected:
        n = unexpected[0]
        why = ("not named '{prompt_en}-{i}.mp4'" if not _NAME.match(n)
               else "its prompt or index is not in the suite/samples_per_prompt")
        raise VideoCheckError(f"{video_dir / n}: unexpected video, {why} (expected only the suite's "
                              f"{len(expected)} videos; {len(unexpected)} unexpected)")


def check_info(name: str, info: dict, *, num_frames: int | None = None, fps: float | None = None,
               min_duration_s: float = 0.0) -> None:
    """One video's metadata (`univid.data.video.video_info`) against the expected frame count, fps and duration."""
    if info["num_frames"] < 1:
        raise VideoCheckError(f"{name}: no frames (expected a decodable video)")
    if num_frames is not None and info["num_frames"] != num_frames:
        raise VideoCheckError(f"{name}: {info['num_frames']} frames (expected {num_frames}, sampling.num_frames)")
    if fps is not None and abs(info["fps"] - fps) > 0.01 * fps:
        raise VideoCheckError(f"{name}: {info['fps']:.3f} fps (expected {fps}, sampling.fps)")
    if info["duration_s"] + 1e-9 < min_duration_s:
        raise VideoCheckError(f"{name}: {info['duration_s']:.2f} s long (expected at least {min_duration_s} s, "
                              f"eval.vbench.min_duration_s; VBench-Long videos are >= 5 s)")


def check_videos(video_dir: str | os.PathLike, expected: list[str], info_of: Callable[[Path], dict], *,
                 allowed: list[str] | None = None, num_frames: int | None = None, fps: float | None = None, min_duration_s: float = 0.0) -> dict:
    """Names first, then each file's metadata. Returns {name: info}."""
    video_dir = Path(video_dir)
    check_names(video_dir, expected, allowed)
    infos = {}
    for n in expected:
        infos[n] = info_of(video_dir / n)
        check_info(str(video_dir / n), infos[n], num_frames=num_frames, fps=fps, min_duration_s=min_duration_s)
    return infos
