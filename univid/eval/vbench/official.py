"""Paper-scale VBench(-Long) scores through the official vbench 0.1.5 code, run in its own environment.

vbench pins transformers 4.33, numpy<2 and timm<=1.0.12, so it cannot share .venv (transformers 5): `make
vbench-env` builds .venv-vbench and this module runs univid/eval/vbench/official_driver.py (univid-free) with that
environment's python. The driver takes the arguments of vbench2_beta_long/eval_long.py (build_argv writes them)
and saves the official `{name}_eval_results.json`; parse_results turns it into per-(video, dimension) records that
univid.eval.vbench.suite.pool_results pools exactly like the stand-in backend's, so scores.json has one shape.

Protocols: eval.vbench.long disabled -> `--mode vbench_standard` (vbench.VBench on whole videos, as `vbench
evaluate` does); enabled -> `--mode long_vbench_standard` (vbench2_beta_long.VBenchLong: clips of
clip_length_mix.yaml, --use_semantic_splitting, --dev_flag, --static_filter_flag). The 0.1.5 wheel lacks
vbench2_beta_long/configs/*.yaml, so the clip-length, mapping and slow-fast files are written from
long_tables.json (copied from those files) and passed by absolute path, which eval_long.py accepts.
Weights are read offline from $VBENCH_CACHE_DIR (`--load_ckpt_from_local True`); DINO's torch-hub code loads its
checkpoint through torch.hub, so TORCH_HOME points into the same root (benchmarks/vbench_weights.json lists both).
Raw scores are cached per (video sha256, dimension, backend id, prompt entry, long flags), so only the videos with
a missing dimension go to the official run (symlinked into a scratch folder, which the long mode writes clips into).
The driver evaluates them one at a time (--per_video_dir) and writes each video's results when it is done; they are
cached even when the run then fails, and a failed run's scratch folder is kept and read by the next run, so a crash
or a time limit loses at most the video in flight.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from univid.eval.cache import EvalCache
from univid.eval.vbench.long import clip_seconds, tables
from univid.eval.vbench.scorers import SCORERS
from univid.eval.vbench.weights import load_manifest, vbench_cache_dir
from univid.io import read_json, write_json

VERSION = "vbench 0.1.5 official"
DEFAULT_PYTHON = ".venv-vbench/bin/python"
DRIVER = Path(__file__).with_name("official_driver.py")
RESULTS_NAME = "univid"
SCRATCH_PREFIX = "vbench-official-"
TORCH_HOME_SUBDIR = "torch"  # TORCH_HOME inside $VBENCH_CACHE_DIR: DINO's hubconf reads hub/checkpoints/ there

# The model behind each dimension in vbench 0.1.5 (vbench/utils.py init_submodules).
DIMENSION_MODELS = {
    "subject_consistency": "dino-vitb16",
    "background_consistency": "clip-vitb32",
    "temporal_flickering": "no model",
    "motion_smoothness": "amt-s",
    "dynamic_degree": "raft-things",
    "aesthetic_quality": "clip-vitl14+laion-aesthetic-linear",
    "imaging_quality": "musiq-spaq",
    "object_class": "grit-b-densecap-objectdet",
    "multiple_objects": "grit-b-densecap-objectdet",
    "color": "grit-b-densecap-objectdet",
    "spatial_relationship": "grit-b-densecap-objectdet",
    "human_action": "umt-l16",
    "scene": "tag2text-swin-14m",
    "appearance_style": "clip-vitb32",
    "temporal_style": "viclip-internvid-10m-flt",
    "overall_consistency": "viclip-internvid-10m-flt",
}
# eval_long.py's defaults with --dev_flag: clip-to-clip features from DINOv2 (subject) and DreamSim (background).
DEV_FLAG_EXTRACTORS = {"subject_consistency": "dinov2-vitb14", "background_consistency": "dreamsim"}
# imaging_quality's per-video MUSIQ scores are 0-100; only the dimension total is divided by 100 officially.
PER_VIDEO_SCALE = {"imaging_quality": 100.0}
OFFICIAL_DEVIATIONS = [
    "os.listdir lists files before folders inside vbench2_beta_long (its suffix detection reads the first entry)",
    "clip-length/mapping/slow-fast yaml written from long_tables.json (the 0.1.5 wheel lacks them)",
]
SCENE_DETECTOR = "vbench2_beta_long split_video_into_scenes (PySceneDetect ContentDetector, threshold 35)"


def backend_id(dim: str, long: Mapping | None = None) -> str:
    """What produced a dimension's raw score, e.g. 'vbench 0.1.5 official (dino-vitb16)'."""
    if dim not in DIMENSION_MODELS:
        raise ValueError(f"dimension {dim!r}: unknown (expected one of {', '.join(DIMENSION_MODELS)})")
    model = DIMENSION_MODELS[dim]
    if long and long.get("dev_flag") and dim in DEV_FLAG_EXTRACTORS:
        model += f"+dev_flag-clip2clip:{DEV_FLAG_EXTRACTORS[dim]}"
    if long and long.get("static_filter") and dim == "temporal_flickering":
        model += "+static_filter:raft-things"
    return f"{VERSION} ({model})"


