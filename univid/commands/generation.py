"""Generation verbs: `univid generate-suite` (the generate job: the benchmark prompt suite's videos, resumable) and
`univid generate`: one video from a prompt (T2V) or a prompt and a reference image (TI2V), at the configured scale.

Writes the video atomically and, beside it, `<out stem>.json` recording what produced it: prompt, seed, reference
image, scale, config hash, the whole `tma` section (schedule, lambdas, window, progress definition), sampling and
model settings, weights.
"""

from __future__ import annotations

from pathlib import Path

from univid.commands.common import config_args, full_config, job_config_of, upstream, write_job_config


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


def cmd_generate_suite(args) -> None:
    from univid.data.video import write_video
    from univid.io import read_json, write_json
    from univid.models.builder import build, load_weights
    from univid.models.generator import generate, make_pipeline
    from tqdm import tqdm

    job, cfg = job_config_of(args, "generate")
    out = Path(args.out or job["dir"])
    curate_dir = upstream(job, "curate", args.curate)
    stage = f"stage{cfg['sampling']['from_stage']}"  # stage III (joint) or stage I weights (paper Table 6)
    weights = Path(args.weights or Path(upstream(job, stage, None)) / "final" / "weights.safetensors")
    entries = read_json(curate_dir / "prompts.json")
    comp = build(cfg)
    load_weights(comp.model, weights)
    pipe = make_pipeline(comp)
    s = cfg["sampling"]
    manifest = []
    todo = [(e, i) for e in entries for i in range(s["samples_per_prompt"])]
    for n, (entry, i) in enumerate(tqdm(todo, desc="generate", disable=args.quiet)):
        path = out / "videos" / f"{entry['prompt_en']}-{i}.mp4"
        seed = cfg["seed"] * 100003 + n  # one recorded seed per file
        if not path.exists():  # videos are written atomically, so an existing file is complete: resume
            frames = generate(comp, pipe, entry["prompt_en"], s["negative_prompt"], s, seed)
            write_video(path, frames, s["fps"])
        manifest.append({"video": str(path), "prompt": entry["prompt_en"], "index": i, "seed": seed})
    write_job_config(out, job)
    write_json(out / "manifest.json", {"videos": manifest, "tma": cfg["tma"], "sampling": s, "weights": str(weights),
                                       "scale": cfg["scale"]})
    print(f"generated {len(manifest)} videos -> {out / 'videos'}")


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
    sp.add_argument("--weights", help="trained weights (default: the config's stage III output)")
    sp.set_defaults(fn=cmd_generate_suite)
