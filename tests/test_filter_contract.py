"""Common checks run over every filter in ``filters.REGISTRY`` (as scikit-learn's
``parametrize_with_checks`` does): a new filter gets them by registering itself."""

from __future__ import annotations

import math

import polars as pl
import pytest
from sklearn.base import clone

from filters import REGISTRY, Filter
from pipelines.errors import NotFittedError
from pipelines.registry import Registry

FILTERS = sorted(REGISTRY)


def sample_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "listing_id": ["a", "b", "c", "d", "e"],
            "title": [
                "Gucci Marmont bag",
                "R0lex watch",
                "sea shell necklace",
                "plain mug",
                "Nike",
            ],
            "price": [1500.0, 40.0, 12.0, 5.0, 90.0],
            "category": ["bags", "watches", "jewelry", None, "shoes"],
            "brand": [None, "Rolex", None, None, "Nike"],
            "condition": ["new", "new", "new", "used", "new"],
            "currency": ["USD", "USD", "EUR", "USD", "USD"],
            "extra": [1, 2, 3, 4, 5],
        }
    )


@pytest.fixture(params=FILTERS)
def filter_cls(request: pytest.FixtureRequest) -> type[Filter]:
    return REGISTRY[request.param]


def fitted(cls: type[Filter], registry: Registry) -> Filter:
    return cls().fit(registry)


def test_registry_names_match_classes() -> None:
    assert FILTERS, "no filters registered"
    for name, cls in REGISTRY.items():
        assert cls.name == name


def test_init_only_stores_parameters_and_clone_works(filter_cls: type[Filter]) -> None:
    f = filter_cls()
    assert not [k for k in vars(f) if k.endswith("_")], "learned state set in __init__"
    params = f.get_params()
    assert set(params) == set(vars(f))
    c = clone(f)
    assert c.get_params() == params and c is not f
    assert filter_cls.__name__ in repr(f)


def test_unfitted_filter_refuses_to_score(filter_cls: type[Filter]) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        filter_cls().score(sample_frame())


def test_fit_returns_self_with_learned_attributes(
    filter_cls: type[Filter], tiny_registry: Registry
) -> None:
    f = filter_cls()
    assert f.fit(tiny_registry) is f
    assert [k for k in vars(f) if k.endswith("_")]


def test_score_adds_exactly_the_declared_columns(
    filter_cls: type[Filter], tiny_registry: Registry
) -> None:
    frame = sample_frame()
    out = fitted(filter_cls, tiny_registry).score(frame).collect()
    expected = filter_cls.output_schema()
    assert out.columns == frame.columns + list(expected)
    for col, dtype in expected.items():
        assert out.schema[col] == dtype, col
    name = filter_cls.name
    assert set(expected) >= {f"{name}_score", f"{name}_reasons"}
    scores = out.get_column(f"{name}_score").drop_nulls()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_rows_kept_in_order_and_input_untouched(
    filter_cls: type[Filter], tiny_registry: Registry
) -> None:
    frame = sample_frame()
    out = fitted(filter_cls, tiny_registry).score(frame).collect()
    assert out.select(frame.columns).equals(frame)


def test_reordering_input_reorders_output(
    filter_cls: type[Filter], tiny_registry: Registry
) -> None:
    f = fitted(filter_cls, tiny_registry)
    frame = sample_frame()
    a = f.score(frame).collect()
    b = f.score(frame.reverse()).collect().reverse()
    assert a.equals(b)


def test_empty_frame(filter_cls: type[Filter], tiny_registry: Registry) -> None:
    out = fitted(filter_cls, tiny_registry).score(sample_frame().head(0)).collect()
    assert out.height == 0
    assert set(filter_cls.output_schema()) <= set(out.columns)


def test_lazy_and_eager_input_agree_and_are_deterministic(
    filter_cls: type[Filter], tiny_registry: Registry
) -> None:
    f = fitted(filter_cls, tiny_registry)
    frame = sample_frame()
    eager = f.score(frame).collect()
    lazy = f.score(frame.lazy()).collect()
    assert eager.equals(lazy)
    assert f.score(frame).collect().equals(eager)


def test_missing_optional_columns(filter_cls: type[Filter], tiny_registry: Registry) -> None:
    frame = sample_frame().select("listing_id", "title", "price")
    out = fitted(filter_cls, tiny_registry).score(frame).collect()
    assert out.height == frame.height


def test_parameters_follow_scikit_learns_protocol() -> None:
    from filters.text import TextFilter

    f = TextFilter(min_fuzzy_len=5)
    assert repr(f) == "TextFilter(min_fuzzy_len=5)"
    assert f.set_params(min_fuzzy_len=6) is f and f.min_fuzzy_len == 6
    with pytest.raises(ValueError, match=r"no parameter 'typo'.*min_fuzzy_len"):
        f.set_params(typo=1)
    assert clone(f).get_params() == f.get_params()


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-12)
    return a == b


def test_score_record_equals_score_on_each_row(
    filter_cls: type[Filter], tiny_registry: Registry
) -> None:
    """The one-listing path gives, row by row, what the batch path gives (with the columns of
    the filters it depends on, and the statistics of the same rows where it reads any)."""
    if not filter_cls.has_record_path():
        pytest.skip(f"{filter_cls.__name__} scores single listings through frames")
    frame = sample_frame()
    for dep in filter_cls.depends_on:
        frame = fitted(REGISTRY[dep], tiny_registry).score(frame).collect()
    f = fitted(filter_cls, tiny_registry)
    outputs = list(filter_cls.output_schema())
    if f.aggregate() is None:
        batch = f.score(frame).collect().select(outputs).to_dicts()
        single = [f.score_record(r) for r in frame.to_dicts()]
    else:
        evidence = f.evidence(frame).collect()
        values = f.statistic_values(evidence.lazy())
        assert values is not None
        stats = f.statistics_from_values(values).collect()
        batch = f.finalised(evidence, stats).collect().select(outputs).to_dicts()
        seen = f.record_statistics(stats)
        single = [f.score_record(r, seen) for r in frame.to_dicts()]  # type: ignore[call-arg]
    for i, (b, s) in enumerate(zip(batch, single, strict=True)):
        diff = {c: (b[c], s.get(c)) for c in outputs if not _close(b[c], s.get(c))}
        assert not diff, f"{filter_cls.name} row {i}: batch vs record {diff}"
