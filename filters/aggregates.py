"""Mergeable aggregates for run statistics: exact where cheap, a KLL sketch where not.

A filter whose scores read statistics of the whole run (the price filter's robust statistics
per brand and category, the seller filter's shares) turns each listing into a few values
(:meth:`filters.base.Filter.statistic_values`) and names an aggregate of them here. Every
aggregate has one *partial* form, a polars table, with three properties:

- a partial is computed from any slice of the listings (a batch, a Spark task);
- partials merge by concatenation and :meth:`merge`, in any order and grouping, and give the
  same table as the partial of all the listings at once (commutative and associative);
- :meth:`result` turns the merged partial into the statistics table the filter reads.

So statistics never depend on how the input was cut into batches or partitions.

:class:`GroupSums` (counts and sums of 0/1 flags per key) is exact: integers add. A seller's
share is then ``sum / n``, computed once from the totals.

:class:`GroupQuantiles` (median and median absolute deviation of a value per group) keeps the
exact distribution, one row per distinct ``(group, value)`` with its count, so medians are
exact: the quantile of the counts is the quantile of the values. Distinct values are usually
few (prices repeat), but nothing bounds them, so a merged partial holding more than
``max_exact_rows`` rows folds its largest groups into Apache DataSketches' KLL sketch
(``datasketches.kll_doubles_sketch``, ``k`` = 200), one sketch per group, until it fits. A
sketched group's statistics are approximate, within the bounds the sketch guarantees
(:func:`rank_error`): with 99% confidence the median's rank is within ``eps`` of one half,
where ``eps`` is the sketch's single-quantile normalised rank error (1.33% at ``k`` = 200),
and the share of the group's values within ``median +- MAD`` is within ``2 eps'`` of one half
(``eps'``, the all-quantiles error, 1.65% at ``k`` = 200: the MAD reads the sketch's CDF at
two points). KLL compacts at random, so a sketched group may give slightly different
statistics from run to run, and across batch sizes; the result says which groups are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

#: rows a merged exact partial may hold before its largest groups are sketched
MAX_EXACT_ROWS = 4_000_000
#: the KLL sketch's size parameter (DataSketches' default)
KLL_K = 200
#: values fed to a sketch at a time when a group is folded (counts are expanded)
_FOLD_CHUNK = 1 << 20


def rank_error(k: int = KLL_K, *, all_quantiles: bool = False) -> float:
    """DataSketches' normalised rank error of a KLL sketch of size ``k`` (99% confidence):
    for one quantile, or for every quantile and CDF point at once (``all_quantiles``)."""
    from datasketches import kll_doubles_sketch

    return float(kll_doubles_sketch.get_normalized_rank_error(k, all_quantiles))


@dataclass(frozen=True)
class GroupSums:
    """Per key: the number of rows (``n``) and the sum of each 0/1 flag column, as integers.

    Parameters
    ----------
    key : the key column (rows with a null key are not counted)
    flags : the flag columns (0/1, null counts as 0)

    Examples
    --------
    >>> agg = GroupSums("seller_id", ("flag",))
    >>> a = agg.partial(pl.DataFrame({"seller_id": ["s", "t"], "flag": [1.0, 0.0]}))
    >>> b = agg.partial(pl.DataFrame({"seller_id": ["s"], "flag": [0.0]}))
    >>> agg.merge([a, b]).sort("seller_id").rows()
    [('s', 2, 1), ('t', 1, 0)]
    """

    key: str
    flags: tuple[str, ...]

    def schema(self) -> dict[str, pl.DataType]:
        return {
            self.key: pl.String(),
            "n": pl.Int64(),
            **{f: pl.Int64() for f in self.flags},
        }

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema())

    def partial(self, values: pl.DataFrame) -> pl.DataFrame:
        """The partial of per-row ``values`` (the key and the flag columns)."""
        return (
            values.lazy()
            .filter(pl.col(self.key).is_not_null())
            .group_by(pl.col(self.key).cast(pl.String))
            .agg(
                pl.len().cast(pl.Int64).alias("n"),
                *(pl.col(f).fill_null(0).cast(pl.Int64).sum().alias(f) for f in self.flags),
            )
            .collect()
            .cast(self.schema())  # type: ignore[arg-type]
        )

    def merge(self, partials: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """One partial holding the rows of all ``partials``."""
        frames = [p for p in partials if p.height] or [self.empty()]
        if len(frames) == 1:
            return frames[0]
        return (
            pl.concat(frames, how="vertical_relaxed")
            .group_by(self.key)
            .agg(pl.col("n").sum(), *(pl.col(f).sum() for f in self.flags))
            .cast(self.schema())  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class GroupQuantiles:
    """Per group: the median, the median absolute deviation and the count of a value.

    The partial has the group's key columns, ``value`` and ``count`` (exact rows: one per
    distinct value) and ``sketch`` (a serialised KLL sketch, on a group's one sketched row,
    whose ``value`` is null and ``count`` the values it holds).

    Parameters
    ----------
    keys : the group's key columns (String)
    value : the value column (Float64; null and non-finite values are not counted)
    max_exact_rows : exact rows a merged partial keeps before sketching its largest groups
    k : the KLL sketch's size parameter

    Examples
    --------
    >>> agg = GroupQuantiles(("g",), "v")
    >>> part = agg.partial(pl.DataFrame({"g": ["a"] * 4, "v": [1.0, 2.0, 2.0, 9.0]}))
    >>> agg.result(part).rows()
    [('a', 2.0, 0.5, 4, True)]
    """

    keys: tuple[str, ...]
    value: str
    max_exact_rows: int = MAX_EXACT_ROWS
    k: int = KLL_K

    def schema(self) -> dict[str, pl.DataType]:
        return {
            **{c: pl.String() for c in self.keys},
            "value": pl.Float64(),
            "count": pl.Int64(),
            "sketch": pl.Binary(),
        }

    def result_schema(self) -> dict[str, pl.DataType]:
        return {
            **{c: pl.String() for c in self.keys},
            "median": pl.Float64(),
            "mad": pl.Float64(),
            "n": pl.Int64(),
            "exact": pl.Boolean(),
        }

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema())

    def partial(self, values: pl.DataFrame) -> pl.DataFrame:
        """The partial of per-row ``values`` (the key columns and the value column)."""
        v = pl.col(self.value).cast(pl.Float64)
        exact = (
            values.lazy()
            .filter(v.is_finite())
            .group_by(*(pl.col(c).cast(pl.String) for c in self.keys), v.alias("value"))
            .agg(pl.len().cast(pl.Int64).alias("count"))
            .with_columns(pl.lit(None, pl.Binary).alias("sketch"))
            .collect()
            .cast(self.schema())  # type: ignore[arg-type]
        )
        return self.merge([exact])

    def merge(self, partials: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """One partial holding the values of all ``partials``."""
        frames = [p for p in partials if p.height]
        if not frames:
            return self.empty()
        both = pl.concat(frames, how="vertical_relaxed").cast(
            self.schema()  # type: ignore[arg-type]
        )
        sketched = both.filter(pl.col("sketch").is_not_null())
        exact = both.filter(pl.col("sketch").is_null())
        if len(frames) > 1:
            exact = (
                exact.group_by([*self.keys, "value"])
                .agg(pl.col("count").sum())
                .with_columns(pl.lit(None, pl.Binary).alias("sketch"))
            )
        keys = list(self.keys)
        if sketched.height:
            # a group sketched anywhere is sketched everywhere: its exact rows join the sketch
            owned = exact.join(
                sketched.select(keys).unique(), on=keys, how="semi", nulls_equal=True
            )
            exact = exact.join(owned.select(keys).unique(), on=keys, how="anti", nulls_equal=True)
            sketched = self._sketched(sketched, owned)
        if exact.height > self.max_exact_rows:
            sizes = exact.group_by(keys).len().sort(["len", *keys], descending=True)
            # the largest groups first, until the exact rows fit
            over = sizes.with_columns(
                (exact.height - pl.col("len").cum_sum() + pl.col("len")).alias("left")
            ).filter(pl.col("left") > self.max_exact_rows)
            fold = exact.join(over.select(keys), on=keys, how="semi", nulls_equal=True)
            exact = exact.join(over.select(keys), on=keys, how="anti", nulls_equal=True)
            sketched = self._sketched(sketched, fold)
        names = list(self.schema())
        return pl.concat([exact.select(names), sketched.select(names)])

    def _sketched(self, sketches: pl.DataFrame, values: pl.DataFrame) -> pl.DataFrame:
        """One sketch row per group of ``sketches`` and ``values``: the groups' sketches
        merged and their exact values added."""
        from datasketches import kll_doubles_sketch

        keys = list(self.keys)
        groups: dict[tuple[str | None, ...], kll_doubles_sketch] = {}
        for row in sketches.iter_rows(named=True):
            key = tuple(row[c] for c in keys)
            sketch = kll_doubles_sketch.deserialize(row["sketch"])
            if key in groups:
                groups[key].merge(sketch)
            else:
                groups[key] = sketch
        for key_frame, part in values.sort([*keys, "value"]).group_by(keys, maintain_order=True):
            key = tuple(key_frame)
            sketch = groups.setdefault(key, kll_doubles_sketch(self.k))
            expanded = np.repeat(part.get_column("value").to_numpy(), part.get_column("count"))
            for start in range(0, len(expanded), _FOLD_CHUNK):
                sketch.update(np.ascontiguousarray(expanded[start : start + _FOLD_CHUNK]))
        rows = [(*key, None, int(s.n), s.serialize()) for key, s in groups.items()]
        return pl.DataFrame(rows, schema=self.schema(), orient="row")

    def result(self, partial: pl.DataFrame) -> pl.DataFrame:
        """``median``, ``mad`` (median absolute deviation from the median), ``n`` and
        ``exact`` per group. The median of an even count is the mean of the two middle
        values."""
        keys = list(self.keys)
        exact = partial.filter(pl.col("sketch").is_null())
        out = [self._exact_result(exact)]
        sketched = partial.filter(pl.col("sketch").is_not_null())
        if sketched.height:
            out.append(self._sketch_result(sketched))
        return pl.concat(out).sort(keys, nulls_last=True).select(list(self.result_schema()))

    def _exact_result(self, exact: pl.DataFrame) -> pl.DataFrame:
        keys = list(self.keys)
        if exact.height == 0:
            return pl.DataFrame(schema=self.result_schema())
        groups = exact.select(keys).unique().sort(keys, nulls_last=True).with_row_index("gid")
        numbered = exact.join(groups, on=keys, how="left", nulls_equal=True).select(
            "gid", "value", "count"
        )

        def middle(frame: pl.DataFrame, value: str) -> pl.DataFrame:
            """Per ``gid`` of ``frame`` (sorted by ``gid``, then ``value``): the mean of the
            values at ranks (n - 1) // 2 and n // 2 (0-based) of its values, counted with
            their ``count``, and n. The running count over the sorted frame is
            non-decreasing, so a rank's row is found by binary search."""
            upto = frame.get_column("count").cum_sum()
            sizes = frame.group_by("gid", maintain_order=True).agg(pl.col("count").sum().alias("n"))
            start = sizes.get_column("n").cum_sum() - sizes.get_column("n")
            n = sizes.get_column("n")
            values = frame.get_column(value)
            low = values.gather(upto.search_sorted(start + (n - 1) // 2, side="right"))
            high = values.gather(upto.search_sorted(start + n // 2, side="right"))
            return sizes.with_columns(((low + high) / 2).alias("m"))

        medians = middle(numbered.sort(["gid", "value"]), "value")
        deviations = (
            numbered.join(medians.select("gid", "m"), on="gid", how="left")
            .select("gid", (pl.col("value") - pl.col("m")).abs().alias("dev"), "count")
            .sort(["gid", "dev"])
        )
        mads = middle(deviations, "dev").select("gid", pl.col("m").alias("mad"))
        return (
            groups.join(medians, on="gid", how="left")
            .join(mads, on="gid", how="left")
            .select(
                *keys,
                pl.col("m").alias("median"),
                "mad",
                pl.col("n").cast(pl.Int64),
                pl.lit(True).alias("exact"),
            )
        )

    def _sketch_result(self, sketched: pl.DataFrame) -> pl.DataFrame:
        from datasketches import kll_doubles_sketch

        rows = []
        for row in sketched.iter_rows(named=True):
            sketch = kll_doubles_sketch.deserialize(row["sketch"])
            median = float(sketch.get_quantile(0.5))
            rows.append(
                (
                    *(row[c] for c in self.keys),
                    median,
                    _sketch_mad(sketch, median),
                    int(sketch.n),
                    False,
                )
            )
        return pl.DataFrame(rows, schema=self.result_schema(), orient="row")


def _sketch_mad(sketch: object, median: float) -> float:
    """The smallest ``d`` whose interval ``median +- d`` holds half of the sketch's values
    (by its CDF), to a relative precision of 1e-12."""
    lo_value = float(sketch.get_min_value())  # type: ignore[attr-defined]
    hi_value = float(sketch.get_max_value())  # type: ignore[attr-defined]
    lo, hi = 0.0, max(abs(hi_value - median), abs(median - lo_value))

    # the CDF at (median - d) excluded, (median + d) included: the share within
    def share(d: float) -> float:
        left = sketch.get_cdf([median - d], False)[0]  # type: ignore[attr-defined]
        right = sketch.get_cdf([median + d], True)[0]  # type: ignore[attr-defined]
        return float(right) - float(left)

    if share(lo) >= 0.5:
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        if share(mid) >= 0.5:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            break
    return hi if math.isfinite(hi) else math.nan
