"""Ground-truth detector for the synthetic world: the smoke-scale stand-in for VBench's GRiT / Tag2Text / UMT.

It knows the world's palette and shapes, so on world clips (also after H.264 compression) it reads back what was
rendered; on anything else (e.g. a random-init generator's output) it finds little, which is the honest score.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from univid.data.synthetic import BACKGROUNDS, COLORS, shape_mask

_BACKEND_ID = "synthetic-oracle-v1"

_NAMES = list(COLORS) + list(BACKGROUNDS)
_PALETTE = np.array([COLORS[c] for c in COLORS] + [BACKGROUNDS[b] for b in BACKGROUNDS], np.float32)
_N_OBJ_COLORS = len(COLORS)
# A pixel farther than this (RGB Euclidean) from every palette entry belongs to nothing: edge blends, noise.
_MAX_DIST = 80.0
_MIN_AREA = 12  # pixels; smaller components are compression debris, not objects
# A triangle's centroid lies 1/6 of its box height below the box middle (circle, square: 0); see _shape_of.
_TRIANGLE_DROP = 0.08
# Motion decisions (relative to the first and last quarter of the track).
_GROW_RATIO = 1.5
_STATIC_FRAC = 0.05  # of min(H, W)
_KERNEL = np.ones((3, 3), np.uint8)


@dataclass
class Detection:
    shape: str
    color: str
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)
    centroid: tuple[float, float]  # x, y in pixel units (a pixel's centre is at +0.5)
    area: int


def detection_backend_id() -> str:
    """Recorded with every score computed through this detector."""
    return _BACKEND_ID


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame of shape {getattr(frame, 'shape', None)} (expected uint8 HxWx3 RGB)")


def _labels(frame: np.ndarray) -> np.ndarray:
    """Nearest palette index per pixel (object colours first, then backgrounds), -1 where none is close."""
    px = frame.reshape(-1, 3).astype(np.float32)
    d2 = ((px[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(-1)
    lab = d2.argmin(1)
    lab[d2[np.arange(len(px)), lab] > _MAX_DIST ** 2] = -1
    return lab.reshape(frame.shape[:2])


def _best_iou(comp: np.ndarray, shape: str) -> float:
    """IoU of the component with the best-fitting rendered `shape` (size and centre searched around its box)."""
    h, w = comp.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    size, cx, cy = np.meshgrid(np.arange(min(h, w) - 2.0, max(h, w) + 1.75, 0.5),
                               w / 2 + np.array([-0.5, 0.0, 0.5]), h / 2 + np.array([-0.5, 0.0, 0.5]), indexing="ij")
    # All candidates at once: [K, 1, 1] parameters broadcast against the [h, w] pixel grid.
    m = shape_mask(shape, cx.reshape(-1, 1, 1), cy.reshape(-1, 1, 1), size.reshape(-1, 1, 1), xs, ys)
    inter = (m & comp).sum((1, 2))
    union = (m | comp).sum((1, 2))
    return float((inter / np.maximum(union, 1)).max())


def _shape_of(comp: np.ndarray) -> str:
    """Shape of one component (bool mask cropped to its bbox).

    A triangle (apex up) has its centroid 1/6 of its box height below the box middle, circles and squares at the
    middle; this survives a trimmed apex, unlike vertex counts on a 10-pixel shape. Circle against square is decided
    by which rendered template fits better: after H.264 the edge pixels of a 10-pixel shape are uneven, which sways
    single-number features (fill ratio, corner occupancy: ~99% right on compressed world clips) more than a template
    fit (~99.8%).
    """
    h = comp.shape[0]
    drop = (np.nonzero(comp)[0].mean() + 0.5) / h - 0.5
    if drop >= _TRIANGLE_DROP:
        return "triangle"
    return "square" if _best_iou(comp, "square") >= _best_iou(comp, "circle") else "circle"


def detect_objects(frame: np.ndarray) -> list[Detection]:
    """World objects in one RGB frame, largest first."""
    _check_frame(frame)
    frame = np.asarray(frame, np.uint8)
    labels = _labels(frame)
    # Segment the foreground (every pixel not labelled as this frame's background) rather than each colour apart:
    # H.264's 2x2 chroma subsampling paints an object's edge pixels in some other palette hue (often another
    # background's), and per-colour masks would lose that ring and turn small circles into squares. The
    # component's colour is then the majority of its object-colour labels.
    bg_index = _NAMES.index(background_color(frame))
    fg = (labels != bg_index).astype(np.uint8)
    # Opening removes compression debris; a component counts only if enough of it survives opening, but it is
    # measured unopened (opening would trim a small triangle's apex).
    core = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _KERNEL)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    out = []
    for k in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < _MIN_AREA:
            continue
        sel = comp[y:y + h, x:x + w] == k
        core_labels = labels[y:y + h, x:x + w][sel & (core[y:y + h, x:x + w] > 0)]
        votes = np.bincount(core_labels[core_labels >= 0], minlength=_N_OBJ_COLORS)[:_N_OBJ_COLORS]
        if votes.sum() < _MIN_AREA:
            continue
        color = _NAMES[int(votes.argmax())]
        # Measure the shape on pixels at least half-way from the background to the object's colour: that
        # drops the blended ring H.264 leaves around edges, whatever palette entry its pixels happen to be near.
        bg_rgb = _PALETTE[bg_index]
        axis = _PALETTE[_NAMES.index(color)] - bg_rgb
        alpha = ((frame[y:y + h, x:x + w].astype(np.float32) - bg_rgb) @ axis) / float(axis @ axis)
        solid = sel & (alpha >= 0.5)
        if solid.sum() < _MIN_AREA:
            continue
        # Box, centroid and area are those of the solid pixels too: they then match what was rendered.
        ys_, xs_ = np.nonzero(solid)
        box = (x + int(xs_.min()), y + int(ys_.min()), x + int(xs_.max()) + 1, y + int(ys_.max()) + 1)
        centroid = (x + float(xs_.mean()) + 0.5, y + float(ys_.mean()) + 0.5)
        solid = solid[ys_.min():ys_.max() + 1, xs_.min():xs_.max() + 1]
        out.append(Detection(_shape_of(solid), color, box, centroid, int(len(xs_))))
    out.sort(key=lambda d: -d.area)
    return out


def background_color(frame: np.ndarray) -> str:
    """The BACKGROUNDS name nearest to the median of the frame's border pixels."""
    _check_frame(frame)
    f = np.asarray(frame, np.float32)
    border = np.concatenate([f[0], f[-1], f[:, 0], f[:, -1]])
    med = np.median(border, axis=0)
    names = list(BACKGROUNDS)
    d = [((med - np.array(BACKGROUNDS[n], np.float32)) ** 2).sum() for n in names]
    return names[int(np.argmin(d))]


