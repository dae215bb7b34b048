"""The ti2v generation track (eval.vbench.track: ti2v, paper Table 5): a reference image per prompt (synthetic first
frames at smoke, VBench-I2V's image suite at paper), TI2V generation in the generate job, alpha_img (Eq. 5) acting on
ti2v videos and not on t2v ones, the video-image consistency the evaluate job scores, and the track in the job keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from univid.cli import main
from univid.config import job_configs, load_ablation, resolve
from univid.data.synthetic import render_clip, spec_from_prompt
from univid.eval.cache import file_sha256
from univid.io import read_json, write_json
from univid.prompts import I2V_DIMENSIONS, prompt_suite, reference_path

ROOT = Path(__file__).resolve().parents[1]
STEPS = "sampling.steps=8"  # the smoke schedule: u = 5/8, 6/8, 7/8 lie in alpha_img's window (0.6, 1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The smoke ti2v suite (`univid ti2v-suite`), curate's t2v prompts and a weights file of the generation parts."""
    from univid.models.builder import build, save_weights

    root = tmp_path_factory.mktemp("ti2v")
    main(["ti2v-suite", "--quiet", "--out", str(root / "suite")])
    cfg = resolve({})
    write_json(root / "curate" / "prompts.json", prompt_suite(cfg["eval"]["vbench"], cfg["seed"]))
    comp = build(cfg)
    save_weights({n: p.detach().clone() + 0.01 for n, p in comp.model.named_parameters() if n.startswith("connector.")},
                 root / "w.safetensors")
    return root


def test_reference_frames_are_first_frames_of_the_clips_the_prompts_describe(inputs, tmp_path):
    cfg = resolve({})
    s = cfg["sampling"]
    entries = read_json(inputs / "suite" / "prompts.json")
    # The t2v suite's prompts, each with an image (VBench-I2V's naming: the image shares the prompt's name).
    assert [e["prompt_en"] for e in entries] == [e["prompt_en"] for e in prompt_suite(cfg["eval"]["vbench"], 0)]
    for e in entries:
        path = reference_path(inputs / "suite", e)
        image = np.array(PIL.Image.open(path))
        clip = render_clip(spec_from_prompt(e, cfg["seed"], s["num_frames"], s["height"], s["width"], s["fps"]))
        assert np.array_equal(image, clip[0]), e["prompt_en"]
        assert e["image_name"] == f"{e['prompt_en']}.png" and e["image_sha256"] == file_sha256(path)
        assert e["i2v_dimension"] == list(I2V_DIMENSIONS)
    # Deterministic: the same config writes the same bytes; another seed draws other frames.
    main(["ti2v-suite", "--quiet", "--out", str(tmp_path / "again")])
    assert (tmp_path / "again" / "prompts.json").read_bytes() == (inputs / "suite" / "prompts.json").read_bytes()
    for e in entries:
        assert (tmp_path / "again" / e["image"]).read_bytes() == reference_path(inputs / "suite", e).read_bytes()
    main(["ti2v-suite", "--quiet", "--set", "seed=1", "--out", str(tmp_path / "seed1")])
    assert [e["image_sha256"] for e in read_json(tmp_path / "seed1" / "prompts.json")] != \
        [e["image_sha256"] for e in entries]


