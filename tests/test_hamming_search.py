"""The exact nearest-photo search: the pigeonhole search against brute force on clustered and
uniform hashes, with exact duplicates, ties and crowded buckets."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from filters.image import BestMatches, best_matches, hamming_pairs
from filters.image.search import _distinct, _plan_block, _plan_search, _search_tasks

U64 = np.uint64


def near_copies(
    rng: np.random.Generator, centres: np.ndarray, pick: np.ndarray, p: float
) -> np.ndarray:
    """``centres[pick]`` with every bit flipped with probability ``p``."""
    flips = np.packbits(rng.random((pick.size, 64)) < p, axis=1).view(">u8").reshape(-1)
    return centres[pick] ^ flips.astype(U64)


def clustered(
    rng: np.random.Generator, n: int, centres: int, p: float, dup: float = 0.0
) -> tuple[np.ndarray, ...]:
    """Queries and references near copies of the same ``centres`` photos (pHash and dHash
    drawn together), a ``dup`` share of each side an exact copy of another item."""
    cp, cd = rng.integers(0, 2**64, (2, centres), dtype=U64)
    out: list[np.ndarray] = []
    for _ in range(2):
        pick = rng.integers(0, centres, n)
        hp, hd = near_copies(rng, cp, pick, p), near_copies(rng, cd, pick, p)
        copies = rng.random(n) < dup
        src = rng.integers(0, n, int(copies.sum()))
        hp[copies], hd[copies] = hp[src], hd[src]
        out += [hp, hd]
    return tuple(out)


def rows(bm: BestMatches) -> list[tuple[int, ...]]:
    return list(zip(*(a.tolist() for a in bm), strict=True))


@pytest.mark.parametrize(
    ("centres", "p", "dup"),
    [(300, 0.05, 0.0), (30, 0.10, 0.0), (200, 0.03, 0.5), (4, 0.0, 0.0), (5, 0.01, 0.3)],
)
def test_best_matches_equals_brute_force_on_clustered_hashes(
    centres: int, p: float, dup: float
) -> None:
    rng = np.random.default_rng(centres)
    sets = clustered(rng, 2500, centres, p, dup)
    slow = best_matches(*sets, method="brute", tile=700)
    for workers in (1, 2):
        fast = best_matches(*sets, method="pigeonhole", workers=workers)
        assert rows(fast) == rows(slow), workers
    assert (slow.ref >= 0).mean() > 0.5
    # and with every pair below the cap (min_distance uncapped past the match band)
    wide: dict[str, Any] = {"max_distance": 34, "max_phash": 18, "min_cap": 40}
    assert rows(best_matches(*sets, **wide, method="pigeonhole")) == rows(
        best_matches(*sets, **wide, method="brute")
    )


def test_best_matches_equals_brute_force_on_uniform_hashes_with_planted_copies() -> None:
    rng = np.random.default_rng(8)
    qp, qd, rp, rd = rng.integers(0, 2**64, (4, 6000), dtype=U64)
    pick = rng.integers(0, 6000, 600)
    qp[:600], qd[:600] = near_copies(rng, rp, pick, 0.08), near_copies(rng, rd, pick, 0.08)
    fast = best_matches(qp, qd, rp, rd, method="pigeonhole")
    assert rows(fast) == rows(best_matches(qp, qd, rp, rd, method="brute"))
    assert (fast.ref[:600] >= 0).sum() > 400


def test_identical_references_the_lowest_index_wins() -> None:
    """Exact duplicates are searched once: the answer is still the lowest index of the
    nearest, on every path, and every query of a duplicated photo gets the same answer."""
    rng = np.random.default_rng(2)
    base_p, base_d = rng.integers(0, 2**64, (2, 50), dtype=U64)
    # references: each photo stored 3 to 40 times at scattered indices, plus a copy 1 bit away
    reps = rng.integers(3, 40, 50)
    rp, rd = np.repeat(base_p, reps), np.repeat(base_d, reps)
    perm = rng.permutation(rp.size)
    rp, rd = np.concatenate([rp[perm], base_p ^ U64(1)]), np.concatenate([rd[perm], base_d])
    qp, qd = np.repeat(base_p, 30), np.repeat(base_d, 30)
    qp[::7] ^= U64(0b11)  # some queries 2 bits away: the exact copies and the 1-bit copy tie
    slow = best_matches(qp, qd, rp, rd, method="brute")
    for method in ("auto", "pigeonhole"):
        assert rows(best_matches(qp, qd, rp, rd, method=method)) == rows(slow), method
    first = {
        int(v): int(np.flatnonzero((rp == v) & (rd == w))[0])
        for v, w in zip(base_p, base_d, strict=True)
    }
    exact = np.flatnonzero(qp == np.repeat(base_p, 30))
    assert all(int(slow.ref[i]) == first[int(qp[i])] for i in exact)


def test_distinct_keeps_first_indices_in_order() -> None:
    p = np.array([5, 3, 5, 5, 3, 9], U64)
    d = np.array([1, 2, 1, 7, 2, 0], U64)
    first, of = _distinct(p, d)
    assert first.tolist() == [0, 1, 3, 5]
    assert of.tolist() == [0, 1, 0, 2, 1, 3]
    assert np.array_equal(p[first][of], p) and np.array_equal(d[first][of], d)


@pytest.mark.parametrize("radius", [0, 3, 7, 14])
def test_the_search_reports_each_pair_once(radius: int) -> None:
    """Near copies meet in several key blocks; each pair is handed on by the first only."""
    rng = np.random.default_rng(radius)
    sets = clustered(rng, 1500, 40, 0.04, dup=0.2)
    q, r = sets[0], sets[2]
    blocks, cost = _plan_search(q, r, radius)
    assert blocks and cost < np.inf
    got: list[np.ndarray] = []
    lock = threading.Lock()

    def sink(qi: np.ndarray, ri: np.ndarray) -> None:
        with lock:
            got.append(qi.astype(np.int64) * r.size + ri)

    for task in _search_tasks(q, r, blocks, radius, 2, sink):
        task()
    pairs = np.sort(np.concatenate(got))
    assert np.unique(pairs).size == pairs.size  # no pair twice
    qi, ri = np.nonzero(np.bitwise_count(q[:, None] ^ r[None, :]) <= radius)
    assert np.array_equal(pairs, qi * r.size + ri)


def test_crowded_buckets_get_deeper_layers_and_stay_exact() -> None:
    """One photo repeated a thousand times with light edits, among uniform hashes: its buckets
    are far deeper than the rest, and the layered tables still find every pair."""
    rng = np.random.default_rng(4)
    uniform = rng.integers(0, 2**64, 3000, dtype=U64)
    crowd = near_copies(rng, uniform[:1], np.zeros(1000, np.intp), 0.01)
    q = np.concatenate([uniform[:1500], crowd[:500]])
    r = np.concatenate([uniform[1500:], crowd[500:]])
    blk = _plan_block(q, r, 0, 13, 2)
    assert len(blk.bounds_q) > 2 and len(blk.bounds_r) > 2
    d = np.bitwise_count(q[:, None] ^ r[None, :])
    for radius in (2, 9, 14):
        qi, ri, dist = hamming_pairs(q, r, radius=radius, method="pigeonhole")
        want_q, want_r = np.nonzero(d <= radius)
        assert np.array_equal(qi, want_q) and np.array_equal(ri, want_r), radius
        assert np.array_equal(dist, d[want_q, want_r])
