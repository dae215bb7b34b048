"""One builder for every UniVid component at any scale.

A component spec with `path` is loaded with `from_pretrained` (hub id or a local directory in the official layout,
e.g. Wan2.2-TI2V-5B-Diffusers/{transformer,vae,scheduler}); with `path: null` the same class is built from `config`
with seeded random init. The config decides; the code path is the same.

Loading is what the libraries intend: each checkpoint is read straight into its dtype (`torch_dtype`, with
low-CPU-memory loading), never as a float32 copy cast afterwards. The DiT, LLM, ViT and text encoder load in the
config's `dtype`, except the modules a class keeps in float32 (diffusers' `_keep_in_fp32_modules`: Wan's time
embedder, norms and modulation tables); the Wan VAE always stays float32, as diffusers' Wan examples run it.
A job builds only the parts it uses (`parts`): understanding jobs never construct the DiT.

The MLLM starts `fresh` (ViT from model.vit, LLM from model.llm, a seeded-random ViT-to-LLM projector) or from a
pretrained multimodal checkpoint in the transformers LLaVA layout (`model.mllm.init: {checkpoint: PATH}`), which
supplies the ViT, the LLM and the projector together.
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
from transformers import (AutoConfig, AutoTokenizer, LlavaForConditionalGeneration,
                          LlavaOnevisionForConditionalGeneration, Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig,
                          SiglipVisionModel, UMT5Config, UMT5EncoderModel)

from univid.io import atomic_path
from univid.models.connector import Connector
from univid.models.mllm import UniVidMLLM
from univid.models.pretrained import check_pretrained
from univid.models.tma import TMAState, install_tma
from univid.models.tokenizer import load_tokenizer

CONDITIONINGS = ("mllm", "t5")  # paper Table 3: UniVid (MLLM -> connector) | "w/o MLLM" (Wan's own UMT5)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CROSS_ATTN_LORA_TARGETS = ["attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"]
SELF_ATTN_LORA_TARGETS = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0"]
# train.stage1.lora_targets: where the DiT LoRA goes (Appendix A.3: cross-attention; Sec. 3.2: self- and cross-)
LORA_TARGETS = {"cross_attn": CROSS_ATTN_LORA_TARGETS,
                "self_and_cross_attn": SELF_ATTN_LORA_TARGETS + CROSS_ATTN_LORA_TARGETS}
# What a job can build. The MLLM (llm + vit) is always built. Each random-init part draws from its own seed
# (cfg seed + SEED_OFFSETS[part]), so a job that leaves parts out builds the others exactly as a job that has them.
PARTS = ("mllm", "vae", "dit", "connector", "text_encoder")
GENERATION_PARTS = ("mllm", "vae", "dit", "connector", "text_encoder")  # text_encoder: only with conditioning t5
UNDERSTANDING_PARTS = ("mllm", "vae")  # the Actor and the frame pool: ViT, LLM (and VAE tokens, Table 9)
SEED_OFFSETS = {"llm": 0, "vit": 1, "vae": 2, "dit": 3, "projections": 4, "connector": 5, "text_encoder": 6, "lora": 7}


def _check_path(spec: dict, what: str) -> None:
    path = spec.get("path")
    # A local-looking path that does not exist gets a clear error instead of a hub lookup.
    if path and (path.startswith((".", "/", "~")) or Path(path).exists() or path.count("/") != 1):
        full = Path(path).expanduser() / (spec.get("subfolder") or "")
        if not full.exists():
            hint = ("; a toy run's pretrained checkpoints: run the pretrain job, `univid pretrain` or the workflow"
                    if "/pretrain/" in f"/{path}" else "")
            raise FileNotFoundError(f"model.{what}.path '{full}': checkpoint directory not found "
                                    f"(expected the official on-disk layout, or a hub id{hint})")


def check_pretrained_dirs(m: dict) -> None:
    """A harness-pretrained checkpoint (toy scale) must have been pretrained for this model config: one line if not."""
    for what in ("vae", "dit", "text_encoder"):
        path = (m.get(what) or {}).get("path")
        if path and Path(path).is_dir():
            check_pretrained(m, path, "wan", f"model.{what}.path", sections=(what,))
    init = (m.get("mllm") or {}).get("init")
    if isinstance(init, dict) and Path(init["checkpoint"]).is_dir():
        check_pretrained(m, init["checkpoint"], "mllm", "model.mllm.init.checkpoint")


def cast_keeping_fp32(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A random-init module in `dtype`, except the submodules its class keeps in float32 (as from_pretrained does)."""
    if dtype == torch.float32:
        return module
    module.to(dtype=dtype)
    keep = getattr(module, "_keep_in_fp32_modules", None) or []
    for name, sub in module.named_modules():
        if any(k in name.split(".") for k in keep):
            sub.to(dtype=torch.float32)
    return module


