"""Run Table 10's suites with the UniVid Actor: each question's frames (uniformly sampled, `eval.suites.frames`
per benchmark; an image is one frame; MMLU has none) go through the Actor's ViT-only path, its reply through the
benchmark's official extraction and scoring (MMBench-Video: the judge role). The frame pools and every Actor and
judge reply are cached by content, so a rerun makes no model call."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from univid.eval.suites import module
from univid.eval.suites.common import synthetic_dir
from univid.io import atomic_dir, atomic_path, write_json
from univid.reflection.frame_pool import FramePool, load_pool, pool_cache_dir

SYNTHETIC_QUESTIONS = 4  # questions per benchmark in a synthetic release when max_questions is null


def release_dir(name: str, scfg: dict, seed: int, cache_root: Path) -> Path:
    """The benchmark's release directory: configured (source files) or a synthetic one, written once per key."""
    if scfg["source"] == "files":
        d = (scfg.get("dirs") or {}).get(name)
        if not d:
            raise ValueError(f"config key 'eval.suites.dirs.{name}': null (expected the {name} release directory "
                             "when eval.suites.source is files)")
        return Path(d)
    n = (scfg.get("max_questions") or {}).get(name) or SYNTHETIC_QUESTIONS
    target = synthetic_dir(cache_root, name, seed, n)
    if not target.is_dir():
        with atomic_dir(target) as tmp:
            module(name).write_synthetic(tmp, seed, n)
    return target


def image_pool(images: list, raw: list[bytes], encoder, cache_dir: str | None) -> FramePool:
    """A pool of still images (one frame each), cached like a video's pool: keyed by the images' bytes + encoder."""
    h = hashlib.sha256(encoder.encoder_id.encode())
    for b in raw:
        h.update(hashlib.sha256(b).digest())
    key = "img-" + h.hexdigest()[:20]
    target = pool_cache_dir(cache_dir) / key
    idx = list(range(len(raw)))
    if (target / "pool.safetensors").is_file():
        t = load_file(str(target / "pool.safetensors"))
        return FramePool(f"images:{key}", key, idx, 0.0, len(idx), t["embeds"], True, 0, 0, images=list(images))
    passes0, frames0 = encoder.passes, encoder.frames_encoded
    embeds = torch.cat([encoder.encode(im[None])[0] for im in images])  # one at a time: images differ in size
    with atomic_dir(target) as tmp:
        save_file({"embeds": embeds.contiguous()}, str(tmp / "pool.safetensors"))
        (tmp / "meta.json").write_text(json.dumps({"images": len(raw), "encoder": encoder.encoder_id}))
    return FramePool(f"images:{key}", key, idx, 0.0, len(idx), embeds, False,
                     encoder.passes - passes0, encoder.frames_encoded - frames0, images=list(images))


def image_vae_latents(pool: FramePool, images: list, vae_encoder, cache_dir: str | None) -> None:
    """Store the images' VAE latents where the Actor's load_vae_latents looks for a pool's (it would otherwise
    decode the pool's video, which an image pool does not have); one image at a time, as sizes differ."""
    target = pool_cache_dir(cache_dir) / f"{pool.key}.vae-{vae_encoder.encoder_id.split(':')[-1]}"
    if (target / "latents.safetensors").is_file():
        return
    latents = torch.cat([vae_encoder.encode(im[None]) for im in images])
    with atomic_dir(target) as tmp:
        save_file({"latents": latents.contiguous()}, str(tmp / "latents.safetensors"))


def _pool(sample: dict, mod, reflection, frames: int, cache_dir: str | None) -> FramePool | None:
    kind = sample["visual"]["kind"]
    if kind == "none":
        return None
    if kind == "video":
        return load_pool(sample["visual"]["paths"][0], reflection.encoder, frames, cache_dir)
    images = mod.image_arrays(sample)[:frames]
    pool = image_pool(images, sample["_images"][:frames], reflection.encoder, cache_dir)
    vae = getattr(reflection.actor, "vae_encoder", None)
    if vae is not None:  # understanding.encoders reads VAE latents too (Table 9)
        image_vae_latents(pool, images, vae, getattr(reflection.actor, "cache_dir", cache_dir))
    return pool


def _judge(role, sample: dict, reply: str) -> tuple[str | None, int, str | None]:
    from univid.eval.suites.mmbench_video import JUDGE_SYSTEM, judge_prompt, parse_score

    try:
        out = role.generate(judge_prompt(sample["question"], sample["answer"], reply), system=JUDGE_SYSTEM)
    except Exception as e:  # a failed judge call scores -1 (VLMEvalKit) and is not cached: a rerun asks again
        return None, -1, f"{type(e).__name__}: {e}"
    return out, parse_score(out), None


