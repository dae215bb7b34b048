"""Clustered bootstrap: coverage on a planted sample, clustering widens the interval, paired test."""

import numpy as np
import pytest

from univid.eval.stats import bootstrap_ci, paired_bootstrap, qa_intervals


def planted(rng, n_videos=40, per_video=5, mean=0.6, video_sd=0.15):
    """Questions clustered by video: each video has its own success rate around `mean`."""
    rates = np.clip(rng.normal(mean, video_sd, n_videos), 0, 1)
    values = (rng.random((n_videos, per_video)) < rates[:, None]).astype(float).ravel()
    return values, np.repeat(np.arange(n_videos), per_video)


def test_ci_covers_true_mean_at_nominal_rate():
    rng = np.random.default_rng(1234)
    true = 0.6  # E[clip(N(0.6, 0.15))] = 0.6 up to a negligible clip effect
    hits, reps = 0, 300
    for r in range(reps):
        values, videos = planted(rng)
        ci = bootstrap_ci(values, videos, samples=400, seed=r)
        hits += ci["low"] <= true <= ci["high"]
    rate = hits / reps
    assert 0.89 <= rate <= 0.99, rate  # nominal 0.95; percentile bootstrap with 40 clusters runs a bit narrow


def test_clustering_matters_and_ci_fields():
    rng = np.random.default_rng(0)
    values, videos = planted(rng, video_sd=0.4)
    clustered = bootstrap_ci(values, videos, samples=1000)
    naive = bootstrap_ci(values, np.arange(len(values)), samples=1000)
    assert clustered["mean"] == pytest.approx(values.mean())
    assert (clustered["high"] - clustered["low"]) > 1.2 * (naive["high"] - naive["low"])
    assert clustered["clusters"] == 40 and clustered["n"] == 200
    assert bootstrap_ci(values, videos, seed=3) == bootstrap_ci(values, videos, seed=3)
    with pytest.raises(ValueError, match="cluster labels"):
        bootstrap_ci([1.0, 0.0], ["a"])


def test_paired_bootstrap_detects_real_difference_only():
    rng = np.random.default_rng(5)
    base, videos = planted(rng, n_videos=60)
    better = np.where(rng.random(len(base)) < 0.3, 1.0, base)  # fixes ~30% of the wrong answers
    res = paired_bootstrap(better, base, videos, samples=2000)
    assert res["diff"] > 0 and res["low"] > 0 and res["p_value"] < 0.01
    noise = np.where(rng.random(len(base)) < 0.5, base, base[::-1])
    same = paired_bootstrap(base, base, videos)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    assert paired_bootstrap(noise, noise, videos)["p_value"] == 1.0


def test_qa_intervals_from_verdicts():
    verdicts = [{"video": f"v{i % 4}", "pred": "yes" if i % 3 else "no", "score": i % 6} for i in range(24)]
    out = qa_intervals(verdicts, samples=200)
    assert out["accuracy"]["mean"] == pytest.approx(100 * 16 / 24)
    assert out["score"]["low"] <= out["score"]["mean"] <= out["score"]["high"]
