"""VBench's Total / Quality / Semantic scores from the 16 raw dimension scores (`scripts/cal_final_score.py`)."""

from __future__ import annotations

import math

from univid.eval.vbench.constants import (
    DIM_WEIGHT,
    DIMENSIONS,
    NORMALIZE_MAX,
    NORMALIZE_MIN,
    QUALITY_DIMS,
    QUALITY_WEIGHT,
    SEMANTIC_DIMS,
    SEMANTIC_WEIGHT,
)


def _check(raw: dict[str, float]) -> None:
    unknown = sorted(set(raw) - set(DIMENSIONS))
    if unknown:
        raise ValueError(f"vbench aggregate: unknown dimension {unknown[0]!r} "
                         f"(expected one of {', '.join(DIMENSIONS)})")
    for d in DIMENSIONS:
        if d not in raw:
            raise ValueError(f"vbench aggregate: dimension {d!r} missing (expected raw scores for all 16 dimensions)")
        s = raw[d]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 0.0 <= s <= 1.0:
            raise ValueError(f"vbench aggregate: {d} score {s!r} (expected a raw score in [0, 1], not a percentage)")


def normalized(raw: dict[str, float]) -> dict[str, float]:
    """(s - Min) / (Max - Min) * weight per dimension, unclipped as in VBench (above Max it exceeds the weight)."""
    _check(raw)
    return {
        d: (float(raw[d]) - NORMALIZE_MIN[d]) / (NORMALIZE_MAX[d] - NORMALIZE_MIN[d]) * DIM_WEIGHT[d]
        for d in DIMENSIONS
    }


def aggregate(raw: dict[str, float]) -> dict:
    """Total, Quality and Semantic in percent (as papers print them), plus the raw dimension scores in percent."""
    norm = normalized(raw)
    quality = sum(norm[d] for d in QUALITY_DIMS) / sum(DIM_WEIGHT[d] for d in QUALITY_DIMS)
    semantic = sum(norm[d] for d in SEMANTIC_DIMS) / sum(DIM_WEIGHT[d] for d in SEMANTIC_DIMS)
    total = (QUALITY_WEIGHT * quality + SEMANTIC_WEIGHT * semantic) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT)
    return {
        "total": 100.0 * total,
        "quality": 100.0 * quality,
        "semantic": 100.0 * semantic,
        "dimensions": {d: 100.0 * float(raw[d]) for d in DIMENSIONS},
    }
