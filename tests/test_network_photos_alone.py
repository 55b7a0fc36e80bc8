"""Photos as seller-ring evidence: they corroborate and never link alone, because honest
dropshippers of one supplier share its product photos as an operation's shops share theirs;
the generator has such dropshippers, and the two rules that would let photos link alone are
kept as options (and shown to put dropshippers in rings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.network import NetworkSettings, find_rings
from pipelines.registry import load_registry
from seeds.network import generate_network


def _shops(photos_by_shop: dict[str, list[int]]) -> pl.DataFrame:
    """Listings with photos: photo ``k`` is one random 64-bit hash pair, shared as it is."""
    rng = np.random.default_rng(4)
    table = rng.integers(0, 2**64, (64, 2), dtype=np.uint64)
    rows = [(shop, k) for shop, ks in photos_by_shop.items() for k in ks]
    return pl.DataFrame(
        {
            "listing_id": [f"l{i}" for i in range(len(rows))],
            "seller_id": [s for s, _ in rows],
            "phash": [int(table[k, 0]) for _, k in rows],
            "dhash": [int(table[k, 1]) for _, k in rows],
        },
        schema_overrides={"phash": pl.UInt64, "dhash": pl.UInt64},
    )


def _rings(frame: pl.DataFrame, **options: object) -> list[list[str]]:
    found = find_rings(frame, settings=NetworkSettings(**options))  # type: ignore[arg-type]
    return found.rings.get_column("sellers").to_list()


def test_shared_photos_alone_never_link_by_default() -> None:
    frame = _shops({"a": [0, 1, 2, 3], "b": [0, 1, 2, 3], "c": [9]})
    found = find_rings(frame)
    assert found.rings.height == 0
    link = found.links.row(0, named=True)
    assert (link["seller_a"], link["seller_b"]) == ("a", "b")
    assert link["evidence_counts"]["photo"] == 4 and not link["strong"]
    # the weight of the photos is capped at one photo's
    assert link["strength"] == pytest.approx(NetworkSettings().weights["photo"])


def test_two_photos_link_when_asked() -> None:
    frame = _shops({"a": [0, 1], "b": [0, 1], "c": [0, 5]})
    assert _rings(frame, keys_per_kind={"photo": 2.0}) == [["a", "b"]]
    assert _rings(frame) == []


def test_a_rare_photo_links_alone_only_when_asked_and_only_if_rare() -> None:
    frame = _shops({"a": [0], "b": [0], "c": [1], "d": [1], "e": [1], "f": [7]})
    assert _rings(frame) == []
    # photo 0 is shared by 2 shops, photo 1 by 3
    assert _rings(frame, photo_alone_up_to=2) == [["a", "b"]]
    assert _rings(frame, photo_alone_up_to=3) == [["c", "d", "e"], ["a", "b"]]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, Path]:
    reg = tmp_path_factory.mktemp("registry")
    frame, _ = generate_network(6_000, 600, reg, seed=2, dropship_share=0.15)
    return frame, reg


def test_the_generator_has_honest_dropshippers_sharing_supplier_photos(
    market: tuple[pl.DataFrame, Path],
) -> None:
    frame, _ = market
    supplier = frame.filter(pl.col("photo_kind") == "supplier")
    assert supplier.height > 50
    # dropshippers are honest: no operation
    assert supplier.get_column("operation").null_count() == supplier.height
    # the same photo (hash pair) in the listings of two or more shops
    shared = supplier.group_by("phash", "dhash").agg(pl.col("seller_id").n_unique().alias("n"))
    assert shared.filter(pl.col("n") >= 2).height >= 10


def test_dropshippers_stay_out_of_rings_unless_photos_link_alone(
    market: tuple[pl.DataFrame, Path],
) -> None:
    frame, reg_dir = market
    reg = load_registry(reg_dir)
    listings = frame.drop("operation", "photo_kind", "label")
    dropshippers = frame.filter(pl.col("photo_kind") == "supplier").select("seller_id").unique()

    def dropshippers_in_rings(settings: NetworkSettings) -> int:
        rings = find_rings(listings, reg, settings=settings).rings
        members = rings.select(pl.col("sellers").explode().alias("seller_id"))
        return members.join(dropshippers, on="seller_id").height

    assert dropshippers_in_rings(NetworkSettings()) == 0
    assert dropshippers_in_rings(NetworkSettings(keys_per_kind={"photo": 2.0})) > 0
    assert dropshippers_in_rings(NetworkSettings(photo_alone_up_to=3)) > 0
