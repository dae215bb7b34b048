"""The VBench-Long prompt suite at each scale, in VBench_full_info.json's entry format."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from univid.eval.vbench.constants import DIMENSIONS


def vbench_full_info_path() -> Path:
    spec = importlib.util.find_spec("vbench")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("vbench: package not installed (expected `make setup` to install vbench==0.1.5 --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "VBench_full_info.json"


def select_per_dimension(entries: list[dict], per_dimension: int | None) -> list[dict]:
    """Keep the first `per_dimension` prompts of every dimension (all when None), in file order, no duplicates."""
    if per_dimension is None:
        return list(entries)
    counts = {d: 0 for d in DIMENSIONS}
    keep = []
    for entry in entries:
        wanted = [d for d in entry["dimension"] if counts.get(d, per_dimension) < per_dimension]
        if wanted:
            keep.append(entry)
            for d in entry["dimension"]:
                counts[d] = counts.get(d, 0) + 1
    missing = [d for d, c in counts.items() if c == 0]
    if missing:
        raise ValueError(f"prompt suite: no prompt for dimension(s) {', '.join(missing)} (expected all 16 covered)")
    return keep


def prompt_suite(vbench_cfg: dict, seed: int) -> list[dict]:
    if vbench_cfg["prompt_suite"] == "synthetic":
        from univid.data.synthetic import vbench_prompt_suite

        entries = vbench_prompt_suite(seed, per_dimension=vbench_cfg.get("per_dimension") or 1)
    else:
        entries = json.loads(vbench_full_info_path().read_text())
    return select_per_dimension(entries, vbench_cfg.get("per_dimension"))


# ------------------------------------------------------------------------------------------ the ti2v track

I2V_DIMENSIONS = ("i2v_subject", "i2v_background")
# VBench-I2V scores its video-quality dimensions on the videos of its image data (vbench2_beta_i2v/README.md,
# "Evaluation Setting"): subject images for subject consistency, motion smoothness and dynamic degree, background
# images for background consistency, both for aesthetic and imaging quality. Its suite has no semantic prompts.
I2V_QUALITY = {"i2v_subject": ("subject_consistency", "motion_smoothness", "dynamic_degree", "aesthetic_quality",
                               "imaging_quality"),
               "i2v_background": ("background_consistency", "aesthetic_quality", "imaging_quality")}
TI2V_SOURCES = ("synthetic", "vbench_i2v")


def reference_path(suite_dir: str | Path, entry: dict) -> Path:
    """The reference image of a ti2v suite entry: `image` is relative to the suite's folder (synthetic frames) or
    absolute (VBench-I2V's crops stay where they are)."""
    return Path(suite_dir) / entry["image"]


def ti2v_suite(vbench_cfg: dict, sampling: dict, seed: int, out_dir: str | Path) -> list[dict]:
    """The ti2v track's prompt suite: VBench_full_info.json-style entries, each with a reference image (`image_name`,
    `image`, `image_sha256`) and the VBench-I2V dimensions it is scored on (`i2v_dimension`).

    eval.vbench.ti2v_suite.source synthetic: the synthetic prompt suite (all 16 dimensions), each prompt's image the
    first frame of the world clip it describes (univid.data.synthetic.spec_from_prompt, rendered at sampling.height x
    width from `seed`), written to out_dir/images/<prompt>.png. vbench_i2v: VBench-I2V's image suite, read in place
    (see vbench_i2v_suite)."""
    src = vbench_cfg["ti2v_suite"]
    if src["source"] == "synthetic":
        return _synthetic_ti2v(vbench_cfg.get("per_dimension"), sampling, seed, Path(out_dir))
    if src["source"] == "vbench_i2v":
        return vbench_i2v_suite(src, vbench_cfg.get("per_dimension"))
    raise ValueError(f"eval.vbench.ti2v_suite.source {src['source']!r}: unknown (expected one of "
                     f"{', '.join(TI2V_SOURCES)})")


def _synthetic_ti2v(per_dimension: int | None, sampling: dict, seed: int, out_dir: Path) -> list[dict]:
    import numpy as np
    import PIL.Image

    from univid.data.synthetic import render_clip, spec_from_prompt, vbench_prompt_suite
    from univid.eval.cache import file_sha256
    from univid.io import atomic_path

    entries = select_per_dimension(vbench_prompt_suite(seed, per_dimension=per_dimension or 1), per_dimension)
    suite = []
    for e in entries:
        spec = spec_from_prompt(e, seed, int(sampling["num_frames"]), int(sampling["height"]), int(sampling["width"]),
                                float(sampling["fps"]))
        frame = np.ascontiguousarray(render_clip(spec)[0])
        name = f"{e['prompt_en']}.png"  # VBench-I2V's custom-input naming: the image shares the video's prompt
        with atomic_path(out_dir / "images" / name) as tmp:
            PIL.Image.fromarray(frame).save(tmp, format="PNG")
        suite.append({**e, "image_name": name, "image": f"images/{name}",
                      "image_sha256": file_sha256(out_dir / "images" / name), "i2v_dimension": list(I2V_DIMENSIONS)})
    return suite


def vbench_i2v_suite(src: dict, per_dimension: int | None = None) -> list[dict]:
    """VBench-I2V's image suite (vbench2_beta_i2v layout): the entries of `info_json` that name an image
    (i2v_subject / i2v_background prompts; camera_motion prompts reuse those images), each image at
    `image_dir/<ratio>/<image_name>`, scored on the quality dimensions VBench-I2V assigns to its data (I2V_QUALITY).
    Every image must be there; each is hashed (sha256), not copied."""
    from univid.eval.cache import file_sha256
    from univid.eval.vbench.constants import DIMENSIONS

    info, images = src.get("info_json"), src.get("image_dir")
    if not info:
        raise FileNotFoundError("eval.vbench.ti2v_suite.info_json: not set (expected the path of VBench-I2V's "
                                "vbench2_beta_i2v/vbench2_i2v_full_info.json for source vbench_i2v)")
    info = Path(info).expanduser()
    if not info.is_file():
        raise FileNotFoundError(f"eval.vbench.ti2v_suite.info_json: {info} not found (expected VBench-I2V's "
                                f"vbench2_i2v_full_info.json, from the VBench repository's vbench2_beta_i2v/)")
    if not images:
        raise FileNotFoundError("eval.vbench.ti2v_suite.image_dir: not set (expected vbench2_beta_i2v/data/crop, "
                                "written by its download_data.sh, for source vbench_i2v)")
    root = Path(images).expanduser() / src["ratio"]
    if not root.is_dir():
        raise FileNotFoundError(f"eval.vbench.ti2v_suite.image_dir: {root} not found (expected vbench2_beta_i2v/data/"
                                f"crop/<ratio>/ with the suite's images; ratio {src['ratio']})")
    try:
        raw = json.loads(info.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{info}: not valid JSON ({exc.msg} at char {exc.pos}; expected vbench2_i2v_full_info.json)") \
            from None
    by_prompt: dict[str, dict] = {}
    counts = {d: 0 for d in I2V_DIMENSIONS}
    for e in raw:
        i2v = [d for d in e.get("dimension") or [] if d in I2V_DIMENSIONS]
        if not e.get("image_name") or not i2v:
            continue
        if per_dimension is not None and all(counts[d] >= per_dimension for d in i2v):
            continue
        for d in i2v:
            counts[d] += 1
        prev = by_prompt.get(e["prompt_en"])
        if prev is not None and prev["image_name"] != e["image_name"]:
            raise ValueError(f"{info}: prompt {e['prompt_en']!r} names two images ({prev['image_name']!r}, "
                             f"{e['image_name']!r}; expected one image per prompt, videos are named by prompt)")
        entry = prev or {"prompt_en": e["prompt_en"], "dimension": [], "i2v_dimension": [],
                         "image_type": e.get("image_type"), "image_name": e["image_name"],
                         "image": str((root / e["image_name"]).resolve())}
        entry["i2v_dimension"] = [d for d in I2V_DIMENSIONS if d in set(entry["i2v_dimension"]) | set(i2v)]
        wanted = {q for d in entry["i2v_dimension"] for q in I2V_QUALITY[d]}
        entry["dimension"] = [d for d in DIMENSIONS if d in wanted]
        by_prompt[e["prompt_en"]] = entry
    if not by_prompt:
        raise ValueError(f"{info}: no entry with an image_name and an i2v dimension (expected VBench-I2V's suite)")
    missing = [e["image"] for e in by_prompt.values() if not Path(e["image"]).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: reference image not found ({len(missing)} of {len(by_prompt)} missing; "
                                f"expected every image_name of {info.name} under {root})")
    return [{**e, "image_sha256": file_sha256(e["image"])} for e in by_prompt.values()]
