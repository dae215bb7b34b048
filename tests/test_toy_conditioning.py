"""benchmarks/perf/toy_conditioning: its differences and noise levels at sample points, the measurement's like-for-like
check (a caption that is the null caption gains exactly 0), and a run end to end on a smoke generate job (a random-init
model: the figures are mechanics, not scores). The `generate_job` fixture is conftest's."""

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "perf" / "toy_conditioning"
TC = runpy.run_path(str(SCRIPT))  # defines; main() only as a script


def test_differences_are_per_clip_errors_against_the_captions():
    d = TC["differences"]({"caption": [1.0, 2.0], "null": [1.5, 2.5], "wrong": [3.0, 2.0]})
    assert d["gain"]["mean"] == pytest.approx(0.5) and d["gain"]["low"] == d["gain"]["high"] == pytest.approx(0.5)
    assert d["wrong"]["mean"] == pytest.approx(1.0) and d["wrong"]["n"] == 2
    assert d["wrong"]["low"] <= 1.0 <= d["wrong"]["high"]


def test_noise_levels_are_the_nearest_schedule_points():
    assert TC["sigma_indices"]([0.99, 0.8, 0.52, 0.2], [0.5, 0.8, 0.01]) == [2, 1, 3]


def test_the_null_caption_as_caption_gains_nothing_and_a_clips_own_caption_is_not_wrong(comp, cfg, one_torch_thread):
    from univid.models.conditioning import null_text

    clips = TC["held_out_clips"](cfg, 2)
    assert all(frames.shape == (cfg["sampling"]["num_frames"], cfg["sampling"]["height"], cfg["sampling"]["width"], 3)
               and text for frames, text in clips)
    nulls = [(frames, null_text(comp)) for frames, _ in clips]
    errors = TC["object_errors"](comp, nulls, [0.8], seed=0)
    assert errors["caption"] == errors["null"] == errors["wrong"]  # the same text, the same noise: the same error
    errors = TC["object_errors"](comp, clips, [0.5, 0.8], seed=0)
    assert errors["caption"] != errors["wrong"] and all(e > 0 for e in errors["caption"])


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


LAST = re.compile(r"^toy_conditioning scale=smoke model=stage3 gain=-?[\d.]+ gain_ci=\S+ wrong=-?[\d.]+ wrong_ci=\S+ "
                  r"t5_gain=-?[\d.]+ t5_gain_ci=\S+ t5_wrong=-?[\d.]+ share=\S+ clips=2 sigmas=0.8 wall_s=\d+$")


def test_measures_a_generate_jobs_model_and_its_pretrained_dit(generate_job):
    r = _run("--generate", str(generate_job), "--clips", "2", "--sigmas", "0.8")
    assert r.returncode == 0, r.stderr[-2000:]
    assert LAST.match(r.stdout.strip().splitlines()[-1]), r.stdout
    record = json.loads(r.stderr[r.stderr.index("{\n"):])
    for label in ("model", "t5"):
        assert {c: len(v) for c, v in record[label]["errors"].items()} == {"caption": 2, "null": 2, "wrong": 2}
    assert record["weights"].endswith("weights.safetensors")


@pytest.mark.parametrize("args, expected", [(["--sigmas", "0.5,1.5"], "expected comma-separated numbers in (0, 1)"),
                                            (["--clips", "1"], "expected at least 2")])
def test_bad_arguments_are_one_line(generate_job, args, expected):
    r = _run("--generate", str(generate_job), *args)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
