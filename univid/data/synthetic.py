"""A deterministic synthetic video world: coloured shapes on a plain background that move, grow, shrink or appear.

It is the smoke-scale stand-in for OpenVid-1M (captioned clips), ActivityNet-QA (questions whose answers the clip
determines) and the VBench prompt suite (prompts in the official `VBench_full_info.json` format, written with the
world's vocabulary so that `univid.data.oracle` can check a generated video against its prompt).
Everything is derived from a seed through numpy's default_rng: same seed, same clips, same pixels.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle")
# Hues at least ~30 degrees apart and saturated, so that H.264 noise never moves a pixel to another colour's basin.
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 220, 40),
    "purple": (150, 50, 200),
    "orange": (245, 140, 20),
}
# Achromatic or dark: far (> 100 in RGB) from every object colour.
BACKGROUNDS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "dark blue": (20, 25, 80),
}
MOTIONS = ("static", "moving left", "moving right", "moving up", "moving down", "growing", "shrinking")

# World physics, relative to the frame so that every resolution shows the same clip.
TRAVEL_FRAC = 0.45  # fast enough for VBench's dynamic-degree flow threshold at 64 px; a moving object's centre travels this fraction of min(H, W) over the whole clip
GROWTH = 1.6  # a growing object's side ends GROWTH times larger (shrinking: GROWTH times smaller)
MARGIN = 2  # pixels kept free at the frame border (the oracle reads the background from the border)
GAP = 3  # minimum pixels between two objects' swept boxes

_DIRECTIONS = {"moving left": (-1, 0), "moving right": (1, 0), "moving up": (0, -1), "moving down": (0, 1)}
RELATIONSHIPS = ("on the left of", "on the right of", "on the top of", "on the bottom of")
# VBench's own style vocabularies (VBench_full_info.json), reused verbatim.
APPEARANCE_STYLES = ("Van Gogh style", "oil painting", "by Hokusai, in the style of Ukiyo", "black and white",
                     "pixel art", "in cyberpunk style", "animated style", "watercolor painting", "surrealism style")
# Only the camera styles this world can render: a camera move is the opposite apparent motion of every object.
CAMERA_STYLES = {"zoom in": "growing", "zoom out": "shrinking", "pan left": "moving right", "pan right": "moving left",
                 "tilt up": "moving down", "tilt down": "moving up"}
VBENCH_DIMENSIONS = (
    "subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness", "dynamic_degree",
    "aesthetic_quality", "imaging_quality", "object_class", "multiple_objects", "human_action", "color",
    "spatial_relationship", "scene", "appearance_style", "temporal_style", "overall_consistency",
)
# ActivityNet-QA `type` codes (MILVLG/activitynet-qa dataset/README.md): question types 0 motion, 1 spatial
# relationship, 2 temporal relationship; free questions by answer type 3 yes/no, 4 color, 5 object, 7 number.
ANET_TYPES = {"motion": 0, "spatial": 1, "temporal": 2, "yes_no": 3, "color": 4, "object": 5, "number": 7}
_NUMBER_WORDS = ("zero", "one", "two", "three", "four")


@dataclass
class ObjectSpec:
    shape: str
    color: str
    x0: float  # centre at frame 0, pixels
    y0: float
    size: float  # side / diameter at frame 0, pixels
    motion: str
    appear_frame: int = 0  # invisible before this frame


@dataclass
class ClipSpec:
    clip_id: str
    objects: list[ObjectSpec] = field(default_factory=list)
    background: str = "gray"
    num_frames: int = 17
    height: int = 64
    width: int = 64
    fps: float = 8.0


# --------------------------------------------------------------------------------------------- physics

def object_state(obj: ObjectSpec, t: int, spec: ClipSpec) -> tuple[float, float, float]:
    """Centre x, centre y and size of `obj` at frame t (its trajectory is fixed by the world constants)."""
    frac = t / (spec.num_frames - 1) if spec.num_frames > 1 else 0.0
    travel = TRAVEL_FRAC * min(spec.height, spec.width) * frac
    dx, dy = _DIRECTIONS.get(obj.motion, (0, 0))
    size = obj.size
    if obj.motion == "growing":
        size = obj.size * GROWTH ** frac
    elif obj.motion == "shrinking":
        size = obj.size * GROWTH ** -frac
    return obj.x0 + dx * travel, obj.y0 + dy * travel, size


def swept_box(obj: ObjectSpec, spec: ClipSpec) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) covering the object over every frame where it is visible."""
    boxes = []
    for t in range(obj.appear_frame, spec.num_frames):
        cx, cy, s = object_state(obj, t, spec)
        boxes.append((cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2))
    b = np.array(boxes)
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


