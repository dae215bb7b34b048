"""The official-vbench backend: exact command lines, parsing of the official result format, dispatch by config,
caching, manifest entries and one-line errors. The end-to-end test needs `make vbench-env` (.venv-vbench)."""

import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from univid.data import synthetic as W
from univid.data.video import write_video
from univid.eval.vbench import official as O
from univid.eval.cache import EvalCache
from univid.eval.vbench.long import tables
from univid.eval.vbench.scoring import score_video_dir
from univid.eval.vbench.suite import backend_options, long_settings, pool_results

REPO = Path(__file__).resolve().parents[1]
LONG = long_settings({"enabled": True}, official=True)


def test_argv_standard_is_the_official_command():
    argv = O.build_argv("/env/bin/python", "/w/videos", ["temporal_flickering", "color"], "/w/suite.json", "/w/out",
                        long=None, samples_per_prompt=5, device="cpu", frames_json="/w/frames.json")
    assert argv == ["/env/bin/python", str(O.DRIVER), "--videos_path", "/w/videos",
                    "--dimension", "temporal_flickering", "color", "--full_json_dir", "/w/suite.json",
                    "--output_path", "/w/out", "--load_ckpt_from_local", "True", "--name", "univid",
                    "--mode", "vbench_standard", "--device", "cpu", "--frames_json", "/w/frames.json"]
    with pytest.raises(ValueError, match="samples_per_prompt 6: vbench_standard reads videos -0..-4 only"):
        O.build_argv("p", "v", ["color"], "s", "o", long=None, samples_per_prompt=6)


def test_argv_long_flags_and_configs(tmp_path):
    configs = O.write_long_configs(tmp_path / "cfg")
    flags = {**LONG, "scene_detection": True, "dev_flag": True, "static_filter": True}
    argv = O.build_argv("py", "v", ["subject_consistency"], "s", "o", long=flags, samples_per_prompt=3,
                        configs=configs)
    assert argv[2:] == ["--videos_path", "v", "--dimension", "subject_consistency", "--full_json_dir", "s",
                        "--output_path", "o", "--load_ckpt_from_local", "True", "--name", "univid",
                        "--mode", "long_vbench_standard", "--num_of_samples_per_prompt", "3",
                        "--clip_length_config", str(tmp_path / "cfg" / "clip_length_mix.yaml"),
                        "--slow_fast_eval_config", str(tmp_path / "cfg" / "slow_fast_params.yaml"),
                        "--subject_mapping_file_path", str(tmp_path / "cfg" / "subject_mapping_table.yaml"),
                        "--background_mapping_file_path", str(tmp_path / "cfg" / "background_mapping_table.yaml"),
                        "--use_semantic_splitting", "--dev_flag", "--static_filter_flag"]
    plain = O.build_argv("py", "v", ["color"], "s", "o", long=LONG, samples_per_prompt=1, configs=configs)
    assert not {"--use_semantic_splitting", "--dev_flag", "--static_filter_flag"} & set(plain)
    with pytest.raises(ValueError, match="scene_threshold 27.0: eval_long.py has no argument for it"):
        O.build_argv("py", "v", ["color"], "s", "o", long={**LONG, "scene_threshold": 27.0}, samples_per_prompt=1,
                     configs=configs)


def test_long_configs_reproduce_the_official_tables(tmp_path):
    cfg = O.write_long_configs(tmp_path, "mix")
    t = tables()
    assert yaml.safe_load(cfg["clip_length_config"].read_text()) == t["clip_length_mix"]
    sub = yaml.safe_load(cfg["subject_mapping_file_path"].read_text())
    assert sub == {k: v for k, v in t["mapping_table"]["subject_consistency"]} and isinstance(next(iter(sub)), float)
    assert yaml.safe_load(cfg["slow_fast_eval_config"].read_text()) == {
        "w_inclip_sb": 0.7, "w_clip2clip_sb": 0.3, "w_inclip_bg": 0.8, "w_clip2clip_bg": 0.2}
    fixed = O.write_long_configs(tmp_path / "f", "fixed2")
    assert set(yaml.safe_load(fixed["clip_length_config"].read_text()).values()) == {2.0}


