"""The paper-scale loader, proven without the real weights: tiny checkpoints saved in the official on-disk layouts
(Wan2.2-TI2V-5B-Diffusers/{transformer,vae,scheduler,text_encoder,tokenizer}, a Qwen2 directory, a SigLIP directory)
load back through the same `build` that smoke uses, with identical weights. The UMT5 tokenizer saved under
tokenizer/ is the smoke (SmolLM2) one: no UMT5 tokenizer is available offline."""

import torch

from univid.config import resolve
from univid.models.builder import build, build_dit, build_llm, build_scheduler, build_text_encoder, build_vae, build_vit
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
    # Table 3 "w/o MLLM": Wan's own UMT5 text encoder + tokenizer, in the same checkpoint
    text_encoder, text_tok = build_text_encoder(m["text_encoder"], load_tokenizer(m["tokenizer"]))
    text_encoder.save_pretrained(wan / "text_encoder")
    text_tok.save_pretrained(wan / "tokenizer")
    llm.save_pretrained(tmp_path / "Qwen2-7B-Instruct")
    tok.save_pretrained(tmp_path / "Qwen2-7B-Instruct")
    vit.save_pretrained(tmp_path / "siglip2-so400m-patch14-384")
    for sub in ("transformer", "vae", "scheduler", "text_encoder", "tokenizer"):
        assert (wan / sub).is_dir()

    cfg = resolve({"scale": "paper", "device": "cpu", "dtype": "float32", "model": {
        "tokenizer": {"path": str(tmp_path / "Qwen2-7B-Instruct")},
        "llm": {"path": str(tmp_path / "Qwen2-7B-Instruct")},
        "vit": {"path": str(tmp_path / "siglip2-so400m-patch14-384")},
        "vae": {"path": str(wan)}, "dit": {"path": str(wan)}, "scheduler": {"path": str(wan)},
        "connector": {"num_tokens": 16}, "conditioning": "t5", "text_encoder": {"path": str(wan)}}})
    assert cfg["model"]["text_encoder"]["subfolder"] == "text_encoder"  # the paper preset's layout, path swapped
    assert cfg["model"]["text_encoder"]["tokenizer_subfolder"] == "tokenizer"
    loaded = build(cfg)
    assert _same(llm, loaded.model.mllm.llm)
    assert _same(vit, loaded.model.mllm.vit)
    assert _same(vae, loaded.model.vae)
    assert _same(dit, loaded.model.dit, drop_lora=True)
    assert loaded.scheduler.config.flow_shift == 5.0
    assert len(loaded.tokenizer) == len(tok)
    assert _same(text_encoder, loaded.model.text_encoder)
    assert loaded.conditioning == "t5" and len(loaded.text_tokenizer) == len(text_tok)
    prompt = "a red square moving right"
    assert loaded.text_tokenizer(prompt).input_ids == text_tok(prompt).input_ids