def build_llm(spec: dict, vocab_size: int, dtype: torch.dtype = torch.float32) -> Qwen2ForCausalLM:
    _check_path(spec, "llm")
    if spec.get("path"):
        return Qwen2ForCausalLM.from_pretrained(spec["path"], dtype=dtype, low_cpu_mem_usage=True)
    return cast_keeping_fp32(Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab_size, **spec["config"])), dtype)


def build_vit(spec: dict, dtype: torch.dtype = torch.float32) -> SiglipVisionModel:
    _check_path(spec, "vit")
    if spec.get("path"):
        return SiglipVisionModel.from_pretrained(spec["path"], dtype=dtype, low_cpu_mem_usage=True)
    return cast_keeping_fp32(SiglipVisionModel(SiglipVisionConfig(**spec["config"])), dtype)


# model.mllm.init {checkpoint: PATH}: the transformers LLaVA layouts whose parts are the UniVid MLLM's own (a SigLIP
# vision tower, a Qwen2 LLM, a Linear-GELU-Linear projector).
MLLM_CHECKPOINTS = {"llava": LlavaForConditionalGeneration, "llava_onevision": LlavaOnevisionForConditionalGeneration}


def _mllm_checkpoint_config(path: str):
    """The checkpoint's config, checked part by part against the UniVid MLLM (one line naming what differs)."""
    _check_path({"path": path}, "mllm.init.checkpoint")
    config = AutoConfig.from_pretrained(path)
    where = f"model.mllm.init.checkpoint '{path}'"
    expected = {"model_type": (config.model_type, tuple(MLLM_CHECKPOINTS)),
                "vision_config.model_type": (config.vision_config.model_type, ("siglip_vision_model",)),
                "text_config.model_type": (config.text_config.model_type, ("qwen2",)),
                "projector_hidden_act": (config.projector_hidden_act, ("gelu",)),
                # SigLIP has no CLS token: 'default' would drop a patch
                "vision_feature_select_strategy": (config.vision_feature_select_strategy, ("full",)),
                "multimodal_projector_bias": (getattr(config, "multimodal_projector_bias", True), (True,))}
    for key, (got, allowed) in expected.items():
        if got not in allowed:
            raise ValueError(f"{where}: {key} {got!r} (expected {' or '.join(map(repr, allowed))}: a LLaVA-layout "
                             f"SigLIP + Qwen2 model with a Linear-GELU-Linear projector)")
    if not isinstance(config.vision_feature_layer, int):
        raise ValueError(f"{where}: vision_feature_layer {config.vision_feature_layer!r} (expected one layer, an int)")
    return config


def load_mllm_checkpoint(path: str, dtype: torch.dtype = torch.float32):
    """(Qwen2ForCausalLM, SiglipVisionModel, projector (linear_1, linear_2), vision_feature_layer) from a pretrained
    multimodal checkpoint in the transformers LLaVA layout, loaded straight into `dtype`. The LLM and the vision tower
    are the checkpoint's own modules (no copy): the language model and LM head go into a Qwen2ForCausalLM shell."""
    config = _mllm_checkpoint_config(path)
    full = MLLM_CHECKPOINTS[config.model_type].from_pretrained(path, dtype=dtype, low_cpu_mem_usage=True)
    with torch.device("meta"):  # an empty shell: its two parts are replaced by the checkpoint's
        llm = Qwen2ForCausalLM(config.text_config)
    llm.model, llm.lm_head = full.model.language_model, full.lm_head
    proj = full.model.multi_modal_projector
    return llm, full.model.vision_tower, (proj.linear_1, proj.linear_2), config.vision_feature_layer