def test_parse_standard_results_and_pooling():
    # vbench_standard's saved format: {dim: [total, [{"video_path", "video_results"}, ...]]}
    results = {
        "temporal_flickering": [0.955, [{"video_path": "/s/videos/a-0.mp4", "video_results": 0.96},
                                        {"video_path": "/s/videos/b-0.mp4", "video_results": 0.95}]],
        "subject_consistency": [0.0, [{"video_path": "/s/videos/a-0.mp4", "video_results": 0.9},
                                      {"video_path": "/s/videos/b-0.mp4", "video_results": 0.6}]],
        "imaging_quality": [0.55, [{"video_path": "/s/videos/a-0.mp4", "video_results": 50.0},
                                   {"video_path": "/s/videos/b-0.mp4", "video_results": 60.0}]],
        "dynamic_degree": [0.5, [{"video_path": "/s/videos/a-0.mp4", "video_results": True},
                                 {"video_path": "/s/videos/b-0.mp4", "video_results": False}]],
    }
    dims = list(results)
    recs = O.parse_results(results, dims, None, {"a-0.mp4": 17, "b-0.mp4": 33})
    assert recs[("a-0.mp4", "subject_consistency")] == {"score": 0.9, "weight": 16}  # frame pairs
    assert recs[("b-0.mp4", "subject_consistency")] == {"score": 0.6, "weight": 32}
    assert recs[("b-0.mp4", "imaging_quality")] == {"score": 0.6, "weight": 1}  # MUSIQ 0-100 per video
    assert recs[("a-0.mp4", "dynamic_degree")]["score"] == 1.0
    entries = [{"prompt_en": p, "dimension": dims} for p in ("a", "b")]
    pooled = pool_results(entries, dims, lambda p: [(f"{p}-0.mp4", 0)], recs, None, {}, {},
                          scene_detector="", deviations=[])
    assert pooled["dimensions"]["subject_consistency"] == pytest.approx((0.9 * 16 + 0.6 * 32) / 48)
    for d in ("temporal_flickering", "imaging_quality", "dynamic_degree"):
        assert pooled["dimensions"][d] == pytest.approx(results[d][0])
    with pytest.raises(ValueError, match="dimension 'color' missing"):
        O.parse_results(results, ["color"], None, {})


def test_parse_long_results():
    # long_vbench_standard as vbench 0.1.5 writes it: [total, clip results, "per long video" results]. Its
    # reorganize_clips_results keys each clip by "<clip path>/<video>.mp4", so that list has one entry per clip and
    # the total is the mean over clips (seen in the official run); subject consistency (fused) lists
    # {"inclip_score", "clip2clip_score", "mapped_clip2clip_score", "video_results"} per clip.
    clip = "/s/videos/split_clip/{0}/{0}_{1:03d}.mp4"
    c = [clip.format("a-0", 0), clip.format("a-0", 1), clip.format("b-0", 0)]
    results = {
        "temporal_flickering": [(0.92 + 0.94 + 0.80) / 3,
                                [{"video_path": p, "video_results": v} for p, v in zip(c, (0.92, 0.94, 0.80))],
                                [{"video_path": f"{p}/{p.split('/')[-2]}.mp4", "video_results": v}
                                 for p, v in zip(c, (0.92, 0.94, 0.80))]],
        "subject_consistency": [0.87, [{"video_path": f"{p}/{p.split('/')[-2]}.mp4", "inclip_score": i,
                                        "clip2clip_score": 0.5, "mapped_clip2clip_score": 0.84, "video_results": f}
                                       for p, i, f in zip(c, (0.9, 0.8, 0.7), (0.882, 0.812, 0.742))]],
    }
    frames = {"a-0.mp4": 33, "b-0.mp4": 16, **{p.split("/videos/")[1]: 16 for p in c}}
    recs = O.parse_results(results, list(results), LONG, frames)
    assert recs[("a-0.mp4", "temporal_flickering")] == {"score": pytest.approx(0.93), "weight": 2,
                                                        "clips": [[0.92, 1], [0.94, 1]]}
    assert recs[("b-0.mp4", "temporal_flickering")] == {"score": 0.80, "weight": 1, "clips": [[0.80, 1]]}
    sc = recs[("a-0.mp4", "subject_consistency")]
    assert (sc["score"], sc["clip2clip"], sc["fused"], sc["weight"]) == (pytest.approx(0.85), 0.5,
                                                                         pytest.approx(0.847), 2)
    assert [w for _, w in sc["clips"]] == [15, 15]
    for d in results:  # pooling the records reproduces the official total
        per = {n: r for (n, dd), r in recs.items() if dd == d}
        assert O.pool_official_long(d, per) == pytest.approx(results[d][0] if d != "subject_consistency"
                                                             else (0.882 + 0.812 + 0.742) / 3)


