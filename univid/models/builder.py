"""One builder for every UniVid component at any scale.

A component spec with `path` is loaded with `from_pretrained` (hub id or a local directory in the official layout,
e.g. Wan2.2-TI2V-5B-Diffusers/{transformer,vae,scheduler}); with `path: null` the same class is built from `config`
with seeded random init. The config decides; the code path is the same.
"""

from __future__ import annotations

import json

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
from peft import LoraConfig
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel,
                          UMT5Config, UMT5EncoderModel)

from univid.io import atomic_path
from univid.models.connector import Connector
from univid.models.mllm import UniVidMLLM
from univid.models.tma import TMAState, install_tma
from univid.models.tokenizer import load_tokenizer

CONDITIONINGS = ("mllm", "t5")  # paper Table 3: UniVid (MLLM -> connector) | "w/o MLLM" (Wan's own UMT5)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CROSS_ATTN_LORA_TARGETS = ["attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"]


def _check_path(spec: dict, what: str) -> None:
    path = spec.get("path")
    # A local-looking path that does not exist gets a clear error instead of a hub lookup.
    if path and (path.startswith((".", "/", "~")) or Path(path).exists() or path.count("/") != 1):
        full = Path(path).expanduser() / (spec.get("subfolder") or "")
        if not full.exists():
            raise FileNotFoundError(f"model.{what}.path '{full}': checkpoint directory not found "
                                    f"(expected the official on-disk layout, or a hub id)")


def build_llm(spec: dict, vocab_size: int) -> Qwen2ForCausalLM:
    _check_path(spec, "llm")
    if spec.get("path"):
        return Qwen2ForCausalLM.from_pretrained(spec["path"])
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab_size, **spec["config"]))


def build_vit(spec: dict) -> SiglipVisionModel:
    _check_path(spec, "vit")
    if spec.get("path"):
        return SiglipVisionModel.from_pretrained(spec["path"])
    return SiglipVisionModel(SiglipVisionConfig(**spec["config"]))


def build_vae(spec: dict) -> AutoencoderKLWan:
    _check_path(spec, "vae")
    if spec.get("path"):
        return AutoencoderKLWan.from_pretrained(spec["path"], subfolder=spec.get("subfolder"))
    return AutoencoderKLWan(**spec["config"])


def build_dit(spec: dict) -> WanTransformer3DModel:
    _check_path(spec, "dit")
    if spec.get("path"):
        return WanTransformer3DModel.from_pretrained(spec["path"], subfolder=spec.get("subfolder"))
    return WanTransformer3DModel(**spec["config"])


def build_text_encoder(spec: dict, tokenizer) -> tuple[UMT5EncoderModel, object]:
    """Wan's own text encoder and its tokenizer (`model.conditioning: t5`, Table 3 "w/o MLLM").

    With `path`: UMT5EncoderModel from `subfolder` and the tokenizer from `tokenizer_subfolder` of the same checkpoint
    (Wan2.2-TI2V-5B-Diffusers/{text_encoder,tokenizer}). With `path: null`: a seeded-random UMT5 from `config` read
    through `tokenizer` (the model's own, e.g. SmolLM2 at smoke: no UMT5 tokenizer ships offline), vocab sized to it.
    """
    _check_path(spec, "text_encoder")
    if spec.get("path"):
        encoder = UMT5EncoderModel.from_pretrained(spec["path"], subfolder=spec.get("subfolder"))
        tokenizer = AutoTokenizer.from_pretrained(spec["path"], subfolder=spec.get("tokenizer_subfolder"))
    else:
        encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), **spec["config"]))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # WanPipeline._get_t5_prompt_embeds keeps the first seq_len positions of each row: it assumes right padding.
    tokenizer.padding_side = "right"
    return encoder, tokenizer


def build_scheduler(spec: dict) -> UniPCMultistepScheduler:
    _check_path(spec, "scheduler")
    if spec.get("path"):
        sched = UniPCMultistepScheduler.from_pretrained(spec["path"], subfolder=spec.get("subfolder"))
        return UniPCMultistepScheduler.from_config(sched.config, flow_shift=spec["flow_shift"])
    # Wan 2.2 TI2V sampler: UniPC on flow-matching sigmas with shift (reference-facts §3).
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000,
                                   flow_shift=spec["flow_shift"])