def test_the_track_keys_generation_and_evaluation_only(tmp_path):
    from univid.workflow import config_from_job

    base = {"results_dir": str(tmp_path)}
    t2v = job_configs(resolve(base))
    ti2v = job_configs(resolve({**base, "eval": {"vbench": {"track": "ti2v"}}}))
    for job in ("generate", "evaluate"):
        assert t2v[job]["key"] != ti2v[job]["key"], job
        assert "ti2v_suite" in ti2v[job]["upstream"] and "ti2v_suite" not in t2v[job]["upstream"]
        assert config_from_job(ti2v[job])["eval"]["vbench"]["track"] == "ti2v"
    for job in ("curate", "ti2v_suite", "precompute", "stage1", "stage2", "stage3", "videoqa", "suite"):
        assert t2v[job]["key"] == ti2v[job]["key"], job  # training is shared between the tracks
    # Where the ti2v prompts come from is keyed by the ti2v_suite job (and so reaches ti2v jobs), not by t2v jobs.
    ratio = {"ti2v_suite": {"ratio": "1-1"}}
    t2v_r = job_configs(resolve({**base, "eval": {"vbench": ratio}}))
    ti2v_r = job_configs(resolve({**base, "eval": {"vbench": {**ratio, "track": "ti2v"}}}))
    assert ti2v_r["generate"]["key"] != ti2v["generate"]["key"] and t2v_r["generate"]["key"] == t2v["generate"]["key"]
    assert t2v_r["evaluate"]["key"] == t2v["evaluate"]["key"]
    # alpha_img: stage I trains without reference images, so lambda_img is not in its key; stage III's and later.
    no_img = job_configs(resolve({**base, "tma": {"lambda_img": 0.0}}))
    assert no_img["stage1"]["key"] == t2v["stage1"]["key"]
    for job in ("stage3", "generate", "evaluate"):
        assert no_img[job]["key"] != t2v[job]["key"], job
    # Table 5's rows are all on the ti2v track (the ablation file's shared overrides).
    ab = load_ablation(ROOT / "ablations" / "gen_encoders.yaml")
    assert {v["overrides"]["eval"]["vbench"]["track"] for v in ab["variants"]} == {"ti2v"}
    assert any(v["overrides"].get("tma", {}).get("lambda_img") == 0.0 for v in ab["variants"])


@pytest.fixture(scope="module")
def runs(inputs):
    """Shard 0 of 11 (one video: the first prompt) of the generate job on each track, with alpha_img on (lambda_img
    0.3) and off (0): what the job handed to `generate` and what came back, and the shard's manifest row."""
    import univid.models.generator as generator

    original, seen, current = generator.generate, {}, {}

    def spy(comp, pipe, prompt, negative, s, seed, progress=False, image=None):
        frames = original(comp, pipe, prompt, negative, s, seed, progress, image=image)
        seen[current["run"]] = {"image": None if image is None else np.array(image), "frames": frames,
                                "pipeline": type(pipe).__name__}
        return frames

    torch.set_num_threads(1)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generator, "generate", spy)
        for track in ("ti2v", "t2v"):
            for lam in ("0.3", "0.0"):
                current["run"] = (track, lam)
                gen = inputs / f"gen_{track}_{lam}"
                main(["generate-suite", "--quiet", "--set", f"eval.vbench.track={track}", "--set",
                      f"tma.lambda_img={lam}", "--set", STEPS, "--ti2v-suite", str(inputs / "suite"), "--curate",
                      str(inputs / "curate"), "--weights", str(inputs / "w.safetensors"), "--out", str(gen),
                      "--shard", "0", "--shards", "11"])
                row = read_json(gen / "shards" / "0-of-11.json")["videos"]
                assert len(row) == 1
                out[(track, lam)] = {**seen[(track, lam)], "row": row[0]}
    return out


def test_the_ti2v_generate_job_starts_each_video_from_its_reference(runs, inputs, comp):
    first = read_json(inputs / "suite" / "prompts.json")[0]
    ref_path = reference_path(inputs / "suite", first)
    ti2v, t2v = runs[("ti2v", "0.3")], runs[("t2v", "0.3")]
    # The job hands the prompt's reference image to the TI2V pipeline and records it with the video.
    assert ti2v["row"]["prompt"] == first["prompt_en"] and ti2v["row"]["image"] == str(ref_path)
    assert ti2v["row"]["image_sha256"] == first["image_sha256"] and "image" not in t2v["row"]
    assert np.array_equal(ti2v["image"], np.array(PIL.Image.open(ref_path))) and t2v["image"] is None
    assert ti2v["pipeline"] == "WanImageToVideoPipeline" and t2v["pipeline"] == "WanPipeline"
    # Its first frame is the reference as closely as the (random-init, smoke) VAE can reconstruct it; t2v's is not.
    from univid.models.generator import make_pipeline

    pipe = make_pipeline(comp, ti2v=True)
    x = torch.from_numpy(ti2v["image"]).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1.0
    with torch.no_grad():
        recon = comp.model.vae.decode(comp.model.vae.encode(x).latent_dist.mode()).sample
    recon = (pipe.video_processor.postprocess_video(recon, output_type="np")[0][0] * 255).round().astype(np.int16)
    assert np.abs(ti2v["frames"][0].astype(np.int16) - recon).max() <= 1
    assert np.abs(t2v["frames"][0].astype(np.int16) - recon).mean() > 5