def build_vae(spec: dict) -> AutoencoderKLWan:
    """Always float32: the Wan VAE runs in float32 in diffusers' Wan examples, whatever the DiT's dtype."""
    _check_path(spec, "vae")
    if spec.get("path"):
        return AutoencoderKLWan.from_pretrained(spec["path"], subfolder=spec.get("subfolder"),
                                                torch_dtype=torch.float32, low_cpu_mem_usage=True)
    return AutoencoderKLWan(**spec["config"])


def build_dit(spec: dict, dtype: torch.dtype = torch.float32) -> WanTransformer3DModel:
    _check_path(spec, "dit")
    if spec.get("path"):
        return WanTransformer3DModel.from_pretrained(spec["path"], subfolder=spec.get("subfolder"), torch_dtype=dtype,
                                                     low_cpu_mem_usage=True)
    return cast_keeping_fp32(WanTransformer3DModel(**spec["config"]), dtype)


def vae_z_dim(spec: dict) -> int:
    """The VAE's latent channels without building it (its config.json, or the spec's config)."""
    if spec.get("path"):
        return AutoencoderKLWan.load_config(spec["path"], subfolder=spec.get("subfolder"))["z_dim"]
    return spec["config"]["z_dim"]


def build_text_encoder(spec: dict, tokenizer, dtype: torch.dtype = torch.float32) -> tuple[UMT5EncoderModel, object]:
    """Wan's own text encoder and its tokenizer (`model.conditioning: t5`, Table 3 "w/o MLLM").

    With `path`: UMT5EncoderModel from `subfolder` and the tokenizer from `tokenizer_subfolder` of the same checkpoint
    (Wan2.2-TI2V-5B-Diffusers/{text_encoder,tokenizer}). With `path: null`: a seeded-random UMT5 from `config` read
    through `tokenizer` (the model's own, e.g. SmolLM2 at smoke: no UMT5 tokenizer ships offline), vocab sized to it.
    """
    _check_path(spec, "text_encoder")
    if spec.get("path"):
        encoder = UMT5EncoderModel.from_pretrained(spec["path"], subfolder=spec.get("subfolder"), dtype=dtype,
                                                   low_cpu_mem_usage=True)
        tokenizer = AutoTokenizer.from_pretrained(spec["path"], subfolder=spec.get("tokenizer_subfolder"))
    else:
        encoder = cast_keeping_fp32(UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), **spec["config"])), dtype)
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
    keys. A part a job does not use is None."""

    def __init__(self, mllm: UniVidMLLM, connector: Connector | None, dit: WanTransformer3DModel | None,
                 vae: AutoencoderKLWan | None, text_encoder: UMT5EncoderModel | None = None):
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


def generation_layer(spec: dict, num_layers: int) -> int | None:
    """model.mllm.generation_layer -> UniVidMLLM.generation_layer: None (unset or -1: the last hidden state) or an
    index into the LLM's `hidden_states` (num_layers + 1 of them: the input embeddings, then one per layer)."""
    k = spec.get("generation_layer", -1)
    if isinstance(k, bool) or not isinstance(k, int) or not -(num_layers + 1) <= k <= num_layers:
        raise ValueError(f"model.mllm.generation_layer {k!r}: expected an index into the LLM's {num_layers + 1} "
                         f"hidden states, -{num_layers + 1}..{num_layers} (-1: the last, 0: the input embeddings)")
    return None if k in (-1, num_layers) else k