FAKE_VBENCH = {
    # The official packages as the driver uses them, scoring a video by the number in its prompt; the real driver
    # (official_driver.py) runs on top of them, so its argument handling and per-video loop are what is tested.
    "vbench/__init__.py": """
import json, os
class VBench:
    def __init__(self, device, full_info, output_path):
        self.out = output_path
    def evaluate(self, videos_path, name, dimension_list, **kw):
        vids = sorted(f for f in os.listdir(videos_path) if f.endswith(".mp4"))
        with open(os.environ["FAKE_VBENCH_CALLS"], "a") as f:
            f.write(json.dumps(vids) + "\\n")
        if os.environ.get("FAKE_VBENCH_DIE_ON") in vids:
            os._exit(9)  # a crash or a time limit while this video is in flight
        rows = [{"video_path": os.path.join(videos_path, v),
                 "video_results": 0.5 + 0.1 * int(v.rsplit("-", 1)[0].split()[-1])} for v in vids]
        res = {d: [sum(r["video_results"] for r in rows) / len(rows), rows] for d in dimension_list}
        json.dump(res, open(os.path.join(self.out, name + "_eval_results.json"), "w"))
""",
    "vbench2_beta_long/__init__.py": "VBenchLong = None\n",
    "vbench2_beta_long/eval_long.py": """
import argparse
def parse_args():
    p = argparse.ArgumentParser()
    for a in ("--videos_path", "--full_json_dir", "--output_path", "--load_ckpt_from_local", "--mode",
              "--category", "--imaging_quality_preprocessing_mode", "--read_frame"):
        p.add_argument(a)
    p.add_argument("--dimension", nargs="+")
    return p.parse_args()
""",
    "decord.py": "class VideoReader:\n    def __init__(self, path, num_threads=1): pass\n"
                 "    def __len__(self): return 17\n",
}


def _fake_env(tmp_path, calls):
    """A stand-in for .venv-vbench/bin/python: this python with fake vbench packages, running the real driver."""
    fakes = tmp_path / "fake-vbench"
    for rel, text in FAKE_VBENCH.items():
        (fakes / rel).parent.mkdir(parents=True, exist_ok=True)
        (fakes / rel).write_text(text)
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\nPYTHONPATH={fakes} FAKE_VBENCH_CALLS={calls} exec {sys.executable} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def suite_dir(tmp_path):
    """Two synthetic clips (17 and 41 frames at 8 fps) with per-frame brightness flicker and, on one, noise."""
    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    entries = []
    for i, t in enumerate((17, 41)):
        spec = W.sample_clip_specs(i, 1, num_frames=t)[0]
        entries.append({"prompt_en": f"{W.caption(spec)} {i}", "dimension": ["temporal_flickering"]})
        f = W.render_clip(spec).astype(np.float32) * rng.uniform(0.7, 1.0, (t, 1, 1, 1))
        f += rng.normal(0, 6, f.shape) * i
        write_video(videos / f"{entries[-1]['prompt_en']}-0.mp4", np.clip(f, 0, 255).astype(np.uint8), 8)
    (tmp_path / "prompts.json").write_text(json.dumps(entries))
    return tmp_path