def test_alpha_img_changes_ti2v_videos_and_not_t2v_videos(runs):
    """Eq. 5 acts at evaluation: the image tokens of a ti2v context get alpha_img late in denoising; a t2v context
    has none, so lambda_img changes nothing there (bit for bit)."""
    on, off = runs[("ti2v", "0.3")], runs[("ti2v", "0.0")]
    assert np.array_equal(on["frames"][0], off["frames"][0])  # the pinned first frame does not depend on it
    assert np.abs(on["frames"].astype(np.int16) - off["frames"].astype(np.int16)).max() > 0
    assert Path(on["row"]["video"]).read_bytes() != Path(off["row"]["video"]).read_bytes()
    t_on, t_off = runs[("t2v", "0.3")], runs[("t2v", "0.0")]
    assert np.array_equal(t_on["frames"], t_off["frames"])
    assert Path(t_on["row"]["video"]).read_bytes() == Path(t_off["row"]["video"]).read_bytes()


def test_i2v_consistency_is_the_official_formula_on_standin_features():
    from univid.eval.vbench.i2v import I2V_WEIGHTS, OFFICIAL_UNSCORED, i2v_consistency, score_i2v
    from univid.eval.vbench.scorers import _clip_image_features, _dino_features, default_context

    ctx = default_context(0)
    clip = render_clip(spec_from_prompt("a red circle moving right on a gray background", 0))
    other = render_clip(spec_from_prompt("a blue square on a white background", 0))
    still = np.repeat(clip[:1], 5, axis=0)
    for d, features in (("i2v_subject", _dino_features), ("i2v_background", _clip_image_features)):
        assert i2v_consistency(still, clip[0], d, ctx) == pytest.approx(1.0)  # the reference, held: every cosine 1
        assert i2v_consistency(np.repeat(other[:1], 5, axis=0), clip[0], d, ctx) < 1.0
        f, ref = features(clip, ctx), features(clip[:1], ctx)[0]
        consec = [max(0.0, float(f[i - 1] @ f[i])) for i in range(1, len(f))]
        w = I2V_WEIGHTS[d]
        expected = w[0] * max(max(0.0, float(v @ ref)) for v in f) + w[1] * np.mean(consec) + w[2] * min(consec)
        assert i2v_consistency(clip, clip[0], d, ctx) == pytest.approx(expected, abs=1e-6)
    # The official backend does not run vbench2_beta_i2v: unscored, with the reason, never a number.
    entry = {"prompt_en": "x", "i2v_dimension": ["i2v_subject"], "image_sha256": "0"}
    res = score_i2v([entry], lambda p, i: clip, {"x": Path("unused")}, 1, ctx, backend="official")
    assert res["dimensions"] == {} and res["unscored"] == {"i2v_subject": OFFICIAL_UNSCORED}


