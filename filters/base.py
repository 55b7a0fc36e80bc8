"""The Filter contract shared by every filter family.

A filter follows scikit-learn's estimator contract: ``__init__`` only stores parameters,
``fit(registry)`` learns from the brand registry and stores learned state in attributes ending
in ``_``, and ``score(listings)`` adds the filter's columns to a polars LazyFrame without dropping
or reordering rows.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from filters.aggregates import GroupQuantiles, GroupSums
from filters.core.errors import NotFittedError
from filters.core.registry import CATEGORY_SEPARATORS

if TYPE_CHECKING:
    from typing import Self

    from filters.core.registry import Registry


def reason_list(*parts: pl.Expr) -> pl.Expr:
    """Each row's non-null ``parts`` as a list of strings, in order: what
    ``concat_list(parts).list.drop_nulls()`` gives, at a tenth of the cost (the parts joined on
    NUL, then split). Parts must not contain NUL; reasons are built from registry values (refused
    on load if they hold control characters) and title tokens (letters, digits, symbols)."""
    return _split_reasons(pl.concat_str(parts, separator="\x00", ignore_nulls=True))


def _split_reasons(joined: pl.Expr) -> pl.Expr:
    """NUL-joined reasons (null or "" for none) as a list."""
    return (
        pl.when(joined != "")
        .then(joined)
        .otherwise(None)
        .str.split("\x00")
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def reasons_where(frame: pl.DataFrame, need: pl.Expr, *parts: pl.Expr) -> pl.Series:
    """:func:`reason_list` of ``parts`` for the rows of ``frame`` where ``need`` holds, ``[]``
    for the others: reasons are formatted only for the rows that have some (formatting them
    for every row and keeping a few cost more than the scores)."""
    where = frame.select(need.fill_null(False)).to_series()
    used = sorted({c for p in parts for c in p.meta.root_names()})
    joined = (
        frame.select(used)
        .filter(where)
        .select(pl.concat_str(parts, separator="\x00", ignore_nulls=True).alias("r"))
        .to_series()
    )
    full = spread(joined, where)
    return full.to_frame("r").select(_split_reasons(pl.col("r"))).to_series()


def row_hashes(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit hash of each row of ``frame`` (all columns)."""
    return frame.select(pl.struct(pl.all()).hash(seed=0)).to_series()


