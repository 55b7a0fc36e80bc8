"""Exact Hamming search over 64-bit hashes: every pair within a radius (:func:`hamming_pairs`)
and each query's nearest reference under the image filter's criterion (:func:`best_matches`).
Both are multi-index (pigeonhole) searches with a cost model that falls back to brute force.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from filters.image.policy import MAX_PHASH_DISTANCE

if TYPE_CHECKING:
    pass
#: relative costs, measured with numpy: one compared table slot (XOR + popcount), one table
#: entry gathered, the fixed work of one step over two layers, one brute-force pair of
#: :func:`best_matches` (two hashes) and of :func:`hamming_pairs` (one hash)
_SLOT_COST = 1.0


_CALL_COST = 40_000.0


_GATHER_COST = 1.0


_BRUTE_COST = 1.0


_BRUTE_PAIR_COST = 0.5


#: below this brute-force cost, planning a pigeonhole search costs more than it can save
_PLAN_MIN = float(1 << 27)


#: depths tried for the first layer of a table (later layers double)
_FIRST_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


#: most slots compared in one step, and most table entries gathered for one step of masks
#: (they bound the scratch memory per thread)
_SLAB = 1 << 18


_GATHER = 1 << 20


#: about the most slots one task compares (a task is what a thread takes at a time)
_TASK_SLOTS = 1 << 23


#: table padding: a query pad and a reference pad are 64 bits apart, so pads never pair up
_PAD_Q = np.uint64(0x5555_5555_5555_5555)


_PAD_R = ~_PAD_Q


#: receives (query ids, ref ids) of pairs found in range; called from worker threads
_Sink = Callable[[np.ndarray, np.ndarray], None]


def _as_u64(a: np.ndarray | Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.uint64).reshape(-1))


def _run_tasks(tasks: Sequence[Callable[[], None]], workers: int) -> None:
    """Run independent tasks on ``workers`` threads (numpy releases the GIL in its loops)."""
    if workers <= 1 or len(tasks) < 2:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(workers) as pool:
        for fut in [pool.submit(task) for task in tasks]:
            fut.result()


@functools.lru_cache(maxsize=64)
def _flip_masks(width: int, tau: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``tau`` bits set (read-only)."""
    masks = [0]
    for k in range(1, min(tau, width) + 1):
        masks += [sum(1 << i for i in bits) for bits in itertools.combinations(range(width), k)]
    out = np.array(masks, np.intp)
    out.flags.writeable = False
    return out


