"""VBench's dimension names, normalisation bounds and weights, as in Vchitect/VBench `scripts/constant.py`.

VBench spells the dimensions with spaces there ("subject consistency"); we use the underscore names of its
`VBench_full_info.json` and evaluation API, which name the same 16 dimensions.
"""

from __future__ import annotations

QUALITY_DIMS: tuple[str, ...] = (
    "subject_consistency",
    "background_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "dynamic_degree",
    "aesthetic_quality",
    "imaging_quality",
)

SEMANTIC_DIMS: tuple[str, ...] = (
    "object_class",
    "multiple_objects",
    "human_action",
    "color",
    "spatial_relationship",
    "scene",
    "appearance_style",
    "temporal_style",
    "overall_consistency",
)

DIMENSIONS: tuple[str, ...] = QUALITY_DIMS + SEMANTIC_DIMS

# Empirical bounds VBench rescales each raw score by before weighting (scripts/constant.py, NORMALIZE_DIC).
NORMALIZE_MIN: dict[str, float] = {
    "subject_consistency": 0.1462,
    "background_consistency": 0.2615,
    "temporal_flickering": 0.6293,
    "motion_smoothness": 0.706,
    "dynamic_degree": 0.0,
    "aesthetic_quality": 0.0,
    "imaging_quality": 0.0,
    "object_class": 0.0,
    "multiple_objects": 0.0,
    "human_action": 0.0,
    "color": 0.0,
    "spatial_relationship": 0.0,
    "scene": 0.0,
    "appearance_style": 0.0009,
    "temporal_style": 0.0,
    "overall_consistency": 0.0,
}

NORMALIZE_MAX: dict[str, float] = {
    "subject_consistency": 1.0,
    "background_consistency": 1.0,
    "temporal_flickering": 1.0,
    "motion_smoothness": 0.9975,
    "dynamic_degree": 1.0,
    "aesthetic_quality": 1.0,
    "imaging_quality": 1.0,
    "object_class": 1.0,
    "multiple_objects": 1.0,
    "human_action": 1.0,
    "color": 1.0,
    "spatial_relationship": 1.0,
    "scene": 0.8222,
    "appearance_style": 0.2855,
    "temporal_style": 0.364,
    "overall_consistency": 0.364,
}

# VBench halves dynamic degree's say in the quality score; every other dimension counts once.
DIM_WEIGHT: dict[str, float] = {d: (0.5 if d == "dynamic_degree" else 1.0) for d in DIMENSIONS}

# Total = (QUALITY_WEIGHT * quality + SEMANTIC_WEIGHT * semantic) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT).
QUALITY_WEIGHT = 4.0
SEMANTIC_WEIGHT = 1.0
