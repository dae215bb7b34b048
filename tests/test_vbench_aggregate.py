"""VBench aggregation against numbers computed by hand, independently of the module's constants."""

import math

import pytest

from univid.eval.vbench.aggregate import aggregate
from univid.eval.vbench.constants import DIMENSIONS, NORMALIZE_MAX, NORMALIZE_MIN, QUALITY_DIMS, SEMANTIC_DIMS

# Paper Table 1, UniVid row (percent): Total 85.27, Quality 86.44, Semantic 80.58.
UNIVID_ROW = {
    "subject_consistency": 98.96, "background_consistency": 97.76, "temporal_flickering": 99.88,
    "motion_smoothness": 99.25, "dynamic_degree": 61.83, "aesthetic_quality": 64.21, "imaging_quality": 73.03,
    "object_class": 94.52, "multiple_objects": 77.45, "human_action": 94.20, "color": 92.10,
    "spatial_relationship": 80.70, "scene": 46.66, "appearance_style": 23.57, "temporal_style": 25.91,
    "overall_consistency": 27.60,
}


def _at_min() -> dict:
    return {d: NORMALIZE_MIN[d] for d in DIMENSIONS}


def test_dimension_lists():
    assert len(DIMENSIONS) == 16 and len(QUALITY_DIMS) == 7 and len(SEMANTIC_DIMS) == 9
    assert set(QUALITY_DIMS) | set(SEMANTIC_DIMS) == set(DIMENSIONS)


def test_paper_univid_row_by_hand():
    r = {d: v / 100 for d, v in UNIVID_ROW.items()}
    # Written out term by term from VBench's constants (Min, Max; dynamic degree weighs 0.5; quality / 6.5).
    quality = ((r["subject_consistency"] - 0.1462) / (1 - 0.1462)
               + (r["background_consistency"] - 0.2615) / (1 - 0.2615)
               + (r["temporal_flickering"] - 0.6293) / (1 - 0.6293)
               + (r["motion_smoothness"] - 0.706) / (0.9975 - 0.706)
               + 0.5 * r["dynamic_degree"]
               + r["aesthetic_quality"] + r["imaging_quality"]) / 6.5
    semantic = (r["object_class"] + r["multiple_objects"] + r["human_action"] + r["color"]
                + r["spatial_relationship"] + r["scene"] / 0.8222
                + (r["appearance_style"] - 0.0009) / (0.2855 - 0.0009)
                + r["temporal_style"] / 0.364 + r["overall_consistency"] / 0.364) / 9
    total = (4 * quality + semantic) / 5
    out = aggregate(r)
    assert out["quality"] == pytest.approx(100 * quality, abs=1e-9)
    assert out["semantic"] == pytest.approx(100 * semantic, abs=1e-9)
    assert out["total"] == pytest.approx(100 * total, abs=1e-9)
    # ... and the formula reproduces what the paper prints.
    assert (round(out["total"], 2), round(out["quality"], 2), round(out["semantic"], 2)) == (85.27, 86.44, 80.58)
    assert out["dimensions"] == pytest.approx(UNIVID_ROW)


def test_tiny_examples():
    out = aggregate(_at_min())
    assert (out["total"], out["quality"], out["semantic"]) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)

    at_max = {d: NORMALIZE_MAX[d] for d in DIMENSIONS}
    out = aggregate(at_max)
    assert (out["total"], out["quality"], out["semantic"]) == pytest.approx((100.0, 100.0, 100.0))

    only_dynamic = _at_min() | {"dynamic_degree": 1.0}  # 0.5 / 6.5 quality, no semantic
    out = aggregate(only_dynamic)
    assert out["quality"] == pytest.approx(100 * 0.5 / 6.5)
    assert out["semantic"] == pytest.approx(0.0, abs=1e-12)
    assert out["total"] == pytest.approx(100 * 4 * (0.5 / 6.5) / 5)

    half_scene = _at_min() | {"scene": 0.4111}  # half of scene's Max: 0.5 / 9 semantic
    out = aggregate(half_scene)
    assert out["semantic"] == pytest.approx(100 * 0.5 / 9)
    assert out["total"] == pytest.approx(100 * (0.5 / 9) / 5)
    assert out["dimensions"]["scene"] == pytest.approx(41.11)


def test_missing_dimension():
    r = _at_min()
    del r["color"]
    with pytest.raises(ValueError, match="'color' missing"):
        aggregate(r)


def test_unknown_dimension():
    with pytest.raises(ValueError, match="unknown dimension 'sharpness'"):
        aggregate(_at_min() | {"sharpness": 0.5})


@pytest.mark.parametrize("bad", [1.2, -0.1, math.nan, 98.96, "0.5", None, True])
def test_out_of_range(bad):
    with pytest.raises(ValueError, match="subject_consistency score"):
        aggregate(_at_min() | {"subject_consistency": bad})


@pytest.mark.parametrize("body", [b"total,quality\n85.27,86.44\n", b"\xff\xfe\x00garbage"])
def test_cli_names_the_file_that_is_not_json(tmp_path, capsys, body):
    from univid.cli import main

    path = tmp_path / "scores.csv"
    path.write_bytes(body)
    with pytest.raises(SystemExit) as exc:
        main(["vbench-aggregate", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert str(path) in err and "expected JSON" in err
