"""Sharded jobs equal one job: N generate shards write byte for byte the videos (and seeds) one job writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from univid.cli import main
from univid.commands.generation import shard_items
from univid.config import resolve

SMALL = ["--set", "data.synthetic.n_clips=8", "--set", "data.num_gen_samples=4", "--set", "data.num_qa_samples=12"]


def test_shards_partition_the_items_evenly():
    parts = [shard_items(11, k, 3) for k in range(3)]
    assert sorted(sum(parts, [])) == list(range(11)) and [len(p) for p in parts] == [4, 4, 3]
    with pytest.raises(ValueError, match=r"--shard 3 --shards 3: expected 0 <= shard < shards"):
        shard_items(11, 3, 3)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Curated prompts and a weights file of the generation parts (the connector of a seeded build)."""
    from univid.data.curate import curate
    from univid.io import write_json
    from univid.models.builder import build, save_weights
    from univid.prompts import prompt_suite

    root = tmp_path_factory.mktemp("gen")
    cfg = resolve({"data": {"synthetic": {"n_clips": 8}, "num_gen_samples": 4, "num_qa_samples": 12}})
    curate(cfg["data"], root / "curate", cfg["seed"])
    write_json(root / "curate" / "prompts.json", prompt_suite(cfg["eval"]["vbench"], cfg["seed"]))
    comp = build(cfg)
    save_weights({n: p.detach().clone() + 0.01 for n, p in comp.model.named_parameters() if n.startswith("connector.")},
                 root / "w.safetensors")
    return root


def _gen(inputs: Path, out: Path, *extra: str) -> None:
    main(["generate-suite", "--quiet", "--curate", str(inputs / "curate"), "--weights", str(inputs / "w.safetensors"),
          "--out", str(out), *SMALL, *extra])


def test_two_shards_write_exactly_the_videos_one_job_writes(inputs, tmp_path, capsys):
    torch.set_num_threads(1)
    _gen(inputs, tmp_path / "one")
    for k in (1, 0):  # in any order
        _gen(inputs, tmp_path / "two", "--shard", str(k), "--shards", "2")
    assert not (tmp_path / "two" / "manifest.json").exists()
    _gen(inputs, tmp_path / "two", "--gather", "2")
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    strip = lambda m: [{**r, "video": Path(r["video"]).name} for r in m["videos"]]  # noqa: E731
    assert strip(one) == strip(two) and len(one["videos"]) >= 10
    for r in one["videos"]:
        name = Path(r["video"]).name
        assert (tmp_path / "one" / "videos" / name).read_bytes() == (tmp_path / "two" / "videos" / name).read_bytes()
    shards = [json.loads((tmp_path / "two" / "shards" / f"{k}-of-2.json").read_text())["videos"] for k in (0, 1)]
    assert sorted(r["seed"] for s in shards for r in s) == [r["seed"] for r in one["videos"]]


def test_a_gather_with_a_missing_shard_is_one_line(inputs, tmp_path, capsys):
    _gen(inputs, tmp_path / "part", "--shard", "0", "--shards", "2")
    with pytest.raises(SystemExit):
        _gen(inputs, tmp_path / "part", "--gather", "2")
    err = capsys.readouterr().err.strip()
    assert "1-of-2.json: shard 1 of 2 not finished" in err and err.count("\n") == 0, err


def _planned(tmp_path, shards_yaml: str):
    """A Table 4 dry run with these shard settings: (the process, its job counts)."""
    from conftest import job_counts, scratch_workflow, snakemake

    work = tmp_path / "wf"
    if not work.exists():
        work = scratch_workflow(work)
    (work / "shards.yaml").write_text(shards_yaml)
    proc = snakemake(work, "-n", "--cores", "1", "reports/table4.tex", "--configfile", "shards.yaml")
    return proc, job_counts(proc.stdout + proc.stderr)