def official_python(path: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> Path:
    """The vbench environment's python (eval.vbench.official_python, relative paths from the repository root)."""
    p = Path(path or DEFAULT_PYTHON).expanduser()
    if not p.is_absolute():
        p = Path(root or Path(__file__).resolve().parents[3]) / p  # the repository root
    if not p.exists():
        raise FileNotFoundError(f"{p}: vbench environment not found (expected the python of `make vbench-env`, or "
                                "eval.vbench.official_python naming one)")
    return p


def required_weights(dims: list[str], long: Mapping | None = None, manifest: dict | None = None) -> list[dict]:
    """Manifest entries the dimensions (and flags) read: entries listing the dimension, or a set flag."""
    manifest = manifest or load_manifest()
    flags = {f for f in ("static_filter", "dev_flag") if long and long.get(f)}
    return [e for e in manifest["files"]
            if set(e.get("dimensions", [])) & set(dims)
            or (set(e.get("flags", [])) & flags and (not e.get("flag_dimensions")
                                                     or set(e["flag_dimensions"]) & set(dims)))]


def check_weights(dims: list[str], long: Mapping | None = None, root: str | os.PathLike | None = None,
                  manifest: dict | None = None) -> Path:
    """Fail before any video is scored when a weight file a dimension needs is absent (they are never downloaded
    here: the official code would try wget, which an offline cluster cannot). Returns the weights root."""
    root = vbench_cache_dir(root)
    for e in required_weights(dims, long, manifest):
        path = root / e["path"]
        if not path.is_file():
            needs = ", ".join(sorted(set(e.get("dimensions", [])) & set(dims)) or e.get("flags", []))
            raise FileNotFoundError(f"{path}: VBench weight file {e['name']!r} for {needs} not found (expected it "
                                    "pre-staged: `univid weights fetch` where there is internet, then `univid "
                                    "weights verify`)")
    return root


def _yaml_map(pairs) -> str:
    return "".join(f"{k!r}: {v!r}\n" for k, v in pairs)


def write_long_configs(folder: str | os.PathLike, clip_length: str = "mix") -> dict[str, Path]:
    """vbench2_beta_long/configs/*.yaml from long_tables.json: {argument: path} for build_argv.
    clip_length "fixed2" is long_custom_input's 2 s for every dimension, given as a clip-length config."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = tables()
    lengths = t["clip_length_mix"] if clip_length == "mix" else {d: 2.0 for d in t["clip_length_mix"]}
    w = t["dev_weights"]
    files = {
        "clip_length_config": (f"clip_length_{clip_length}.yaml", _yaml_map(lengths.items())),
        "subject_mapping_file_path": ("subject_mapping_table.yaml",
                                      _yaml_map(t["mapping_table"]["subject_consistency"])),
        "background_mapping_file_path": ("background_mapping_table.yaml",
                                         _yaml_map(t["mapping_table"]["background_consistency"])),
        "slow_fast_eval_config": ("slow_fast_params.yaml", _yaml_map([
            ("w_inclip_sb", w["subject_consistency"]["w_inclip"]),
            ("w_clip2clip_sb", w["subject_consistency"]["w_clip2clip"]),
            ("w_inclip_bg", w["background_consistency"]["w_inclip"]),
            ("w_clip2clip_bg", w["background_consistency"]["w_clip2clip"])])),
    }
    out = {}
    for arg, (name, text) in files.items():
        (folder / name).write_text(text)
        out[arg] = folder / name
    return out


def build_argv(python: str | os.PathLike, videos_path: str | os.PathLike, dims: list[str],
               full_info: str | os.PathLike, output_path: str | os.PathLike, *, long: Mapping | None,
               samples_per_prompt: int, configs: Mapping[str, str | os.PathLike] | None = None,
               device: str | None = None, frames_json: str | os.PathLike | None = None,
               per_video_dir: str | os.PathLike | None = None, name: str = RESULTS_NAME) -> list[str]:
    """The driver's command line: eval_long.py's arguments for this run (+ --device/--name/--frames_json/
    --per_video_dir)."""
    argv = [str(python), str(DRIVER), "--videos_path", str(videos_path), "--dimension", *dims,
            "--full_json_dir", str(full_info), "--output_path", str(output_path),
            "--load_ckpt_from_local", "True", "--name", name]
    if long is None:
        if samples_per_prompt > 5:
            raise ValueError(f"samples_per_prompt {samples_per_prompt}: vbench_standard reads videos -0..-4 only "
                             "(expected at most 5)")
        argv += ["--mode", "vbench_standard"]
    else:
        if float(long["scene_threshold"]) != 35.0:
            raise ValueError(f"eval.vbench.long.scene_threshold {long['scene_threshold']!r}: eval_long.py has no "
                             "argument for it (expected 35.0 with the official backend)")
        if configs is None:
            raise ValueError("VBench-Long: no config files (expected write_long_configs' output)")
        argv += ["--mode", "long_vbench_standard", "--num_of_samples_per_prompt", str(samples_per_prompt)]
        for arg in ("clip_length_config", "slow_fast_eval_config", "subject_mapping_file_path",
                    "background_mapping_file_path"):
            argv += [f"--{arg}", str(configs[arg])]
        argv += [flag for flag, on in (("--use_semantic_splitting", long["scene_detection"]),
                                       ("--dev_flag", long["dev_flag"]),
                                       ("--static_filter_flag", long["static_filter"])) if on]
    if device:
        argv += ["--device", device]
    if frames_json:
        argv += ["--frames_json", str(frames_json)]
    if per_video_dir:
        argv += ["--per_video_dir", str(per_video_dir)]
    return argv


def _value(raw, dim: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):  # dynamic_degree: moving or not
        return float(raw)
    value = float(raw) / PER_VIDEO_SCALE.get(dim, 1.0)
    if not np.isfinite(value):
        raise ValueError(f"official {dim}: per-video score {raw!r} (expected a finite number)")
    return value


def _weight(dim: str, n_frames) -> int:
    """VBench's pooling weight of a video with n_frames frames (scorers.Scorer: video / frame / pair pooling)."""
    s = SCORERS[dim]
    if s.pooling == "video":
        return 1
    if not isinstance(n_frames, int):
        raise ValueError(f"official {dim}: frame count {n_frames!r} (expected the driver's frames.json to count it)")
    n = len(s.sample(np.zeros((n_frames, 1, 1, 3), np.uint8), None))
    return n if s.pooling == "frame" else n - 1


def _long_name(path: str) -> str:
    """reorganize_clips_results' long-video key: the clip's base name up to its first underscore."""
    return os.path.basename(path).split("_")[0] + ".mp4"


def parse_results(results: Mapping, dims: list[str], long: Mapping | None,
                  frames: Mapping[str, object]) -> dict[tuple[str, str], dict]:
    """{(video file name, dimension): record} from an official `*_eval_results.json` (see module doc).

    vbench_standard: results[dim] = [total, [{"video_path", "video_results"}, ...]].
    long_vbench_standard: results[dim] = [total, clip results, per-long-video results] (reorganize_clips_results),
    or for subject/background consistency [total, per-long-video results] (with inclip/clip2clip scores when fused).
    frames: {path relative to the videos folder: frame count} from the driver.
    """
    by_base = {os.path.basename(p): n for p, n in frames.items()}
    clips_of: dict[str, list[str]] = {}
    for p in sorted(frames):
        parts = Path(p).parts
        if len(parts) == 3 and parts[0] == "split_clip":
            clips_of.setdefault(parts[1] + ".mp4", []).append(p)
    out: dict[tuple[str, str], dict] = {}
    for d in dims:
        if d not in results:
            raise ValueError(f"official results: dimension {d!r} missing (expected every requested dimension)")
        item = results[d]
        if not isinstance(item, list) or len(item) not in (2, 3) or not isinstance(item[1], list):
            raise ValueError(f"official results[{d!r}]: {str(item)[:80]} (expected [total, [video results], ...])")
        if long is None:
            for v in item[1]:
                name = os.path.basename(v["video_path"])
                out[(name, d)] = {"score": _value(v["video_results"], d), "weight": _weight(d, by_base.get(name))}
            continue
        # The entries the official total averages, grouped by long video. vbench 0.1.5's reorganize_clips_results
        # keys a clip by os.path.join(<clip path up to "filtered_clips">, name) + ".mp4": without the static
        # filter that is each clip's own path, so there is one entry per clip and the total is the mean over clips;
        # static-filtered clips share one key per long video. Keeping every entry reproduces either.
        per_video = item[2] if len(item) == 3 else item[1]
        clip_scores: dict[str, dict[str, float | None]] = {}
        if len(item) == 3:
            for c in item[1]:
                clip_scores.setdefault(_long_name(c["video_path"]), {})[os.path.basename(c["video_path"])] = \
                    _value(c["video_results"], d)
        grouped: dict[str, list[dict]] = {}
        for v in per_video:
            if "video_path" in v:  # temporal_flickering may append {"long_video_cnt": n}
                grouped.setdefault(os.path.basename(v["video_path"]), []).append(v)
        for name, vs in grouped.items():
            fused = all("inclip_score" in v for v in vs)
            inclip = [_value(v["inclip_score"] if fused else v["video_results"], d) for v in vs]
            score = float(np.mean(inclip))
            clips = clips_of.get(name, [])
            rec = {"score": score, "weight": len(vs),
                   "clips": [[clip_scores.get(name, {}).get(os.path.basename(c), score if len(clips) == 1 else None),
                              _weight(d, frames[c])] for c in clips] or [[score, 1]]}
            if fused:
                rec.update({"clip2clip": float(vs[0]["clip2clip_score"]),
                            "fused": float(np.mean([_value(v["video_results"], d) for v in vs]))})
            out[(name, d)] = rec
    return out


def pool_official_long(dim: str, per_video: Mapping[str, dict]) -> float:
    """A dimension's VBench-Long total as vbench 0.1.5 computes it: the mean over the entries parse_results kept
    (one per clip, or one per long video when static-filtered), i.e. per-video scores weighted by entry count."""
    scored = [(v.get("fused", v["score"]), v["weight"]) for v in per_video.values() if v["score"] is not None]
    total = sum(w for _, w in scored)
    return sum(s * w for s, w in scored) / total if total else 0.0


def official_totals(results: Mapping, dims: list[str]) -> dict[str, float]:
    """The official code's own dimension totals (raw, [0, 1]) from an `*_eval_results.json`."""
    return {d: float(results[d][0]) for d in dims if d in results and results[d][0] is not None}


# Python modules the official code imports only for some dimensions, and which `make vbench-env` does not install.
EXTRA_MODULES = {"detectron2": ("object_class", "multiple_objects", "color", "spatial_relationship")}  # GRiT


def check_environment(dims: list[str], python: str | os.PathLike, device: str | None = None,
                      cuda_available=None) -> None:
    """Before any scoring: the dimensions' extra modules import in the vbench environment, and (device cuda, the
    paper default) a GPU is there. One line naming what is missing and which dimensions need it."""
    for module, needing in EXTRA_MODULES.items():
        affected = [d for d in dims if d in needing]
        if not affected:
            continue
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True)
        if probe.returncode != 0:
            raise ValueError(f"{python}: cannot import {module}, which the official {', '.join(affected)} "
                             f"dimension(s) need (expected it built into the vbench environment; it has no PyPI "
                             f"wheel), or leave those dimensions out with eval.vbench.dimensions")
    if (device or "cuda").startswith("cuda"):
        if cuda_available is None:
            import torch

            cuda_available = torch.cuda.is_available()
        if not cuda_available:
            raise ValueError(f"official VBench on device {device or 'cuda'!r}: no GPU is visible to this job "
                             f"(expected the job to be given one, e.g. the SLURM profile's --gpus=1; a CPU run of "
                             f"the official models would take days)")