def test_evaluate_scores_a_ti2v_job_against_its_references_and_the_table_shows_it(inputs, tmp_path):
    """A one-prompt ti2v suite end to end: generate (TI2V) -> evaluate (the dimensions its prompt covers, and the
    video-image consistency) -> collect and render a Table-5 row with the I2V block and the track in the caption."""
    first = read_json(inputs / "suite" / "prompts.json")[0]
    suite = tmp_path / "suite"
    (suite / "images").mkdir(parents=True)
    shutil.copy(reference_path(inputs / "suite", first), suite / first["image"])
    write_json(suite / "prompts.json", [first])
    common = ["--quiet", "--set", "eval.vbench.track=ti2v", "--set", "sampling.steps=2", "--ti2v-suite", str(suite)]
    main(["generate-suite", *common, "--weights", str(inputs / "w.safetensors"), "--out", str(tmp_path / "gen")])
    manifest = read_json(tmp_path / "gen" / "manifest.json")
    assert manifest["track"] == "ti2v" and manifest["videos"][0]["image_sha256"] == first["image_sha256"]
    main(["evaluate", *common, "--no-cache", "--videos", str(tmp_path / "gen"), "--out", str(tmp_path / "ev")])
    scores = read_json(tmp_path / "ev" / "scores.json")
    assert scores["track"] == "ti2v" and sorted(scores["dimensions"]) == sorted(first["dimension"])
    assert scores["aggregate"] is None  # one prompt covers 3 of the 16 dimensions: no VBench total
    assert sorted(scores["i2v"]["dimensions"]) == sorted(I2V_DIMENSIONS)
    assert all(0.0 < v <= 1.0 for v in scores["i2v"]["dimensions"].values())
    assert "for-dino-vitb16" in scores["i2v"]["backends"]["i2v_subject"]

    from univid.report.collect import collect
    from univid.report.render import render_table

    chain = tmp_path / "chain"
    jobs = job_configs(resolve({"eval": {"vbench": {"track": "ti2v"}}}))
    for name, job in jobs.items():
        (chain / name).mkdir(parents=True)
        job = dict(job, upstream_dirs={u: str(chain / u) for u in job["upstream_dirs"]})
        (chain / name / "job_config.json").write_text(json.dumps(job))
    shutil.copy(tmp_path / "ev" / "scores.json", chain / "evaluate" / "scores.json")
    res = collect("table5", ROOT / "ablations" / "gen_encoders.yaml", [("full", chain / "evaluate")],
                  tmp_path / "t5" / "results.json")
    row = res["rows"][0]
    assert row["track"] == "ti2v" and row["scores"]["total"] is None and row["scores"]["color"] is None
    assert row["scores"]["i2v_subject"] == pytest.approx(100 * scores["i2v"]["dimensions"]["i2v_subject"])
    tex = render_table(tmp_path / "t5" / "results.json", tmp_path / "t5" / "table5.tex")
    assert "I2V Subject" in tex and "Generation track: TI2V" in tex
    assert f"{row['scores']['i2v_subject']:.2f}" in tex


def test_a_missing_paper_i2v_suite_is_one_line(tmp_path, capsys):
    def error(*sets: str) -> str:
        with pytest.raises(SystemExit) as exc:
            main(["ti2v-suite", "--set", "scale=paper", *[a for s in sets for a in ("--set", s)],
                  "--out", str(tmp_path / "out")])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    info = tmp_path / "vbench2_beta_i2v" / "vbench2_i2v_full_info.json"
    err = error(f"eval.vbench.ti2v_suite.info_json={info}")
    assert "eval.vbench.ti2v_suite.info_json" in err and str(info) in err and "expected" in err
    info.parent.mkdir(parents=True)
    write_json(info, [{"prompt_en": "a cat on a sofa", "dimension": ["i2v_subject"], "image_name": "a cat.jpg"},
                      {"prompt_en": "a cat on a sofa, camera pans left", "dimension": ["camera_motion"]}])
    crop = tmp_path / "vbench2_beta_i2v" / "data" / "crop"
    err = error(f"eval.vbench.ti2v_suite.info_json={info}", f"eval.vbench.ti2v_suite.image_dir={crop}")
    assert "eval.vbench.ti2v_suite.image_dir" in err and "16-9" in err
    (crop / "16-9").mkdir(parents=True)
    err = error(f"eval.vbench.ti2v_suite.info_json={info}", f"eval.vbench.ti2v_suite.image_dir={crop}")
    assert "a cat.jpg: reference image not found (1 of 1 missing" in err
    # With the image there: the camera-motion prompt (no image of its own) is left out, the image is read in place.
    PIL.Image.new("RGB", (32, 18), (200, 10, 10)).save(crop / "16-9" / "a cat.jpg")
    main(["ti2v-suite", "--quiet", "--set", "scale=paper", "--set", f"eval.vbench.ti2v_suite.info_json={info}",
          "--set", f"eval.vbench.ti2v_suite.image_dir={crop}", "--out", str(tmp_path / "out")])
    [entry] = read_json(tmp_path / "out" / "prompts.json")
    assert entry["image"] == str((crop / "16-9" / "a cat.jpg").resolve()) and entry["i2v_dimension"] == ["i2v_subject"]
    assert entry["dimension"] == ["subject_consistency", "motion_smoothness", "dynamic_degree", "aesthetic_quality",
                                  "imaging_quality"]
    assert entry["image_sha256"] == file_sha256(crop / "16-9" / "a cat.jpg")
