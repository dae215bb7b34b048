"""Video files in and out: H.264 mp4 writing through PyAV, reading with decord and a PyAV fallback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from univid.io import atomic_path


class VideoError(ValueError):
    """A video file is missing, unreadable, or an array is not a valid clip."""


class _BadIndices(VideoError):
    """The caller asked for frames the file does not have: reported as is, never retried with another reader."""


@dataclass
class Video:
    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    fps: float
    num_frames_total: int  # frames in the file, not only the ones read
    indices: list[int]  # which file frames `frames` holds, in order


# High quality on purpose: the synthetic-world oracle and the round-trip tests rely on colours surviving encoding.
_CRF = "10"


def _check_frames(frames: np.ndarray, what: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise VideoError(f"{what}: frames of shape {shape} dtype {dtype} (expected uint8 [T,H,W,3] RGB)")
    t, h, w, _ = frames.shape
    if t == 0:
        raise VideoError(f"{what}: 0 frames (expected at least 1)")
    # yuv420p subsamples chroma by 2 in both directions, so libx264 rejects odd sizes.
    if h % 2 or w % 2:
        raise VideoError(f"{what}: frame size {h}x{w} (expected even height and width for H.264 yuv420p)")


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float) -> None:
    """Write RGB uint8 [T,H,W,3] frames as an H.264 (libx264, yuv420p) mp4; the target appears only when complete."""
    import av

    path = Path(path)
    _check_frames(frames, str(path))
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise VideoError(f"{path}: fps {fps!r} (expected a positive number)")
    rate = Fraction(fps).limit_denominator(1001)  # keeps 24000/1001-style NTSC rates exact
    _, h, w, _ = frames.shape
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            # Deterministic, because videos are keyed and scored by content: x264's MB-tree rate control gave
            # different bitstreams (and decoded pixels) for the same frames from run to run, in one process too
            # (3 of 12 encodes of a 64x64 synthetic clip; 0 of 60 with mbtree=0). The conversion to yuv420p and
            # the encoder run single-threaded, and every frame carries its own timestamp.
            stream.options = {"crf": _CRF, "preset": "medium", "threads": "1", "x264-params": "mbtree=0"}
            for i, frame in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                vf = vf.reformat(format="yuv420p", threads=1)
                vf.pts = i
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():  # flush the encoder's delayed frames
                container.mux(packet)


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise VideoError(f"{path}: video not found (expected an existing mp4/avi file)")


def _resolve_indices(indices, total: int, path: Path) -> list[int]:
    if indices is None:
        return list(range(total))
    out = [int(i) for i in indices]
    bad = [i for i in out if i < 0 or i >= total]
    if bad:
        raise _BadIndices(f"{path}: frame indices {bad[:5]} out of range (expected 0..{total - 1})")
    return out


def _read_decord(path: Path, indices) -> Video:
    import decord

    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    total = len(vr)
    if total == 0:
        raise VideoError(f"{path}: no frames decoded")
    idx = _resolve_indices(indices, total, path)
    frames = vr.get_batch(idx).asnumpy() if idx else np.zeros((0, *vr[0].shape), np.uint8)
    return Video(frames=np.ascontiguousarray(frames, dtype=np.uint8), fps=float(vr.get_avg_fps()),
                 num_frames_total=total, indices=idx)


def _read_pyav(path: Path, indices) -> Video:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        # Decode everything: seeking is inexact for many codecs and our clips are short.
        all_frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    if not all_frames:
        raise VideoError(f"{path}: no frames decoded")
    idx = _resolve_indices(indices, len(all_frames), path)
    frames = np.stack([all_frames[i] for i in idx]) if idx else np.zeros((0, *all_frames[0].shape), np.uint8)
    return Video(frames=frames.astype(np.uint8), fps=float(rate) if rate else 0.0,
                 num_frames_total=len(all_frames), indices=idx)


def read_video(path: str | os.PathLike, indices=None) -> Video:
    """Read frames (all, or the given file frame indices) as RGB uint8 [T,H,W,3]: decord first, then PyAV."""
    path = Path(path)
    _check_exists(path)
    errors = []
    for reader in (_read_decord, _read_pyav):
        try:
            return reader(path, indices)
        except _BadIndices:
            raise
        except VideoError as e:
            errors.append(f"{reader.__name__[6:]}: {e}")
        except Exception as e:  # decord and PyAV raise their own error types; both are "could not read"
            errors.append(f"{reader.__name__[6:]}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise VideoError(f"{path}: unreadable video (expected an mp4/avi readable by decord or PyAV; {'; '.join(errors)})")


def video_info(path: str | os.PathLike) -> dict:
    """Frame count, fps, size and duration of a video file, without decoding it all when decord can open it."""
    path = Path(path)
    _check_exists(path)
    try:
        import decord

        vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
        n, fps = len(vr), float(vr.get_avg_fps())
        h, w = vr[0].shape[:2]
    except Exception:
        v = read_video(path)  # PyAV fallback (raises VideoError naming the path when it also fails)
        n, fps = v.num_frames_total, v.fps
        h, w = v.frames.shape[1:3]
    return {"num_frames": int(n), "fps": fps, "width": int(w), "height": int(h),
            "duration_s": n / fps if fps > 0 else 0.0}


def uniform_indices(total: int, n: int) -> list[int]:
    """Centres of n equal segments of [0, total): the deterministic uniform frame sampling used everywhere."""
    if total <= 0 or n <= 0:
        raise VideoError(f"uniform_indices: total={total}, n={n} (expected both positive)")
    if n >= total:
        return list(range(total))
    return [int((i + 0.5) * total / n) for i in range(n)]
