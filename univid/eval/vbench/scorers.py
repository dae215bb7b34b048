"""Smoke-scale VBench scorers: each dimension's official formula, with a named offline stand-in for its model.

At paper scale the official vbench code scores the videos. Here (CPU, no weights) every dimension keeps VBench's
frame sampling and per-video formula and swaps only the network for a stand-in that is built offline; the
stand-in's name is the scorer's backend id and goes into every result, so a smoke number is never mistaken for
a VBench number. Random-init networks measure nothing semantic: their scores exercise the pipeline, no more.

Each `Scorer.fn(frames, entry, ctx)` takes the frames already sampled the way VBench samples them for that
dimension (`Scorer.sample`), the prompt's `VBench_full_info.json` entry and a `ScoringContext`, and returns a
float in [0, 1], or None where VBench leaves the video out of the dimension (color, when the object never appears).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from univid.eval.vbench.constants import DIMENSIONS

# ---------------------------------------------------------------------------------------------------------------
# Frame sampling, as VBench loads frames for each dimension.


def vbench_middle_indices(num_frames: int, vlen: int) -> list[int]:
    """`vbench.utils.get_frame_indices(num_frames, vlen, sample="middle")`: centres of equal segments, padded with
    the last index when the video is shorter than num_frames (so short videos weigh their last frame more)."""
    acc = min(num_frames, vlen)
    edges = np.linspace(start=0, stop=vlen, num=acc + 1).astype(int)
    idx = [(int(edges[k]) + int(edges[k + 1]) - 1) // 2 for k in range(acc)]
    return idx + [idx[-1]] * (num_frames - len(idx))


def _all_frames(frames: np.ndarray, fps: float | None) -> np.ndarray:
    return frames


def _middle(n: int) -> Callable[[np.ndarray, float | None], np.ndarray]:
    def sample(frames: np.ndarray, fps: float | None) -> np.ndarray:
        return frames[vbench_middle_indices(n, len(frames))]

    sample.__name__ = f"middle{n}"
    return sample


def _fps_stride(frames: np.ndarray, fps: float | None) -> np.ndarray:
    # dynamic_degree.py keeps every round(fps/8)-th frame so that flow is measured at about 8 fps whatever the
    # video's rate. Without a known fps (bare arrays) every frame is kept, i.e. the frames are taken as 8 fps.
    interval = max(1, round(fps / 8)) if fps else 1
    return frames[::interval]


# ---------------------------------------------------------------------------------------------------------------
# Stand-in backbones: tiny, random-init, seeded, built once per process and seed.

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PX = 32  # stand-in input size (VBench feeds 224 px to DINO ViT-B/16 and CLIP ViT-B/32)

DINO_STANDIN = "dino-arch-vit-tiny-p8-h64-l2-32px-random-init-seed{seed}"
CLIP_STANDIN = "clip-arch-vit-tiny-p8-w64-l2-32px-random-init-seed{seed}"


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    import torch

    # fork_rng: seeding for the build must not move the caller's global torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@functools.lru_cache(maxsize=None)
def _build_dino(seed: int):
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(image_size=_PX, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return _seeded(seed, lambda: ViTModel(cfg, add_pooling_layer=False))


@functools.lru_cache(maxsize=None)
def _build_clip(seed: int):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=8, image_size=_PX)
    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)
    return _seeded(seed, lambda: CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text))


@functools.lru_cache(maxsize=4096)
def _clip_text_feature(seed: int, text: str):
    import torch
    from open_clip.tokenizer import tokenize  # CLIP's BPE, shipped inside open_clip

    with torch.no_grad():
        f = _build_clip(seed).encode_text(tokenize([text])).float()
    return torch.nn.functional.normalize(f, dim=-1)[0]


class ScoringContext:
    """What scorers share: the seeded stand-in backbones (process-cached), the synthetic-world oracle, and a
    small cache of oracle detections so that the four detection dimensions detect each frame once."""

    def __init__(self, seed: int = 0, oracle: Any = None, shapes: tuple[str, ...] | None = None):
        self.seed = seed
        self._oracle = oracle
        self._shapes = shapes
        self._detections: dict[bytes, list] = {}

    @property
    def oracle(self):
        if self._oracle is None:
            self._oracle = importlib.import_module("univid.data.oracle")
        return self._oracle

    @property
    def shapes(self) -> tuple[str, ...]:
        if self._shapes is None:
            self._shapes = tuple(importlib.import_module("univid.data.synthetic").SHAPES)
        return self._shapes

    def dino(self):
        return _build_dino(self.seed)

    def clip(self):
        return _build_clip(self.seed)

    def text_feature(self, text: str):
        return _clip_text_feature(self.seed, text)

    def detect(self, frame: np.ndarray) -> list:
        key = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest() + repr(frame.shape).encode()
        if key not in self._detections:
            if len(self._detections) >= 4096:  # bounded: a long run must not keep every frame's detections
                self._detections.clear()
            self._detections[key] = list(self.oracle.detect_objects(frame))
        return self._detections[key]


@functools.lru_cache(maxsize=None)
def default_context(seed: int = 0) -> ScoringContext:
    return ScoringContext(seed=seed)


def _to_tensor(frames: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # [T,3,H,W], 0..255


def _resize_shorter(x, n: int, mode: str):
    """torchvision `Resize(n, antialias=False)` on a tensor: shorter side to n, aspect kept (longer side truncated)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    size = (n, int(n * w / h)) if h <= w else (int(n * h / w), n)
    if (h, w) == size:
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=False)


