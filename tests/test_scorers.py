"""Smoke VBench scorers: ranges, official formulas, stand-in behaviour, oracle-based success rates, pooling, I/O."""

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from univid.data import oracle
from univid.data import synthetic as W
from univid.eval.vbench.scorers import SCORERS, ScoringContext, default_context, position_score, vbench_middle_indices
from univid.eval.vbench.constants import DIMENSIONS
from univid.eval.vbench.scoring import score_video_dir
from univid.eval.vbench.standin import score_videos


@pytest.fixture(scope="module")
def ctx():
    return default_context()


def render(objects, background="black", t=17, h=64, w=64):
    """A synthetic-world clip: objects as (shape, colour, x, y, size, motion)."""
    spec = W.ClipSpec("test", [W.ObjectSpec(*o) for o in objects], background, t, h, w)
    return W.render_clip(spec)


def entry(prompt, dim, aux=None):
    e = {"prompt_en": prompt, "dimension": [dim]}
    if aux is not None:
        e["auxiliary_info"] = {dim: aux}
    return e


def score(dim, frames, e, ctx, fps=None):
    return SCORERS[dim].score(frames, e, ctx, fps=fps)[0]


# ------------------------------------------------------------------------------------------------ registry, ranges


def test_registry_covers_the_16_dimensions(ctx):
    assert list(SCORERS) == list(DIMENSIONS)
    backends = {d: s.backend(ctx) for d, s in SCORERS.items()}
    assert all(isinstance(b, str) and b for b in backends.values())
    assert len(set(backends.values())) == 16
    assert backends["temporal_flickering"] == "official-formula:temporal_flickering"
    # Every other dimension names the stand-in that replaced VBench's model, with the seed or oracle version.
    for d, b in backends.items():
        if d != "temporal_flickering":
            assert "standin:" in b, d
        assert "{" not in b and "}" not in b, d
    assert "seed0" in backends["subject_consistency"]
    assert backends["object_class"].endswith("@" + oracle.detection_backend_id())


def test_every_scorer_returns_a_float_in_0_1_on_suite_clips(ctx):
    suite = W.vbench_prompt_suite(0, per_dimension=1)
    seen = set()
    for e in suite:
        frames = W.render_clip(W.spec_from_prompt(e, seed=3))
        for d in e["dimension"]:
            value, weight = SCORERS[d].score(frames, e, ctx, fps=8.0)
            assert isinstance(value, float) and 0.0 <= value <= 1.0, (d, value)
            assert isinstance(weight, int) and weight >= 1
            seen.add(d)
    assert seen == set(DIMENSIONS)


def test_bad_frames_rejected(ctx):
    with pytest.raises(ValueError, match="temporal_flickering: frames of shape"):
        SCORERS["temporal_flickering"].score(np.zeros((4, 8, 8, 3), np.float32), {}, ctx)


# ------------------------------------------------------------------------------------------------ official formulas


def test_middle_indices_match_vbench():
    # Values from vbench.utils.get_frame_indices(n, vlen, sample="middle") (vbench 0.1.5).
    assert vbench_middle_indices(16, 17) == list(range(16))
    assert vbench_middle_indices(16, 8) == [0, 1, 2, 3, 4, 5, 6, 7] + [7] * 8
    assert vbench_middle_indices(8, 17) == [0, 2, 4, 6, 8, 10, 12, 15]
    assert vbench_middle_indices(16, 121) == [3, 10, 18, 25, 33, 40, 48, 55, 63, 71, 78, 86, 93, 101, 108, 116]


def test_temporal_flickering_equals_direct_computation(ctx):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 16, 20, 3), dtype=np.uint8)
    maes = [np.mean(cv2.absdiff(frames[i].astype(np.float32), frames[i + 1].astype(np.float32))) for i in range(5)]
    assert score("temporal_flickering", frames, {}, ctx) == pytest.approx((255.0 - np.mean(maes)) / 255.0, abs=1e-9)


