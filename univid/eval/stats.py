"""Bootstrap statistics for per-question scores, clustered by video (questions on one video are not independent).

Each resample draws videos with replacement and keeps all of a drawn video's questions; the statistic is the mean
over the resampled questions (ratio of sums), so accuracy (1 = yes, 0 = no, failures are 0) and the judge score use
the same code. Percentile intervals; seeded numpy Generator, vectorised over resamples.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np


def _clusters(values: Sequence[float], clusters: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"bootstrap: {len(v)} values (expected a non-empty 1-D sequence)")
    if len(clusters) != len(v):
        raise ValueError(f"bootstrap: {len(clusters)} cluster labels for {len(v)} values (expected one per value)")
    _, idx = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    sums = np.bincount(idx, weights=v)
    counts = np.bincount(idx).astype(np.float64)
    return sums, counts


def _resample_counts(n_clusters: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """[samples, n_clusters] how often each cluster is drawn in each resample."""
    draws = rng.integers(0, n_clusters, size=(samples, n_clusters))
    out = np.zeros((samples, n_clusters))
    np.add.at(out, (np.arange(samples)[:, None], draws), 1.0)
    return out


def bootstrap_ci(values: Sequence[float], clusters: Sequence[Hashable], *, samples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> dict:
    """{"mean", "low", "high", "confidence", "samples", "clusters", "n"} for the mean of values."""
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap confidence {confidence!r} (expected a number in (0, 1))")
    sums, counts = _clusters(values, clusters)
    w = _resample_counts(len(sums), samples, np.random.default_rng(seed))
    stats = (w @ sums) / (w @ counts)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return {"mean": float(sums.sum() / counts.sum()), "low": float(low), "high": float(high),
            "confidence": confidence, "samples": samples, "clusters": int(len(sums)), "n": int(counts.sum())}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable], *, samples: int = 1000,
                     confidence: float = 0.95, seed: int = 0) -> dict:
    """Variant a vs b on the same questions (same order): CI of mean(a) - mean(b) from clustered resamples of the
    questions, and a two-sided p-value, 2 * min(P(diff* <= 0), P(diff* >= 0)), capped at 1."""
    if len(a) != len(b):
        raise ValueError(f"paired bootstrap: {len(a)} vs {len(b)} scores (expected the same questions in both)")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    sums, counts = _clusters(diff, clusters)
    w = _resample_counts(len(sums), samples, np.random.default_rng(seed))
    stats = (w @ sums) / (w @ counts)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    p = min(1.0, 2 * min(float(np.mean(stats <= 0)), float(np.mean(stats >= 0))))
    return {"diff": float(sums.sum() / counts.sum()), "low": float(low), "high": float(high), "p_value": p,
            "confidence": confidence, "samples": samples, "clusters": int(len(sums)), "n": int(counts.sum())}


def qa_intervals(verdicts: Sequence[dict], *, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Clustered CIs for a judged run: accuracy (percent, yes = 100) and score, clustered by each verdict's video."""
    videos = [v["video"] for v in verdicts]
    acc = bootstrap_ci([100.0 * (v["pred"] == "yes") for v in verdicts], videos, samples=samples,
                       confidence=confidence, seed=seed)
    score = bootstrap_ci([float(v["score"]) for v in verdicts], videos, samples=samples, confidence=confidence,
                         seed=seed)
    return {"accuracy": acc, "score": score}