def _normalize(x, mean, std):
    import torch

    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _dino_features(frames: np.ndarray, ctx: ScoringContext):
    """VBench `dino_transform` (shorter side resize, ImageNet normalisation, no crop) then the CLS feature."""
    import torch

    x = _normalize(_resize_shorter(_to_tensor(frames), _PX, "bilinear") / 255.0, _IMAGENET_MEAN, _IMAGENET_STD)
    with torch.no_grad():
        cls = ctx.dino()(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state[:, 0]
    return torch.nn.functional.normalize(cls.float(), dim=-1)


def _clip_image_features(frames: np.ndarray, ctx: ScoringContext):
    """VBench `clip_transform` (bicubic shorter-side resize, centre crop, CLIP normalisation) then encode_image.
    appearance_style.py goes through PIL (`clip_transform_Image`, antialiased); at 32 px the tensor path serves all."""
    import torch

    x = _resize_shorter(_to_tensor(frames), _PX, "bicubic")
    h, w = x.shape[-2:]
    top, left = int(round((h - _PX) / 2.0)), int(round((w - _PX) / 2.0))  # torchvision CenterCrop's rounding
    x = _normalize(x[..., top:top + _PX, left:left + _PX] / 255.0, _CLIP_MEAN, _CLIP_STD)
    with torch.no_grad():
        f = ctx.clip().encode_image(x).float()
    return torch.nn.functional.normalize(f, dim=-1)


# ---------------------------------------------------------------------------------------------------------------
# Per-dimension formulas.


def _need_frames(frames: np.ndarray, n: int, what: str) -> None:
    if len(frames) < n:
        raise ValueError(f"{what}: {len(frames)} frame(s) (expected at least {n})")


def _consistency(feats) -> float:
    """subject/background_consistency.py: per frame i>0, mean of cos(f_i, f_{i-1}) and cos(f_i, f_0), each clamped
    at 0, averaged over the frames (features already L2-normalised, so a dot product is the cosine)."""
    sims = []
    for i in range(1, len(feats)):
        sim_pre = max(0.0, float(feats[i - 1] @ feats[i]))
        sim_fir = max(0.0, float(feats[0] @ feats[i]))
        sims.append((sim_pre + sim_fir) / 2)
    return min(1.0, float(np.mean(sims)))  # min: float rounding can put a cosine a hair above 1


def subject_consistency(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    _need_frames(frames, 2, "subject_consistency")
    return _consistency(_dino_features(frames, ctx))


def background_consistency(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    _need_frames(frames, 2, "background_consistency")
    return _consistency(_clip_image_features(frames, ctx))


def temporal_flickering(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """temporal_flickering.py exactly: (255 - mean over consecutive pairs of the pair's mean |difference|) / 255."""
    _need_frames(frames, 2, "temporal_flickering")
    f = frames.astype(np.float32)
    mae = np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))
    return float((255.0 - float(np.mean(mae))) / 255.0)


def motion_smoothness(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """motion_smoothness.py: rebuild every odd frame from its even neighbours, score (255 - mean |error|) / 255.
    The interpolator is plain linear blending in place of AMT-S; its midpoint is truncated to uint8 as AMT's
    `tensor2img` truncates."""
    even = frames[0::2]
    if len(even) < 2:
        raise ValueError(f"motion_smoothness: {len(frames)} frame(s) (expected at least 3, so 2 even frames)")
    mid = ((even[:-1].astype(np.uint16) + even[1:].astype(np.uint16)) // 2).astype(np.int16)
    odd = frames[1::2][: len(mid)].astype(np.int16)
    per_frame = np.abs(odd - mid).mean(axis=(1, 2, 3))
    return float((255.0 - float(np.mean(per_frame))) / 255.0)


def _flow_top5_magnitude(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    rad = np.sqrt(np.square(flow[..., 0]) + np.square(flow[..., 1])).ravel()
    cut = int(rad.size * 0.05)  # DynamicDegree.get_score: mean of the largest 5% magnitudes
    return float(np.mean(np.sort(rad)[::-1][:cut]))


def dynamic_degree(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """dynamic_degree.py: a video is dynamic (1.0) when at least round(4*T/16) consecutive pairs have a top-5% flow
    magnitude above 6*min(H,W)/256 px; OpenCV Farneback flow stands in for RAFT."""
    import cv2

    _need_frames(frames, 2, "dynamic_degree")
    t, h, w, _ = frames.shape
    thres = 6.0 * (min(h, w) / 256.0)
    count_num = round(4 * (t / 16.0))
    # RAFT's InputPadder ("sintel" mode): replicate-pad to a multiple of 8, flow measured on the padded frame.
    ph, pw = (((h // 8) + 1) * 8 - h) % 8, (((w // 8) + 1) * 8 - w) % 8
    pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in np.pad(frames, pad, mode="edge")]
    count = 0
    for a, b in zip(gray[:-1], gray[1:]):  # DynamicDegree.check_move, including its early exit
        if _flow_top5_magnitude(a, b) > thres:
            count += 1
        if count >= count_num:
            return 1.0
    return 0.0


# Hasler & Suesstrunk (2003) rate M ~ 45 "averagely colourful" (15 slightly ... 109 extremely); M/(M+45) maps that
# anchor to 0.5, is monotone, and stays in [0, 1) however saturated the frame.
COLOURFULNESS_HALF = 45.0
# Variance of the Laplacian ~100 is the common blur/sharp cut-off; v/(v+100) maps it to 0.5.
SHARPNESS_HALF = 100.0


def aesthetic_quality(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """Stand-in for LAION-aesthetic (per-frame score / 10, averaged): Hasler-Suesstrunk colourfulness M per frame,
    mapped to M / (M + 45), averaged over frames. It rewards colour, not beauty."""
    f = frames.astype(np.float64)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    m = (np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2)
         + 0.3 * np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2))
    return float(np.mean(m / (m + COLOURFULNESS_HALF)))


def imaging_quality(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """Stand-in for MUSIQ (per-frame score / 100, averaged): variance of the Laplacian v per grey frame, mapped to
    v / (v + 100), averaged. Frames go through VBench's default 'longer' preprocessing (longer side <= 512)."""
    import cv2

    scores = []
    for frame in frames:
        h, w = frame.shape[:2]
        if max(h, w) > 512:
            s = 512.0 / max(h, w)
            frame = cv2.resize(frame, (int(s * w), int(s * h)), interpolation=cv2.INTER_LINEAR)
        v = float(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
        scores.append(v / (v + SHARPNESS_HALF))
    return float(np.mean(scores))


def _prompt(entry: dict) -> str:
    p = entry.get("prompt_en")
    if not isinstance(p, str) or not p:
        raise ValueError(f"prompt entry {str(entry)[:80]}: no 'prompt_en' (expected a VBench_full_info.json entry)")
    return p


def _aux(entry: dict, dim: str) -> Any:
    aux = (entry.get("auxiliary_info") or {}).get(dim)
    if aux is None:
        raise ValueError(f"{_prompt(entry)!r}: no auxiliary_info[{dim!r}] (expected it in a {dim} prompt entry)")
    return aux


def _aux_field(entry: dict, dim: str, key: str) -> Any:
    aux = _aux(entry, dim)
    if not isinstance(aux, dict) or key not in aux:
        raise ValueError(f"{_prompt(entry)!r}: auxiliary_info[{dim!r}] = {aux!r} (expected a dict with {key!r})")
    return aux[key]


def object_class(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """object_class.py: fraction of frames whose detections include the asked object."""
    obj = _aux_field(entry, "object_class", "object")
    return sum(any(d.shape == obj for d in ctx.detect(f)) for f in frames) / len(frames)


def multiple_objects(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """multiple_objects.py: fraction of frames whose detections include both objects of "A and B"."""
    spec = _aux_field(entry, "multiple_objects", "object")
    if " and " not in spec:
        raise ValueError(f"{_prompt(entry)!r}: multiple_objects object {spec!r} (expected 'A and B')")
    key_a, key_b = (k.strip() for k in spec.split(" and ", 1))
    hits = 0
    for f in frames:
        found = {d.shape for d in ctx.detect(f)}
        hits += key_a in found and key_b in found
    return hits / len(frames)


def _color_object(entry: dict, color: str, ctx: ScoringContext) -> str:
    # color.py takes the object from the prompt: drop "a "/"an " and the colour word. Smoke prompts may say more
    # ("a red circle on a white background"), so when that leaves no shape name, take the one shape word named.
    prompt = _prompt(entry)
    obj = prompt.replace("a ", "").replace("an ", "").replace(color, "").strip()
    if obj in ctx.shapes:
        return obj
    named = [s for s in ctx.shapes if re.search(rf"\b{re.escape(s)}\b", prompt)]
    if len(named) != 1:
        raise ValueError(f"{prompt!r}: color prompt names shapes {named} (expected exactly one of {list(ctx.shapes)})")
    return named[0]


def color(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float | None:
    """color.py: among frames where the object is detected, the fraction where it is detected in the asked colour.
    A video where the object never appears has no colour score: VBench leaves it out (None)."""
    asked = _aux_field(entry, "color", "color")
    obj = _color_object(entry, asked, ctx)
    with_object = with_colour = 0
    for f in frames:
        dets = [d for d in ctx.detect(f) if d.shape == obj]
        with_object += bool(dets)
        with_colour += any(d.color == asked for d in dets)
    return with_colour / with_object if with_object else None


def position_score(locality: str, box1, box2, iou_threshold: float = 0.1) -> float:
    """spatial_relationship.get_position_score, as VBench has it: it checks only the axis (left/right wants a
    mostly horizontal offset, top/bottom a mostly vertical one) and the overlap, not which object is where."""
    x0a, y0a, x1a, y1a = (float(v) for v in box1)
    x0b, y0b, x1b, y1b = (float(v) for v in box2)
    x_distance = (x0b + x1b) / 2 - (x0a + x1a) / 2
    y_distance = (y0b + y1b) / 2 - (y0a + y1a) / 2
    inter = max(0.0, min(x1a, x1b) - max(x0a, x0b)) * max(0.0, min(y1a, y1b) - max(y0a, y0b))
    union = (x1a - x0a) * (y1a - y0a) + (x1b - x0b) * (y1b - y0b) - inter
    iou = inter / union if union > 0 else 0.0  # VBench would divide by zero on two empty boxes
    if locality in "on the right of" or locality in "on the left of":
        axis_ok = abs(x_distance) > abs(y_distance)
    elif locality in "on the bottom of" or locality in "on the top of":
        axis_ok = abs(y_distance) > abs(x_distance)
    else:
        return 0.0
    if not axis_ok:
        return 0.0
    return 1.0 if iou < iou_threshold else iou_threshold / iou


def spatial_relationship(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """spatial_relationship.py: per frame, the best position_score over pairs of detections of object_a or
    object_b (0 with fewer than two), averaged over frames."""
    rel = _aux_field(entry, "spatial_relationship", "spatial_relationship")
    if not isinstance(rel, dict) or not {"object_a", "object_b", "relationship"} <= set(rel):
        raise ValueError(f"{_prompt(entry)!r}: spatial_relationship {rel!r} "
                         "(expected a dict with object_a, object_b, relationship)")
    frame_scores = []
    for f in frames:
        boxes = [d.bbox for d in ctx.detect(f) if d.shape in (rel["object_a"], rel["object_b"])]
        best = 0.0
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                best = max(best, position_score(rel["relationship"], boxes[i], boxes[j]))
        frame_scores.append(best)
    return float(np.mean(frame_scores))


def scene(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """scene.py: fraction of frames whose caption matches the scene; the oracle's background colour stands in for
    Tag2Text's caption. Smoke scenes read "<background> background"."""
    key = _aux_field(entry, "scene", "scene")
    key = key.get("scene") if isinstance(key, dict) else key
    if not isinstance(key, str) or not key.endswith(" background"):
        raise ValueError(f"{_prompt(entry)!r}: scene {key!r} (expected '<background> background' for the oracle)")
    want = key[: -len(" background")]
    return sum(ctx.oracle.background_color(f) == want for f in frames) / len(frames)


def _action_label(entry: dict) -> str:
    aux = (entry.get("auxiliary_info") or {}).get("human_action")
    if isinstance(aux, dict) and "action" in aux:
        return aux["action"]
    # VBench's own human_action prompts carry no aux: it parses "A person is <action>" out of the video file name.
    return _prompt(entry).lower().split("person is ")[-1].split("_")[0]


def human_action(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """human_action.py: 1 if the classifier names the asked action, else 0; the oracle's motion classifier stands
    in for UMT's Kinetics-400 top-5."""
    return 1.0 if ctx.oracle.classify_motion(frames) == _action_label(entry) else 0.0


def appearance_style(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """appearance_style.py: per frame CLIP image-text similarity (CLIP logit / 100, i.e. the cosine, since trained
    CLIP's logit scale is 100), averaged over frames. The stand-in's scale is untrained, so the cosine is used
    directly; each frame's value is clamped to [0, 1]."""
    style = _aux_field(entry, "appearance_style", "appearance_style")
    sims = (_clip_image_features(frames, ctx) @ ctx.text_feature(style)).numpy()
    return float(np.mean(np.clip(sims, 0.0, 1.0)))


def _video_text_similarity(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    """temporal_style.py / overall_consistency.py: ViCLIP video feature . prompt feature on 8 middle frames. The
    stand-in's video feature is the normalised mean of its per-frame CLIP features; clamped to [0, 1]."""
    import torch

    video = torch.nn.functional.normalize(_clip_image_features(frames, ctx).mean(dim=0), dim=-1)
    return float(min(1.0, max(0.0, float(video @ ctx.text_feature(_prompt(entry))))))


def temporal_style(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    return _video_text_similarity(frames, entry, ctx)


def overall_consistency(frames: np.ndarray, entry: dict, ctx: ScoringContext) -> float:
    return _video_text_similarity(frames, entry, ctx)


# ---------------------------------------------------------------------------------------------------------------
# The registry.

POOLINGS = ("video", "frame", "pair")


@dataclass(frozen=True)
class Scorer:
    """One dimension's smoke scorer.

    backend_id names what produced the number; `{seed}` and `{oracle}` are filled from the context by `backend`.
    sample: VBench's frame selection for this dimension. pooling: how VBench pools videos into the dimension score
    ("video": plain mean; "frame"/"pair": weighted by the frames/frame pairs each video contributed).
    """

    name: str
    backend_id: str
    fn: Callable[[np.ndarray, dict, ScoringContext], float | None]
    sample: Callable[[np.ndarray, float | None], np.ndarray] = _all_frames
    pooling: str = "video"

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"scorer {self.name}: pooling {self.pooling!r} (expected one of {POOLINGS})")

    def backend(self, ctx: ScoringContext) -> str:
        fields = {"seed": ctx.seed}
        if "{oracle}" in self.backend_id:
            fields["oracle"] = ctx.oracle.detection_backend_id()
        return self.backend_id.format(**fields)

    def score(self, frames: np.ndarray, entry: dict, ctx: ScoringContext,
              fps: float | None = None) -> tuple[float | None, int]:
        """(score in [0, 1] or None, pooling weight) for one video of uint8 [T,H,W,3] RGB frames."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"{self.name}: frames of shape {getattr(frames, 'shape', None)} "
                             f"dtype {getattr(frames, 'dtype', type(frames).__name__)} (expected uint8 [T,H,W,3])")
        sampled = self.sample(frames, fps)
        value = self.fn(sampled, entry, ctx)
        if value is not None:
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.name}: score {value!r} for {entry.get('prompt_en')!r} (expected [0, 1])")
        weight = {"video": 1, "frame": len(sampled), "pair": len(sampled) - 1}[self.pooling]
        return value, weight


_DET = "standin:synthetic-oracle-detect_objects-for-grit@{oracle}"
SCORERS: dict[str, Scorer] = {
    s.name: s
    for s in (
        Scorer("subject_consistency", f"official-formula:subject_consistency+standin:{DINO_STANDIN}-for-dino-vitb16",
               subject_consistency, pooling="pair"),
        Scorer("background_consistency",
               f"official-formula:background_consistency+standin:{CLIP_STANDIN}-for-clip-vitb32",
               background_consistency, pooling="pair"),
        Scorer("temporal_flickering", "official-formula:temporal_flickering", temporal_flickering),
        Scorer("motion_smoothness", "official-formula:motion_smoothness+standin:linear-interpolation-for-amt-s",
               motion_smoothness),
        Scorer("dynamic_degree", "official-formula:dynamic_degree+standin:opencv-farneback-flow-for-raft",
               dynamic_degree, sample=_fps_stride),
        Scorer("aesthetic_quality", "standin:hasler-susstrunk-colourfulness-m/(m+45)-for-laion-aesthetic",
               aesthetic_quality),
        Scorer("imaging_quality", "standin:laplacian-variance-sharpness-v/(v+100)-for-musiq", imaging_quality),
        Scorer("object_class", f"official-formula:object_class+{_DET}", object_class, _middle(16), "frame"),
        Scorer("multiple_objects", f"official-formula:multiple_objects+{_DET}", multiple_objects, _middle(16), "frame"),
        Scorer("human_action",
               "official-formula:human_action+standin:synthetic-oracle-classify_motion-for-umt@{oracle}",
               human_action, _middle(16)),
        Scorer("color", f"official-formula:color+{_DET}", color, _middle(16)),
        Scorer("spatial_relationship", f"official-formula:spatial_relationship+{_DET}", spatial_relationship,
               _middle(16), "frame"),
        Scorer("scene", "official-formula:scene+standin:synthetic-oracle-background_color-for-tag2text@{oracle}",
               scene, _middle(16), "frame"),
        Scorer("appearance_style", f"official-formula:appearance_style+standin:{CLIP_STANDIN}-for-clip-vitb32",
               appearance_style, pooling="frame"),
        Scorer("temporal_style", f"official-formula:temporal_style+standin:{CLIP_STANDIN}-frame-mean-for-viclip",
               temporal_style, _middle(8)),
        Scorer("overall_consistency",
               f"official-formula:overall_consistency+standin:{CLIP_STANDIN}-frame-mean-for-viclip",
               overall_consistency, _middle(8)),
    )
}

if sorted(SCORERS) != sorted(DIMENSIONS):  # a registry edit must not silently drop or invent a dimension
    raise RuntimeError(f"SCORERS covers {sorted(SCORERS)} (expected exactly VBench's 16 dimensions)")
