"""benchmarks/perf/toy_generation: its summary at sample points, and a run end to end on a smoke generate job (a
random-init model: the figures are mechanics, not scores)."""

import json
import math
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "perf" / "toy_generation"
TG = runpy.run_path(str(SCRIPT))  # defines; main() only as a script


def _rec(dim, prompt, score):
    return {"dimension": dim, "prompt": prompt, "score": score}


def test_summary_leaves_unscored_colour_videos_out_and_counts_them():
    recs = [_rec("color", "a red circle", 1.0), _rec("color", "a red circle", None),
            _rec("color", "a blue square", 0.5), _rec("object_class", "a square", 0.25),
            _rec("object_class", "a circle", 0.75), _rec("spatial_relationship", "a circle on the left of a square", 0.0)]
    t = TG["summarise"](recs)
    assert t["color"]["score"] == pytest.approx(75.0)  # (1.0 + 0.5) / 2: the None video is not a zero
    assert (t["color"]["scored"], t["color"]["videos"], t["color"]["prompts"]) == (2, 3, 2)
    assert t["object_class"]["score"] == pytest.approx(50.0)
    assert t["object_class"]["low"] <= 50.0 <= t["object_class"]["high"]
    assert t["spatial"]["score"] == 0.0 and t["spatial"]["low"] == t["spatial"]["high"] == 0.0
    empty = TG["summarise"]([_rec("color", "a red circle", None)])["color"]
    assert empty["scored"] == 0 and math.isnan(empty["score"])


def test_suite_has_the_asked_prompts_of_each_headline_dimension():
    entries = TG["suite"](7, 3)
    for dim in ("color", "object_class", "spatial_relationship"):
        assert sum(dim in e["dimension"] for e in entries) == 3
    assert all(set(e["dimension"]) & {"color", "object_class", "spatial_relationship"} for e in entries)


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


LAST = re.compile(r"^toy_generation scale=smoke model=(\S+) color=\S+ object_class=[\d.]+ spatial=[\d.]+ "
                  r"color_ci=\S+ object_class_ci=[\d.]+-[\d.]+ spatial_ci=[\d.]+-[\d.]+ color_scored=\d+/2 "
                  r"object_class_scored=2/2 spatial_scored=2/2 color_control=\S+ object_class_control=[\d.]+ "
                  r"spatial_control=[\d.]+ prompts=1 samples=2 wall_s=\d+$")


@pytest.mark.parametrize("pretrained", [False, True])
def test_scores_a_generate_jobs_model_or_its_pretrained_dit(generate_job, tmp_path, pretrained):
    args = ["--generate", str(generate_job), "--prompts", "1", "--samples", "2", "--keep", str(tmp_path / "v"),
            "--set", "sampling.steps=2"]
    r = _run(*args, *(["--pretrained"] if pretrained else []))
    assert r.returncode == 0, r.stderr[-2000:]
    m = LAST.match(r.stdout.strip().splitlines()[-1])
    assert m and m.group(1) == ("pretrained" if pretrained else "stage3"), r.stdout
    assert len(list((tmp_path / "v").glob("*.mp4"))) == 6  # 3 dimensions x 1 prompt x 2 seeds
    record = json.loads(r.stderr[r.stderr.index("{\n"):])
    assert record["sampling"]["steps"] == 2
    assert record["conditioning"] == ("t5" if pretrained else "mllm")
    assert record["tma"] == ("none" if pretrained else "cosine")


@pytest.mark.parametrize("reference", ["rendered", "vae"])
def test_reference_scores_the_world_clips_the_prompts_describe(generate_job, tmp_path, reference):
    r = _run("--generate", str(generate_job), "--prompts", "1", "--samples", "2", "--reference", reference,
             "--keep", str(tmp_path / "v"))
    assert r.returncode == 0, r.stderr[-2000:]
    m = LAST.match(r.stdout.strip().splitlines()[-1])
    assert m and m.group(1) == reference, r.stdout
    assert len(list((tmp_path / "v").glob("*.mp4"))) == 6
    if reference == "rendered":  # the scorers read back what the world renders, after H.264
        assert " color=100.0 object_class=100.0 " in r.stdout
        assert "color_scored=2/2" in r.stdout
        # asked for another colour or shape, the same clips score 0: the controls can tell
        assert " color_control=0.0 object_class_control=0.0 " in r.stdout


def test_reference_and_pretrained_together_is_one_line(generate_job):
    r = _run("--generate", str(generate_job), "--reference", "vae", "--pretrained")
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "--reference" in err[0] and "expected one of them" in err[0]


def test_a_job_of_another_kind_is_one_line(generate_job, tmp_path):
    other = tmp_path / "stage3"
    other.mkdir()
    job = json.loads((generate_job / "job_config.json").read_text())
    (other / "job_config.json").write_text(json.dumps(dict(job, job="stage3")))
    r = _run("--generate", str(other))
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "'stage3'" in err[0] and "expected 'generate'" in err[0]


def test_keep_into_a_directory_with_videos_is_one_line(generate_job, tmp_path):
    (tmp_path / "000-0.mp4").write_bytes(b"old")  # would be taken for this run's video
    r = _run("--generate", str(generate_job), "--keep", str(tmp_path))
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "expected a new or empty directory" in err[0]