class UniVid(nn.Module):
    """Container: parameter names (`mllm.*`, `connector.*`, `dit.*`, `vae.*`, `text_encoder.*`) are the checkpoint
    keys."""

    def __init__(self, mllm: UniVidMLLM, connector: Connector, dit: WanTransformer3DModel, vae: AutoencoderKLWan,
                 text_encoder: UMT5EncoderModel | None = None):
        super().__init__()
        self.mllm, self.connector, self.dit, self.vae = mllm, connector, dit, vae
        self.text_encoder = text_encoder  # only with conditioning t5; always frozen (as in Wan)


@dataclass
class Components:
    model: UniVid
    tokenizer: object
    scheduler: UniPCMultistepScheduler
    tma: TMAState
    encoders: str
    max_text_tokens: int
    device: torch.device
    dtype: torch.dtype
    conditioning: str = "mllm"  # what conditions the DiT: mllm (MLLM -> connector) | t5 (model.text_encoder)
    text_tokenizer: object = None  # the text encoder's tokenizer (conditioning t5 only)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'device' = 'cuda': no CUDA device is available (expected a GPU, or device: cpu)")
    return torch.device(name)


def build(cfg: dict) -> Components:
    """Every component at the configured scale. Random-init parts are seeded by cfg['seed']."""
    m = cfg["model"]
    conditioning = m["conditioning"]
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"model.conditioning {conditioning!r}: expected one of {', '.join(CONDITIONINGS)}")
    torch.manual_seed(cfg["seed"])
    tokenizer = load_tokenizer(m["tokenizer"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    llm = build_llm(m["llm"], vocab_size=len(tokenizer))
    vit = build_vit(m["vit"])
    vae = build_vae(m["vae"])
    dit = build_dit(m["dit"])
    mllm = UniVidMLLM(llm, vit, vae_z_dim=vae.config.z_dim)
    c = m["connector"]
    connector = Connector(c["kind"], mllm.hidden_size, dit.config.text_dim, c["num_tokens"], c["kernel_size"],
                          c["num_layers"], c["dropout"])
    s1 = cfg["train"]["stage1"]
    # LoRA on the DiT cross-attention (B is zero-initialised, so an untrained adapter is the identity).
    dit.add_adapter(LoraConfig(r=s1["lora_r"], lora_alpha=s1["lora_alpha"], lora_dropout=s1["lora_dropout"],
                               target_modules=CROSS_ATTN_LORA_TARGETS, init_lora_weights=True))
    tma = TMAState.from_config(cfg["tma"])
    install_tma(dit, tma)
    text_encoder = text_tokenizer = None
    if conditioning == "t5":  # built last, so the seeded parts above are the same under either conditioning
        # A fresh tokenizer object at smoke (path null): padding_side is set on it, not on the MLLM's.
        own = None if m["text_encoder"].get("path") else load_tokenizer(m["tokenizer"])
        text_encoder, text_tokenizer = build_text_encoder(m["text_encoder"], own)
        if text_encoder.config.d_model != dit.config.text_dim:
            raise ValueError(f"model.text_encoder: hidden size {text_encoder.config.d_model} but the DiT's text_dim "
                             f"is {dit.config.text_dim} (expected them equal: its last hidden state is the context)")
    model = UniVid(mllm, connector, dit, vae, text_encoder)
    device, dtype = resolve_device(cfg["device"]), DTYPES[cfg["dtype"]]
    for part in (model.mllm, model.connector, model.dit) + ((text_encoder,) if text_encoder is not None else ()):
        part.to(device=device)
        if dtype != torch.float32:
            part.to(dtype=dtype)
    model.vae.to(device=device)  # the Wan VAE stays in float32, as diffusers' Wan examples run it
    model.requires_grad_(False)
    model.eval()
    return Components(model, tokenizer, build_scheduler(m["scheduler"]), tma, m["encoders"], m["max_text_tokens"],
                      device, dtype, conditioning, text_tokenizer)


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_weights(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None) -> None:
    """Byte-deterministic: safetensors writes a metadata map in per-process random order, so the metadata goes in as
    one sorted-JSON entry ("univid"), and the same weights always give the same file (and sha256, which keys caches)."""
    meta = {"univid": json.dumps({k: str(v) for k, v in metadata.items()}, sort_keys=True)} if metadata else None
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load a partial checkpoint (what a stage trained); every key must name a parameter of the model."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found (expected a .safetensors written by `univid train`)")
    tensors = load_file(str(path))
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise KeyError(f"{path}: {len(unknown)} tensors match no model parameter, e.g. {unknown[0]!r} "
                       f"(expected a checkpoint of this model config)")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(params[name].dtype))
    return sorted(tensors)