def _block_plans(radius: int, large: bool) -> list[list[tuple[int, int, int]]]:
    """Candidate layouts ``[(shift, width, tau), ...]`` for finding every pair within
    ``radius``: the taus plus one sum to more than the radius."""
    if radius < 4:
        # radius + 1 blocks, one of which matches exactly
        return [[(16 * j, 16, 0) for j in range(radius + 1)]]
    layouts: list[tuple[int, ...]] = [(13, 13, 13, 13, 12)]
    if large:
        # at this size 16-bit buckets are full enough for the tables
        layouts.append((16, 16, 16, 16))
    plans = []
    for widths in layouts:
        k = len(widths)
        budget = radius - k + 1
        # the wider (more selective) blocks take the larger budgets
        taus = [min(w, budget // k + (j < budget % k)) for j, w in enumerate(widths)]
        shifts = np.cumsum((0, *widths[:-1])).tolist()
        plans.append(list(zip(shifts, widths, taus, strict=True)))
    return plans


class _Buckets(NamedTuple):
    """One side's items bucketed by one block's key."""

    keys: np.ndarray  # (n,) key of each item
    counts: np.ndarray  # (2**width,) items per key
    rank: np.ndarray  # (n,) position of each item within its bucket (by id)


def _buckets(h: np.ndarray, shift: int, width: int) -> _Buckets:
    keys = ((h >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.intp)
    counts = np.bincount(keys, minlength=1 << width)
    starts = np.zeros(counts.size, np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    # a stable sort of 16-bit keys is a radix sort
    order = np.argsort(keys.astype(np.uint16), kind="stable")
    rank = np.empty(h.size, np.intp)
    rank[order] = np.arange(h.size) - starts[keys[order]]
    return _Buckets(keys, counts, rank)


def _layer_bounds(first: int, top: int) -> tuple[int, ...]:
    """Rank bounds of the layers: 0, first, 2 first, 4 first, ... up to ``top`` ranks."""
    bounds = [0, first]
    while bounds[-1] < top:
        bounds.append(2 * bounds[-1])
    return tuple(bounds)


def _fwht(a: np.ndarray) -> np.ndarray:
    """Walsh-Hadamard transform of each row (length a power of two), unnormalised."""
    a = a.copy()
    m, n = a.shape
    h = 1
    while h < n:
        v = a.reshape(m, n // (2 * h), 2, h)
        x, y = v[:, :, 0, :].copy(), v[:, :, 1, :]
        v[:, :, 0, :] += y
        np.subtract(x, y, out=v[:, :, 1, :])
        h *= 2
    return a


class _Block(NamedTuple):
    shift: int
    width: int
    tau: int
    q: _Buckets
    r: _Buckets
    bounds_q: tuple[int, ...]
    bounds_r: tuple[int, ...]
    cost: float


def _plan_block(q: np.ndarray, r: np.ndarray, shift: int, width: int, tau: int) -> _Block:
    """Bucket both sides by one block and pick the layer depths with the least expected work.

    For every pair of layers the work is the number of (mask, key) pairs where the query layer
    holds the key and the reference layer its partner ``key ^ mask``, times the slots of the
    two depths. Those counts are exact for all layer pairs at once: summed over the masks, an
    XOR-correlation of the two layers' key sets, which the Walsh-Hadamard transform turns into
    a product."""
    flips = _flip_masks(width, tau)
    bq, br = _buckets(q, shift, width), _buckets(r, shift, width)
    layerings = [
        sorted({_layer_bounds(d, int(b.counts.max())) for d in _FIRST_DEPTHS}) for b in (bq, br)
    ]
    # every lower bound of a layer, per side, and the key sets above them
    lows = [sorted({lo for bounds in lay for lo in bounds[:-1]}) for lay in layerings]
    # (single precision: these are estimates, and it halves the transforms' time)
    spectra = [
        _fwht((b.counts[None, :] > np.asarray(lo)[:, None]).astype(np.float32))
        for b, lo in zip((bq, br), lows, strict=True)
    ]
    masks = np.zeros((1, 1 << width), np.float32)
    masks[0, flips] = 1.0
    weight = _fwht(masks)[0]
    # meet[i, j]: (mask, key) pairs with the key in query layer i and its partner in ref layer j
    meet = np.maximum((spectra[0] * weight) @ spectra[1].T / (1 << width), 0).astype(np.float64)
    # every layering pair at once: (layering, layer) grids of meet indices and depths, padded
    # with empty layers (depth 0, no call)
    grids = []
    for side, lay in zip(lows, layerings, strict=True):
        at = {lo: i for i, lo in enumerate(side)}
        top = max(len(b) - 1 for b in lay)
        idx = np.zeros((len(lay), top), np.intp)
        depth = np.zeros((len(lay), top))
        for k, bounds in enumerate(lay):
            idx[k, : len(bounds) - 1] = [at[lo] for lo in bounds[:-1]]
            depth[k, : len(bounds) - 1] = np.diff(bounds)
        grids.append((idx, depth))
    (iq, dq), (ir, dr) = grids
    # axes: query layering, query layer, ref layering, ref layer
    both = meet[iq[:, :, None, None], ir[None, None, :, :]]
    dq4, dr4 = dq[:, :, None, None], dr[None, None, :, :]
    real = (dq4 > 0) & (dr4 > 0)
    slots = both * (_SLOT_COST * dq4 * dr4 + _GATHER_COST * (dq4 + dr4))
    calls = (np.ceil(both * dq4 * dr4 / _SLAB) + 1) * real
    cost = (slots * real + _CALL_COST * calls).sum(axis=(1, 3))
    i, j = np.unravel_index(int(cost.argmin()), cost.shape)
    return _Block(shift, width, tau, bq, br, layerings[0][i], layerings[1][j], float(cost[i, j]))


def _plan_search(
    q: np.ndarray, r: np.ndarray, radius: int, limit: float = math.inf
) -> tuple[list[_Block], float]:
    """The cheapest block layout for finding every pair within ``radius`` and its cost, or
    ``([], inf)`` when none costs less than ``limit``."""
    if radius < 0 or q.size == 0 or r.size == 0:
        return [], 0.0
    best: tuple[list[_Block], float] = ([], limit)
    for plan in _block_plans(radius, large=min(q.size, r.size) >= 1 << 17):
        # what uniformly spread hashes would cost: skips hopeless layouts before bucketing
        share = sum(sum(math.comb(w, i) for i in range(t + 1)) / 2**w for _, w, t in plan)
        if _SLOT_COST * share * q.size * r.size >= best[1]:
            continue
        blocks: list[_Block] = []
        cost = 0.0
        for shift, width, tau in plan:
            blocks.append(_plan_block(q, r, shift, width, tau))
            cost += blocks[-1].cost
            if cost >= best[1]:
                break
        if cost < best[1]:
            best = (blocks, cost)
    return best if best[0] else ([], math.inf)


class _Layer(NamedTuple):
    """The items of one side with bucket ranks in one range, as a (depth, columns + 1) table:
    one column per key whose bucket reaches the layer, and a last column of pads."""

    vals: np.ndarray  # (depth, columns + 1) hashes, pads where a bucket runs out
    ids: np.ndarray  # (depth, columns + 1) item ids, -1 for pads
    keys: np.ndarray  # (columns,) key of each column
    col: np.ndarray  # (2**width,) column of each key; the pad column for absent keys


def _layers(h: np.ndarray, b: _Buckets, bounds: tuple[int, ...], pad: np.uint64) -> list[_Layer]:
    out = []
    for lo, hi in itertools.pairwise(bounds):
        keys = np.flatnonzero(b.counts > lo)
        if keys.size == 0:
            break
        col = np.full(b.counts.size, keys.size, np.intp)
        col[keys] = np.arange(keys.size)
        vals = np.full((hi - lo, keys.size + 1), pad, np.uint64)
        ids = np.full((hi - lo, keys.size + 1), -1, np.intp)
        inside = np.flatnonzero((b.rank >= lo) & (b.rank < hi))
        at = (b.rank[inside] - lo, col[b.keys[inside]])
        vals[at] = h[inside]
        ids[at] = inside
        out.append(_Layer(vals, ids, keys, col))
    return out


def _key_major(
    a: _Layer,
    b: _Layer,
    flips: np.ndarray,
    radius: int,
    earlier: tuple[tuple[np.uint64, int], ...],
    sink: _Sink,
) -> None:
    """Pairs in range between every query bucket of layer ``a`` and the reference bucket of
    layer ``b`` at ``key ^ f``, except pairs that an ``earlier`` block (mask, tau) holds."""
    swap = a.keys.size > b.keys.size
    # walk the layer with fewer keys and look the partners up in the other
    it, other = (b, a) if swap else (a, b)
    di, do = it.vals.shape[0], other.vals.shape[0]
    n, absent = it.keys.size, other.keys.size
    it_ids, other_ids = it.ids.reshape(-1), other.ids.reshape(-1)
    wi, wo = it.ids.shape[1], other.ids.shape[1]
    rows = max(1, min(di, _SLAB // do))
    xbuf, cbuf = np.empty(_SLAB, np.uint64), np.empty(_SLAB, np.uint8)
    within = np.empty(_SLAB, bool)
    # several masks at a time: the columns are (mask, key) pairs
    per = max(1, min(_SLAB // (n * di * do), _GATHER // (n * max(di, do))))
    for f0 in range(0, flips.size, per):
        partner = other.col[it.keys[None, :] ^ flips[f0 : f0 + per, None]].reshape(-1)
        at = np.flatnonzero(partner != absent)
        if at.size == 0:
            continue
        icols, pcols = at % n, partner[at]
        # one mask meeting every key: the table itself, ungathered
        iv = it.vals if at.size == n == partner.size else np.take(it.vals, icols, axis=1)
        ov = np.take(other.vals, pcols, axis=1)
        ncols = at.size
        slab = max(1, min(ncols, _SLAB // (rows * do)))
        for r0 in range(0, di, rows):
            r1 = min(r0 + rows, di)
            for k0 in range(0, ncols, slab):
                k1 = min(k0 + slab, ncols)
                width = k1 - k0
                shape = (r1 - r0, do, width)
                x = xbuf[: math.prod(shape)].reshape(shape)
                c = cbuf[: x.size].reshape(shape)
                np.bitwise_xor(iv[r0:r1, None, k0:k1], ov[None, :, k0:k1], out=x)
                np.bitwise_count(x, out=c)
                # uniform hashes: nearly every column has no pair in range, so find the few
                # that do first; clustered ones: many do, so look at them all at once
                # (flat indices: numpy's nonzero on a 3-d array is many times slower)
                near = np.flatnonzero(c.reshape(-1, width).min(axis=0) <= radius)
                if near.size == 0:
                    continue
                if 4 * near.size > width:
                    hit = np.less_equal(c.reshape(-1), radius, out=within[: c.size])
                    flat = np.flatnonzero(hit)
                else:
                    sub = np.flatnonzero(c[:, :, near] <= radius)
                    flat = sub // near.size * width + near[sub % near.size]
                if earlier:
                    xs = xbuf[flat]
                    keep = np.bitwise_count(xs & earlier[0][0]) > earlier[0][1]
                    for mask, tau in earlier[1:]:
                        keep &= np.bitwise_count(xs & mask) > tau
                    flat = flat[keep]
                rest, kk = np.divmod(flat, width)
                ii, io = np.divmod(rest, do)
                kk += k0
                ia = it_ids[(ii + r0) * wi + icols[kk]]
                ib = other_ids[io * wo + pcols[kk]]
                ok = (ia >= 0) & (ib >= 0)
                if swap:
                    sink(ib[ok], ia[ok])
                else:
                    sink(ia[ok], ib[ok])


def _search_tasks(
    q: np.ndarray, r: np.ndarray, blocks: list[_Block], radius: int, workers: int, sink: _Sink
) -> list[Callable[[], None]]:
    """A planned search as independent tasks that hand every (query, ref) pair within
    ``radius`` to ``sink`` once."""
    tasks: list[Callable[[], None]] = []
    earlier: list[tuple[np.uint64, int]] = []
    for blk in blocks:
        lq = _layers(q, blk.q, blk.bounds_q, _PAD_Q)
        lr = _layers(r, blk.r, blk.bounds_r, _PAD_R)
        flips = _flip_masks(blk.width, blk.tau)
        prior = tuple(earlier)
        small: list[Callable[[], None]] = []
        for a in lq:
            for b in lr:
                slots = flips.size * min(a.keys.size, b.keys.size) * a.vals.size * b.vals.size
                slots //= (a.keys.size + 1) * (b.keys.size + 1)
                parts = max(1, min(4 * workers, slots // _TASK_SLOTS))
                if parts == 1:
                    # small layer pairs of a block run together (a task costs a thread hand-off)
                    small.append(functools.partial(_key_major, a, b, flips, radius, prior, sink))
                    continue
                share = -(-flips.size // parts)
                for f0 in range(0, flips.size, share):
                    part = flips[f0 : f0 + share]
                    tasks.append(functools.partial(_key_major, a, b, part, radius, prior, sink))
        if small:
            tasks.append(functools.partial(_run_tasks, small, 1))
        earlier.append((np.uint64(((1 << blk.width) - 1) << blk.shift), blk.tau))
    return tasks


def _brute_pairs(
    q: np.ndarray, r: np.ndarray, radius: int, tile: int, sink: _Sink
) -> list[Callable[[], None]]:
    """Tiled XOR + popcount over every pair, as tasks over blocks of queries."""
    tile = max(1, min(tile, r.size))
    rows = max(1, (1 << 16) // tile)

    def work(q0: int, q1: int) -> None:
        x = np.empty((q1 - q0, tile), np.uint64)
        c = np.empty((q1 - q0, tile), np.uint8)
        for r0 in range(0, r.size, tile):
            r1 = min(r0 + tile, r.size)
            xs, cs = x[:, : r1 - r0], c[:, : r1 - r0]
            np.bitwise_xor(q[q0:q1, None], r[None, r0:r1], out=xs)
            np.bitwise_count(xs, out=cs)
            # nearly every block has no pair: a min() is cheaper than a mask + nonzero
            if cs.min() <= radius:
                qi, ri = np.nonzero(cs <= radius)
                sink(qi + q0, ri + r0)

    return [functools.partial(work, s, min(s + rows, q.size)) for s in range(0, q.size, rows)]


def hamming_pairs(
    query: np.ndarray,
    ref: np.ndarray,
    *,
    radius: int,
    tile: int = 4096,
    workers: int = 2,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (query index, ref index, distance) with Hamming distance <= ``radius``, sorted
    by query then ref. Exact.

    ``method``: ``"brute"`` tiles XOR + ``np.bitwise_count`` over every pair (``tile`` refs by a
    few queries); ``"pigeonhole"`` compares only hashes that agree on some 12- to 16-bit block up
    to a few flipped bits (multi-index hashing: far fewer pairs at small radii); ``"auto"``
    picks the one expected to be cheaper. Both run on ``workers`` threads.

    Examples
    --------
    >>> q = np.array([0b1011, 0], dtype=np.uint64)
    >>> hamming_pairs(q, np.array([0b0011], dtype=np.uint64), radius=1)
    (array([0]), array([0]), array([1], dtype=uint8))
    """
    if method not in ("auto", "brute", "pigeonhole"):
        raise ValueError(f"unknown method {method!r}; expected auto, brute or pigeonhole")
    q, r = _as_u64(query), _as_u64(ref)
    if q.size == 0 or r.size == 0 or radius < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    found: list[np.ndarray] = []
    lock = threading.Lock()

    def sink(qi: np.ndarray, ri: np.ndarray) -> None:
        pair = qi.astype(np.int64) * r.size + ri
        with lock:
            found.append(pair)

    tasks = None
    brute = _BRUTE_PAIR_COST * q.size * r.size
    if method == "pigeonhole" or (method == "auto" and radius < 64 and brute > _PLAN_MIN):
        blocks, cost = _plan_search(q, r, radius, math.inf if method == "pigeonhole" else brute)
        if cost < math.inf:
            tasks = _search_tasks(q, r, blocks, radius, workers, sink)
    _run_tasks(tasks if tasks is not None else _brute_pairs(q, r, radius, tile, sink), workers)
    # the pigeonhole search may report a pair once per block it shares
    pair = np.unique(np.concatenate([np.zeros(0, np.int64), *found]))
    qi, ri = pair // r.size, pair % r.size
    return qi, ri, np.bitwise_count(q[qi] ^ r[ri])


class BestMatches(NamedTuple):
    """Per query: ``ref`` index of the best eligible reference (-1 if none), its combined
    (pHash + dHash) ``distance`` and ``phash_distance`` (-1 if none), and ``min_distance``, the
    smallest combined distance to any reference, eligible or not, capped at the ``min_cap`` of
    :func:`best_matches` (the cap itself means "this far or farther"; -1 when there are no
    references)."""

    ref: np.ndarray
    distance: np.ndarray
    phash_distance: np.ndarray
    min_distance: np.ndarray


class _Nearest:
    """Per query, the running minimum of the combined distance (capped) and of (combined
    distance, ref) over eligible pairs, fed pairs from worker threads."""

    def __init__(
        self, hashes: tuple[np.ndarray, ...], max_distance: int, max_phash: int, cap: int
    ) -> None:
        self.qp, self.qd, self.rp, self.rd = hashes
        self.max_distance, self.max_phash, self.cap = max_distance, max_phash, cap
        self.min_d = np.full(self.qp.size, cap, np.int64)
        # combined distance in the high bits, ref index in the low: the minimum is the best
        self.best = np.full(self.qp.size, np.iinfo(np.int64).max, np.int64)
        self.lock = threading.Lock()

    def add(self, qi: np.ndarray, ri: np.ndarray, found_below: int = -1) -> None:
        """Take the pairs ``(qi, ri)``, except those with pHash <= ``found_below`` (another
        search hands those on)."""
        ph = np.bitwise_count(self.qp[qi] ^ self.rp[ri]).astype(np.int64)
        if found_below >= 0:
            new = ph > found_below
            qi, ri, ph = qi[new], ri[new], ph[new]
        comb = ph + np.bitwise_count(self.qd[qi] ^ self.rd[ri])
        ok = (comb <= self.max_distance) & (ph <= self.max_phash)
        # the eligible ones count towards the nearest distance through ``best``
        low = (comb < self.cap) & ~ok
        key = (comb[ok] << 32) | ri[ok]
        with self.lock:
            np.minimum.at(self.min_d, qi[low], comb[low])
            np.minimum.at(self.best, qi[ok], key)

    def result(self, qp: np.ndarray, rp: np.ndarray) -> BestMatches:
        found = self.best < np.iinfo(np.int64).max
        ref = np.where(found, self.best & 0xFFFF_FFFF, -1)
        dist = np.where(found, self.best >> 32, -1).astype(np.int32)
        ph = np.full(qp.size, -1, np.int32)
        ph[found] = np.bitwise_count(qp[found] ^ rp[ref[found]])
        low = np.where(found, np.minimum(self.min_d, dist), self.min_d)
        return BestMatches(ref, dist, ph, low.astype(np.int32))


def _brute_best(nearest: _Nearest, tile: int) -> list[Callable[[], None]]:
    """Every pair compared: tasks over blocks of queries that feed ``nearest`` directly."""
    qp, qd, rp, rd = nearest.qp, nearest.qd, nearest.rp, nearest.rd
    nq, nr = qp.size, rp.size
    tile = max(1, min(tile, nr))
    rows = max(1, (1 << 17) // tile)

    def work(q0: int, q1: int) -> None:
        m = q1 - q0
        x = np.empty((m, tile), np.uint64)
        p = np.empty((m, tile), np.uint8)
        d = np.empty((m, tile), np.uint8)
        low = np.full(m, 255, np.uint8)
        best = np.full(m, np.iinfo(np.int64).max, np.int64)
        for r0 in range(0, nr, tile):
            r1 = min(r0 + tile, nr)
            xs, ps, ds = x[:, : r1 - r0], p[:, : r1 - r0], d[:, : r1 - r0]
            np.bitwise_xor(qp[q0:q1, None], rp[None, r0:r1], out=xs)
            np.bitwise_count(xs, out=ps)
            np.bitwise_xor(qd[q0:q1, None], rd[None, r0:r1], out=xs)
            np.bitwise_count(xs, out=ds)
            np.add(ds, ps, out=ds)
            tile_low = ds.min(axis=1)
            np.minimum(low, tile_low, out=low)
            # pairs in the band are rare: look only at the rows that have one
            rows_in = np.flatnonzero(tile_low <= nearest.max_distance)
            if rows_in.size:
                e = np.where(ps[rows_in] <= nearest.max_phash, ds[rows_in], 255)
                j = e.argmin(axis=1)  # the first on ties
                v = e[np.arange(rows_in.size), j].astype(np.int64)
                ok = v <= nearest.max_distance
                key = (v[ok] << 32) | (r0 + j[ok])
                best[rows_in[ok]] = np.minimum(best[rows_in[ok]], key)
        # each task owns its rows of the result
        nearest.min_d[q0:q1] = np.minimum(low, nearest.cap)
        nearest.best[q0:q1] = best

    return [functools.partial(work, s, min(s + rows, nq)) for s in range(0, nq, rows)]


def best_matches(
    query_phash: np.ndarray,
    query_dhash: np.ndarray,
    ref_phash: np.ndarray,
    ref_dhash: np.ndarray,
    *,
    max_distance: int = 28,
    max_phash: int = MAX_PHASH_DISTANCE,
    min_cap: int | None = None,
    tile: int = 4096,
    workers: int = 2,
    method: str = "auto",
) -> BestMatches:
    """For each query the reference with the smallest combined (pHash + dHash) distance among
    those with combined <= ``max_distance`` and pHash <= ``max_phash`` (the lowest index on
    ties). Exact.

    ``min_distance`` is the nearest combined distance capped at ``min_cap`` (default
    ``max_distance + 1``: "no reference within the match band"); ``min_cap=129`` gives it
    uncapped, which needs every pair compared. ``method``: ``"pigeonhole"`` finds by
    multi-index hashing every pair with pHash <= ``max_phash`` or dHash <=
    ``min_cap - max_phash - 2``, which holds every match and every pair below the cap;
    ``"brute"`` compares every pair; ``"auto"`` picks the one expected to be cheaper.

    Examples
    --------
    >>> q = np.array([0b1111], dtype=np.uint64)
    >>> bm = best_matches(q, q, np.array([0, 0b111], np.uint64), np.array([0, 0b1], np.uint64))
    >>> bm.ref.tolist(), bm.distance.tolist(), bm.phash_distance.tolist(), bm.min_distance.tolist()
    ([1], [4], [1], [4])
    """
    if method not in ("auto", "brute", "pigeonhole"):
        raise ValueError(f"unknown method {method!r}; expected auto, brute or pigeonhole")
    cap = max_distance + 1 if min_cap is None else min_cap
    qp, qd, rp, rd = (_as_u64(a) for a in (query_phash, query_dhash, ref_phash, ref_dhash))
    nq, nr = qp.size, rp.size
    if nq == 0 or nr == 0:
        none = np.full(nq, -1, np.int32)
        return BestMatches(np.full(nq, -1, np.int64), none, none.copy(), none.copy())
    if method == "brute":
        nearest = _Nearest((qp, qd, rp, rd), max_distance, max_phash, cap)
        _run_tasks(_brute_best(nearest, tile), workers)
        return nearest.result(qp, rp)
    # identical photos (a marketplace reuses them a lot) are searched once: queries by their
    # distinct (pHash, dHash), references by the first of each (the lowest index wins ties)
    q_first, q_of = _distinct(qp, qd)
    r_first, _ = _distinct(rp, rd)
    uqp, uqd, urp, urd = qp[q_first], qd[q_first], rp[r_first], rd[r_first]
    nearest = _Nearest((uqp, uqd, urp, urd), max_distance, max_phash, cap)
    # a pair found by neither search has pHash > a and dHash > b, so combined >= a + b + 2 =
    # cap; pHash <= a also holds every eligible pair
    a = max(-1, min(max_phash, max_distance, 64))
    b = min(cap - a - 2, 64)
    tasks = None
    limit = math.inf if method == "pigeonhole" else _BRUTE_COST * uqp.size * urp.size
    if a < 64 and b < 64 and (method == "pigeonhole" or limit > _PLAN_MIN):
        p_blocks, p_cost = _plan_search(uqp, urp, a, limit)
        d_blocks, d_cost = _plan_search(uqd, urd, b, limit - p_cost)
        if p_cost + d_cost < limit:
            tasks = _search_tasks(uqp, urp, p_blocks, a, workers, nearest.add)
            # the pHash search hands on every pair with pHash <= a
            only_new = functools.partial(nearest.add, found_below=a if p_blocks else -1)
            tasks += _search_tasks(uqd, urd, d_blocks, b, workers, only_new)
    _run_tasks(tasks if tasks is not None else _brute_best(nearest, tile), workers)
    found = nearest.result(uqp, urp)
    ref = np.where(found.ref >= 0, r_first[found.ref], -1)[q_of]
    return BestMatches(ref, *(col[q_of] for col in found[1:]))


def _distinct(p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first index of each distinct ``(p, d)`` pair, ascending, and the position of every
    item's pair among them."""
    order = np.lexsort((d, p))
    ps, ds = p[order], d[order]
    new = np.ones(p.size, bool)
    new[1:] = (ps[1:] != ps[:-1]) | (ds[1:] != ds[:-1])
    # the stable sort puts the lowest index of each group first
    first = order[new]
    rank = np.argsort(first)
    group = np.empty(p.size, np.intp)
    group[order] = np.cumsum(new) - 1
    where = np.empty(first.size, np.intp)
    where[rank] = np.arange(first.size)
    return first[rank], where[group]