def classify_motion(frames: np.ndarray, color: str | None = None) -> str:
    """One of MOTIONS for the object of `color` (default: the colour with the largest total area), from its
    centroid and area track; 'static' when the object shows in fewer than two frames."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames of shape {frames.shape} (expected uint8 [T,H,W,3] RGB)")
    if color is not None and color not in COLORS:
        raise ValueError(f"color {color!r}: unknown (expected one of {list(COLORS)})")
    per_frame = [detect_objects(f) for f in frames]
    if color is None:
        totals: dict[str, int] = {}
        for dets in per_frame:
            for d in dets:
                totals[d.color] = totals.get(d.color, 0) + d.area
        if not totals:
            return "static"
        color = max(totals, key=totals.get)
    track = []  # (cx, cy, area) of the largest component of that colour per frame where it shows
    for dets in per_frame:
        mine = [d for d in dets if d.color == color]
        if mine:
            track.append((*mine[0].centroid, mine[0].area))
    if len(track) < 2:
        return "static"
    tr = np.array(track, np.float64)
    k = max(1, len(tr) // 4)
    first, last = tr[:k].mean(0), tr[-k:].mean(0)
    # Size first: a growing shape's centroid also drifts a little (a triangle's centroid is not its box centre).
    ratio = last[2] / max(first[2], 1.0)
    if ratio >= _GROW_RATIO:
        return "growing"
    if ratio <= 1.0 / _GROW_RATIO:
        return "shrinking"
    dx, dy = last[0] - first[0], last[1] - first[1]
    if max(abs(dx), abs(dy)) < max(2.0, _STATIC_FRAC * min(frames.shape[1:3])):
        return "static"
    if abs(dx) >= abs(dy):
        return "moving right" if dx > 0 else "moving left"
    return "moving down" if dy > 0 else "moving up"

