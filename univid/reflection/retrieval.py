"""The retrieval policy of Pyramid Reflection over cached, L2-normalised embeddings (Appendix A.6).

Frames are pool positions 0..N-1; positions increase with time, so a sorted list is a temporally ordered working set.
- sim(i, s) = <v_i, phi(s)> (Eq. 6);
- expand (Eq. 8): add the m = K_t - |S_sel| unseen frames of highest sim;
- shrink (Eq. 9): Maximal Marginal Relevance down to K_t, lambda * sim(i, s) - (1 - lambda) * max_j sim(i, j).
  Eq. 9 is an argmax over subsets: solved exactly by enumeration when C(n, K_t) <= EXACT_MMR_MAX_SUBSETS, else
  searched by greedy MMR then single swaps (C(64, 32) ~ 1.8e18 subsets); the method used is returned.
Ties break towards the earlier frame. Every function returns positions in temporal order.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

EXACT_MMR_MAX_SUBSETS = 20000
MMR_EXACT, MMR_GREEDY_SWAP = "mmr-exact", "mmr-greedy-swap"


def similarities(embeds, query) -> np.ndarray:
    """Eq. 6: cosine similarity of each (L2-normalised) frame embedding to the (L2-normalised) search text."""
    e = np.asarray(embeds, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64).reshape(-1)
    return e @ q


def _rank(scores: np.ndarray, candidates: list[int]) -> list[int]:
    return sorted(candidates, key=lambda i: (-scores[i], i))


def expand(sim: np.ndarray, selected: list[int], target: int) -> list[int]:
    """Eq. 8: S_sel plus the top m = target - |S_sel| unseen frames by sim; temporal order."""
    chosen = set(selected)
    if len(chosen) != len(selected):
        raise ValueError(f"expand: duplicate frames in the working set {selected}")
    target = min(target, len(sim))
    m = target - len(chosen)
    if m <= 0:
        return sorted(chosen)
    unseen = [i for i in range(len(sim)) if i not in chosen]
    return sorted(chosen | set(_rank(sim, unseen)[:m]))


def mmr_objective(embeds, sim: np.ndarray, subset: list[int], lam: float = 0.5) -> float:
    """The set objective of Eq. 9: sum_i [lam*sim(i,s) - (1-lam)*max_{j in S, j != i} sim(i,j)] (max over {} = 0)."""
    e = np.asarray(embeds, dtype=np.float64)
    return _objective(e @ e.T, np.asarray(sim, dtype=np.float64), list(subset), lam)


def _objective(pair: np.ndarray, sim: np.ndarray, subset: list[int], lam: float) -> float:
    idx = np.asarray(subset)
    if len(idx) > 1:
        sub = pair[np.ix_(idx, idx)].copy()
        np.fill_diagonal(sub, -np.inf)
        redundancy = sub.max(axis=1).sum()
    else:
        redundancy = 0.0
    return float(lam * sim[idx].sum() - (1 - lam) * redundancy)


def mmr_shrink(embeds, sim: np.ndarray, selected: list[int], target: int, lam: float = 0.5,
               max_passes: int = 100) -> list[int]:
    """Eq. 9: the subset of `selected` of size `target` maximising the MMR set objective (see mmr_select)."""
    return mmr_select(embeds, sim, selected, target, lam, max_passes)[0]


def mmr_select(embeds, sim: np.ndarray, selected: list[int], target: int, lam: float = 0.5, max_passes: int = 100,
               max_subsets: int = EXACT_MMR_MAX_SUBSETS) -> tuple[list[int], str]:
    """(subset in temporal order, method). Exact (every subset scored; ties go to the lexicographically first
    subset) when C(|selected|, target) <= max_subsets; otherwise greedy MMR (each step takes argmax of
    lam*sim(i,s) - (1-lam)*max_{j chosen} sim(i,j)) then best-improvement single swaps on the Eq. 9 objective until
    none improves it: never worse than greedy MMR, and swap-optimal."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"mmr lambda {lam}: expected a number in [0, 1]")
    selected = sorted(set(selected))
    if target >= len(selected):
        return selected, MMR_EXACT
    e = np.asarray(embeds, dtype=np.float64)
    sim = np.asarray(sim, dtype=np.float64)
    pair = e @ e.T
    if comb(len(selected), target) <= max_subsets:
        return _mmr_exact(pair, sim, selected, target, lam), MMR_EXACT
    return _mmr_greedy_swap(pair, sim, selected, target, lam, max_passes), MMR_GREEDY_SWAP


def _mmr_exact(pair: np.ndarray, sim: np.ndarray, selected: list[int], target: int, lam: float,
               chunk: int = 4096) -> list[int]:
    """Eq. 9 by enumeration, vectorised over chunks of subsets (combinations come in lexicographic order)."""
    if target == 1:  # max over the empty set is 0: the single most relevant frame
        return [min(selected, key=lambda i: (-sim[i], i))]
    sel = np.asarray(selected)
    sub_pair = pair[np.ix_(sel, sel)].copy()
    np.fill_diagonal(sub_pair, -np.inf)
    sub_sim = sim[sel]
    best_value, best = -np.inf, None
    it = combinations(range(len(sel)), target)
    while True:
        block = np.array([c for _, c in zip(range(chunk), it)], dtype=np.int64)
        if block.size == 0:
            break
        redundancy = sub_pair[block[:, :, None], block[:, None, :]].max(axis=2).sum(axis=1)
        values = lam * sub_sim[block].sum(axis=1) - (1 - lam) * redundancy
        k = int(np.argmax(values))  # first maximum: the lexicographically first subset among ties
        if values[k] > best_value:
            best_value, best = float(values[k]), block[k]
    return sorted(int(sel[i]) for i in best)


def _mmr_greedy_swap(pair: np.ndarray, sim: np.ndarray, selected: list[int], target: int, lam: float,
                     max_passes: int) -> list[int]:
    chosen: list[int] = []
    redundancy = np.full(len(sim), -np.inf)  # max similarity to the chosen set
    rest = list(selected)
    for _ in range(target):
        gains = {i: lam * sim[i] - (1 - lam) * (redundancy[i] if chosen else 0.0) for i in rest}
        best = min(rest, key=lambda i: (-gains[i], i))
        chosen.append(best)
        rest.remove(best)
        redundancy = np.maximum(redundancy, pair[:, best])
    chosen.sort()
    value = _objective(pair, sim, chosen, lam)
    for _ in range(max_passes):
        best_swap, best_value = None, value + 1e-12
        for a in range(len(chosen)):
            for b in rest:
                cand = chosen[:a] + chosen[a + 1:] + [b]
                v = _objective(pair, sim, cand, lam)
                if v > best_value:
                    best_swap, best_value = (a, b), v
        if best_swap is None:
            break
        a, b = best_swap
        rest.remove(b)
        rest.append(chosen[a])
        rest.sort()
        chosen = sorted(chosen[:a] + chosen[a + 1:] + [b])
        value = best_value
    return chosen


def uniform_positions(n_pool: int, k: int) -> list[int]:
    """k pool positions spread uniformly (segment centres), for seed frames and the w/o-Reflection ablation."""
    from univid.data.video import uniform_indices

    return uniform_indices(n_pool, k)