def test_dispatch_by_config_runs_the_official_env_once_then_caches(suite_dir, tmp_path):
    calls = tmp_path / "calls.jsonl"
    vb = {"backend": "official", "official_python": str(_fake_env(tmp_path, calls)),
          "official_weights": str(tmp_path / "weights"), "official_device": "cpu"}
    cache = EvalCache(tmp_path / "cache")
    out = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "r" / "scores.json",
                          ["temporal_flickering"], cache=cache, **backend_options(vb))
    assert out["backends"] == {"temporal_flickering": "vbench 0.1.5 official (no model)"}
    assert out["dimensions"]["temporal_flickering"] == pytest.approx(0.55)
    assert out["official"]["videos_run"] == 2 and out["official"]["runs"] == 1
    assert out["official"]["pooling_max_abs_diff"] == pytest.approx(0.0, abs=1e-12)
    assert [json.loads(x) for x in calls.read_text().splitlines()] == [[n] for n in sorted(out["video_sha256"])]
    assert out["counts"] == {"videos": 2, "videos_decoded": 2, "scored": 2, "cached": 0}
    assert json.loads((tmp_path / "r" / "scores.json").read_text())["protocol"] == "vbench"
    assert not list((tmp_path / "r").glob("vbench-official-*"))  # scratch folder removed
    again = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "r" / "s2.json",
                            ["temporal_flickering"], cache=EvalCache(tmp_path / "cache"), **backend_options(vb))
    assert len(calls.read_text().splitlines()) == 2  # the second run never started the official environment
    assert again["counts"]["cached"] == 2 and again["dimensions"] == out["dimensions"]
    # the stand-in backend is the default and computes in process
    standin = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "r" / "s3.json",
                              ["temporal_flickering"], **backend_options({}))
    assert standin["backends"]["temporal_flickering"] == "official-formula:temporal_flickering"
    with pytest.raises(ValueError, match="eval.vbench.backend 'vbench': unknown"):
        backend_options({"backend": "vbench"})


@pytest.mark.parametrize("cached", [True, False])
def test_a_crash_loses_at_most_the_video_in_flight(suite_dir, tmp_path, monkeypatch, cached):
    """The driver writes each video's result as soon as it is done: after a crash on the second video, the rerun
    scores only that video, from the cache or (no cache) from the failed run's kept per-video files."""
    calls = tmp_path / "calls.jsonl"
    vb = backend_options({"backend": "official", "official_python": str(_fake_env(tmp_path, calls)),
                          "official_device": "cpu"})
    names = sorted(p.name for p in (suite_dir / "videos").iterdir())
    kw = {"dims": ["temporal_flickering"], **vb}

    def cache():
        return EvalCache(tmp_path / "cache") if cached else None

    monkeypatch.setenv("FAKE_VBENCH_DIE_ON", names[1])
    with pytest.raises(RuntimeError, match=r"official vbench run failed with exit code 9: .*driver\.log"):
        score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "r" / "scores.json",
                        cache=cache(), **kw)
    assert not (tmp_path / "r" / "scores.json").exists()
    monkeypatch.delenv("FAKE_VBENCH_DIE_ON")
    out = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "r" / "scores.json",
                          cache=cache(), **kw)
    assert [json.loads(x) for x in calls.read_text().splitlines()] == [[names[0]], [names[1]], [names[1]]]
    assert out["dimensions"]["temporal_flickering"] == pytest.approx(0.55)
    assert out["counts"]["scored"] == (1 if cached else 2) and out["counts"]["cached"] == (1 if cached else 0)
    assert not list((tmp_path / "r").glob("vbench-official-*"))  # the kept scratch folder was taken and removed


