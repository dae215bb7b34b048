"""Evaluation verbs: `univid weights fetch|verify` (official VBench weights against benchmarks/vbench_weights.json)."""

from __future__ import annotations

import json


def cmd_weights(args) -> None:
    from univid.eval.weights import fetch, load_manifest, vbench_cache_dir, verify

    manifest = load_manifest(args.manifest)
    root = vbench_cache_dir(args.root)
    names = args.name or None
    known = {f["name"] for f in manifest["files"]}
    for n in names or []:
        if n not in known:
            raise ValueError(f"weights --name {n!r}: not in the manifest (expected one of {', '.join(sorted(known))})")
    if args.action == "fetch":
        results = fetch(manifest, root, names, pin=args.pin, manifest_path=args.manifest)
    else:
        results = verify(manifest, root, names)
    for r in results:
        print(json.dumps(r))
    bad = [r for r in results if r["status"] in ("missing", "size-mismatch", "sha256-mismatch")]
    unpinned = [r for r in results if r["status"] == "unpinned"]
    print(f"weights {args.action}: {len(results) - len(bad) - len(unpinned)} ok, {len(unpinned)} present but unpinned, "
          f"{len(bad)} missing or mismatched (root {root})")
    if bad:
        raise SystemExit(1)


def register(sub, cfg_args) -> None:
    sp = sub.add_parser("weights", help="fetch or verify the official VBench weight files (sizes + sha256)")
    sp.add_argument("action", choices=("fetch", "verify"))
    sp.add_argument("--manifest", help="default: benchmarks/vbench_weights.json")
    sp.add_argument("--root", help="default: $VBENCH_CACHE_DIR, else ~/.cache/vbench")
    sp.add_argument("--name", action="append", help="only this manifest entry (repeatable)")
    sp.add_argument("--pin", action="store_true", help="fetch: record size and sha256 of files the manifest leaves unpinned")
    sp.set_defaults(fn=cmd_weights)
