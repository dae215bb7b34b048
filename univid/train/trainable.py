"""What each stage and phase trains: exact parameter-name sets, and the Stage III phase schedule.

The paper's terms, as modules of `univid.models.builder.UniVid` (names are checkpoint keys):

  Stage I "context projector" / "textual adapter" (A.3)  -> `connector.*`   (g_phi, Eq. 1: conv body + time modulation)
  Stage I "LoRA on the DiT cross-attention"              -> `dit.blocks.N.attn2.{to_q,to_k,to_v,to_out.0}.lora_{A,B}.*`
  Stage II/III "connector" (ViT tokens -> LLM space)     -> `mllm.vision_proj.*`
  "last n ViT blocks"                                    -> the last n layers of the ViT encoder (`mllm.vit...layers.i.*`)
  Stage III "adapter", whose input gains the VAE features -> `connector.*` + `mllm.vae_proj.*` (the MLLM -> DiT
                                                            conditioning path and its VAE-latent input branch)
  Stage II "the VAE blocks" (Sec. 3.2; `train.stage2.vae: trainable_blocks`, frozen by default as in A.3)
                                                         -> the VAE encoder's blocks (`vae.encoder.down_blocks.*`,
                                                            `vae.encoder.mid_block.*`, less the temporal
                                                            downsamplers a one-frame clip never runs): the VAE's part
                                                            on the understanding path (the decoder never sees a QA batch)

The DiT LoRA covers cross-attention, or self- and cross-attention with `train.stage1.lora_targets:
self_and_cross_attn` (Sec. 3.2's reading): `dit_lora` is every LoRA tensor the builder put on the DiT.

Stage III phases (Appendix A.3, fractions of the stage's steps in `train.stage3.phases`):
  a: last ViT blocks + connector train, adapter and DiT LoRA frozen (generation batches carry the reference frame,
     so generation gradients reach the ViT);
  b: ViT and connector frozen; the VAE features enter the adapter at a mixing ratio rising linearly to 1; adapter and
     DiT LoRA train (generation batches only: nothing on the understanding path trains);
  c: all of the above co-train, understanding and generation batches alternating.

With `model.conditioning: t5` (Table 3 "w/o MLLM") the DiT is conditioned by Wan's frozen UMT5: the MLLM -> DiT
adapter (`connector.*`, `mllm.vae_proj.*`) is off the generation path and trains in no stage; the DiT LoRA trains as
usual (Stage I: LoRA only; Stage III b: LoRA only).
"""

from __future__ import annotations

from torch import nn

from univid.models.builder import Components

PHASES = ("a", "b", "c")
PHASE_PARTS = {"a": ("vit_blocks", "vision_proj"),
               "b": ("connector", "vae_proj", "dit_lora"),
               "c": ("vit_blocks", "vision_proj", "connector", "vae_proj", "dit_lora")}
STAGE_PARTS = {1: ("connector", "dit_lora"), 2: ("vit_blocks", "vision_proj"), 3: PHASE_PARTS["c"]}
MLLM_CONDITIONING_PARTS = ("connector", "vae_proj")  # exist only on the MLLM -> DiT conditioning path
STAGE2_VAE = ("frozen", "trainable_blocks")  # train.stage2.vae


def stage2_trains_vae(cfg: dict) -> bool:
    """Sec. 3.2's reading of stage II ("... and the VAE blocks"); A.3's (frozen VAE) is the default."""
    choice = cfg["train"]["stage2"].get("vae", "frozen")
    if choice not in STAGE2_VAE:
        raise ValueError(f"train.stage2.vae {choice!r}: expected one of {', '.join(STAGE2_VAE)}")
    return choice == "trainable_blocks"


def sft_encoders(cfg: dict, stage: int) -> str:
    """What the SFT feeds of each frame: ViT tokens, plus VAE tokens where the VAE blocks train (they need a path
    to the loss)."""
    return "vit+vae" if stage == 2 and stage2_trains_vae(cfg) else "vit"


