"""univid.eval.vbench.controls: the mismatched readings at sample points, and controls that tell a video that
follows its prompt (the world's own clip: control 0) from one that does not (a clip of every shape and colour)."""

import pytest

from univid.data.synthetic import COLORS, SHAPES, ClipSpec, ObjectSpec, render_clip, spec_from_prompt
from univid.eval.vbench.controls import control_entries, score_controls
from univid.eval.vbench.scorers import ScoringContext
from univid.eval.vbench.standin import score_videos

ENTRIES = [
    {"prompt_en": "a red circle", "dimension": ["color"], "auxiliary_info": {"color": {"color": "red"}}},
    {"prompt_en": "a square", "dimension": ["object_class"], "auxiliary_info": {"object_class": {"object": "square"}}},
    {"prompt_en": "a circle on the left of a square", "dimension": ["spatial_relationship"],
     "auxiliary_info": {"spatial_relationship": {"spatial_relationship": {
         "object_a": "circle", "object_b": "square", "relationship": "on the left of"}}}},
    {"prompt_en": "a red circle moving right", "dimension": ["dynamic_degree"]},
]


DIMS = ["color", "object_class", "spatial_relationship"]


def test_mismatched_readings_at_sample_points():
    first, second = control_entries(ENTRIES, 0), control_entries(ENTRIES, 1)
    colors = list(COLORS)
    after_red = colors[(colors.index("red") + 1) % len(colors)]
    assert [e["auxiliary_info"]["color"]["color"] for e in first[:1] + second[:1]] == \
        [after_red, colors[(colors.index("red") + 2) % len(colors)]]
    assert {first[1]["auxiliary_info"]["object_class"]["object"],
            second[1]["auxiliary_info"]["object_class"]["object"]} == set(SHAPES) - {"square"}
    assert first[2]["auxiliary_info"]["spatial_relationship"]["spatial_relationship"]["relationship"] == "on the top of"
    assert len(first) == 3 and len(second) == 2  # spatial has one mismatch; dynamic_degree none
    assert ENTRIES[0]["auxiliary_info"]["color"]["color"] == "red"  # the entries are not changed
    with pytest.raises(ValueError, match="expected 0 or 1"):
        control_entries(ENTRIES, 2)


def _clip(prompt):
    return render_clip(spec_from_prompt(prompt, 0))


def test_a_video_that_follows_its_prompt_scores_far_above_its_control():
    videos = {e["prompt_en"]: [_clip(e["prompt_en"])] for e in ENTRIES[:3]}
    scores = {r["dimension"]: r["score"] for r in score_videos(ENTRIES[:3], videos, DIMS, fps=8.0)["per_video"]}
    controls = score_controls(ENTRIES[:3], videos, fps=8.0)
    assert len(controls) == 5
    assert scores["color"] == 1.0 and scores["object_class"] == 1.0 and scores["spatial_relationship"] > 0.5
    assert all(r["score"] in (0.0, None) for r in controls if r["dimension"] != "spatial_relationship")
    assert [r["score"] for r in controls if r["dimension"] == "spatial_relationship"] == [0.0]


def test_a_video_of_everything_scores_its_control():
    # Circles in red and the two colours after it, a square and a triangle: whatever is asked, or mismatched, shows.
    colors = list(COLORS)
    reds = [colors[(colors.index("red") + k) % len(colors)] for k in range(3)]
    objs = [ObjectSpec("circle", c, 12 + 20 * k, 14, 9, "static") for k, c in enumerate(reds)]
    objs += [ObjectSpec("square", "blue", 14, 44, 9, "static"), ObjectSpec("triangle", "blue", 44, 44, 10, "static")]
    clip = render_clip(ClipSpec("everything", objs, "black"))
    entries = ENTRIES[:2]
    videos = {e["prompt_en"]: [clip] for e in entries}
    ctx = ScoringContext()
    scores = score_videos(entries, videos, ["color", "object_class"], fps=8.0, ctx=ctx)["per_video"]
    controls = score_controls(entries, videos, fps=8.0, ctx=ctx)
    assert sorted(r["score"] for r in scores) == [1.0, 1.0]
    assert sorted(r["score"] for r in controls) == [1.0, 1.0, 1.0, 1.0]