def test_motion_smoothness_equals_direct_computation(ctx):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8)
    errs = []
    for k in range(3):  # odd frame 2k+1 against the truncated midpoint of frames 2k and 2k+2
        mid = ((frames[2 * k].astype(int) + frames[2 * k + 2].astype(int)) // 2).astype(np.uint8)
        errs.append(np.mean(cv2.absdiff(frames[2 * k + 1], mid)))
    assert score("motion_smoothness", frames, {}, ctx) == pytest.approx((255.0 - np.mean(errs)) / 255.0, abs=1e-9)


def test_static_video(ctx):
    frames = render([("circle", "red", 30, 30, 14, "static")])
    assert score("temporal_flickering", frames, {}, ctx) == 1.0
    assert score("motion_smoothness", frames, {}, ctx) == 1.0
    assert score("dynamic_degree", frames, {}, ctx, fps=8.0) == 0.0
    assert score("subject_consistency", frames, {}, ctx) == pytest.approx(1.0, abs=1e-6)


def test_fast_motion_is_dynamic(ctx):
    frames = np.zeros((17, 64, 64, 3), np.uint8)
    for t in range(17):  # a 12 px square moving 3 px per frame: above VBench's 6*64/256 = 1.5 px threshold
        frames[t, 26:38, 2 + 3 * t:14 + 3 * t] = (220, 40, 40)
    assert score("dynamic_degree", frames, {}, ctx, fps=8.0) == 1.0


def test_dynamic_degree_fps_stride():
    frames = np.zeros((17, 8, 8, 3), np.uint8)
    assert len(SCORERS["dynamic_degree"].sample(frames, 24.0)) == 6  # every round(24/8) = 3rd frame
    assert len(SCORERS["dynamic_degree"].sample(frames, 8.0)) == 17
    assert len(SCORERS["dynamic_degree"].sample(frames, None)) == 17


def test_noisy_or_shuffled_video_scores_lower(ctx):
    smooth = render([("square", "blue", 20, 30, 14, "moving right"), ("circle", "yellow", 40, 14, 10, "static")],
                    background="gray")
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, smooth.shape, dtype=np.uint8)
    shuffled = smooth[rng.permutation(len(smooth))]
    for d in ("subject_consistency", "temporal_flickering"):
        s = score(d, smooth, {}, ctx)
        assert score(d, noisy, {}, ctx) < s, d
        assert score(d, shuffled, {}, ctx) < s, d
    assert score("background_consistency", noisy, {}, ctx) < score("background_consistency", smooth, {}, ctx)


def test_quality_standins_order(ctx):
    grey = np.full((4, 32, 32, 3), 128, np.uint8)
    colourful = render([("square", "red", 16, 16, 14, "static"), ("circle", "blue", 46, 46, 14, "static")],
                       background="white", t=4)
    assert score("aesthetic_quality", grey, {}, ctx) == 0.0
    assert score("aesthetic_quality", colourful, {}, ctx) > 0.1
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in colourful])
    assert score("imaging_quality", grey, {}, ctx) == 0.0
    assert score("imaging_quality", blurred, {}, ctx) < score("imaging_quality", colourful, {}, ctx)


def test_determinism(ctx):
    frames = W.render_clip(W.spec_from_prompt("a red circle moving right on a gray background", seed=0))
    e = {"prompt_en": "a red circle moving right", "dimension": list(DIMENSIONS), "auxiliary_info": {
        "object_class": {"object": "circle"}, "multiple_objects": {"object": "circle and square"},
        "color": {"color": "red"}, "human_action": {"action": "moving right"},
        "spatial_relationship": {"spatial_relationship": {"object_a": "circle", "object_b": "square",
                                                          "relationship": "on the left of"}},
        "scene": {"scene": {"scene": "gray background"}}, "appearance_style": {"appearance_style": "oil painting"}}}
    first = {d: s.score(frames, e, ctx, fps=8.0) for d, s in SCORERS.items()}
    again = {d: s.score(frames, e, ctx, fps=8.0) for d, s in SCORERS.items()}
    fresh = {d: s.score(frames, e, ScoringContext(seed=0), fps=8.0) for d, s in SCORERS.items()}
    assert first == again == fresh
    other = ScoringContext(seed=1)
    assert SCORERS["subject_consistency"].backend(other).count("seed1") == 1
    assert SCORERS["subject_consistency"].score(frames, e, other)[0] != first["subject_consistency"][0]


# ------------------------------------------------------------------------------------------------ oracle-based


def test_object_class(ctx):
    e = entry("a circle", "object_class", {"object": "circle"})
    assert score("object_class", render([("circle", "red", 30, 30, 14, "static")]), e, ctx) == 1.0
    assert score("object_class", render([("square", "red", 30, 30, 14, "static")]), e, ctx) == 0.0


def test_multiple_objects(ctx):
    e = entry("a circle and a square", "multiple_objects", {"object": "circle and square"})
    both = render([("circle", "red", 16, 32, 12, "static"), ("square", "blue", 46, 32, 12, "static")])
    wrong = render([("circle", "red", 16, 32, 12, "static"), ("triangle", "blue", 46, 32, 12, "static")])
    assert score("multiple_objects", both, e, ctx) == 1.0
    assert score("multiple_objects", wrong, e, ctx) == 0.0