def vit_layers(vit: nn.Module) -> nn.ModuleList:
    """The ViT's encoder blocks (SigLIP: `vision_model.encoder.layers`, flattened to `encoder.layers` in newer
    transformers)."""
    body = getattr(vit, "vision_model", vit)
    layers = getattr(getattr(body, "encoder", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"model.vit: {type(vit).__name__} has no encoder.layers (expected a SigLIP vision model)")
    return layers


def _names_of(model: nn.Module, modules: list[nn.Module]) -> list[str]:
    wanted = {id(p) for m in modules for p in m.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in wanted]


def part_names(comp: Components, part: str, vit_blocks: int) -> list[str]:
    """Parameter names of one trainable part (see the module docstring), in model order."""
    model = comp.model
    if part == "connector":
        return _names_of(model, [model.connector])
    if part == "dit_lora":
        return [n for n, _ in model.named_parameters() if n.startswith("dit.") and ".lora_" in n]
    if part == "vision_proj":
        return _names_of(model, [model.mllm.vision_proj])
    if part == "vae_proj":
        return _names_of(model, [model.mllm.vae_proj])
    if part == "vae_blocks":
        # Frames enter the VAE as one-frame clips, which the temporal downsamplers (time_conv) never see: they would
        # be trainable without a gradient, so they are not in the set.
        names = _names_of(model, [model.vae.encoder.down_blocks, model.vae.encoder.mid_block])
        return [n for n in names if ".time_conv." not in n]
    if part == "vit_blocks":
        layers = list(vit_layers(model.mllm.vit))
        layer = model.mllm.vision_feature_layer  # a pretrained projector may read an earlier block's output
        if layer is not None:  # hidden_states[k] is the output of the first k blocks (0: the embeddings)
            layers = layers[:layer % (len(layers) + 1)]
        if vit_blocks > len(layers):
            raise ValueError(f"trainable_vit_blocks {vit_blocks}: the ViT has only {len(layers)} blocks up to the "
                             f"features the projector reads")
        return _names_of(model, layers[len(layers) - vit_blocks:])
    raise ValueError(f"trainable part {part!r}: expected one of connector, dit_lora, vision_proj, vae_proj, vit_blocks, "
                     f"vae_blocks")


def trainable_names(comp: Components, cfg: dict, stage: int, phase: str | None = None) -> list[str]:
    """The exact names a stage (Stage III: a phase; no phase = the union over its phases) trains, in model order."""
    scfg = cfg["train"][f"stage{stage}"]
    parts = PHASE_PARTS[phase] if phase else STAGE_PARTS[stage]
    if stage == 2 and stage2_trains_vae(cfg):
        parts = parts + ("vae_blocks",)
    if comp.conditioning == "t5":
        parts = tuple(p for p in parts if p not in MLLM_CONDITIONING_PARTS)
    chosen = {n for part in parts for n in part_names(comp, part, scfg.get("trainable_vit_blocks", 0))}
    return [n for n, _ in comp.model.named_parameters() if n in chosen]


def phase_schedule(stage: int, total_steps: int, scfg: dict) -> list[tuple[str, int, int]]:
    """[(phase, first step, end step)] covering range(total_steps); stages I and II are one phase named '-'."""
    if stage != 3:
        return [("-", 0, total_steps)]
    fractions = scfg["phases"]
    total = sum(fractions[p] for p in PHASES)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"train.stage3.phases: fractions sum to {total:g} (expected a, b, c summing to 1)")
    out, start, acc = [], 0, 0.0
    for p in PHASES:
        acc += fractions[p]
        end = total_steps if p == PHASES[-1] else round(acc * total_steps)
        out.append((p, start, end))
        start = end
    return out


def phase_at(schedule: list[tuple[str, int, int]], step: int) -> tuple[str, int, int]:
    for entry in schedule:
        if entry[1] <= step < entry[2]:
            return entry
    raise ValueError(f"step {step} is outside the schedule {schedule}")


def batch_kind(stage: int, phase: str, step: int) -> str:
    """'gen' or 'und' for one optimizer step. Stage III phases a and c alternate (even: generation)."""
    if stage == 1 or phase == "b":
        return "gen"
    if stage == 2:
        return "und"
    return "gen" if step % 2 == 0 else "und"


def vae_mix(phase: str, step: int, start: int, end: int) -> float:
    """Gain of the VAE-feature branch of the adapter: off in phase a, rising linearly to 1 over phase b, 1 after."""
    if phase == "a":
        return 0.0
    if phase == "b":
        return (step - start + 1) / (end - start)
    return 1.0
