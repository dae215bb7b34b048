"""The connector g_phi (paper Eq. 1): MLLM hidden states Z_u -> the DiT's cross-attention context.

`conv` (the paper's "convolutional layers", default) and `mlp` (the public code's choice) share the dynamic
sequence-length adaptation: each sample's valid tokens are linearly resampled to `num_tokens` context tokens, and
the text/image provenance of every context token is carried along (nearest source token) for TMA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class Connector(nn.Module):
    def __init__(self, kind: str, in_dim: int, out_dim: int, num_tokens: int, kernel_size: int = 3,
                 num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if kind == "conv":
            self.body = ConvConnector(in_dim, out_dim, kernel_size, num_layers, dropout)
        elif kind == "mlp":
            self.body = MLPConnector(in_dim, out_dim, dropout)
        else:
            raise ValueError(f"model.connector.kind {kind!r}: expected 'conv' or 'mlp'")
        self.num_tokens = num_tokens

    def forward(self, z: torch.Tensor, mask: torch.Tensor, is_image: torch.Tensor):
        z = z * mask.unsqueeze(-1).to(z.dtype)  # padded positions must not leak into the conv's receptive field
        return resample_tokens(self.body(z), mask, is_image, self.num_tokens)