def run_benchmark(name: str, cfg: dict, reflection, root: Path, progress=None) -> tuple[dict, list[dict]]:
    mod = module(name)
    scfg = cfg["eval"]["suites"]
    frames = int(scfg["frames"][name])
    samples = mod.load(root, (scfg.get("max_questions") or {}).get(name))
    cache_dir = cfg["understanding"].get("cache_dir")
    rows = []
    for s in samples:
        pool = _pool(s, mod, reflection, frames, cache_dir)
        positions = list(range(len(pool.indices))) if pool is not None else []
        prompt = mod.prompt(s, len(positions))
        reply = reflection.actor.respond(pool, positions, prompt)
        pred = mod.extract(reply, s, seed=cfg["seed"]) if name == "mmmu" else mod.extract(reply, s)
        row = {"benchmark": name, "question_id": s["question_id"], "group": s["group"],
               "sample": {k: v for k, v in s.items() if not k.startswith("_")}, "prompt": prompt, "reply": reply,
               "pred": pred, "frames_used": len(positions),
               "frame_indices": list(pool.indices) if pool is not None and s["visual"]["kind"] == "video" else None}
        if name == "mmbench_video":
            row["judge_reply"], row["judge_score"], row["judge_error"] = _judge(reflection.roles["judge"], s, reply)
        else:
            row["correct"] = bool(mod.correct(pred, s))
        rows.append(row)
        if progress:
            progress(name, len(rows), len(samples))
    summary = mod.summarize(rows)
    summary.update({"frames": frames, "frames_used_max": max((r["frames_used"] for r in rows), default=0),
                    "extraction": mod.EXTRACTION_ID, "scorer": mod.SCORER_ID, "source": scfg["source"],
                    "release_dir": str(root)})
    return summary, rows


def run_suite(cfg: dict, job: dict, reflection, out: Path, weights: str | None = None, progress=None) -> dict:
    """Every configured benchmark; writes predictions.jsonl, then scores.json last (atomically); returns scores."""
    from univid.eval.cache import cache_root
    from univid.eval.results import eval_metadata

    t0 = time.perf_counter()
    scfg = cfg["eval"]["suites"]
    actor, encoder = reflection.actor, reflection.encoder
    judge = reflection.roles["judge"]
    before = {"actor_calls": actor.calls, "actor_hits": actor.hits, "judge_calls": judge.llm.calls,
              "judge_hits": judge.llm.hits, "vit_passes": encoder.passes, "frames_encoded": encoder.frames_encoded}
    benchmarks, rows = {}, []
    for name in scfg["benchmarks"]:
        root = release_dir(name, scfg, cfg["seed"], cache_root(cfg["eval"].get("cache_dir")))
        benchmarks[name], r = run_benchmark(name, cfg, reflection, root, progress)
        rows.extend(r)
    after = {"actor_calls": actor.calls, "actor_hits": actor.hits, "judge_calls": judge.llm.calls,
             "judge_hits": judge.llm.hits, "vit_passes": encoder.passes, "frames_encoded": encoder.frames_encoded}
    judge_id = {"role": "judge", "backend": judge.label, "backend_id": judge.backend_id,
                "model": judge.model_id, "decoding": judge.decoding,
                "protocol": module("mmbench_video").SCORER_ID} if "mmbench_video" in benchmarks else None
    actor_id = {"id": actor.actor_id, "max_new_tokens": actor.max_new_tokens,
                "max_tokens_per_frame": actor.max_tokens_per_frame, "vit": encoder.encoder_id,
                "weights": str(weights) if weights else None, "sampling": "uniform-segment-centres"}
    ids = {"extraction": {n: b["extraction"] for n, b in benchmarks.items()},
           "scorers": {n: b["scorer"] for n, b in benchmarks.items()}, "judge": judge_id, "actor": actor_id,
           "frames": {n: b["frames"] for n, b in benchmarks.items()}}
    scores = {"benchmarks": benchmarks, **{k: ids[k] for k in ("judge", "actor")},
              "roles": {"judge": {"backend": judge.label, "model": judge.model_id}} if judge_id else {},
              "counts": {**{k: after[k] - before[k] for k in after}, "questions": len(rows)},
              "scale": cfg["scale"], "label": cfg["scale"],
              "wall_s": round(time.perf_counter() - t0, 3),
              "metadata": eval_metadata(job, cfg, seeds={"mmmu_fallback": cfg["seed"], "synthetic": cfg["seed"]},
                                        **ids)}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "predictions.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows))
    write_json(out / "scores.json", scores)
    return scores