def run_driver(argv: list[str], weights_root: Path, log: Path) -> None:
    """Run the driver with the vbench environment; its output goes to log; a failure names the log's last line."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update({"VBENCH_CACHE_DIR": str(weights_root), "TORCH_HOME": str(weights_root / TORCH_HOME_SUBDIR),
                "PYTHONNOUSERSITE": "1"})
    with open(log, "w") as f:
        proc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    if proc.returncode != 0:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
        raise RuntimeError(f"official vbench run failed with exit code {proc.returncode}: "
                           f"{lines[-1] if lines else 'no output'} (expected exit 0; full log: {log})")


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _ingest(scratch: Path, needs: Mapping[str, dict], long: Mapping | None, hashes: Mapping[str, str] | None,
            records: dict, key, cache: EvalCache | None, official: dict) -> None:
    """Take the videos a driver run finished (scratch/per-video/done/<video>.json) into records and the cache, when
    the run asked what is asked now (same VBench-Long settings, same video bytes); the driver writes each file as
    soon as its video is done, so a crash or a time limit loses at most the video in flight."""
    done = scratch / "per-video" / "done"
    if not (scratch / "request.json").is_file() or not done.is_dir():
        return
    req = read_json(scratch / "request.json")
    if not _same(req.get("long"), long):
        return
    for path in sorted(done.glob("*.json")):
        name = path.name[:-len(".json")]
        dims = [d for d in req["dims"] if d in needs.get(name, {})]
        if not dims or (hashes and req["videos"].get(name) != hashes.get(name)):
            continue  # a video this job does not score, or whose file changed since
        payload = read_json(path)
        fresh = parse_results(payload["results"], req["dims"], long, payload["frames"])
        totals = official_totals(payload["results"], req["dims"])
        official["videos_run"] += 1
        for d in dims:
            if (name, d) in records:
                continue
            rec = fresh.get((name, d))
            if rec is None:  # the official code skipped it (an unreadable video, or colour's unseen object)
                rec = {"score": None, "weight": 0} if long is None else \
                    {"score": None, "weight": 1, "clips": [[None, 0]]}
            records[(name, d)] = rec
            k = key(name, d)
            if k:
                cache.put("vbench", k, rec)
            # One video per official run: the harness's pooling of its record must give the official total.
            mine = pool_official_long(d, {name: rec}) if long else rec["score"]
            if mine is not None and d in totals:
                official.setdefault("diffs", []).append(abs(mine - totals[d]))


def score_official(entries: list[dict], video_dir: str | os.PathLike, suite_json: str | os.PathLike,
                   wanted: list[str], names_of, *, long: dict | None, samples_per_prompt: int,
                   cache: EvalCache | None = None, hashes: Mapping[str, str] | None = None,
                   python: str | os.PathLike | None = None, device: str | None = None,
                   weights_root: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None,
                   keep_work_dir: bool = False) -> dict:
    """Score the suite's videos with the official code; returns score_videos' result shape (+ "official")."""
    from univid.eval.vbench.suite import cache_key, pool_results

    video_dir = Path(video_dir)
    backends = {d: backend_id(d, long) for d in wanted}
    needs: dict[str, dict[str, dict]] = {}
    seconds: dict[str, int | None] = {}
    for e in entries:
        for d in (d for d in e["dimension"] if d in wanted):
            for name, _ in names_of(e["prompt_en"]):
                needs.setdefault(name, {}).setdefault(d, e)
                if name not in seconds:
                    seconds[name] = clip_seconds(e["prompt_en"], entries, long["clip_length"]) if long else None

    def key(name: str, d: str) -> str | None:
        if cache is None or not hashes or name not in hashes:
            return None
        return cache_key(hashes[name], d, backends[d], needs[name][d], long, seconds[name])

    records: dict[tuple[str, str], dict] = {}
    for name, dim_entries in needs.items():
        for d in dim_entries:
            k = key(name, d)
            hit = cache.get("vbench", k) if k else None
            if hit is not None:
                records[(name, d)] = hit
    official: dict = {"version": VERSION, "runs": 0, "videos_run": 0}
    n_cached = len(records)
    base = Path(work_dir) if work_dir else None
    # Videos a killed or failed earlier run finished (per-video files of its scratch folder) count as computed.
    if base and base.is_dir():
        for scratch in sorted(base.glob(SCRATCH_PREFIX + "*")):
            _ingest(scratch, needs, long, hashes, records, key, cache, official)
            shutil.rmtree(scratch, ignore_errors=True)
    todo = sorted({name for name, de in needs.items() for d in de if (name, d) not in records})
    todo_dims = [d for d in wanted if any((n, d) not in records for n in todo if d in needs[n])]
    counts = {"videos": len(needs), "videos_decoded": len(todo), "scored": len(records) - n_cached,
              "cached": n_cached}

    if todo:
        py = official_python(python)
        check_environment(todo_dims, py, device)
        root = check_weights(todo_dims, long, weights_root)
        if base:
            base.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=base))
        videos = scratch / "videos"
        videos.mkdir()
        for name in todo:  # the long mode writes split_clip/ into the videos folder: never the real one
            (videos / name).symlink_to((video_dir / name).resolve())
        write_json(scratch / "request.json", {"dims": todo_dims, "long": long,
                                              "videos": {n: (hashes or {}).get(n) for n in todo}})
        configs = write_long_configs(scratch / "configs", long["clip_length"]) if long else None
        argv = build_argv(py, videos, todo_dims, Path(suite_json).resolve(), scratch / "out", long=long,
                          samples_per_prompt=samples_per_prompt, configs=configs, device=device,
                          per_video_dir=scratch / "per-video")
        # The command as run, with the scratch folder (gone afterwards) written as <scratch>.
        official.update({"runs": 1, "argv": [os.path.basename(argv[0]),
                                             *(a.replace(str(scratch), "<scratch>") for a in argv[1:])]})
        try:
            run_driver(argv, root, scratch / "driver.log")
        finally:  # what finished is kept (in the cache) even when the run failed
            n_before = len(records)
            _ingest(scratch, needs, long, hashes, records, key, cache, official)
            counts["scored"] += len(records) - n_before
        # A failed run keeps its scratch folder (the error names its log; the next run takes its finished
        # videos); a finished one is removed.
        if not keep_work_dir:
            shutil.rmtree(scratch, ignore_errors=True)
        for name in todo:
            for d in needs[name]:
                if (name, d) not in records:
                    raise RuntimeError(f"official vbench run: no result for {name} on {d} (expected the driver to "
                                       f"write {SCRATCH_PREFIX}*/per-video/done/{name}.json)")

    result = pool_results(entries, wanted, names_of, records, long, backends, counts,
                          scene_detector=SCENE_DETECTOR, deviations=OFFICIAL_DEVIATIONS, long_pool=pool_official_long)
    official["pooling_max_abs_diff"] = max(official.pop("diffs", []), default=None)
    result["official"] = official
    return result
