"""The connector g_phi (paper Eq. 1): MLLM hidden states Z_u -> the DiT's cross-attention context.

`conv` (the paper's "convolutional layers", default) and `mlp` (the public code's choice) share the dynamic
sequence-length adaptation: each sample's valid tokens are linearly resampled to `num_tokens` context tokens, and
the text/image provenance of every context token is carried along (nearest source token) for TMA.

Time indexing (Eq. 1, C_t = g_phi(Z_u, t)): the body maps Z_u to C once per prompt; a time modulation
C_t = C * (1 + scale(t)) + shift(t) (sinusoidal embedding of the DiT timestep -> MLP, last layer zero-initialised so an
untrained modulation is exactly the identity) is applied on every DiT call at that call's timestep. `attach(dit)` puts
it in a forward pre-hook of the DiT, so the sampler (per denoising step, both CFG branches) and the trainer (per batch,
at the sampled sigma) condition on the same t the DiT itself is given, with no extra state to keep in step.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

TIME_FREQ_DIM = 256  # as the Wan DiT's own timestep embedding


class ConvConnector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for i in range(num_layers):
            layers.append(nn.Conv1d(dim, out_dim, kernel_size, padding=kernel_size // 2))
            if i < num_layers - 1:
                layers += [nn.GELU(), nn.Dropout(dropout)]
            dim = out_dim
        self.net = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, in] -> [B, L, out]
        return self.norm(self.net(x.transpose(1, 2)).transpose(1, 2))


class MLPConnector(nn.Module):
    """Linear -> LayerNorm -> GELU -> Dropout -> Linear -> LayerNorm (the public UniVid code's connector)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1):
        super().__init__()
        hidden = 2 * out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, out_dim), nn.LayerNorm(out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def resample_tokens(x: torch.Tensor, mask: torch.Tensor, is_image: torch.Tensor, num_tokens: int):
    """Resample each sample's valid tokens (mask) to exactly num_tokens; return (context, token_is_image)."""
    out, types = [], []
    for xb, mb, tb in zip(x, mask.bool(), is_image.bool()):
        valid = xb[mb]  # [L_b, D]
        if valid.shape[0] == 0:
            raise ValueError("connector: a sample has no valid tokens (expected a non-empty prompt)")
        seq = valid.T.unsqueeze(0)  # [1, D, L_b]
        out.append(F.interpolate(seq, size=num_tokens, mode="linear", align_corners=True)[0].T)
        t = tb[mb].float().view(1, 1, -1)
        types.append(F.interpolate(t, size=num_tokens, mode="nearest")[0, 0] > 0.5)
    return torch.stack(out), torch.stack(types)


class TimeModulation(nn.Module):
    """FiLM of the context by the diffusion time: C * (1 + scale(t)) + shift(t), identity at initialisation."""

    def __init__(self, dim: int, freq_dim: int = TIME_FREQ_DIM):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, 2 * dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, context: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """context [B, M, d]; timestep [B] or [1] on the 0..1000 scale the DiT receives."""
        emb = get_timestep_embedding(timestep.float().reshape(-1), self.freq_dim, flip_sin_to_cos=True,
                                     downscale_freq_shift=0)
        scale, shift = self.mlp(emb.to(self.mlp[0].weight.dtype)).unsqueeze(1).chunk(2, dim=-1)
        return context * (1 + scale.to(context.dtype)) + shift.to(context.dtype)


def step_time(timestep: torch.Tensor) -> torch.Tensor:
    """The DiT's timestep argument -> one t per sample. Wan 2.2 TI2V passes per-token timesteps [B, L] with t = 0 on
    the clean reference-frame tokens; the sample's diffusion time is that of its noisy tokens, the maximum."""
    t = torch.as_tensor(timestep)
    if t.ndim == 2:
        return t.amax(dim=1)
    return t.reshape(-1)


class Connector(nn.Module):
    def __init__(self, kind: str, in_dim: int, out_dim: int, num_tokens: int, kernel_size: int = 3,
                 num_layers: int = 2, dropout: float = 0.0, time_conditioning: bool = True):
        super().__init__()
        if kind == "conv":
            self.body = ConvConnector(in_dim, out_dim, kernel_size, num_layers, dropout)
        elif kind == "mlp":
            self.body = MLPConnector(in_dim, out_dim, dropout)
        else:
            raise ValueError(f"model.connector.kind {kind!r}: expected 'conv' or 'mlp'")
        self.num_tokens = num_tokens
        self.time = TimeModulation(out_dim) if time_conditioning else None
        self._hook = None
        self._attached_to = None  # weakref to the DiT (a plain Module attribute would register it as a submodule)

    def forward(self, z: torch.Tensor, mask: torch.Tensor, is_image: torch.Tensor):
        """Z_u -> (C, token_is_image): the time-independent part of g_phi, computed once per prompt."""
        z = z * mask.unsqueeze(-1).to(z.dtype)  # padded positions must not leak into the conv's receptive field
        return resample_tokens(self.body(z), mask, is_image, self.num_tokens)

    def at_time(self, context: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """C_t from C and the DiT's timestep argument ([B], or per-token [B, L])."""
        if self.time is None:
            return context
        return self.time(context, step_time(timestep).to(context.device))

    def attach(self, dit: nn.Module) -> None:
        """Apply `at_time` to the context of every forward call of `dit` (idempotent)."""
        if self.time is None or (self._attached_to is not None and self._attached_to() is dit):
            return
        if self._hook is not None:
            self._hook.remove()

        def modulate(module, args, kwargs):
            args, kwargs = list(args), dict(kwargs)
            timestep = kwargs["timestep"] if "timestep" in kwargs else args[1]
            if "encoder_hidden_states" in kwargs:
                kwargs["encoder_hidden_states"] = self.at_time(kwargs["encoder_hidden_states"], timestep)
            else:
                args[2] = self.at_time(args[2], timestep)
            return tuple(args), kwargs

        self._hook = dit.register_forward_pre_hook(modulate, with_kwargs=True)
        self._attached_to = weakref.ref(dit)
