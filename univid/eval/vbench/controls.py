"""Controls for the prompt-following dimensions: the same videos scored as if the prompt had asked for something else.

VBench's color, object_class and spatial_relationship reward any detection of what was asked; on a video of noise a
detector still finds shapes in some colour and some arrangement, and such a video scores above zero. Scored again as
if another shape (object_class), another colour (color) or the other axis (spatial_relationship: left/right against
top/bottom, the only thing VBench's position score checks) had been asked, a model that follows its prompts scores
well below its score, and noise scores about the same. The control is the mean over those mismatched readings.
"""

from __future__ import annotations

import copy
from typing import Mapping

from univid.eval.vbench.scorers import ScoringContext, default_context
from univid.eval.vbench.standin import score_videos

CONTROL_DIMS = ("color", "object_class", "spatial_relationship")
# The other axis of each relationship: VBench's position score checks only the axis, so this is its one mismatch.
OTHER_AXIS = {"on the left of": "on the top of", "on the right of": "on the bottom of",
              "on the top of": "on the left of", "on the bottom of": "on the right of"}


def control_entries(entries: list[dict], k: int) -> list[dict]:
    """The k-th mismatched reading (k = 0, 1) of each entry on a control dimension: the same prompt asking for the
    k-th other shape (object_class) or colour (color, in palette order after the asked one); spatial_relationship
    has one (k = 0 only). Entries on no control dimension are left out."""
    from univid.data.synthetic import COLORS, SHAPES

    if k not in (0, 1):
        raise ValueError(f"control reading k={k!r} (expected 0 or 1)")
    colors = list(COLORS)
    out = []
    for e in entries:
        dim = next((d for d in e["dimension"] if d in CONTROL_DIMS), None)
        aux = copy.deepcopy(e.get("auxiliary_info") or {})
        if dim == "object_class":
            asked = aux["object_class"]["object"]
            aux["object_class"]["object"] = [x for x in SHAPES if x != asked][k]
        elif dim == "color":
            i = colors.index(aux["color"]["color"])
            aux["color"]["color"] = colors[(i + 1 + k) % len(colors)]
        elif dim == "spatial_relationship" and k == 0:
            rel = aux["spatial_relationship"]["spatial_relationship"]
            rel["relationship"] = OTHER_AXIS[rel["relationship"]]
        else:
            continue
        out.append(dict(e, dimension=[dim], auxiliary_info=aux))
    return out


METHOD = ("the same videos scored as if another shape (object_class), colour (color) or axis "
          "(spatial_relationship) had been asked; mean over those readings (univid.eval.vbench.controls)")


def _readings(entries: list[dict], videos, kwargs: dict, wanted=None) -> list[dict]:
    """score_videos' result for each control reading of the entries that has any (on the `wanted` dimensions only,
    if given)."""
    out = []
    for k in (0, 1):
        controls = control_entries(entries, k)
        dims = sorted({d for e in controls for d in e["dimension"] if wanted is None or d in wanted})
        if dims:
            out.append(score_videos([e for e in controls if e["dimension"][0] in dims], videos, dims, **kwargs))
    return out


def score_controls(entries: list[dict], videos, *, samples_per_prompt: int = 1, fps: float | None = None,
                   long: Mapping | None = None, ctx: ScoringContext | None = None) -> list[dict]:
    """score_videos' per-video records of every control reading of the entries (same videos, same settings; pass
    the ScoringContext the scores used, and each frame is detected once)."""
    kwargs = dict(samples_per_prompt=samples_per_prompt, fps=fps, long=long, ctx=ctx or default_context())
    return [r for res in _readings(entries, videos, kwargs) for r in res["per_video"]]


def pool_controls(entries: list[dict], videos, dims=None, **kwargs) -> dict | None:
    """Each control dimension's control (of `dims`, default all), pooled as VBench pools the dimension
    (score_videos' "dimensions", raw in [0, 1]) and averaged over its readings: {"dimensions", "readings",
    "method"}; None when no entry is on such a dimension. kwargs: score_videos' (samples_per_prompt, fps, long,
    ctx, cache, video_hashes); pass the scores' own, so the controls read the videos exactly as the scores did."""
    kwargs.setdefault("ctx", default_context())
    pooled: dict[str, list[float]] = {}
    for res in _readings(entries, videos, kwargs, dims):
        for d, v in res["dimensions"].items():
            pooled.setdefault(d, []).append(float(v))
    if not pooled:
        return None
    return {"dimensions": {d: sum(v) / len(v) for d, v in sorted(pooled.items())},
            "readings": {d: len(v) for d, v in sorted(pooled.items())}, "method": METHOD}
