"""VBench-Long semantics: per-video clip length, clip splitting on edge lengths, scene detection, pooling, dev fusion."""

import numpy as np
import pytest

from univid.eval.vbench.long import (clip_ranges, clip_seconds, detect_scenes, fuse, map_clip2clip, pool_long, tables,
                              video_clips)


def test_clip_length_is_the_longest_over_the_prompts_dimensions():
    entries = [{"prompt_en": "a", "dimension": ["subject_consistency", "scene"]},
               {"prompt_en": "b", "dimension": ["overall_consistency"]},
               {"prompt_en": "c", "dimension": ["aesthetic_quality"]},
               {"prompt_en": "c", "dimension": ["human_action"]}]  # a repeated prompt: all its entries count
    assert [clip_seconds(p, entries) for p in "abc"] == [2, 10, 10]
    assert clip_seconds("b", entries, "fixed2") == 2
    assert tables()["clip_length_mix"]["temporal_style"] == 10.0
    with pytest.raises(ValueError, match="not in the prompt suite"):
        clip_seconds("z", entries)
    with pytest.raises(ValueError, match="clip_length 'x'"):
        clip_seconds("a", entries, "x")


@pytest.mark.parametrize("n, fps, secs, expected", [
    (15, 8, 2, [(0, 15)]),                         # shorter than one clip: the whole video
    (16, 8, 2, [(0, 16)]),                         # exactly one clip
    (17, 8, 2, [(0, 16), (1, 17)]),                # one-frame tail: a full clip ending at the last frame
    (32, 8, 2, [(0, 16), (16, 32)]),               # exact multiple: no tail clip
    (121, 24, 2, [(0, 48), (48, 96), (73, 121)]),  # 5.04 s at 24 fps (VBench-Long's minimum)
    (121, 24, 10, [(0, 121)]),                     # 10 s clips of a 5 s video: the whole video
    (121, 24.9, 2, [(0, 48), (48, 96), (73, 121)]),  # fps truncated to int as the official int(avg_fps)
    (1, 8, 2, [(0, 1)]),
])
def test_clip_ranges_edges(n, fps, secs, expected):
    ranges = clip_ranges(n, fps, secs)
    assert ranges == expected
    assert all(b - a == min(n, int(fps) * secs) for a, b in ranges)  # every clip has full length (or is the video)


def test_clip_ranges_bad_input():
    with pytest.raises(ValueError, match="0 frames"):
        clip_ranges(0, 8, 2)
    with pytest.raises(ValueError, match="less than one frame"):
        clip_ranges(10, 0.5, 1)


def test_scene_detection_splits_at_cuts_only():
    a = np.zeros((40, 16, 16, 3), np.uint8)
    a[20:] = (255, 0, 0)  # hard cut at frame 20
    assert detect_scenes(a) == [(0, 20), (20, 40)]
    assert detect_scenes(a[:25]) == [(0, 20), (20, 25)]
    assert detect_scenes(np.zeros((40, 16, 16, 3), np.uint8)) == []
    early = a.copy()
    early[5:] = (255, 0, 0)  # a cut before min_scene_len (15) frames: ignored
    assert detect_scenes(early) == []
    assert video_clips(a, 8, 2, scene_detection=True) == [(0, 16), (4, 20), (20, 36), (24, 40)]
    assert video_clips(a, 8, 2, scene_detection=False) == [(0, 16), (16, 32), (24, 40)]


def test_pooling_is_the_mean_over_clips_as_the_official_total_with_fallback():
    # vbench 0.1.5 scores every clip as its own entry; its total is the mean over clip entries (a run of the
    # official code gave 0.9590 where a mean of video means gives 0.9528)
    per_video = {"v0": {"score": 0.5, "clips": [[0.4, 1], [0.6, 1]]}, "v1": {"score": 0.9, "clips": [[0.9, 1]]},
                 "v2": {"score": None, "clips": [[None, 1]]}}
    assert pool_long("color", per_video) == pytest.approx((0.4 + 0.6 + 0.9) / 3)
    fused = {"v0": {"score": 0.5, "fused": 0.6, "clips": [[0.4, 1], [0.6, 1]]}, "v1": {"score": 0.9, "clips": [[0.9, 1]]}}
    assert pool_long("color", fused) == pytest.approx((0.6 + 0.9) / 2)  # a fused video is one entry
    # subject consistency with no video of two clips: the in-clip pooled score (pair-weighted over clips)
    single = {"v0": {"score": 0.8, "clips": [[0.8, 3]]}, "v1": {"score": 0.2, "clips": [[0.2, 1]]}}
    assert pool_long("subject_consistency", single) == pytest.approx((0.8 * 3 + 0.2) / 4)
    assert pool_long("scene", single) == pytest.approx(0.5)


def test_dev_flag_fusion_uses_vbench_tables():
    assert map_clip2clip("subject_consistency", 0.5) == pytest.approx(0.932674917380015)
    mid = map_clip2clip("subject_consistency", 0.505)
    assert mid == pytest.approx((0.932674917380015 + 0.933938855974875) / 2)
    assert fuse("subject_consistency", 0.9, 0.5) == pytest.approx(0.7 * 0.9 + 0.3 * 0.932674917380015)
    assert fuse("background_consistency", 0.9, 0.5) == pytest.approx(0.8 * 0.9 + 0.2 * 0.946057962880035)
    assert fuse("subject_consistency", 0.9, None) == 0.9  # one clip: no clip-to-clip score
    assert fuse("subject_consistency", 0.9, 0.0) == 0.9   # mapped 0: the official code keeps the in-clip score
