"""Runs the official vbench 0.1.5 evaluation under the vbench environment's python (`make vbench-env`).

Deliberately free of univid imports: it executes in .venv-vbench, where univid is not installed. It takes
vbench2_beta_long/eval_long.py's own arguments (parsed by eval_long.parse_args itself) plus three of its own:
  --device cuda|cpu      eval_long.py and vbench/launch/evaluate.py hard-code cuda;
  --name NAME            results go to {output_path}/{NAME}_eval_results.json (the official file name pattern);
  --frames_json PATH     frame counts of every video and clip scored, which the harness needs to pool videos as
                         VBench pools them when results come partly from its cache;
  --per_video_dir DIR    evaluate the videos one at a time (each in its own folder) and write each video's results
                         and frame counts to DIR/done/<video>.json (atomically) as soon as they exist, so a crash or
                         a time limit loses at most the video in flight; a video whose file exists is skipped.
                         The price: the official code loads a dimension's model once per evaluate call.
--mode vbench_standard runs `vbench.VBench.evaluate` exactly as vbench/launch/evaluate.py does (whole videos);
--mode long_vbench_standard | long_custom_input runs `vbench2_beta_long.VBenchLong.evaluate` with eval_long.py's
keyword arguments (clips, scene splitting, dev_flag, static filter).
One deviation, recorded by the harness: inside vbench2_beta_long, os.listdir lists files before folders (else
sorted), because build_full_info_json takes the videos' suffix from the first entry listed and finds no clip when
that entry is its own split_clip folder, which depends on the file system's order.
"""

import argparse
import json
import os
import sys
import types


def _files_first_listdir(path="."):
    names = sorted(os.listdir(path))
    return [n for n in names if not os.path.isdir(os.path.join(path, n))] + \
           [n for n in names if os.path.isdir(os.path.join(path, n))]


def _frame_counts(root):
    from decord import VideoReader

    counts = {}
    for dirpath, _, files in os.walk(root, followlinks=True):
        for f in sorted(files):
            if f.endswith((".mp4", ".avi", ".mov")):
                p = os.path.join(dirpath, f)
                try:
                    counts[os.path.relpath(p, root)] = len(VideoReader(p, num_threads=1))
                except Exception as e:  # an unreadable clip is reported, the official code decides what it means
                    counts[os.path.relpath(p, root)] = f"unreadable: {type(e).__name__}"
    return counts


def _write_json_atomic(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def one_by_one(videos_path, per_video_dir, name, evaluate, frame_counts=_frame_counts):
    """evaluate(videos_path, output_path) on each video alone; DIR/done/<video>.json = {results, frames} as soon as
    that video is finished. Returns the videos evaluated in this call (done ones are skipped)."""
    import shutil

    done_dir = os.path.join(per_video_dir, "done")
    os.makedirs(done_dir, exist_ok=True)
    videos = sorted(f for f in os.listdir(videos_path)
                    if f.endswith((".mp4", ".avi", ".mov")) and not os.path.isdir(os.path.join(videos_path, f)))
    evaluated = []
    for video in videos:
        done = os.path.join(done_dir, video + ".json")
        if os.path.exists(done):
            continue
        work = os.path.join(per_video_dir, "work", video)
        shutil.rmtree(work, ignore_errors=True)  # a video in flight when the last run died starts over
        os.makedirs(os.path.join(work, "videos"))
        os.makedirs(os.path.join(work, "out"))
        os.symlink(os.path.realpath(os.path.join(videos_path, video)), os.path.join(work, "videos", video))
        evaluate(os.path.join(work, "videos"), os.path.join(work, "out"))
        with open(os.path.join(work, "out", f"{name}_eval_results.json")) as f:
            results = json.load(f)
        _write_json_atomic(done, {"results": results, "frames": frame_counts(os.path.join(work, "videos"))})
        shutil.rmtree(work, ignore_errors=True)
        evaluated.append(video)
    return evaluated


def main(argv=None):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--device", default=None)
    pre.add_argument("--name", default="univid")
    pre.add_argument("--frames_json", default=None)
    pre.add_argument("--per_video_dir", default=None)
    own, rest = pre.parse_known_args(argv)

    import torch
    from vbench2_beta_long import eval_long

    sys.argv = ["eval_long.py", *rest]
    args = eval_long.parse_args()
    device = torch.device(own.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    if args.mode == "vbench_standard":
        from vbench import VBench

        def evaluate(videos_path, output_path):
            VBench(device, args.full_json_dir, output_path).evaluate(
                videos_path=videos_path, name=own.name, prompt_list=[], dimension_list=args.dimension,
                local=args.load_ckpt_from_local, read_frame=args.read_frame, mode=args.mode,
                category=args.category, imaging_quality_preprocessing_mode=args.imaging_quality_preprocessing_mode)
    else:
        import vbench2_beta_long
        from vbench2_beta_long import VBenchLong

        shim = types.ModuleType("os")
        shim.__dict__.update(os.__dict__)
        shim.listdir = _files_first_listdir
        vbench2_beta_long.os = shim

        if not args.dev_flag:  # eval_long.py main(): without dev_flag the clip-to-clip extractors are DINO / CLIP
            args.sb_clip2clip_feat_extractor, args.bg_clip2clip_feat_extractor = "dino", "clip"
            args.w_inclip, args.w_clip2clip = 1.0, 0.0
        kwargs = {
            "category": args.category,
            "sb_clip2clip_feat_extractor": args.sb_clip2clip_feat_extractor,
            "bg_clip2clip_feat_extractor": args.bg_clip2clip_feat_extractor,
            "imaging_quality_preprocessing_mode": args.imaging_quality_preprocessing_mode,
            "clip_length_config": args.clip_length_config,
            "w_inclip": args.w_inclip,
            "w_clip2clip": args.w_clip2clip,
            "use_semantic_splitting": args.use_semantic_splitting,
            "slow_fast_eval_config": args.slow_fast_eval_config,
            "dev_flag": args.dev_flag,
            "sb_mapping_file_path": args.subject_mapping_file_path,
            "bg_mapping_file_path": args.background_mapping_file_path,
            "num_of_samples_per_prompt": args.num_of_samples_per_prompt,
            "static_filter_flag": args.static_filter_flag,
        }

        def evaluate(videos_path, output_path):
            VBenchLong(device, args.full_json_dir, output_path).evaluate(
                videos_path=videos_path, name=own.name, prompt_list=[], dimension_list=args.dimension,
                local=args.load_ckpt_from_local, read_frame=args.read_frame, mode=args.mode, **kwargs)

    if own.per_video_dir:
        one_by_one(args.videos_path, own.per_video_dir, own.name, evaluate)
        return
    evaluate(args.videos_path, args.output_path)
    if own.frames_json:
        with open(own.frames_json, "w") as f:
            json.dump(_frame_counts(args.videos_path), f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