def distinct_rows(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
    """The distinct rows of ``frame`` (in order of first appearance) and, for every row, the
    position of its distinct row; ``(frame, None)`` when rows repeat too little to be worth
    it. Rows are grouped by a hash of all columns, then checked equal, so a hash collision
    only costs the saving, never a wrong grouping."""
    size = frame.height
    if size < 2 or frame.width == 0:
        return frame, None
    hashed = row_hashes(frame).alias("h")
    first = hashed.is_first_distinct()
    n_distinct = int(first.sum())
    if n_distinct > 0.9 * size:
        return frame, None
    distinct = frame.filter(first)
    position = (
        hashed.to_frame()
        .join(
            hashed.filter(first).to_frame().with_row_index("p"),
            on="h",
            how="left",
            maintain_order="left",
        )
        .get_column("p")
    )
    same = frame.select(
        pl.all_horizontal(
            pl.col(c).eq_missing(distinct.get_column(c).gather(position)) for c in frame.columns
        )
    ).to_series()
    if not same.all():
        return frame, None
    return distinct, position


def per_value(values: pl.Series, derive: pl.Expr, dtype: pl.DataType) -> pl.Series:
    """``derive`` (an expression of the column ``v``) computed once per distinct value of
    ``values`` and mapped back to every row: string work on a low-cardinality column (brand,
    category, currency, condition) costs as many values as it has, not as many rows."""
    return per_values(values, {values.name: (derive, dtype)}).to_series()


def per_values(
    values: pl.Series, derived: Mapping[str, tuple[pl.Expr, pl.DataType]]
) -> pl.DataFrame:
    """:func:`per_value` for several derivations of one column (``name: (derive, dtype)``):
    the column's distinct values are found and located once for all."""
    uniq = values.unique().to_frame("v")
    outs = uniq.select(derive.cast(dtype).alias(name) for name, (derive, dtype) in derived.items())
    known = uniq.get_column("v").is_not_null()
    at = values.to_frame("v").select(index_of(pl.col("v"), uniq.get_column("v").filter(known)))
    mapped = outs.filter(known)[at.to_series()]
    if_null = outs.filter(~known)
    if if_null.height == 0 or not values.has_nulls():
        return mapped
    # a missing value may derive to something (a default)
    return mapped.with_columns(
        pl.when(values.is_null())
        .then(pl.lit(if_null.get_column(c)[0], dtype))
        .otherwise(pl.col(c))
        .alias(c)
        for c, (_, dtype) in derived.items()
    )


def declared_brands(values: pl.Series, keys: pl.DataFrame) -> pl.Series:
    """The protected brand each declared brand in ``values`` is, else null. ``keys``: a brand
    key (``filters.core.registry.brand_key``) and its brand, in its first two columns. Declared
    names are keyed as :func:`filters.core.textops.brand_key_expr` does: lower case, NFKD, letters
    and digits only."""
    key, brand = keys.columns[:2]
    first = keys.unique(subset=[key], keep="first", maintain_order=True)
    derive = (
        pl.col("v")
        .str.to_lowercase()
        .str.normalize("NFKD")
        .str.replace_all(r"[^\p{L}\p{N}]", "")
        .replace_strict(first.get_column(key), first.get_column(brand), default=None)
    )
    return per_value(values.cast(pl.String), derive, pl.String())


def category_keys(values: pl.Series) -> pl.Series:
    """Listing categories as the registry keys them: lower case, words joined by ``_``
    ("Home Appliances" is ``home_appliances``)."""
    key = (
        pl.col("v")
        .str.to_lowercase()
        .str.replace_all(CATEGORY_SEPARATORS, "_")
        .str.strip_chars("_")
    )
    return per_value(values.cast(pl.String), key, pl.String())


def index_of(values: pl.Expr, keys: pl.Series) -> pl.Expr:
    """The position of each value in ``keys`` (distinct), null where absent, as ``UInt32``."""
    positions = pl.int_range(keys.len(), dtype=pl.UInt32, eager=True)
    # cast: on an empty column replace_strict keeps the column's dtype
    return values.replace_strict(keys, positions, default=None, return_dtype=pl.UInt32).cast(
        pl.UInt32
    )


def spread(values: pl.Series, where: pl.Series) -> pl.Series:
    """``values`` (one per row where ``where`` holds, in order) at those rows, null at the
    others: for work done only on the rows that need it."""
    return values.gather(_spread_positions(where))


def _spread_positions(where: pl.Series) -> pl.Series:
    """Where each row's value is among the values :func:`spread` moves (null: none)."""
    return pl.select(pl.when(where).then(where.cast(pl.UInt32).cum_sum() - 1)).to_series()


def spread_columns(frame: pl.DataFrame, where: pl.Series) -> list[pl.Series]:
    """:func:`spread` of every column of ``frame``, the positions found once for all."""
    at = _spread_positions(where)
    return [c.gather(at) for c in frame.get_columns()]


def compacted(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its text in buffers of its own. A filtered or sliced text column still
    refers to the buffers of the column it came from: a memory holding a few rows of each batch
    would keep every batch's text alive."""

    def copy(col: str, dtype: pl.DataType) -> pl.Expr:
        if dtype == pl.String:
            return pl.concat_str(pl.col(col), pl.lit(""))
        if dtype == pl.List(pl.String):
            return pl.col(col).list.eval(pl.concat_str(pl.element(), pl.lit("")))
        return pl.col(col)

    return frame.select(copy(c, t) for c, t in frame.schema.items())


class RowMemo:
    """What a pure row function gave for rows it has seen, so that a row repeating one of an
    earlier batch is not computed again (sellers relist; many sell one product under one title).

    Rows are looked up by a 64-bit hash of all their columns and confirmed equal, so a hash
    collision only costs the saving. Bounded: past ``max_rows`` the oldest rows are forgotten
    (400,000 rows of the text filter take about 60 MB). A memory that finds less than
    ``min_hit_rate`` of the rows looked up in it, over the first ``judge_after`` of them, lets
    go of its rows and stops remembering: input without repeats pays for it only that long.
    Safe to share between threads (the function runs outside the lock). Not pickled (a copy
    starts empty)."""

    def __init__(
        self,
        max_rows: int = 400_000,
        *,
        min_hit_rate: float = 0.02,
        judge_after: int = 300_000,
    ) -> None:
        self.max_rows = max_rows
        self.min_hit_rate = min_hit_rate
        self.judge_after = judge_after
        self._lock = threading.Lock()
        self._tables: dict[tuple[tuple[str, str], ...], pl.DataFrame] = {}
        self._looked = 0
        self._found = 0
        self._off = False

    @property
    def active(self) -> bool:
        """Whether rows are still remembered (False once the memory has let go)."""
        return self.max_rows > 0 and not self._off

    #: the hash rows are looked up by (a test may make it collide)
    row_hashes = staticmethod(row_hashes)

    def rows(self) -> int:
        """Rows remembered (over every input schema)."""
        with self._lock:
            return sum(t.height for t in self._tables.values())

    def apply(
        self, frame: pl.DataFrame, compute: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> pl.DataFrame:
        """``compute(frame)`` (a frame aligned with ``frame``), computing only rows not
        remembered. ``compute`` must give each row's output from that row alone."""
        if frame.height == 0 or frame.width == 0 or not self.active:
            return compute(frame)
        inputs = frame.columns
        schema = tuple((c, str(t)) for c, t in frame.schema.items())
        probe = frame.with_columns(
            self.row_hashes(frame).alias("__memo_h"),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("__memo_i"),
        )
        with self._lock:
            table = self._tables.get(schema)
        found: pl.DataFrame | None = None
        new = probe
        if table is not None:
            pairs = probe.join(table, on="__memo_h", how="inner", suffix="__memo")
            same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}__memo")) for c in inputs)
            # a row computed by two batches at once is remembered twice: either will do
            found = pairs.filter(same).unique("__memo_i", keep="any")
            new = probe.join(found.select("__memo_i"), on="__memo_i", how="anti")
            with self._lock:
                self._looked += probe.height
                self._found += found.height
                if self._looked >= self.judge_after and (
                    self._found < self.min_hit_rate * self._looked
                ):
                    self._off = True
                    self._tables.clear()
        computed = compute(new.select(inputs)) if new.height else None
        if computed is not None:
            outputs = computed.columns
        else:
            assert table is not None  # every row was found in it
            outputs = [c for c in table.columns if c not in inputs and c != "__memo_h"]
        parts = []
        if found is not None and found.height:
            parts.append(found.select("__memo_i", *outputs))
        if computed is not None:
            parts.append(
                computed.with_columns(new.get_column("__memo_i")).select("__memo_i", *outputs)
            )
        if computed is not None and self.active:
            remembered = compacted(new.drop("__memo_i").hstack(computed))
            with self._lock:
                table = self._tables.get(schema)
                if table is not None:
                    remembered = pl.concat([table, remembered], rechunk=False)
                if not self._off:  # another batch may have let go meanwhile
                    self._tables[schema] = remembered.slice(-self.max_rows)
        out = pl.concat(parts, how="vertical_relaxed").sort("__memo_i")
        return out.drop("__memo_i")

    def __getstate__(self) -> dict[str, Any]:
        return {
            "max_rows": self.max_rows,
            "min_hit_rate": self.min_hit_rate,
            "judge_after": self.judge_after,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["max_rows"], min_hit_rate=state["min_hit_rate"], judge_after=state["judge_after"]
        )


def check_is_fitted(obj: Any) -> None:
    """Raise :class:`NotFittedError` unless ``obj`` has learned attributes (ending in ``_``)."""
    fitted = [k for k in vars(obj) if k.endswith("_") and not k.startswith("__")]
    if not fitted:
        raise NotFittedError(
            f"{type(obj).__name__} is not fitted yet: call fit(registry) before score()"
        )


def as_lazy(listings: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Accept eager or lazy input; stages always work on LazyFrames."""
    return listings.lazy() if isinstance(listings, pl.DataFrame) else listings


class Parameters:
    """scikit-learn's parameter protocol (``get_params``, ``set_params``, a repr of the
    non-default parameters), enough for ``sklearn.base.clone``, without importing
    scikit-learn where listings are scored: the import alone takes about a second."""

    @classmethod
    def _parameters(cls) -> dict[str, inspect.Parameter]:
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p for p in params if p.name != "self" and p.kind not in skip}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self._parameters())}

    def set_params(self, **params: Any) -> Self:
        known = self._parameters()
        for name, value in params.items():
            if name not in known:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; "
                    f"parameters: {', '.join(sorted(known)) or 'none'}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        known = self._parameters()
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if value is not known[name].default and value != known[name].default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


class Filter(Parameters):
    """Base class of all filters.

    Subclasses set ``name`` and implement ``fit`` and ``_score``. ``score`` adds exactly the
    columns returned by :meth:`output_schema`: always ``{name}_score`` (Float64 in [0, 1],
    higher = more suspicious, null = does not apply) and ``{name}_reasons`` (List[String], never
    holding NUL: reasons are joined on it), plus optional evidence columns prefixed ``{name}_``
    that the fusion model uses as features.
    """

    name: ClassVar[str] = ""
    #: evidence columns beyond score and reasons, name -> dtype
    evidence_schema: ClassVar[dict[str, pl.DataType]] = {}

    def fit(self, registry: Registry) -> Self:
        raise NotImplementedError

    @classmethod
    def output_schema(cls) -> dict[str, pl.DataType]:
        return {
            f"{cls.name}_score": pl.Float64(),
            f"{cls.name}_reasons": pl.List(pl.String()),
            **cls.evidence_schema,
        }

    #: columns :meth:`evidence` adds for :meth:`finalised` alone (which drops them)
    carried_schema: ClassVar[dict[str, pl.DataType]] = {}

    def score(
        self, listings: pl.LazyFrame | pl.DataFrame, *, statistics: pl.DataFrame | None = None
    ) -> pl.LazyFrame:
        """Return ``listings`` with this filter's columns added (lazy; collect once, later).

        :meth:`evidence` then :meth:`finalised`. ``statistics``: this filter's run statistics
        (see :meth:`statistics_from_values`); when absent, a filter that reads run statistics
        computes them over ``listings`` itself.
        """
        check_is_fitted(self)
        evidence = self.evidence(listings)
        if self.aggregate() is not None and statistics is None:
            # collected once: the statistics and the final step both read it
            evidence = evidence.collect().lazy()
            values = self.statistic_values(evidence)
            assert values is not None
            statistics = self.statistics_from_values(values).collect()
        return self.finalised(evidence, statistics)

    def evidence(self, listings: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
        """Everything this filter computes from a listing alone: its columns that do not read
        run statistics, and the :attr:`carried_schema` columns its final step reads. For a
        filter without run statistics, all of its columns."""
        check_is_fitted(self)
        return self._evidence(as_lazy(listings))

    def _evidence(self, listings: pl.LazyFrame) -> pl.LazyFrame:
        return self._score(listings)

    def finalised(
        self, evidence: pl.LazyFrame | pl.DataFrame, statistics: pl.DataFrame | None
    ) -> pl.LazyFrame:
        """The columns that read run statistics, from :meth:`evidence`'s output and this
        filter's statistics table (``statistics``; None or an empty table: the statistics know
        no listing, see :meth:`statistics_from_values`). Drops the carried columns and casts
        the output columns to :meth:`output_schema`."""
        check_is_fitted(self)
        lf = as_lazy(evidence)
        if self.aggregate() is not None:
            if statistics is None:
                statistics = self.statistics_from_partial(self.aggregate_or_raise().empty())
            lf = self._finalised(lf, statistics)
        outputs = self.output_schema()
        before = [
            c
            for c in lf.collect_schema().names()
            if c not in outputs and c not in self.carried_schema
        ]
        return lf.select(*before, *(pl.col(c).cast(t) for c, t in outputs.items()))

    def _finalised(self, evidence: pl.LazyFrame, statistics: pl.DataFrame) -> pl.LazyFrame:
        raise NotImplementedError

    def _score(
        self, listings: pl.LazyFrame, statistics: pl.DataFrame | None = None
    ) -> pl.LazyFrame:
        raise NotImplementedError

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """This filter's columns for one validated listing (a mapping with the input fields and
        the columns of the filters it depends on), equal to :meth:`finalised` of
        :meth:`evidence` on a one-row frame. A filter that reads run statistics takes a
        second argument, ``statistics``: what :meth:`record_statistics` made of them (None:
        they know no listing).

        Optional: a filter without it makes the API score single listings through frames.
        """
        raise NotImplementedError

    @classmethod
    def has_record_path(cls) -> bool:
        return cls.score_record is not Filter.score_record

    #: names of filters whose columns this filter reads (they must run first)
    depends_on: ClassVar[tuple[str, ...]] = ()

    # ---- run statistics (see filters/aggregates.py)

    def aggregate(self) -> GroupSums | GroupQuantiles | None:
        """The mergeable aggregate of :meth:`statistic_values` this filter's final step reads,
        or None if it reads no run statistics."""
        return None

    def aggregate_or_raise(self) -> GroupSums | GroupQuantiles:
        agg = self.aggregate()
        if agg is None:
            raise TypeError(f"{type(self).__name__} reads no run statistics")
        return agg

    def statistic_values(self, evidence: pl.LazyFrame) -> pl.LazyFrame | None:
        """Per-listing values that run statistics are aggregated from, read from
        :meth:`evidence`'s output (listings that passed validation), or None if the filter
        needs none."""
        return None

    def statistics_from_partial(self, partial: pl.DataFrame) -> pl.DataFrame:
        """This filter's statistics table from a merged partial of :meth:`aggregate`."""
        raise NotImplementedError

    def statistics_from_values(self, values: pl.LazyFrame) -> pl.LazyFrame:
        """Aggregate :meth:`statistic_values` of one set of listings into the statistics table."""
        agg = self.aggregate_or_raise()
        return self.statistics_from_partial(agg.partial(values.collect())).lazy()

    def record_statistics(self, statistics: pl.DataFrame) -> Any:
        """The statistics table in the form :meth:`score_record` reads (built once per run)."""
        return None
