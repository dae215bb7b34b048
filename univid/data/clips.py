"""Training clips pre-processed exactly as at inference (paper Appendix A.3: "Videos are uniformly sub-sampled and
pre-processed identically to inference"), whatever the source's size, aspect ratio, length and frame rate.

1. Time: frames are taken at the target frame rate (nearest source frame at each target instant) over a window of
   `num_frames / fps` seconds centred in the clip; a clip shorter than that window is skipped ("too short").
2. Space: each frame is resized so that it covers the target size (shorter side scaled, aspect kept, antialiased),
   then centre-cropped to `height x width` - landscape and portrait sources alike.

A clip that cannot be used raises ClipSkip with a short named reason (unreadable, too short, too small); the caller
counts and logs it instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from univid.data.video import VideoError, read_video, video_info


class ClipSkip(Exception):
    """A clip the training set leaves out: `reason` is one of SKIP_REASONS, `detail` says why in words."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


SKIP_REASONS = ("unreadable", "too_short")


@dataclass(frozen=True)
class ClipSpec:
    height: int
    width: int
    num_frames: int
    fps: float

    def check(self, spatial_stride: int, temporal_stride: int, what: str = "train.clip") -> None:
        """The VAE/DiT strides must divide the crop (one line naming the key and what was expected)."""
        for key, value in (("height", self.height), ("width", self.width)):
            if value <= 0 or value % spatial_stride:
                raise ValueError(f"{what}.{key} = {value}: not divisible by {spatial_stride} (expected a multiple of "
                                 f"the VAE's spatial factor x the DiT's patch size)")
        if self.num_frames < 1 or (self.num_frames - 1) % temporal_stride:
            raise ValueError(f"{what}.num_frames = {self.num_frames}: expected 1 + a multiple of {temporal_stride} "
                             f"(the VAE's temporal factor)")
        if self.fps <= 0:
            raise ValueError(f"{what}.fps = {self.fps}: expected a positive frame rate")


def clip_spec(cfg: dict) -> ClipSpec:
    """train.clip, each null key taken from `sampling` (training clips match inference by default)."""
    from univid.config.jobs import training_clip

    pick = training_clip(cfg)
    return ClipSpec(int(pick["height"]), int(pick["width"]), int(pick["num_frames"]), float(pick["fps"]))


def model_strides(model_cfg: dict) -> tuple[int, int]:
    """(spatial, temporal) stride a training crop must be divisible by: VAE spatial factor x DiT patch (h, w)."""
    vae, dit = model_cfg["vae"].get("config") or {}, model_cfg["dit"].get("config") or {}
    spatial = int(vae.get("scale_factor_spatial", 16)) * int((dit.get("patch_size") or [1, 2, 2])[1])
    return spatial, int(vae.get("scale_factor_temporal", 4))


def time_indices(total: int, src_fps: float, spec: ClipSpec) -> list[int]:
    """Source frame indices of the centred window at the target frame rate."""
    need_s = spec.num_frames / spec.fps
    have_s = total / src_fps
    if total < 1 or have_s + 1e-9 < need_s:
        raise ClipSkip("too_short", f"{have_s:.2f} s at {src_fps:g} fps (expected at least {need_s:.2f} s: "
                       f"{spec.num_frames} frames at {spec.fps:g} fps)")
    start_s = (have_s - need_s) / 2
    # half-up rounding (not Python's half-to-even), so a 3:1 rate ratio gives an even stride of 3
    return [min(total - 1, int((start_s + i / spec.fps) * src_fps + 0.5)) for i in range(spec.num_frames)]


def resize_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> [T, height, width, 3]: cover-resize (aspect kept, antialiased), then centre crop."""
    t, h, w, _ = frames.shape
    scale = max(height / h, width / w)
    rh, rw = max(height, round(h * scale)), max(width, round(w * scale))
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if (rh, rw) != (h, w):
        x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (rh - height) // 2, (rw - width) // 2
    x = x[:, :, top:top + height, left:left + width]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def prepare_clip(path: str, spec: ClipSpec) -> np.ndarray:
    """The training clip of one video file, uint8 [num_frames, height, width, 3]; ClipSkip when it cannot be one."""
    try:
        info = video_info(path)
        indices = time_indices(int(info["num_frames"]), float(info["fps"]), spec)
        video = read_video(path, indices=sorted(set(indices)))
    except VideoError as exc:
        raise ClipSkip("unreadable", str(exc)) from None
    pos = {idx: i for i, idx in enumerate(video.indices)}
    frames = video.frames[[pos[i] for i in indices]]
    return resize_crop(frames, spec.height, spec.width)
