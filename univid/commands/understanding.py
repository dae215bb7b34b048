"""Understanding verbs: `univid ask VIDEO "question"` (Pyramid Reflection on one video) and `univid evaluate-qa`
(the `videoqa` job: Video-QA benchmarks answered with Pyramid Reflection, judged, scored with clustered CIs)."""

from __future__ import annotations

import json
from pathlib import Path

from univid.commands.common import config_args, full_config, job_config_of, upstream, write_job_config


def cmd_ask(args) -> None:
    from univid.io import write_json
    from univid.reflection import build_reflection

    cfg = full_config(args)
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


def cmd_serve_llm(args) -> None:
    from univid.llm.roles import build_backend, serving_backend
    from univid.llm.serve import serve

    llm_cfg = full_config(args)["llm"]
    name = serving_backend(llm_cfg, args.backend, "serve-llm --backend")
    spec = llm_cfg["backends"][name]
    if spec.get("kind") != "transformers":
        raise ValueError(f"serve-llm --backend {args.backend}: served by {name!r} of kind {spec.get('kind')!r} "
                         f"(expected a local kind: transformers model; an openai backend is already a server)")
    serve(build_backend(spec, device=args.device), args.model_name or args.backend, args.host, args.port,
          args.port_file)


def cmd_evaluate_qa(args) -> None:
    from univid.eval.videoqa.run import run_videoqa

    job, cfg = job_config_of(args, "videoqa")
    out = Path(args.out or job["dir"])
    weights = None
    if args.weights:
        weights = Path(args.weights)
    elif cfg["understanding"]["weights"] == "stage3":
        weights = upstream(job, "stage3", None) / "final" / "weights.safetensors"
    if weights is not None and not weights.is_file():
        raise FileNotFoundError(f"{weights}: Actor weights not found (expected a trained UniVid .safetensors, or "
                                f"understanding.weights=none)")
    if args.shard is not None:
        r = run_videoqa(job, cfg, out, weights, progress=not args.quiet, shard=(args.shard, args.shards))
        print(f"Video-QA shard {args.shard} of {args.shards} ({cfg['scale']}): {r['asked']} asked, {r['resumed']} "
              f"resumed, {r['failed']} failed of {r['questions']} -> {out / 'shards'}")
        return
    write_job_config(out, job)
    scores = run_videoqa(job, cfg, out, weights, progress=not args.quiet, gather=args.gather)
    c = scores["counts"]
    cells = " ".join(f"{ds} {b['accuracy']:.1f}%/{b['score']:.2f}" for ds, b in scores["benchmarks"].items())
    print(f"Video-QA ({cfg['scale']}): {cells} [judge {scores['judge']['name']}; {c['asked']} asked, "
          f"{c['predictions_resumed']} resumed, {c['total_llm_calls']} LLM calls, {c['actor_calls']} Actor calls, "
          f"{c['wall_s']:.1f}s] -> {out / 'scores.json'}")


def register(sub) -> None:
    sp = sub.add_parser("evaluate-qa", help="the videoqa job: Video-QA benchmarks with Pyramid Reflection, judged")
    config_args(sp)
    sp.add_argument("--out", help="job directory (default: the config's videoqa job directory)")
    sp.add_argument("--weights", help="Actor weights (default: the stage III output when understanding.weights is "
                    "stage3)")
    sp.add_argument("--shard", type=int, help="answer only shard I of --shards N (shards/I-of-N.jsonl); no judging")
    sp.add_argument("--shards", type=int, default=1)
    sp.add_argument("--gather", type=int, metavar="N", help="merge N finished shards, then judge and score")
    sp.set_defaults(fn=cmd_evaluate_qa)

    sp = sub.add_parser("ask", help="answer a question about a video (Pyramid Reflection; prints the answer)")
    config_args(sp, job=False)
    sp.add_argument("video")
    sp.add_argument("question")
    sp.add_argument("--trace", help="write the reflection trace (route, rounds, frames, scores, counts) as JSON")
    sp.add_argument("--weights", help="trained UniVid weights (.safetensors from `univid train`)")
    sp.set_defaults(fn=cmd_ask)

    sp = sub.add_parser("serve-llm", help="serve an llm backend as an OpenAI-compatible server (vLLM's CPU stand-in)")
    config_args(sp, job=False)
    sp.add_argument("--backend", required=True, help="a name of llm.backends (its stand-in at this scale is served)")
    sp.add_argument("--model-name", help="the model id clients send (default: the backend name)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=0, help="0: any free port (written to --port-file)")
    sp.add_argument("--port-file", help="write the bound port here once the server listens")
    sp.add_argument("--device", default="cpu")
    sp.set_defaults(fn=cmd_serve_llm)