def _size_range(motion: str, side: int) -> tuple[float, float]:
    # Shrinking objects start large and growing ones small, so every object stays detectable (>= ~10 px at 64x64,
    # where H.264 still leaves circles and squares apart) and fits the frame at every step.
    if motion == "growing":
        return 0.16 * side, 0.19 * side
    if motion == "shrinking":
        return 0.26 * side, 0.30 * side
    return 0.17 * side, 0.25 * side


def _boxes_apart(a, b, gap: float = GAP) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _relation_holds(a, b, relationship: str) -> bool:
    """Whether swept box a stands in `relationship` to swept box b for the whole clip, with the offset mostly along
    the relationship's axis (VBench's spatial check compares the horizontal and vertical centre distances)."""
    dx = abs((b[0] + b[2]) - (a[0] + a[2])) / 2
    dy = abs((b[1] + b[3]) - (a[1] + a[3])) / 2
    if relationship == "on the left of":
        return a[2] + GAP <= b[0] and dx > dy
    if relationship == "on the right of":
        return b[2] + GAP <= a[0] and dx > dy
    if relationship == "on the top of":
        return a[3] + GAP <= b[1] and dy > dx
    if relationship == "on the bottom of":
        return b[3] + GAP <= a[1] and dy > dx
    raise ValueError(f"relationship {relationship!r}: unknown (expected one of {RELATIONSHIPS})")


def _place(rng: np.random.Generator, partial: list[dict], spec: ClipSpec, relationship: str | None = None,
           tries: int = 400) -> list[ObjectSpec] | None:
    """Draw sizes and positions so that every object stays inside the frame and apart from the others."""
    side = min(spec.height, spec.width)
    for _ in range(tries):
        objs, boxes, ok = [], [], True
        for p in partial:
            lo, hi = _size_range(p["motion"], side)
            size = float(np.round(rng.uniform(lo, hi), 1))
            obj = ObjectSpec(p["shape"], p["color"], 0.0, 0.0, size, p["motion"], p.get("appear_frame", 0))
            # Draw the centre so the swept box lies inside the margins: offset from the box at centre (0, 0).
            bx = swept_box(obj, spec)
            xlo, xhi = MARGIN - bx[0], spec.width - MARGIN - bx[2]
            ylo, yhi = MARGIN - bx[1], spec.height - MARGIN - bx[3]
            if xlo > xhi or ylo > yhi:
                ok = False
                break
            obj.x0 = float(np.round(rng.uniform(xlo, xhi), 1))
            obj.y0 = float(np.round(rng.uniform(ylo, yhi), 1))
            box = swept_box(obj, spec)
            if any(not _boxes_apart(box, other) for other in boxes):
                ok = False
                break
            objs.append(obj)
            boxes.append(box)
        if ok and relationship is not None and not _relation_holds(boxes[0], boxes[1], relationship):
            ok = False
        if ok:
            return objs
    return None


