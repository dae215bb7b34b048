"""TMA's schedules (paper Eq. 3 and Eq. 5) and the progress u, as plain functions of floats.

Kept free of torch and diffusers so that plots and reports can draw alpha(u) without importing the model stack;
univid.models.tma re-exports them.
"""

from __future__ import annotations

import math

SCHEDULES = ("none", "constant", "step", "linear", "cosine")


def alpha_txt(u: float, schedule: str, lam: float, end: float = 0.4) -> float:
    """Text gain. cosine is Eq. 3: 1 + lam/2 (1 + cos(pi u / end)) on [0, end], else 1."""
    if schedule == "none":
        return 1.0
    if schedule == "constant":
        return 1.0 + lam
    if u > end:
        return 1.0
    if schedule == "step":
        return 1.0 + lam
    if schedule == "linear":
        return 1.0 + lam * (1.0 - u / end)
    if schedule == "cosine":
        return 1.0 + lam / 2.0 * (1.0 + math.cos(math.pi * u / end))
    raise ValueError(f"tma.schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")


def alpha_img(u: float, schedule: str, lam: float, start: float = 0.6) -> float:
    """Reference-image gain. cosine is Eq. 5: 1 on [0, start], then 1 + lam/2 (1 - cos(pi (u - start)/(1 - start)))."""
    if schedule == "none":
        return 1.0
    if schedule == "constant":
        return 1.0 + lam
    if u <= start:
        return 1.0
    span = 1.0 - start
    if schedule == "step":
        return 1.0 + lam
    if schedule == "linear":
        return 1.0 + lam * (u - start) / span
    if schedule == "cosine":
        return 1.0 + lam / 2.0 * (1.0 - math.cos(math.pi * (u - start) / span))
    raise ValueError(f"tma.schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")


def progress(step_index: int, num_steps: int, sigma: float, definition: str) -> float:
    """u in [0, 1]: 'step_fraction' = i/N (the paper's wording), 'one_minus_sigma' = 1 - sigma_i."""
    if definition == "step_fraction":
        return step_index / num_steps
    if definition == "one_minus_sigma":
        return 1.0 - float(sigma)
    raise ValueError(f"tma.progress {definition!r}: expected 'step_fraction' or 'one_minus_sigma'")