def test_one_line_errors(suite_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope/bin/python: vbench environment not found .*make vbench-env"):
        score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "o.json",
                        ["temporal_flickering"], backend="official",
                        official={"python": str(tmp_path / "nope" / "bin" / "python")})
    with pytest.raises(FileNotFoundError, match=r"raft_model/models/raft-things\.pth: VBench weight file "
                                                r"'raft_things' for dynamic_degree not found .*univid weights fetch"):
        O.check_weights(["dynamic_degree"], None, tmp_path / "w")
    O.check_weights(["temporal_flickering"], None, tmp_path / "w")  # needs no weights
    with pytest.raises(FileNotFoundError, match="'raft_things' for static_filter"):
        O.check_weights(["temporal_flickering"], {**LONG, "static_filter": True}, tmp_path / "w")
    for rel in ("dino_model/dino_vitbase16_pretrain.pth", "torch/hub/checkpoints/dino_vitbase16_pretrain.pth"):
        (tmp_path / "w" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "w" / rel).write_bytes(b"w")
    with pytest.raises(FileNotFoundError, match=r"facebookresearch_dino_main/hubconf\.py: VBench weight file "
                                                r"'dino_hub_code_hubconf' for subject_consistency not found"):
        O.check_weights(["subject_consistency"], None, tmp_path / "w")


def test_backend_ids_name_the_official_model():
    assert O.backend_id("subject_consistency") == "vbench 0.1.5 official (dino-vitb16)"
    assert O.backend_id("subject_consistency", {"dev_flag": True}) == \
        "vbench 0.1.5 official (dino-vitb16+dev_flag-clip2clip:dinov2-vitb14)"
    assert O.backend_id("temporal_flickering", {"static_filter": True}).endswith("+static_filter:raft-things)")
    assert set(O.DIMENSION_MODELS) == set(tables()["clip_length_mix"])


VBENCH_PY = REPO / ".venv-vbench" / "bin" / "python"


@pytest.mark.skipif(not (REPO / ".venv-vbench" / ".installed").is_file(),
                    reason=".venv-vbench absent: run `make vbench-env` (not part of `make test`)")
def test_official_temporal_flickering_matches_the_in_process_scorer(suite_dir, tmp_path):
    """The official code in its own environment and the in-process scorer agree on the weight-free dimension
    (whole videos: the same decoded frames); under VBench-Long the official code re-encodes its clips, so only the
    clip split and the pooling of its own output are exact."""
    kw = {"dims": ["temporal_flickering"]}
    off_kw = {"backend": "official", "official": {"python": str(VBENCH_PY), "device": "cpu",
                                                  "weights_root": str(tmp_path / "w")}}
    official = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "off.json", **off_kw, **kw)
    standin = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "in.json", **kw)
    off = {r["video"]: r["score"] for r in official["per_video"]}
    inp = {r["video"]: r["score"] for r in standin["per_video"]}
    assert off.keys() == inp.keys() and len(off) == 2 and min(off.values()) < 0.99  # not a trivial 1.0
    assert max(abs(off[k] - inp[k]) for k in off) < 1e-6
    assert official["official"]["pooling_max_abs_diff"] < 1e-12

    long = score_video_dir(suite_dir / "videos", suite_dir / "prompts.json", tmp_path / "offl.json",
                           long={"enabled": True}, **off_kw, **kw)
    assert long["protocol"] == "vbench-long" and long["official"]["pooling_max_abs_diff"] < 1e-12
    assert sorted(r["clips"] for r in long["per_video"]) == [2, 3]  # 17 and 41 frames at 8 fps, 2 s clips
    assert max(abs(r["score"] - inp[r["video"]]) for r in long["per_video"]) < 1e-2


def test_missing_extra_modules_and_a_missing_gpu_are_named_before_any_scoring():
    """detectron2 (the GRiT dimensions) has no PyPI wheel and `make vbench-env` leaves it out: the job says so, naming
    the dimensions, before any GPU time. On device cuda without a visible GPU it refuses instead of running on CPU."""
    import sys

    with pytest.raises(ValueError, match=r"cannot import detectron2, which the official color, spatial_relationship "
                                         r"dimension\(s\) need"):
        O.check_environment(["temporal_flickering", "color", "spatial_relationship"], sys.executable, "cpu")
    O.check_environment(["temporal_flickering"], sys.executable, "cpu")  # nothing extra needed
    with pytest.raises(ValueError, match=r"official VBench on device 'cuda': no GPU is visible to this job"):
        O.check_environment(["temporal_flickering"], sys.executable, "cuda", cuda_available=False)
    O.check_environment(["temporal_flickering"], sys.executable, "cuda", cuda_available=True)
