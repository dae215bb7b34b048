"""Generation verbs: `univid generate-suite` (the generate job: the benchmark prompt suite's videos, resumable) and
`univid generate`: one video from a prompt (T2V) or a prompt and a reference image (TI2V), at the configured scale.

Writes the video atomically and, beside it, `<out stem>.json` recording what produced it: prompt, seed, reference
image, scale, config hash, the whole `tma` section (schedule, lambdas, window, progress definition), sampling and
model settings, weights.
"""

from __future__ import annotations

from pathlib import Path

from univid.commands.common import (config_args, full_config, job_config_of, suite_entries, upstream,
                                   write_job_config)


def run_record_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".json")


def cmd_generate(args) -> None:
    from univid.config import config_hash
    from univid.data.video import write_video
    from univid.io import write_json
    from univid.models.builder import build, load_weights
    from univid.models.generator import generate, load_image, make_pipeline

    cfg = full_config(args)
    image = load_image(args.image) if args.image else None  # fail on a bad image before building anything
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"--out '{out}': expected a .mp4 path")
    comp = build(cfg)
    if args.weights:
        load_weights(comp.model, args.weights)
    s = cfg["sampling"]
    negative = s["negative_prompt"] if args.negative_prompt is None else args.negative_prompt
    pipe = make_pipeline(comp, ti2v=image is not None)
    frames = generate(comp, pipe, args.prompt, negative, s, args.seed, progress=not args.quiet, image=image)
    write_video(out, frames, s["fps"])
    write_json(run_record_path(out), {
        "video": str(out), "mode": "ti2v" if image is not None else "t2v", "prompt": args.prompt,
        "negative_prompt": negative, "image": str(args.image) if args.image else None, "seed": args.seed,
        "scale": cfg["scale"], "config_hash": config_hash(cfg), "tma": cfg["tma"], "sampling": s,
        "encoders": cfg["model"]["encoders"], "connector": cfg["model"]["connector"],
        "weights": str(args.weights) if args.weights else None,
        "frames": list(frames.shape)})
    print(f"{out}: {frames.shape[0]} frames {frames.shape[2]}x{frames.shape[1]} "
          f"({'TI2V' if image is not None else 'T2V'}, {cfg['scale']} scale, TMA {cfg['tma']['schedule']} "
          f"u={cfg['tma']['progress']})")


def shard_items(n: int, shard: int, shards: int) -> list[int]:
    """The item numbers shard `shard` of `shards` does: every shards-th, so that shards stay balanced."""
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"--shard {shard} --shards {shards}: expected 0 <= shard < shards and shards >= 1")
    return list(range(shard, n, shards))


def _shard_file(out: Path, shard: int, shards: int) -> Path:
    return out / "shards" / f"{shard}-of-{shards}.json"


def stage_weights(job: dict, cfg: dict) -> Path:
    """The trained weights a generate job samples from: its stage III (joint) or stage I output (paper Table 6)."""
    stage = f"stage{cfg['sampling']['from_stage']}"
    return Path(upstream(job, stage, None)) / "final" / "weights.safetensors"


