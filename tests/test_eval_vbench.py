"""VBench scoring with the raw-score cache (a re-run makes zero model forward passes and decodes no video), video
checks, VBench-Long flags end to end, the results JSON, and the vbench-aggregate CLI."""

import json

import numpy as np
import pytest

from univid.cli import main
from univid.data import synthetic as W
from univid.data.video import write_video
from univid.eval.vbench import scorers as S
from univid.eval.cache import EvalCache
from univid.eval.checks import VideoCheckError
from univid.eval.vbench.scoring import score_video_dir
from univid.eval.vbench.standin import score_videos
from univid.io import write_json

DIMS = ["subject_consistency", "background_consistency", "temporal_flickering", "color"]


def clip(color="red", motion="right", t=17):
    spec = W.ClipSpec("t", [W.ObjectSpec("circle", color, 0.3, 0.5, 0.3, motion)], "black", t, 64, 64)
    return W.render_clip(spec)


def suite():
    return [{"prompt_en": "a red circle", "dimension": ["subject_consistency", "background_consistency", "color"],
             "auxiliary_info": {"color": {"color": "red"}}},
            {"prompt_en": "a blue circle moving right", "dimension": ["temporal_flickering", "subject_consistency"]}]


@pytest.fixture()
def video_dir(tmp_path):
    d = tmp_path / "videos"
    write_video(d / "a red circle-0.mp4", clip(), 8)
    write_video(d / "a blue circle moving right-0.mp4", clip("blue"), 8)
    write_json(tmp_path / "prompts.json", suite())
    return d


@pytest.fixture()
def counters(monkeypatch):
    """Real model forward passes (hooks on the stand-in DINO and CLIP), scorer calls and video decodes."""
    import univid.data.video as V

    n = {"forward": 0, "score": 0, "decode": 0}
    hooks = [S._build_dino(0).register_forward_hook(lambda *a: n.__setitem__("forward", n["forward"] + 1)),
             S._build_clip(0).visual.register_forward_hook(lambda *a: n.__setitem__("forward", n["forward"] + 1))]
    score, read = S.Scorer.score, V.read_video
    monkeypatch.setattr(S.Scorer, "score", lambda self, *a, **k: (n.__setitem__("score", n["score"] + 1),
                                                                   score(self, *a, **k))[1])
    monkeypatch.setattr(V, "read_video", lambda *a, **k: (n.__setitem__("decode", n["decode"] + 1), read(*a, **k))[1])
    yield n
    for h in hooks:
        h.remove()


LONG = {"enabled": True}


def test_rescoring_costs_no_forward_pass(tmp_path, video_dir, counters):
    cache = EvalCache(tmp_path / "cache")
    checks = {"num_frames": 17, "fps": 8, "min_duration_s": 2.0}
    cold = score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / "s1.json", DIMS, long=LONG, cache=cache,
                           checks=checks)
    assert counters["forward"] > 0 and counters["decode"] == 2
    assert cold["counts"] == {"videos": 2, "videos_decoded": 2, "scored": 5, "cached": 0}
    assert cold["protocol"] == "vbench-long" and cold["long"]["clip_length"] == "mix"
    assert all(r["clips"] == 2 for r in cold["per_video"])  # 17 frames at 8 fps: two 2 s clips
    before = dict(counters)
    warm = score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / "s2.json", DIMS, long=LONG,
                           cache=EvalCache(tmp_path / "cache"), checks=checks)
    assert counters == before  # zero forward passes, zero scorer calls, zero decodes
    assert warm["dimensions"] == cold["dimensions"] and warm["counts"]["cached"] == 5
    # a score-changing flag is another key: scored again
    flagged = score_video_dir(video_dir, tmp_path / "prompts.json", tmp_path / "s3.json", DIMS,
                              long={"enabled": True, "dev_flag": True}, cache=cache)
    assert flagged["counts"]["scored"] == 3 and flagged["counts"]["cached"] == 2  # only the two fused dimensions
    assert "dev_flag-clip2clip" in flagged["backends"]["subject_consistency"]
    assert all("fused" in r for r in flagged["per_video"] if r["dimension"] == "subject_consistency")


