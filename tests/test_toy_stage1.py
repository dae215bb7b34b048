"""benchmarks/perf/toy_stage1 at smoke scale (random parts: the figures are mechanics, not scores): it trains Stage I
through the real stage code for the steps asked, keeps its jobs by key (a rerun trains nothing), measures the weights it
trained, and a config key it is given reaches the model it trains."""

import json
import re
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "perf" / "toy_stage1"
LAST = re.compile(r"^toy_stage1 scale=smoke steps=2 gain=-?[\d.]+ gain_ci=\S+ wrong=-?[\d.]+ wrong_ci=\S+ "
                  r"t5_gain=-?[\d.]+ t5_wrong=-?[\d.]+ share=\S+ clips=2 on=(held-out|train) sigmas=0.8 "
                  r"train_s=\d+ wall_s=\d+$")


def _run(work: Path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--work", str(work), "--steps", "2", "--clips", "2",
                           "--sigmas", "0.8", "--set", "scale=smoke", *args], capture_output=True, text=True,
                          timeout=600, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


def _record(r) -> dict:
    return json.loads(r.stderr[r.stderr.index("{\n"):])


def test_trains_stage1_for_the_steps_asked_and_measures_those_weights(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert LAST.match(r.stdout.strip().splitlines()[-1]), r.stdout
    record = _record(r)
    weights = Path(record["weights"])
    assert weights.parent.parent.parent == tmp_path and weights.parent.parent.name.startswith("stage1-")
    log = json.loads((weights.parent.parent / "train_log.json").read_text())
    assert log["total_steps"] == 2 and len(log["steps"]) == 2
    for label in ("model", "t5"):
        assert {c: len(v) for c, v in record[label]["errors"].items()} == {"caption": 2, "null": 2, "wrong": 2}
    again = _run(tmp_path)  # the same config: its jobs are reused, the same weights measured alike
    assert again.returncode == 0, again.stderr[-2000:]
    assert _record(again) == record
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["curate", "precompute", "stage1"]


def test_a_set_key_is_another_stage1_job(tmp_path):
    r = _run(tmp_path, "--set", "model.mllm.generation_layer=0")
    assert r.returncode == 0, r.stderr[-2000:]
    with safe_open(_record(r)["weights"], "pt") as f:
        assert any(k.startswith("connector.") for k in f.keys())
    base = _run(tmp_path)
    assert base.returncode == 0, base.stderr[-2000:]
    assert _record(base)["weights"] != _record(r)["weights"]
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("precompute-")]) == 2  # Z_u differs: own shards


def test_a_pretrain_dir_without_its_parts_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path), "--pretrain", str(tmp_path)],
                       capture_output=True, text=True, timeout=600,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1] == (f"toy_stage1: --pretrain {tmp_path}: expected a pretrain job's "
                                                 f"output (its wan/ and mllm/)")


def test_on_train_measures_the_stage1_jobs_own_clips(tmp_path):
    held = _run(tmp_path)
    assert held.returncode == 0, held.stderr[-2000:]
    r = _run(tmp_path, "--on", "train")
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert LAST.match(last) and " on=train " in last, r.stdout
    record, base = _record(r), _record(held)
    assert record["weights"] == base["weights"]  # the same job, measured on other clips
    assert record["model"]["errors"] != base["model"]["errors"]
    curated = (Path(record["weights"]).parents[2].glob("curate-*/gen_train.jsonl"))
    rows = sum(1 for line in next(curated).read_text().splitlines() if line.strip())
    too_many = _run(tmp_path, "--on", "train", "--clips", str(rows + 1))
    assert too_many.returncode != 0
    assert too_many.stderr.strip().splitlines()[-1] == (
        f"toy_stage1: --clips {rows + 1} with --on train: the Stage I job has {rows} curated clips "
        f"(expected --clips at most {rows})")
