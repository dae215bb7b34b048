"""`univid ask VIDEO "question" [--trace trace.json]`: answer a question about a video with Pyramid Reflection."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_ask(args) -> None:
    from univid.cli import _full_config
    from univid.io import write_json
    from univid.reflection import build_reflection

    cfg = _full_config(args)
    video = Path(args.video)
    if not video.is_file():
        raise FileNotFoundError(f"{video}: video not found (expected an existing mp4/avi file)")
    reflection = build_reflection(cfg, weights=args.weights)
    trace = reflection.ask(video, args.question)
    trace["scale"] = cfg["scale"]
    if args.trace:
        write_json(args.trace, trace)
    print(trace["answer"])
    if not args.quiet:
        c = trace["counts"]
        print(json.dumps({"route": trace["route"], "rounds": c["rounds"], "stopped_by": trace["stopped_by"],
                          "frames": trace["rounds"][-1]["frames"] if trace["rounds"] else [],
                          "vision_encoder_passes": c["vision_encoder_passes"], "llm_calls": c["llm_calls"],
                          "scale": cfg["scale"]}))


def register(sub, cfg_args) -> None:
    sp = sub.add_parser("ask", help="answer a question about a video (Pyramid Reflection; prints the answer)")
    cfg_args(sp, job=False)
    sp.add_argument("video")
    sp.add_argument("question")
    sp.add_argument("--trace", help="write the reflection trace (route, rounds, frames, scores, counts) as JSON")
    sp.add_argument("--weights", help="trained UniVid weights (.safetensors from `univid train`)")
    sp.set_defaults(fn=cmd_ask)