def test_color(ctx):
    e = entry("a red circle on a gray background", "color", {"color": "red"})
    assert score("color", render([("circle", "red", 30, 30, 14, "static")], "gray"), e, ctx) == 1.0
    assert score("color", render([("circle", "blue", 30, 30, 14, "static")], "gray"), e, ctx) == 0.0
    # No circle at all: VBench leaves the video out of the colour score.
    assert score("color", render([("square", "red", 30, 30, 14, "static")], "gray"), e, ctx) is None


def test_spatial_relationship(ctx):
    rel = {"spatial_relationship": {"object_a": "circle", "object_b": "square", "relationship": "on the left of"}}
    e = entry("a circle on the left of a square", "spatial_relationship", rel)
    left = render([("circle", "red", 14, 32, 12, "static"), ("square", "blue", 48, 32, 12, "static")])
    above = render([("circle", "red", 32, 14, 12, "static"), ("square", "blue", 32, 48, 12, "static")])
    assert score("spatial_relationship", left, e, ctx) == 1.0
    assert score("spatial_relationship", above, e, ctx) == 0.0
    assert score("spatial_relationship", render([("circle", "red", 14, 32, 12, "static")]), e, ctx) == 0.0
    # VBench checks the axis, not the order: the mirrored layout also scores 1 (pinned, as the official code does).
    mirrored = render([("circle", "red", 48, 32, 12, "static"), ("square", "blue", 14, 32, 12, "static")])
    assert score("spatial_relationship", mirrored, e, ctx) == 1.0


def test_scene(ctx):
    e = entry("gray background", "scene", {"scene": {"scene": "gray background"}})
    assert score("scene", render([("circle", "red", 30, 30, 14, "static")], "gray"), e, ctx) == 1.0
    assert score("scene", render([("circle", "red", 30, 30, 14, "static")], "black"), e, ctx) == 0.0


def test_human_action(ctx):
    e = entry("a red square moving right", "human_action", {"action": "moving right"})
    assert score("human_action", render([("square", "red", 20, 32, 14, "moving right")]), e, ctx) == 1.0
    assert score("human_action", render([("square", "red", 20, 32, 14, "static")]), e, ctx) == 0.0


# Official success-rate arithmetic, with a scripted detector (pixel [0,0,0] of each frame says which frame it is).
class ScriptedOracle:
    def __init__(self, per_frame):
        self.per_frame = per_frame

    def detect_objects(self, frame):
        return self.per_frame[int(frame[0, 0, 0])]

    def detection_backend_id(self):
        return "scripted"


def _det(shape, color, bbox):
    return SimpleNamespace(shape=shape, color=color, bbox=bbox)


