from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest

from pipelines.registry import Registry, default_registry_dir, load_registry

TINY_BRANDS = """brand,category,reference_price,aliases
Rolex,watches,9500,劳力士
Gucci,bags,1800,GG|古驰
Gucci,shoes,800,GG|古驰
Nike,shoes,120,耐克
Louis Vuitton,bags,2200,LV|路易威登
Hermès,bags,9000,Hermes|爱马仕
Apple,electronics,999,iPhone|AirPods
Coach,bags,350,
Shell,lubricants,35,
Omega,watches,6000,
"""


@pytest.fixture(scope="session")
def tiny_registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    (root / "brands.csv").write_text(TINY_BRANDS, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_registry(tiny_registry_dir: Path) -> Registry:
    return load_registry(tiny_registry_dir)


@pytest.fixture(scope="session")
def seed_registry() -> Registry:
    return load_registry(default_registry_dir())


def listings(**columns: Sequence[object]) -> pl.DataFrame:
    """A listings frame with defaults for the required columns."""
    n = len(next(iter(columns.values())))
    base: dict[str, Sequence[object]] = {
        "listing_id": [f"L{i}" for i in range(n)],
        "title": ["plain item"] * n,
        "price": [10.0] * n,
    }
    base.update(columns)
    return pl.DataFrame(base, strict=False)
