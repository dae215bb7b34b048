"""`univid generate`: one video from a prompt (T2V) or a prompt and a reference image (TI2V), at the configured scale.

Writes the video atomically and, beside it, `<out stem>.json` recording what produced it: prompt, seed, reference
image, scale, config hash, the whole `tma` section (schedule, lambdas, window, progress definition), sampling and
model settings, weights.
"""

from __future__ import annotations

from pathlib import Path


def run_record_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".json")


def cmd_generate(args) -> None:
    from univid.cli import _full_config
    from univid.config import config_hash
    from univid.data.video import write_video
    from univid.io import write_json
    from univid.models.builder import build, load_weights
    from univid.models.generator import generate, load_image, make_pipeline

    cfg = _full_config(args)
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


def register(sub, cfg_args) -> None:
    sp = sub.add_parser("generate", help="generate one video from a prompt (and a reference image: TI2V)")
    cfg_args(sp, job=False)
    sp.add_argument("--prompt", required=True)
    sp.add_argument("--image", help="reference image (PNG/JPEG): TI2V, the video starts from it")
    sp.add_argument("--out", required=True, help="output .mp4 (a .json run record is written beside it)")
    sp.add_argument("--weights", help="trained weights (.safetensors from `univid train`)")
    sp.add_argument("--negative-prompt", help="default: the config's universal negative prompt")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(fn=cmd_generate)
