"""The synthetic world and its oracle: determinism, geometry, oracle accuracy (raw and after H.264), QA answers the
oracle agrees with, and a VBench-format prompt suite whose prompts render what they say."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from univid.data.oracle import background_color, classify_motion, detect_objects, detection_backend_id
from univid.data.synthetic import (
    BACKGROUNDS, CAMERA_STYLES, COLORS, MOTIONS, RELATIONSHIPS, SHAPES, VBENCH_DIMENSIONS, caption, parse_prompt,
    qa_pairs, render_clip, sample_clip_specs, spec_from_prompt, swept_box, vbench_prompt_suite,
)
from univid.data.video import read_video, write_video

N_CLIPS = 30


@pytest.fixture(scope="module")
def specs():
    return sample_clip_specs(seed=5, n=N_CLIPS, num_frames=17, height=64, width=64, fps=8.0)


@pytest.fixture(scope="module")
def raw_clips(specs):
    return [render_clip(s) for s in specs]


@pytest.fixture(scope="module")
def mp4_clips(specs, raw_clips, tmp_path_factory):
    d = tmp_path_factory.mktemp("world")
    out = []
    for s, frames in zip(specs, raw_clips):
        write_video(d / f"{s.clip_id}.mp4", frames, s.fps)
        out.append(read_video(d / f"{s.clip_id}.mp4").frames)
    return out


def test_vocabulary_is_separable():
    cols = np.array(list(COLORS.values()), float)
    bgs = np.array(list(BACKGROUNDS.values()), float)
    d_cc = np.linalg.norm(cols[:, None] - cols[None], axis=-1) + np.eye(len(cols)) * 1e9
    d_cb = np.linalg.norm(cols[:, None] - bgs[None], axis=-1)
    assert d_cc.min() > 80 and d_cb.min() > 100
    assert len(SHAPES) == 3 and len(MOTIONS) == 7 and detection_backend_id() == "synthetic-oracle-v1"


def test_determinism_by_seed():
    a = sample_clip_specs(seed=3, n=8)
    b = sample_clip_specs(seed=3, n=8)
    c = sample_clip_specs(seed=4, n=8)
    assert [asdict(s) for s in a] == [asdict(s) for s in b]
    assert [asdict(s) for s in a] != [asdict(s) for s in c]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(render_clip(x), render_clip(y))
    assert vbench_prompt_suite(2) == vbench_prompt_suite(2)
    assert vbench_prompt_suite(2) != vbench_prompt_suite(3)
    e = vbench_prompt_suite(2)[0]
    assert asdict(spec_from_prompt(e, 1)) == asdict(spec_from_prompt(e, 1))


def test_world_geometry():
    for spec in sample_clip_specs(seed=9, n=150):
        objs = spec.objects
        assert 1 <= len(objs) <= 2
        assert len({o.color for o in objs}) == len(objs) and len({o.shape for o in objs}) == len(objs)
        boxes = [swept_box(o, spec) for o in objs]
        for b in boxes:  # inside the frame, for the whole clip
            assert b[0] >= 0 and b[1] >= 0 and b[2] <= spec.width and b[3] <= spec.height
        if len(boxes) == 2:  # never overlap
            a, b = boxes
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        frames = render_clip(spec)
        assert frames.shape == (17, 64, 64, 3) and frames.dtype == np.uint8
        border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
        assert (border == np.array(BACKGROUNDS[spec.background], np.uint8)).all()
        for o in objs:  # every object shows, in its colour, from its appear frame on
            assert (frames[o.appear_frame:] == np.array(COLORS[o.color], np.uint8)).all(-1).any((1, 2)).all()
            if o.appear_frame:
                assert not (frames[:o.appear_frame] == np.array(COLORS[o.color], np.uint8)).all(-1).any()


def _oracle_accuracy(specs, clips):
    hits = {"shape": [], "color": [], "background": [], "motion": [], "count": []}
    for spec, frames in zip(specs, clips):
        hits["background"].append(background_color(frames[0]) == spec.background)
        t = spec.num_frames // 2 + 1  # every object has appeared by then
        dets = detect_objects(frames[t])
        hits["count"].append(len(dets) == len(spec.objects))
        for o in spec.objects:
            mine = [d for d in dets if d.color == o.color]
            hits["color"].append(len(mine) == 1)
            hits["shape"].append(bool(mine) and mine[0].shape == o.shape)
            hits["motion"].append(classify_motion(frames, o.color) == o.motion)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def test_oracle_recovers_rendered_clips(specs, raw_clips):
    acc = _oracle_accuracy(specs, raw_clips)
    assert all(v >= 0.9 for v in acc.values()), acc
    # the motions in this sample are varied enough for the motion check to mean something
    assert len({o.motion for s in specs for o in s.objects}) >= 5


def test_oracle_recovers_clips_after_mp4(specs, mp4_clips):
    acc = _oracle_accuracy(specs, mp4_clips)
    assert all(v >= 0.9 for v in acc.values()), acc


def test_oracle_on_blank_and_noise():
    blank = np.zeros((64, 64, 3), np.uint8)
    assert detect_objects(blank) == [] and background_color(blank) == "black"
    assert classify_motion(np.zeros((5, 64, 64, 3), np.uint8)) == "static"
    gray = np.full((64, 64, 3), 128, np.uint8)
    gray[20:30, 20:30] = COLORS["green"]
    (d,) = detect_objects(gray)
    assert (d.shape, d.color, d.bbox, d.area) == ("square", "green", (20, 20, 30, 30), 100)
    assert d.centroid == pytest.approx((25.0, 25.0))  # continuous coordinates, as ObjectSpec.x0/y0


def _oracle_answer(question: str, frames: np.ndarray, last, first_colors, motion) -> str:
    """Answer a world question from pixels alone, with what the oracle saw in the clip."""
    if question == "How many objects are in the video?":
        return ["zero", "one", "two", "three"][len(last)]
    if question == "What color is the background?":
        return background_color(frames[0])
    if m := re.fullmatch(r"What color is the (\w+)\?", question):
        return next((d.color for d in last if d.shape == m[1]), "none")
    if m := re.fullmatch(r"What shape is the (\w+) object\?", question):
        return next((d.shape for d in last if d.color == m[1]), "none")
    if m := re.fullmatch(r"Is the (\w+) \w+ moving\?", question):
        return "yes" if (motion(m[1]) or "").startswith("moving") else "no"
    if m := re.fullmatch(r"Which direction does the (\w+) \w+ move\?", question):
        return (motion(m[1]) or "none").split()[-1]
    if m := re.fullmatch(r"Is the (\w+) growing or shrinking\?", question):
        return next((motion(d.color) for d in last if d.shape == m[1]), "none")
    if m := re.fullmatch(r"Does the (\w+) \w+ appear later in the video\?", question):
        return "no" if m[1] in first_colors else "yes"
    if m := re.fullmatch(r"Is the (\w+) \w+ on the left or on the right of the (\w+) \w+\?", question):
        xs = {d.color: d.centroid[0] for d in last}
        return "left" if xs[m[1]] < xs[m[2]] else "right"
    raise AssertionError(f"question the test oracle cannot parse: {question}")


def test_qa_answers_agree_with_oracle(specs, mp4_clips):
    agree, kinds, anet = [], set(), set()
    for spec, frames in zip(specs, mp4_clips):
        last = detect_objects(frames[-1])
        seen = (last, {d.color for d in detect_objects(frames[0])},
                {d.color: classify_motion(frames, d.color) for d in last}.get)
        qa = qa_pairs(spec)
        assert len({q["question"] for q in qa}) == len(qa)  # no duplicate questions within a clip
        for q in qa:
            assert 1 <= len(q["answer"].split()) <= 2 and q["type"] in ("static", "dynamic")
            agree.append(_oracle_answer(q["question"], frames, *seen) == q["answer"])
            kinds.add(q["type"])
            anet.add(q["anet_type"])
    assert kinds == {"static", "dynamic"}
    assert anet >= {0, 2, 4, 5, 7}
    assert np.mean(agree) >= 0.95, np.mean(agree)


def test_caption_reads_back(specs):
    for spec in specs:
        text = caption(spec)
        rebuilt = spec_from_prompt(text, seed=0)
        assert rebuilt.background == spec.background
        assert [(o.shape, o.color, o.motion, o.appear_frame > 0) for o in rebuilt.objects] == \
               [(o.shape, o.color, o.motion, o.appear_frame > 0) for o in spec.objects], text
        assert caption(rebuilt) == text


# ---------------------------------------------------------------------------------------- VBench suite

AUX_CHECKS = {
    "object_class": lambda a: set(a) == {"object"} and a["object"] in SHAPES,
    "multiple_objects": lambda a: set(a) == {"object"} and re.fullmatch(r"(\w+) and (\w+)", a["object"]) is not None,
    "color": lambda a: set(a) == {"color"} and a["color"] in COLORS,
    "human_action": lambda a: set(a) == {"action"} and a["action"] in MOTIONS and a["action"] != "static",
    "spatial_relationship": lambda a: set(a) == {"spatial_relationship"}
    and set(a["spatial_relationship"]) == {"object_a", "object_b", "relationship"}
    and a["spatial_relationship"]["relationship"] in RELATIONSHIPS,
    "scene": lambda a: set(a) == {"scene"} and set(a["scene"]) == {"scene"}
    and a["scene"]["scene"].removesuffix(" background") in BACKGROUNDS,
    "appearance_style": lambda a: set(a) == {"appearance_style"} and isinstance(a["appearance_style"], str),
}


def test_prompt_suite_format_and_coverage():
    suite = vbench_prompt_suite(seed=0, per_dimension=2)
    covered = {d for e in suite for d in e["dimension"]}
    assert covered == set(VBENCH_DIMENSIONS) and len(VBENCH_DIMENSIONS) == 16
    assert len(suite) == 11 * 2  # VBench's 11 prompt groups
    assert len({e["prompt_en"] for e in suite}) == len(suite)  # videos are named after prompts
    for e in suite:
        assert set(e) <= {"prompt_en", "dimension", "auxiliary_info"}
        aux = e.get("auxiliary_info", {})
        for dim, inner in aux.items():
            assert dim in e["dimension"] and AUX_CHECKS[dim](inner), e
        for dim in e["dimension"]:
            if dim in AUX_CHECKS:  # every dimension with an aux format carries it
                assert dim in aux, e
    with pytest.raises(ValueError, match="per_dimension"):
        vbench_prompt_suite(seed=0, per_dimension=0)


def _vbench_full_info() -> Path | None:
    spec = importlib.util.find_spec("vbench")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "VBench_full_info.json"
    return path if path.is_file() else None


def test_prompt_suite_matches_official_file_structure():
    path = _vbench_full_info()
    if path is None:
        pytest.skip("vbench is not installed: no VBench_full_info.json to compare with")
    official = json.loads(path.read_text())

    def structure(entries):
        out = {}
        for e in entries:
            aux = e.get("auxiliary_info")
            shape = None if aux is None else {k: sorted(v) for k, v in aux.items()}
            out.setdefault(tuple(e["dimension"]), shape)
        return out

    ours, theirs = structure(vbench_prompt_suite(seed=0)), structure(official)
    assert set(ours) == set(theirs)  # the same dimension groups
    for group, shape in theirs.items():
        if group == ("human_action",):  # VBench's has no aux; ours names the motion for the oracle
            assert ours[group] == {"human_action": ["action"]}
        else:
            assert ours[group] == shape, group


def _check_entry(entry, frames) -> bool:
    dims, aux = entry["dimension"], entry.get("auxiliary_info", {})
    mid = detect_objects(frames[len(frames) // 2])
    parsed = parse_prompt(entry["prompt_en"])
    if "object_class" in dims:
        return [d.shape for d in mid] == [aux["object_class"]["object"]]
    if "multiple_objects" in dims:
        return sorted(d.shape for d in mid) == sorted(aux["multiple_objects"]["object"].split(" and "))
    if "color" in dims:
        return [d.color for d in mid] == [aux["color"]["color"]]
    if "human_action" in dims:
        return classify_motion(frames) == aux["human_action"]["action"]
    if "spatial_relationship" in dims:
        rel = aux["spatial_relationship"]["spatial_relationship"]
        c = {d.shape: d.centroid for d in mid}
        a, b = c[rel["object_a"]], c[rel["object_b"]]
        return {"on the left of": a[0] < b[0], "on the right of": a[0] > b[0],
                "on the top of": a[1] < b[1], "on the bottom of": a[1] > b[1]}[rel["relationship"]]
    if "scene" in dims:
        return background_color(frames[0]) + " background" == aux["scene"]["scene"]["scene"]
    if "temporal_style" in dims:
        return classify_motion(frames) == CAMERA_STYLES[parsed["camera"]]
    # the rest: exactly the described objects (shape, colour when given) are there, with the described motion
    found = {d.shape: d for d in detect_objects(frames[-1])}
    if set(found) != {o["shape"] for o in parsed["objects"]}:
        return False
    for o in parsed["objects"]:
        d = found[o["shape"]]
        motion = "static" if o["motion"] in (None, "appearing later") else o["motion"]
        if (o["color"] not in (None, d.color)) or classify_motion(frames, d.color) != motion:
            return False
    return parsed["background"] in (None, background_color(frames[0]))


def test_spec_from_prompt_renders_what_the_prompt_says():
    suite = vbench_prompt_suite(seed=1, per_dimension=4)
    ok = []
    for i, entry in enumerate(suite):
        frames = render_clip(spec_from_prompt(entry, seed=i))
        ok.append(_check_entry(entry, frames))
    # raw renders carry no compression noise: every prompt must come out as it says
    assert all(ok), [e["prompt_en"] for e, k in zip(suite, ok) if not k]


def test_parse_prompt_rejects_text_outside_the_world():
    with pytest.raises(ValueError, match="cannot read"):
        parse_prompt("a person riding a bike")
    assert parse_prompt("an orange circle moving up and a red square on a dark blue background")["objects"] == [
        {"shape": "circle", "color": "orange", "motion": "moving up"},
        {"shape": "square", "color": "red", "motion": None}]
