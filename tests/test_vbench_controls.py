"""univid.eval.vbench.controls: the mismatched readings at sample points, and controls that tell a video that
follows its prompt (the world's own clip: control 0) from one that does not (a clip of every shape and colour)."""

import pytest

from univid.data.synthetic import COLORS, SHAPES, ClipSpec, ObjectSpec, render_clip, spec_from_prompt
from univid.data.video import write_video
from univid.eval.cache import EvalCache
from univid.eval.vbench.controls import control_entries, pool_controls, score_controls
from univid.eval.vbench.scoring import merge_dimension_shards, score_video_dir
from univid.eval.vbench.scorers import ScoringContext
from univid.eval.vbench.standin import score_videos
from univid.io import read_json, write_json

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


def test_pooled_controls_at_sample_points():
    videos = {e["prompt_en"]: [_clip(e["prompt_en"])] for e in ENTRIES[:3]}
    pooled = pool_controls(ENTRIES, videos, fps=8.0)
    assert pooled["dimensions"] == {"color": 0.0, "object_class": 0.0, "spatial_relationship": 0.0}
    assert pooled["readings"] == {"color": 2, "object_class": 2, "spatial_relationship": 1}
    assert pool_controls(ENTRIES[3:], videos, fps=8.0) is None  # no entry on a control dimension


def test_scores_json_carries_the_controls_and_shards_merge_them(tmp_path):
    """score_video_dir writes each detection dimension's control beside its score (cached like the scores); an
    evaluate job sharded by dimension merges to the unsharded controls."""
    video_dir = tmp_path / "videos"
    entries = ENTRIES[:3] + [{"prompt_en": "a red circle moving right", "dimension": ["subject_consistency"]}]
    for e in entries:
        write_video(video_dir / f"{e['prompt_en']}-0.mp4", _clip(e["prompt_en"]), 8)
    write_json(tmp_path / "prompts.json", entries)
    cache = EvalCache(tmp_path / "cache")
    whole = score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / "all.json", DIMS + ["subject_consistency"],
                            cache=cache)
    assert whole["controls"]["dimensions"] == {"color": 0.0, "object_class": 0.0, "spatial_relationship": 0.0}
    assert whole["dimensions"]["color"] == 1.0 and read_json(tmp_path / "all.json")["controls"] == whole["controls"]
    again = score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / "again.json", DIMS, cache=cache)
    assert again["counts"]["videos_decoded"] == 0 and again["controls"] == whole["controls"]  # controls cached too
    parts = [score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / f"{i}.json", dims)
             for i, dims in enumerate([["color", "subject_consistency"], ["object_class", "spatial_relationship"]])]
    assert merge_dimension_shards(parts, entries)["controls"] == whole["controls"]
    none = score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / "sc.json", ["subject_consistency"])
    assert "controls" not in none  # no detection dimension scored: no control