def sample_clip_specs(seed: int, n: int, num_frames: int = 17, height: int = 64, width: int = 64,
                      fps: float = 8.0) -> list[ClipSpec]:
    """n clips with 1-2 objects of distinct colours and shapes (so every question has one answer), never overlapping,
    inside the frame for the whole clip; the same seed gives the same clips."""
    rng = np.random.default_rng(seed)
    color_names, bg_names = list(COLORS), list(BACKGROUNDS)
    specs = []
    for i in range(n):
        spec = ClipSpec(f"synth{seed}_{i:05d}", [], bg_names[rng.integers(len(bg_names))], num_frames, height, width,
                        fps)
        n_obj = int(rng.integers(1, 3))
        while True:
            shapes = rng.choice(len(SHAPES), size=n_obj, replace=False)
            colors = rng.choice(len(color_names), size=n_obj, replace=False)
            partial = []
            for k in range(n_obj):
                p = {"shape": SHAPES[shapes[k]], "color": color_names[colors[k]],
                     "motion": MOTIONS[rng.integers(len(MOTIONS))]}
                # A second object sometimes enters mid-clip (a temporal question); it then stays where it appears.
                if k == 1 and num_frames >= 6 and rng.random() < 0.3:
                    p["appear_frame"] = int(rng.integers(num_frames // 3, num_frames // 2 + 1))
                    p["motion"] = "static"
                partial.append(p)
            objs = _place(rng, partial, spec)
            if objs is not None:
                break
            if n_obj == 1:
                raise ValueError(f"sample_clip_specs: a {height}x{width} frame is too small for the world's objects "
                                 f"(expected at least 16x16; 64x64 or more to keep shapes recognisable)")
            n_obj = 1  # two objects did not fit this time; one does in any frame of 16x16 or more
        spec.objects = objs
        specs.append(spec)
    return specs


# ---------------------------------------------------------------------------------------------- render

def shape_mask(shape: str, cx: float, cy: float, s: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    r = s / 2
    if shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
    if shape == "square":
        return (np.abs(xs - cx) <= r) & (np.abs(ys - cy) <= r)
    if shape == "triangle":  # apex up, base at the bottom of the s x s box
        top = cy - r
        return (ys >= top) & (ys <= cy + r) & (np.abs(xs - cx) <= (ys - top) / 2)
    raise ValueError(f"shape {shape!r}: unknown (expected one of {SHAPES})")


def render_clip(spec: ClipSpec) -> np.ndarray:
    """The clip's pixels: uint8 [T, H, W, 3] RGB, hard edges, objects drawn in list order."""
    if spec.background not in BACKGROUNDS:
        raise ValueError(f"background {spec.background!r}: unknown (expected one of {list(BACKGROUNDS)})")
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), np.uint8)
    frames[:] = BACKGROUNDS[spec.background]
    # Pixel centres, so that a shape's area does not depend on sub-pixel placement bias.
    ys, xs = np.mgrid[0:spec.height, 0:spec.width].astype(np.float32) + 0.5
    for obj in spec.objects:
        if obj.color not in COLORS:
            raise ValueError(f"color {obj.color!r}: unknown (expected one of {list(COLORS)})")
        for t in range(obj.appear_frame, spec.num_frames):
            cx, cy, s = object_state(obj, t, spec)
            frames[t][shape_mask(obj.shape, cx, cy, s, xs, ys)] = COLORS[obj.color]
    return frames


# ------------------------------------------------------------------------------------------------ text

def _a(word: str) -> str:
    """'a red', 'an orange': VBench prompts use correct articles, and so must a caption the parser reads back."""
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _phrase(obj: ObjectSpec) -> str:
    words = f"{_a(obj.color)} {obj.shape}"
    if obj.appear_frame > 0:
        return words + " appearing later"
    return words if obj.motion == "static" else f"{words} {obj.motion}"


def caption(spec: ClipSpec) -> str:
    """e.g. 'a red circle moving right and a blue square on a gray background'."""
    if not spec.objects:
        return f"a {spec.background} background"
    return " and ".join(_phrase(o) for o in spec.objects) + f" on a {spec.background} background"


def qa_pairs(spec: ClipSpec) -> list[dict]:
    """Questions whose one- or two-word answers the clip determines.

    Each item: question, answer, type ('static' = answerable from any single frame where the object shows,
    'dynamic' = needs several frames) and anet_type (the ActivityNet-QA integer type code).
    """
    qa = []

    def add(q, a, kind, anet):
        qa.append({"question": q, "answer": a, "type": kind, "anet_type": ANET_TYPES[anet]})

    add("How many objects are in the video?", _NUMBER_WORDS[len(spec.objects)], "static", "number")
    add("What color is the background?", spec.background, "static", "color")
    for o in spec.objects:
        add(f"What color is the {o.shape}?", o.color, "static", "color")
        add(f"What shape is the {o.color} object?", o.shape, "static", "object")
    for o in spec.objects:
        name = f"{o.color} {o.shape}"
        moving = o.motion in _DIRECTIONS
        add(f"Is the {name} moving?", "yes" if moving else "no", "dynamic", "motion")
        if moving:
            add(f"Which direction does the {name} move?", o.motion.split()[1], "dynamic", "motion")
        if o.motion in ("growing", "shrinking"):
            add(f"Is the {o.shape} growing or shrinking?", o.motion, "dynamic", "motion")
        add(f"Does the {name} appear later in the video?", "yes" if o.appear_frame > 0 else "no", "dynamic",
            "temporal")
    if len(spec.objects) == 2:
        a, b = spec.objects
        ba, bb = swept_box(a, spec), swept_box(b, spec)
        # Only when it holds in every frame: otherwise the answer would depend on which frame one looks at.
        for rel, word in (("on the left of", "left"), ("on the right of", "right")):
            if _relation_holds(ba, bb, rel):
                add(f"Is the {a.color} {a.shape} on the left or on the right of the {b.color} {b.shape}?", word,
                    "static", "spatial")
    return qa


# ---------------------------------------------------------------------------------------------- VBench

def _rng_choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _motions_nonstatic():
    return [m for m in MOTIONS if m != "static"]


def _entry_makers():
    """One maker per VBench prompt group (VBench groups dimensions that share prompts into one entry)."""
    C, S, B = list(COLORS), list(SHAPES), list(BACKGROUNDS)

    def subject(rng):  # subject_consistency + dynamic_degree + motion_smoothness: a moving subject
        p = f"{_a(_rng_choice(rng, C))} {_rng_choice(rng, S)} {_rng_choice(rng, _motions_nonstatic())} " \
            f"on a {_rng_choice(rng, B)} background"
        return {"prompt_en": p, "dimension": ["subject_consistency", "dynamic_degree", "motion_smoothness"]}

    def flicker(rng):  # a still scene, with VBench's three still-frame templates
        thing = f"{_a(_rng_choice(rng, C))} {_rng_choice(rng, S)}"
        if rng.random() < 0.5:
            thing += f" on a {_rng_choice(rng, B)} background"
        tpl = _rng_choice(rng, ["In a still frame, {}", "{}, frozen in time", "A tranquil tableau of {}"])
        return {"prompt_en": tpl.format(thing), "dimension": ["temporal_flickering"]}

    def object_class(rng):
        shape = _rng_choice(rng, S)
        p = f"a {shape}" if rng.random() < 0.5 else f"a {shape} on a {_rng_choice(rng, B)} background"
        return {"prompt_en": p, "dimension": ["object_class"], "auxiliary_info": {"object_class": {"object": shape}}}

    def multiple(rng):
        a, b = (S[i] for i in rng.choice(len(S), 2, replace=False))
        p = f"a {a} and a {b}" + ("" if rng.random() < 0.5 else f" on a {_rng_choice(rng, B)} background")
        return {"prompt_en": p, "dimension": ["multiple_objects"],
                "auxiliary_info": {"multiple_objects": {"object": f"{a} and {b}"}}}

    def action(rng):  # VBench's human_action; in this world an action is an object's motion
        motion = _rng_choice(rng, _motions_nonstatic())
        p = f"{_a(_rng_choice(rng, C))} {_rng_choice(rng, S)} {motion}"
        return {"prompt_en": p, "dimension": ["human_action"], "auxiliary_info": {"human_action": {"action": motion}}}

    def color(rng):
        c = _rng_choice(rng, C)
        p = f"{_a(c)} {_rng_choice(rng, S)}" + ("" if rng.random() < 0.5 else f" on a {_rng_choice(rng, B)} background")
        return {"prompt_en": p, "dimension": ["color"], "auxiliary_info": {"color": {"color": c}}}

    def spatial(rng):
        a, b = (S[i] for i in rng.choice(len(S), 2, replace=False))
        rel = _rng_choice(rng, RELATIONSHIPS)
        p = f"a {a} {rel} a {b}" + ("" if rng.random() < 0.5 else f" on a {_rng_choice(rng, B)} background")
        return {"prompt_en": p, "dimension": ["spatial_relationship"],
                "auxiliary_info": {"spatial_relationship": {"spatial_relationship":
                                                            {"object_a": a, "object_b": b, "relationship": rel}}}}

    def scene(rng):  # VBench scene prompts name only the scene; a subject is added only to get more distinct prompts
        bg = _rng_choice(rng, B)
        p = f"{bg} background" if rng.random() < 0.5 else \
            f"{_a(_rng_choice(rng, C))} {_rng_choice(rng, S)} on a {bg} background"
        return {"prompt_en": p, "dimension": ["scene", "background_consistency"],
                "auxiliary_info": {"scene": {"scene": {"scene": f"{bg} background"}}}}

    def appearance(rng):
        style = _rng_choice(rng, APPEARANCE_STYLES)
        p = f"{_a(_rng_choice(rng, C))} {_rng_choice(rng, S)} on a {_rng_choice(rng, B)} background, {style}"
        return {"prompt_en": p, "dimension": ["appearance_style"],
                "auxiliary_info": {"appearance_style": {"appearance_style": style}}}

    def temporal(rng):
        p = f"{_a(_rng_choice(rng, C))} {_rng_choice(rng, S)} on a {_rng_choice(rng, B)} background, " \
            f"{_rng_choice(rng, list(CAMERA_STYLES))}"
        return {"prompt_en": p, "dimension": ["temporal_style"]}

    def overall(rng):  # a full clip description, capitalised with a period like VBench's overall prompts
        spec = sample_clip_specs(int(rng.integers(2**31)), 1)[0]
        text = caption(spec)
        return {"prompt_en": text[0].upper() + text[1:] + ".",
                "dimension": ["overall_consistency", "aesthetic_quality", "imaging_quality"]}

    return [subject, flicker, object_class, multiple, action, color, spatial, scene, appearance, temporal, overall]


def vbench_prompt_suite(seed: int, per_dimension: int = 1) -> list[dict]:
    """Prompts in VBench_full_info.json's format covering all 16 dimensions, `per_dimension` entries per prompt
    group; every prompt is unique (VBench names videos `{prompt}-{i}.mp4`)."""
    if per_dimension < 1:
        raise ValueError(f"per_dimension={per_dimension} (expected >= 1)")
    rng = np.random.default_rng(seed)
    used, suite = set(), []
    for make in _entry_makers():
        for _ in range(per_dimension):
            for _attempt in range(2000):
                entry = make(rng)
                if entry["prompt_en"] not in used:
                    break
            else:
                raise ValueError(f"vbench_prompt_suite: per_dimension={per_dimension} exceeds the distinct prompts "
                                 f"the world has for {entry['dimension']}")
            used.add(entry["prompt_en"])
            suite.append(entry)
    return suite


# --------------------------------------------------------------------------------------------- parsing

_COLOR_RE = "|".join(sorted(COLORS, key=len, reverse=True))
_SHAPE_RE = "|".join(SHAPES)
_MOTION_RE = "|".join(sorted(_motions_nonstatic() + ["appearing later"], key=len, reverse=True))
_OBJ_RE = re.compile(rf"^an? (?:(?P<color>{_COLOR_RE}) )?(?P<shape>{_SHAPE_RE})(?: (?P<motion>{_MOTION_RE}))?$")
_BG_RE = "|".join(sorted(BACKGROUNDS, key=len, reverse=True))


def parse_prompt(prompt: str) -> dict:
    """What a world prompt says: objects (shape, colour or None, motion or None, appears_later), background or
    None, spatial relationship or None, camera style or None. Raises ValueError on text outside the vocabulary."""
    text = prompt.strip().rstrip(".").strip()
    low = text.lower()
    camera = None
    for style in APPEARANCE_STYLES:  # styles cannot be rendered: the content is what the oracle checks
        if low.endswith(", " + style.lower()):
            low = low[: -len(style) - 2]
    for style in CAMERA_STYLES:
        if low.endswith(", " + style):
            low, camera = low[: -len(style) - 2], style
    for prefix in ("in a still frame, ", "a tranquil tableau of "):
        if low.startswith(prefix):
            low = low[len(prefix):]
    if low.endswith(", frozen in time"):
        low = low[: -len(", frozen in time")]
    background = None
    m = re.fullmatch(rf"(?:(?P<rest>.*) on )?an? (?P<bg>{_BG_RE}) background", low) or \
        re.fullmatch(rf"(?P<bg>{_BG_RE}) background", low)
    if m:
        background, low = m.group("bg"), (m.groupdict().get("rest") or "")
    relationship = None
    for rel in RELATIONSHIPS:
        if f" {rel} " in low:
            relationship = rel
            parts = low.split(f" {rel} ")
            break
    else:
        parts = low.split(" and ") if low else []
    objects = []
    for part in parts:
        om = _OBJ_RE.match(part.strip())
        if not om:
            raise ValueError(f"prompt {prompt!r}: cannot read {part!r} (expected 'a [colour] shape [motion]' with "
                             f"shapes {SHAPES}, colours {tuple(COLORS)})")
        objects.append({"shape": om.group("shape"), "color": om.group("color"), "motion": om.group("motion")})
    if len({o["shape"] for o in objects}) < len(objects):
        raise ValueError(f"prompt {prompt!r}: repeats a shape (expected distinct shapes)")
    return {"objects": objects, "background": background, "relationship": relationship, "camera": camera}


def spec_from_prompt(entry: dict | str, seed: int, num_frames: int = 17, height: int = 64, width: int = 64,
                     fps: float = 8.0) -> ClipSpec:
    """The world clip a prompt describes (a VBench-format entry or the prompt text); what the prompt leaves open
    (colour, background, placement) is drawn deterministically from seed and the prompt text."""
    prompt = entry["prompt_en"] if isinstance(entry, dict) else entry
    parsed = parse_prompt(prompt)
    rng = np.random.default_rng([seed, zlib.crc32(prompt.encode())])
    bg = parsed["background"] or _rng_choice(rng, list(BACKGROUNDS))
    spec = ClipSpec(f"prompt_{zlib.crc32(prompt.encode()):08x}", [], bg, num_frames, height, width, fps)
    free_colors = [c for c in COLORS if c not in {o["color"] for o in parsed["objects"]}]
    partial = []
    for k, o in enumerate(parsed["objects"]):
        color = o["color"]
        if color is None:
            color = free_colors.pop(int(rng.integers(len(free_colors))))
        p = {"shape": o["shape"], "color": color, "motion": o["motion"] or "static"}
        if p["motion"] == "appearing later":
            p["motion"], p["appear_frame"] = "static", max(1, num_frames // 3)
        if parsed["camera"]:
            p["motion"] = CAMERA_STYLES[parsed["camera"]]
        partial.append(p)
    if partial:
        objs = _place(rng, partial, spec, parsed["relationship"], tries=2000)
        if objs is None:
            raise ValueError(f"prompt {prompt!r}: the objects do not fit a {height}x{width} frame as described")
        spec.objects = objs
    return spec
