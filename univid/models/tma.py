"""Temperature Modality Alignment (paper Sec. 2.3, Eq. 2-5) as a diffusers attention processor.

alpha multiplies the pre-softmax cross-attention scores of text-derived keys (alpha_txt) and image-derived keys
(alpha_img). Padding keys carry no token and keep scale 1: Wan's UMT5 context (`model.conditioning: t5`) is the text's
hidden states zero-padded to `max_text_tokens`, and stock Wan attends to those padding keys too (no mask), so TMA
scales only the real text keys (`token_is_pad` marks the rest). Scaling the logit q.k_j by alpha_j equals scaling key j
by alpha_j, so the processor folds alpha into K after norm_k (one [B, M, 1] gain per step and masks, cached), or, when
every key has the same alpha (text-only context without padding, or alpha_txt == alpha_img), into SDPA's `scale`
argument: one SDPA call, no materialised score matrix, the same cost as diffusers' WanAttnProcessor (and with
alpha = 1 the very same call).

Progress u is shared state advanced once per denoising step by the sampler (never per forward call), so the
conditional and unconditional CFG branches see the same alpha. Training draws a noise level per sample, so the trainer
sets one u per sample (`set_samples`); alpha is then a per-sample, per-key gain on K.

Token provenance (which context tokens are image-derived, which are padding) is a property of each CFG branch's context:
with a reference image the conditional and negative contexts can split differently after the connector's length
adaptation, and a UMT5 prompt and its negative have different lengths. The sampler registers both contexts with their
masks (`TMAState.branch_contexts`); a forward pre-hook on the DiT picks the masks of the context it is called with.
Callers that drive the DiT directly (training) set `token_is_image` and `token_is_pad` themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import _get_qkv_projections

from univid.models.tma_schedule import SCHEDULES, alpha_img, alpha_txt, progress  # noqa: F401  (re-exported)


@dataclass
class TMAState:
    """Shared by every cross-attention processor of one DiT. `token_is_image` marks image-derived context tokens,
    `token_is_pad` padding positions (alpha 1); every other key is a text token (alpha_txt)."""

    schedule: str = "none"
    lambda_txt: float = 0.3
    lambda_img: float = 0.3
    txt_end: float = 0.4
    img_start: float = 0.6
    progress_definition: str = "step_fraction"
    u: float = 0.0
    token_is_image: torch.Tensor | None = None  # [B, M] bool, or None for text-only context
    token_is_pad: torch.Tensor | None = None  # [B, M] bool, or None when every key is a token
    probe: list = field(default_factory=list)  # (u, alpha_txt, alpha_img) per processor call, when recording
    record: bool = False
    # (context tensor, token_is_image or None, token_is_pad or None) per CFG branch, set by the sampler for one
    # sampling run; empty otherwise
    branch_contexts: list = field(default_factory=list)
    _gains: list = field(default_factory=list, repr=False)  # (masks, alphas, dtype, device, gain) for this step
    u_batch: list | None = None  # one u per sample (training); None: the single `u` of the sampler's step

    @classmethod
    def from_config(cls, tma_cfg: dict) -> "TMAState":
        if tma_cfg["schedule"] not in SCHEDULES:
            raise ValueError(f"tma.schedule {tma_cfg['schedule']!r}: expected one of {', '.join(SCHEDULES)}")
        return cls(schedule=tma_cfg["schedule"], lambda_txt=tma_cfg["lambda_txt"], lambda_img=tma_cfg["lambda_img"],
                   txt_end=tma_cfg["txt_end"], img_start=tma_cfg["img_start"], progress_definition=tma_cfg["progress"])

    def set_step(self, step_index: int, num_steps: int, sigma: float) -> None:
        self.u = progress(step_index, num_steps, sigma, self.progress_definition)
        self.u_batch = None
        self._gains.clear()

    def set_samples(self, step_indices: list[int], num_steps: int, sigmas: list[float]) -> None:
        """One progress per sample of a training batch (sample b at step_indices[b] of num_steps, noise sigmas[b])."""
        self.u_batch = [progress(i, num_steps, s, self.progress_definition) for i, s in zip(step_indices, sigmas)]
        self._gains.clear()

    def sample_gain(self, mask: torch.Tensor | None, pad: torch.Tensor | None, batch: int, keys: int,
                    dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
        """[B, M, 1] per-sample, per-key alpha for a training batch (1 on padding keys); None when every alpha is 1."""
        if len(self.u_batch) != batch:
            raise RuntimeError(f"TMA: {len(self.u_batch)} per-sample progresses for a batch of {batch} "
                               f"(expected set_samples with one step per sample)")
        a_txt = torch.tensor([alpha_txt(u, self.schedule, self.lambda_txt, self.txt_end) for u in self.u_batch])
        a_img = torch.tensor([alpha_img(u, self.schedule, self.lambda_img, self.img_start) for u in self.u_batch])
        if self.record:
            self.probe.extend(zip(self.u_batch, a_txt.tolist(), a_img.tolist()))
        if bool((a_txt == 1).all()) and (mask is None or bool((a_img == 1).all())):
            return None
        gain = a_txt[:, None].expand(batch, keys)
        if mask is not None:
            gain = torch.where(mask.cpu(), a_img[:, None], gain)
        if pad is not None:
            gain = torch.where(pad.cpu(), 1.0, gain)
        return gain.to(device=device, dtype=dtype).unsqueeze(-1)

    def key_gain(self, mask: torch.Tensor | None, pad: torch.Tensor | None, keys: int, dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
        """[B, M, 1] per-key alpha (alpha_txt, alpha_img on `mask`, 1 on `pad`), built once per step, masks, dtype
        and device."""
        alphas = self.alphas()
        for m, p, a, dt, dev, gain in self._gains:
            if m is mask and p is pad and a == alphas and dt == dtype and dev == device:
                return gain
        like = mask if mask is not None else pad
        gain = torch.full(like.shape[:1] + (keys,), alphas[0], device=device)
        if mask is not None:
            gain = torch.where(mask.to(device), alphas[1], gain)
        if pad is not None:
            gain = torch.where(pad.to(device), 1.0, gain)
        gain = gain.to(dtype).unsqueeze(-1)
        self._gains.append((mask, pad, alphas, dtype, device, gain))
        return gain

    def select_branch(self, context: torch.Tensor) -> None:
        """Point `token_is_image` and `token_is_pad` at the masks registered for this exact context tensor (no-op
        when none registered)."""
        if not self.branch_contexts:
            return
        for registered, mask, pad in self.branch_contexts:
            if context is registered:
                self.token_is_image, self.token_is_pad = mask, pad
                return
        raise RuntimeError("TMA: the DiT was called with a context the sampler did not register (expected one of the "
                           "conditional / negative contexts of the current sampling run)")

    def alphas(self) -> tuple[float, float]:
        return (alpha_txt(self.u, self.schedule, self.lambda_txt, self.txt_end),
                alpha_img(self.u, self.schedule, self.lambda_img, self.img_start))


class TMAWanAttnProcessor:
    """Cross-attention processor for diffusers' WanAttention (attn2) with TMA folded into K."""

    _attention_backend = None
    _parallel_config = None

    def __init__(self, state: TMAState):
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        if attn.add_k_proj is not None:
            raise ValueError("TMAWanAttnProcessor: Wan 2.1 I2V image cross-attention (add_k_proj) is not supported; "
                             "Wan 2.2 TI2V-5B has none")
        query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        query = attn.norm_q(query)
        key = attn.norm_k(key)

        scale = None  # SDPA's default 1/sqrt(head_dim): the stock processor exactly
        if self.state.u_batch is not None:  # training: one progress per sample
            gain = self.state.sample_gain(self.state.token_is_image, self.state.token_is_pad, key.shape[0],
                                          key.shape[1], key.dtype, key.device)
            if gain is not None:
                key = key * gain
            a_txt = a_img = 1.0
        else:
            a_txt, a_img = self.state.alphas()
            if self.state.record:
                self.state.probe.append((self.state.u, a_txt, a_img))
        if a_txt != 1.0 or a_img != 1.0:
            mask, pad = self.state.token_is_image, self.state.token_is_pad
            if mask is not None and a_txt == a_img:
                mask = None  # text and image keys share one alpha
            if mask is None and pad is None:
                # One gain for every key: a temperature, folded into SDPA's scale (no extra op at all).
                scale = a_txt / math.sqrt(key.shape[-1] // attn.heads)
            else:
                key = key * self.state.key_gain(mask, pad, key.shape[1], key.dtype, key.device)  # [B, M, 1]

        query = query.unflatten(2, (attn.heads, -1))
        key = key.unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        hidden_states = dispatch_attention_fn(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                              is_causal=False, scale=scale, backend=self._attention_backend,
                                              parallel_config=None)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        hidden_states = attn.to_out[0](hidden_states)
        return attn.to_out[1](hidden_states)


def _context_arg(args: tuple, kwargs: dict):
    # WanTransformer3DModel.forward(hidden_states, timestep, encoder_hidden_states, ...)
    return kwargs["encoder_hidden_states"] if "encoder_hidden_states" in kwargs else args[2]


def install_tma(transformer, state: TMAState) -> None:
    """Put the TMA processor on every cross-attention (attn2) of a WanTransformer3DModel; self-attention keeps its own.

    Also hooks the transformer's forward (first, before any hook that rewrites the context) to select the calling
    branch's token provenance. Installing again replaces the previous installation."""
    processors = {}
    for name, proc in transformer.attn_processors.items():
        processors[name] = TMAWanAttnProcessor(state) if ".attn2." in name else proc
    transformer.set_attn_processor(processors)

    old = getattr(transformer, "_univid_tma_hook", None)
    if old is not None:
        old.remove()

    def select_branch(module, args, kwargs):
        state.select_branch(_context_arg(args, kwargs))

    transformer._univid_tma_hook = transformer.register_forward_pre_hook(select_branch, prepend=True, with_kwargs=True)