def cmd_generate_suite(args) -> None:
    """The generate job: every video of the prompt suite (one seed per file, fixed by its place in the suite, so a
    shard writes exactly the files the whole job would), or shard I of N of them (--shard I --shards N: its list goes
    to shards/I-of-N.json), or the gather of N finished shards into manifest.json (--gather N)."""
    from univid.io import read_json, write_json

    job, cfg = job_config_of(args, "generate")
    out = Path(args.out or job["dir"])
    weights = Path(args.weights) if args.weights else stage_weights(job, cfg)
    track = cfg["eval"]["vbench"]["track"]
    entries, images = suite_entries(job, track, args)
    s = cfg["sampling"]
    todo = [(e, i) for e in entries for i in range(s["samples_per_prompt"])]

    def row(n: int) -> dict:
        entry, i = todo[n]
        r = {"video": str(out / "videos" / f"{entry['prompt_en']}-{i}.mp4"), "prompt": entry["prompt_en"],
             "index": i, "seed": cfg["seed"] * 100003 + n}  # one recorded seed per file
        if track == "ti2v":  # the reference image the video is generated from (TI2V)
            r.update(image=str(images[entry["prompt_en"]]), image_sha256=entry["image_sha256"])
        return r

    if args.gather:
        rows = {}
        for k in range(args.gather):
            path = _shard_file(out, k, args.gather)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: shard {k} of {args.gather} not finished (expected `univid "
                                        f"generate-suite --shard {k} --shards {args.gather}` to have written it)")
            rows.update({r["seed"]: r for r in read_json(path)["videos"]})
        manifest = [row(n) for n in range(len(todo))]
        missing = [r["video"] for r in manifest if r["seed"] not in rows or not Path(r["video"]).is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: not generated by any of the {args.gather} shards "
                                    f"({len(missing)} of {len(manifest)} missing)")
    else:
        numbers = (shard_items(len(todo), args.shard, args.shards) if args.shard is not None
                   else list(range(len(todo))))
        manifest = generate_rows(cfg, weights, [row(n) for n in numbers], s, args.quiet)
        if args.shard is not None:
            write_json(_shard_file(out, args.shard, args.shards), {"videos": manifest, "shard": args.shard,
                                                                   "shards": args.shards})
            print(f"generated shard {args.shard} of {args.shards}: {len(manifest)} videos -> {out / 'videos'}")
            return
    write_job_config(out, job)
    write_json(out / "manifest.json", {"videos": manifest, "track": track, "tma": cfg["tma"], "sampling": s,
                                       "weights": str(weights), "scale": cfg["scale"]})
    print(f"generated {len(manifest)} videos ({track.upper()}) -> {out / 'videos'}")


def generate_rows(cfg: dict, weights: Path | None, rows: list[dict], s: dict, quiet: bool) -> list[dict]:
    """Generate the rows' videos that are not there yet (files are written atomically: an existing one is complete).
    A row with an `image` is generated from it (TI2V: the pipeline pins the first latent frame to its latent).
    weights None: the model as built (its pretrained parts, no stage weights)."""
    from tqdm import tqdm

    from univid.data.video import write_video
    from univid.models.builder import build, load_weights
    from univid.models.generator import generate, load_image, make_pipeline

    todo = [r for r in rows if not Path(r["video"]).exists()]
    if todo:
        comp = build(cfg)
        if weights is not None:
            load_weights(comp.model, weights)
        pipe = make_pipeline(comp, ti2v=cfg["eval"]["vbench"]["track"] == "ti2v")
        for r in tqdm(todo, desc="generate", disable=quiet):
            image = load_image(r["image"]) if r.get("image") else None
            frames = generate(comp, pipe, r["prompt"], s["negative_prompt"], s, r["seed"], image=image)
            write_video(r["video"], frames, s["fps"])
    return rows


def register(sub) -> None:
    sp = sub.add_parser("generate", help="generate one video from a prompt (and a reference image: TI2V)")
    config_args(sp, job=False)
    sp.add_argument("--prompt", required=True)
    sp.add_argument("--image", help="reference image (PNG/JPEG): TI2V, the video starts from it")
    sp.add_argument("--out", required=True, help="output .mp4 (a .json run record is written beside it)")
    sp.add_argument("--weights", help="trained weights (.safetensors from `univid train`)")
    sp.add_argument("--negative-prompt", help="default: the config's universal negative prompt")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(fn=cmd_generate)

    sp = sub.add_parser("generate-suite", help="generate the benchmark prompt suite's videos")
    config_args(sp)
    sp.add_argument("--out")
    sp.add_argument("--curate")
    sp.add_argument("--ti2v-suite", help="ti2v_suite job directory (eval.vbench.track ti2v; default: the job's)")
    sp.add_argument("--weights", help="trained weights (default: the config's stage III output)")
    sp.add_argument("--shard", type=int, help="generate only shard I of --shards N (its list: shards/I-of-N.json)")
    sp.add_argument("--shards", type=int, default=1)
    sp.add_argument("--gather", type=int, metavar="N", help="write manifest.json from N finished shards")
    sp.set_defaults(fn=cmd_generate_suite)