def _numbered(n):
    frames = np.zeros((n, 4, 4, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)
    return frames


def test_success_rate_arithmetic():
    circle_red, circle_blue = _det("circle", "red", (0, 0, 4, 4)), _det("circle", "blue", (0, 0, 4, 4))
    per_frame = [[circle_red]] * 6 + [[circle_blue]] * 2 + [[]] * 8  # 16 frames: circle in 8, red in 6
    c = ScriptedOracle(per_frame)
    ctx = ScoringContext(oracle=c, shapes=("circle", "square"))
    frames = _numbered(16)
    assert score("object_class", frames, entry("a circle", "object_class", {"object": "circle"}), ctx) == 0.5
    assert score("color", frames, entry("a red circle", "color", {"color": "red"}), ctx) == 0.75
    assert SCORERS["object_class"].backend(ctx).endswith("@scripted")


def test_position_score_partial_overlap():
    # Side by side, overlapping by a 2x4 strip: IoU = 8 / (16 + 16 - 8) = 1/3 >= 0.1, so the score is 0.1 / IoU.
    assert position_score("on the left of", (0, 0, 4, 4), (2, 0, 6, 4)) == pytest.approx(0.3)
    assert position_score("on the top of", (0, 0, 4, 4), (2, 0, 6, 4)) == 0.0
    assert position_score("on the bottom of", (0, 0, 4, 4), (0, 10, 4, 14)) == 1.0


# ------------------------------------------------------------------------------------------------ pooling and I/O


def test_score_videos_pools_as_vbench(ctx):
    e1 = {"prompt_en": "p1", "dimension": ["subject_consistency", "temporal_flickering"]}
    e2 = {"prompt_en": "p2", "dimension": ["subject_consistency"]}
    rng = np.random.default_rng(2)
    v1, v2 = rng.integers(0, 256, (3, 16, 16, 3), np.uint8), rng.integers(0, 256, (5, 16, 16, 3), np.uint8)
    out = score_videos([e1, e2], {"p1": [v1], "p2": [v2]}, ["subject_consistency", "temporal_flickering"], ctx=ctx)
    s1, s2 = score("subject_consistency", v1, e1, ctx), score("subject_consistency", v2, e2, ctx)
    # Subject consistency pools frame pairs (2 and 4 of them), not videos.
    assert out["dimensions"]["subject_consistency"] == pytest.approx((2 * s1 + 4 * s2) / 6)
    # Temporal flickering is scored only on the prompt that lists it.
    assert [r["video"] for r in out["per_video"] if r["dimension"] == "temporal_flickering"] == ["p1-0.mp4"]
    assert out["aggregate"] is None  # not all 16 dimensions
    with pytest.raises(ValueError, match="dimension 'color': no prompt in the suite lists it"):
        score_videos([e1, e2], {"p1": [v1], "p2": [v2]}, ["color"], ctx=ctx)
    with pytest.raises(ValueError, match="unknown dimension 'sharpness'"):
        score_videos([{"prompt_en": "p", "dimension": ["sharpness"]}], {"p": [v1]}, ctx=ctx)
    with pytest.raises(ValueError, match="'p2': no videos given"):
        score_videos([e1, e2], {"p1": [v1]}, ["subject_consistency"], ctx=ctx)
    # A loader(prompt, i) gives the same result as the dict.
    loaded = score_videos([e1, e2], lambda p, i: {"p1": v1, "p2": v2}[p],
                          ["subject_consistency", "temporal_flickering"], ctx=ctx)
    assert loaded["dimensions"] == out["dimensions"]
    with pytest.raises(ValueError, match="samples_per_prompt 0"):
        score_videos([e1], lambda p, i: v1, ["temporal_flickering"], samples_per_prompt=0, ctx=ctx)


def test_color_left_out_when_object_absent(ctx):
    e = entry("a red circle", "color", {"color": "red"})
    present = render([("circle", "red", 30, 30, 14, "static")])
    absent = render([("square", "red", 30, 30, 14, "static")])
    out = score_videos([e], {"a red circle": [present, absent]}, ["color"], ctx=ctx)
    assert out["dimensions"]["color"] == 1.0 and out["unscored"]["color"] == 1
    assert [r["score"] for r in out["per_video"]] == [1.0, None]


def test_score_video_dir(tmp_path, ctx):
    from univid.data.video import write_video

    suite = W.vbench_prompt_suite(0, per_dimension=1)
    suite_path = tmp_path / "suite.json"
    suite_path.write_text(json.dumps(suite))
    videos = tmp_path / "videos"
    for e in suite:
        spec = W.spec_from_prompt(e, seed=5)
        write_video(videos / f"{e['prompt_en']}-0.mp4", W.render_clip(spec), fps=spec.fps)
    out = score_video_dir(videos, suite_path, tmp_path / "scores.json", ctx=ctx)
    written = json.loads((tmp_path / "scores.json").read_text())
    assert set(written) >= {"per_video", "dimensions", "backends", "aggregate"}
    assert set(written["dimensions"]) == set(DIMENSIONS) and set(written["backends"]) == set(DIMENSIONS)
    assert len(written["per_video"]) == sum(len(e["dimension"]) for e in suite)
    assert {"video", "prompt", "dimension", "score"} <= set(written["per_video"][0])
    assert written["aggregate"]["total"] == pytest.approx(out["aggregate"]["total"])
    # The oracle reads the world's clips back through H.264: the semantic stand-ins see what the prompts asked.
    for d in ("object_class", "multiple_objects", "color", "scene", "spatial_relationship"):
        assert written["dimensions"][d] == 1.0, d

    (videos / f"{suite[3]['prompt_en']}-0.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=f"{suite[3]['prompt_en']}-0.mp4: video not found"):
        score_video_dir(videos, suite_path, tmp_path / "again.json", ctx=ctx)
    assert not (tmp_path / "again.json").exists()


def test_ground_truth_renders_of_the_smoke_suite_score_high_on_oracle_dimensions():
    """The smoke prompt suite and the oracle scorers agree: rendering exactly what each prompt says scores 1 on
    the detector dimensions and counts as dynamic, so a model that learns the world can reach these scores."""
    from univid.data.synthetic import render_clip, spec_from_prompt, vbench_prompt_suite
    from univid.eval.vbench.standin import score_videos

    entries = vbench_prompt_suite(0, per_dimension=2)
    videos = {e["prompt_en"]: [render_clip(spec_from_prompt(e, 0, 17, 64, 64, 8))] for e in entries}
    dims = score_videos(entries, videos, fps=8)["dimensions"]
    for dim in ("object_class", "multiple_objects", "color", "spatial_relationship", "scene", "human_action",
                "dynamic_degree", "temporal_flickering"):
        assert dims[dim] >= 0.9, (dim, dims[dim])