def test_long_versus_whole_video_and_flag_validation(video_dir):
    frames = clip()
    entries = suite()[:1]
    whole = score_videos(entries, {"a red circle": [frames]}, ["subject_consistency"], fps=8)
    long = score_videos(entries, {"a red circle": [frames]}, ["subject_consistency"], fps=8, long=LONG)
    clips = [S.SCORERS["subject_consistency"].score(frames[a:b], entries[0], S.default_context(), fps=8)[0]
             for a, b in [(0, 16), (1, 17)]]
    assert long["dimensions"]["subject_consistency"] == pytest.approx(np.mean(clips))
    assert whole["protocol"] == "vbench" and whole["long"] is None
    with pytest.raises(ValueError, match="static_filter"):
        score_videos(entries, {"a red circle": [frames]}, ["subject_consistency"], fps=8,
                     long={"enabled": True, "static_filter": True})
    with pytest.raises(ValueError, match="long.bogus"):
        score_videos(entries, {"a red circle": [frames]}, ["subject_consistency"], fps=8,
                     long={"enabled": True, "bogus": 1})
    with pytest.raises(ValueError, match="needs the video's fps"):
        score_videos(entries, {"a red circle": [frames]}, ["subject_consistency"], long=LONG)


def test_video_checks(tmp_path, video_dir):
    prompts = tmp_path / "prompts.json"
    with pytest.raises(VideoCheckError, match=r"a red circle-0\.mp4: 17 frames \(expected 33"):
        score_video_dir(video_dir, prompts, tmp_path / "o.json", DIMS, checks={"num_frames": 33})
    with pytest.raises(VideoCheckError, match=r"8\.000 fps \(expected 24"):
        score_video_dir(video_dir, prompts, tmp_path / "o.json", DIMS, checks={"fps": 24})
    with pytest.raises(VideoCheckError, match=r"2\.12 s long \(expected at least 5\.0 s"):
        score_video_dir(video_dir, prompts, tmp_path / "o.json", DIMS, checks={"min_duration_s": 5.0})
    write_video(video_dir / "stray.mp4", clip(), 8)
    with pytest.raises(VideoCheckError, match=r"stray\.mp4: unexpected video, not named"):
        score_video_dir(video_dir, prompts, tmp_path / "o.json", DIMS, checks={})
    (video_dir / "stray.mp4").rename(video_dir / "a red circle-1.mp4")
    with pytest.raises(VideoCheckError, match="index is not in the suite"):
        score_video_dir(video_dir, prompts, tmp_path / "o.json", DIMS, checks={})
    assert not (tmp_path / "o.json").exists()


def test_evaluate_cli_writes_traceable_results(tmp_path, capsys):
    from univid.config import resolve
    from univid.prompts import prompt_suite

    cfg = resolve({})
    entries = prompt_suite(cfg["eval"]["vbench"], cfg["seed"])
    write_json(tmp_path / "curate" / "prompts.json", entries)
    for i, e in enumerate(entries):
        write_video(tmp_path / "gen" / "videos" / f"{e['prompt_en']}-0.mp4",
                    W.render_clip(W.spec_from_prompt(e, i)), 8)
    argv = ["evaluate", "--quiet", "--curate", str(tmp_path / "curate"), "--videos", str(tmp_path / "gen"),
            "--out", str(tmp_path / "ev"), "--set", f"eval.cache_dir={tmp_path / 'cache'}"]
    main(argv)
    first = capsys.readouterr().out
    main(argv)
    second = capsys.readouterr().out
    assert "VBench-Long T2V (smoke): total" in first and "0 from cache" in first  # the track is named
    assert "0 scored" in second and "0/11 videos decoded" in second
    r = json.loads((tmp_path / "ev" / "scores.json").read_text())
    for key in ("dimensions", "backends", "aggregate", "config", "config_hash", "seeds", "provenance", "long",
                "video_sha256", "checks"):
        assert key in r, key
    assert r["config"]["eval"]["vbench"]["long"]["dev_flag"] is False
    assert r["provenance"]["git"]["commit"] and r["provenance"]["packages"]["torch"]
    assert r["seeds"]["scorer_standins"] == 0 and len(r["backends"]) == 16
    # vbench-aggregate reads the 16 raw scores (or this scores.json) and prints percent
    write_json(tmp_path / "raw.json", r["dimensions"])
    for path in (tmp_path / "raw.json", tmp_path / "ev" / "scores.json"):
        main(["vbench-aggregate", str(path)])
        printed = json.loads(capsys.readouterr().out)
        assert set(printed) == {"total", "quality", "semantic"}
        assert printed["total"] == pytest.approx(r["aggregate"]["total"])
        assert 1.0 < printed["quality"] <= 100.0
