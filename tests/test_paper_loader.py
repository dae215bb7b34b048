"""The paper-scale loader, proven without the real weights: tiny checkpoints saved in the official on-disk layouts
(Wan2.2-TI2V-5B-Diffusers/{transformer,vae,scheduler}, a Qwen2 directory, a SigLIP directory) load back through the
same `build` that smoke uses, with identical weights."""

import torch

from univid.config import resolve
from univid.models.builder import build, build_dit, build_llm, build_scheduler, build_vae, build_vit
from univid.models.tokenizer import load_tokenizer


def _same(a, b, drop_lora=False):
    a = dict(a.named_parameters())
    b = {k.replace(".base_layer", ""): v for k, v in b.named_parameters() if not (drop_lora and "lora_" in k)}
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_paper_scale_loads_official_layouts(tmp_path):
    m = resolve({})["model"]
    torch.manual_seed(123)
    tok = load_tokenizer(m["tokenizer"])
    llm, vit, vae, dit = build_llm(m["llm"], len(tok)), build_vit(m["vit"]), build_vae(m["vae"]), build_dit(m["dit"])
    wan = tmp_path / "Wan2.2-TI2V-5B-Diffusers"
    dit.save_pretrained(wan / "transformer")
    vae.save_pretrained(wan / "vae")
    build_scheduler(m["scheduler"]).save_pretrained(wan / "scheduler")
    llm.save_pretrained(tmp_path / "Qwen2-7B-Instruct")
    tok.save_pretrained(tmp_path / "Qwen2-7B-Instruct")
    vit.save_pretrained(tmp_path / "siglip2-so400m-patch14-384")
    for sub in ("transformer", "vae", "scheduler"):
        assert (wan / sub).is_dir()

    cfg = resolve({"scale": "paper", "device": "cpu", "dtype": "float32", "model": {
        "tokenizer": {"path": str(tmp_path / "Qwen2-7B-Instruct")},
        "llm": {"path": str(tmp_path / "Qwen2-7B-Instruct")},
        "vit": {"path": str(tmp_path / "siglip2-so400m-patch14-384")},
        "vae": {"path": str(wan)}, "dit": {"path": str(wan)}, "scheduler": {"path": str(wan)},
        "connector": {"num_tokens": 16}}})
    loaded = build(cfg)
    assert _same(llm, loaded.model.mllm.llm)
    assert _same(vit, loaded.model.mllm.vit)
    assert _same(vae, loaded.model.vae)
    assert _same(dit, loaded.model.dit, drop_lora=True)
    assert loaded.scheduler.config.flow_shift == 5.0
    assert len(loaded.tokenizer) == len(tok)