def test_the_workflow_plans_n_shard_jobs_and_one_gather_per_generate_job(tmp_path):
    proc, counts = _planned(tmp_path, "shards:\n  generate: 3\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert counts["generate_shard"] == 15 and counts["generate"] == 5  # Table 4's five variants, 3 shards each
    bad, _ = _planned(tmp_path, "shards:\n  generate: 0\n")
    said = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "config key 'shards.generate' = 0: 0 is less than the minimum of 1" in said


def test_dimension_shards_pool_into_the_scores_one_evaluate_job_writes(inputs, tmp_path, capsys):
    """shards.evaluate: 3 jobs over every 3rd VBench dimension, gathered, equal one job (every field but the
    per-shard work record and the cache statistics)."""
    from univid.commands.evaluation import shard_dims
    from univid.eval.vbench.constants import DIMENSIONS

    torch.set_num_threads(1)
    _gen(inputs, tmp_path / "gen")

    def ev(out, *extra):
        main(["evaluate", "--quiet", "--no-cache", "--curate", str(inputs / "curate"), "--videos",
              str(tmp_path / "gen"), "--out", str(out), *SMALL, *extra])

    ev(tmp_path / "one")
    for k in (2, 0, 1):
        ev(tmp_path / "three", "--shard", str(k), "--shards", "3")
    assert not (tmp_path / "three" / "scores.json").exists()
    ev(tmp_path / "three", "--gather", "3")
    one = json.loads((tmp_path / "one" / "scores.json").read_text())
    three = json.loads((tmp_path / "three" / "scores.json").read_text())
    assert [sorted(s["dimensions"]) for s in three.pop("shards")] == [sorted(shard_dims(list(DIMENSIONS), k, 3))
                                                                      for k in range(3)]
    one["counts"].pop("videos_decoded"), three["counts"].pop("videos_decoded")  # each shard decodes the videos
    assert three == one and one["aggregate"] is not None and len(one["per_video"]) >= 16
    with pytest.raises(ValueError, match=r"--shard 0 --shards 17: expected 0 <= shard < shards <= 16"):
        shard_dims(list(DIMENSIONS), 0, 17)


def test_the_workflow_plans_one_evaluate_job_per_dimension_group(tmp_path):
    proc, counts = _planned(tmp_path, "shards:\n  evaluate: 4\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert counts["evaluate_shard"] == 20 and counts["evaluate"] == 5


def test_ti2v_shards_write_the_videos_and_references_one_job_writes(tmp_path):
    """On the ti2v track every shard generates from the same reference images and the gather records them."""
    from univid.io import read_json, write_json

    torch.set_num_threads(1)
    main(["ti2v-suite", "--quiet", "--out", str(tmp_path / "suite")])
    entries = read_json(tmp_path / "suite" / "prompts.json")[:3]  # three prompts keep it quick
    write_json(tmp_path / "suite" / "prompts.json", entries)
    from univid.models.builder import build, save_weights

    comp = build(resolve({}))
    save_weights({n: p.detach().clone() + 0.01 for n, p in comp.model.named_parameters()
                  if n.startswith("connector.")}, tmp_path / "w.safetensors")

    def gen(out, *extra):
        main(["generate-suite", "--quiet", "--set", "eval.vbench.track=ti2v", "--set", "sampling.steps=2",
              "--ti2v-suite", str(tmp_path / "suite"), "--weights", str(tmp_path / "w.safetensors"), "--out",
              str(tmp_path / out), *extra])

    gen("one")
    for k in (1, 0):
        gen("two", "--shard", str(k), "--shards", "2")
    gen("two", "--gather", "2")
    one, two = (read_json(tmp_path / d / "manifest.json") for d in ("one", "two"))
    strip = lambda m: [{**r, "video": Path(r["video"]).name} for r in m["videos"]]  # noqa: E731
    assert strip(one) == strip(two) and one["track"] == two["track"] == "ti2v"
    assert [r["image_sha256"] for r in one["videos"]] == [e["image_sha256"] for e in entries]
    for r in one["videos"]:
        name = Path(r["video"]).name
        assert (tmp_path / "one" / "videos" / name).read_bytes() == (tmp_path / "two" / "videos" / name).read_bytes()