def build(cfg: dict, parts: tuple[str, ...] | None = None) -> Components:
    """The parts a job uses (default: every generation part) at the configured scale, each loaded straight into its
    dtype and moved to the device. Random-init parts are seeded by cfg['seed']."""
    m = cfg["model"]
    parts = GENERATION_PARTS if parts is None else tuple(parts)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"builder parts {unknown}: unknown (expected some of {', '.join(PARTS)})")
    if "connector" in parts and "dit" not in parts:
        raise ValueError("builder parts: the connector needs the DiT (its output width is the DiT's text_dim)")
    conditioning = m["conditioning"]
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"model.conditioning {conditioning!r}: expected one of {', '.join(CONDITIONINGS)}")
    device, dtype = resolve_device(cfg["device"]), DTYPES[cfg["dtype"]]
    check_pretrained_dirs(m)

    def seeded(part: str):
        torch.manual_seed(cfg["seed"] + SEED_OFFSETS[part])

    tokenizer = load_tokenizer(m["tokenizer"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    init = m["mllm"]["init"]
    pretrained = None
    if init == "fresh":
        seeded("llm")
        llm = build_llm(m["llm"], vocab_size=len(tokenizer), dtype=dtype)
        seeded("vit")
        vit = build_vit(m["vit"], dtype=dtype)
    else:  # a pretrained multimodal model: ViT, LLM and projector come from it (model.llm / model.vit are not read)
        llm, vit, pretrained, layer = load_mllm_checkpoint(init["checkpoint"], dtype=dtype)
        if llm.get_input_embeddings().num_embeddings < len(tokenizer):
            raise ValueError(f"model.mllm.init.checkpoint: {llm.get_input_embeddings().num_embeddings} token "
                             f"embeddings but model.tokenizer has {len(tokenizer)} tokens (expected the "
                             f"checkpoint's own tokenizer, or its LLM's)")
    seeded("vae")
    vae = build_vae(m["vae"]) if "vae" in parts else None
    seeded("dit")
    dit = build_dit(m["dit"], dtype=dtype) if "dit" in parts else None
    seeded("projections")
    mllm = UniVidMLLM(llm, vit, vae_z_dim=vae.config.z_dim if vae is not None else vae_z_dim(m["vae"]))
    if pretrained is not None:
        # the projector the checkpoint's LLM was trained with (vae_proj, which LLaVA lacks, stays as drawn above)
        with torch.no_grad():
            for ours, theirs in zip((mllm.vision_proj[0], mllm.vision_proj[2]), pretrained):
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)
        mllm.vision_feature_layer = layer
    mllm.generation_layer = generation_layer(m["mllm"], llm.config.num_hidden_layers)
    connector = None
    if "connector" in parts:
        c = m["connector"]
        seeded("connector")
        connector = Connector(c["kind"], mllm.hidden_size, dit.config.text_dim, c["num_tokens"], c["kernel_size"],
                              c["num_layers"], c["dropout"])
    tma = TMAState.from_config(cfg["tma"])
    if dit is not None:
        s1 = cfg["train"]["stage1"]
        targets = s1["lora_targets"]
        if targets not in LORA_TARGETS:
            raise ValueError(f"train.stage1.lora_targets {targets!r}: expected one of {', '.join(LORA_TARGETS)}")
        # LoRA on the DiT attention (B is zero-initialised, so an untrained adapter is the identity).
        seeded("lora")
        dit.add_adapter(LoraConfig(r=s1["lora_r"], lora_alpha=s1["lora_alpha"], lora_dropout=s1["lora_dropout"],
                                   target_modules=LORA_TARGETS[targets], init_lora_weights=True))
        install_tma(dit, tma)
    text_encoder = text_tokenizer = None
    if conditioning == "t5" and "text_encoder" in parts:
        # A fresh tokenizer object at smoke (path null): padding_side is set on it, not on the MLLM's.
        own = None if m["text_encoder"].get("path") else load_tokenizer(m["tokenizer"])
        seeded("text_encoder")
        text_encoder, text_tokenizer = build_text_encoder(m["text_encoder"], own, dtype=dtype)
        if dit is not None and text_encoder.config.d_model != dit.config.text_dim:
            raise ValueError(f"model.text_encoder: hidden size {text_encoder.config.d_model} but the DiT's text_dim "
                             f"is {dit.config.text_dim} (expected them equal: its last hidden state is the context)")
    # New modules (projections, connector) are created in float32; they take the config's dtype like the rest.
    for part in (mllm.vision_proj, mllm.vae_proj) + ((connector,) if connector is not None else ()):
        part.to(dtype=dtype)
    model = UniVid(mllm, connector, dit, vae, text_encoder)
    model.to(device=device)
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
    """Load a partial checkpoint (what a stage trained). Keys of parts this job did not build (e.g. `dit.*` in an
    understanding job) are skipped; every other key must name a parameter of the model."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found (expected a .safetensors written by `univid train`)")
    tensors = load_file(str(path))
    absent = {name for name in PARTS if getattr(model, name, ...) is None}  # parts this job did not build
    tensors = {k: v for k, v in tensors.items() if k.split(".", 1)[0] not in absent}
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise KeyError(f"{path}: {len(unknown)} tensors match no model parameter, e.g. {unknown[0]!r} "
                       f"(expected a checkpoint of this model config)")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(params[name].dtype))
    return sorted(tensors)
