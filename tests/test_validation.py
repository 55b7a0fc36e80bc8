"""The validation table: both paths (a batch through polars, one listing in Python) read one
table of rules, and give every listing the same status and error, word for word."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.record import coerce_record, validated_record
from pipelines.schema import conform, validated_listings
from pipelines.validation import RULE_NAMES, RULES

IDS = st.one_of(st.none(), st.sampled_from(["", "  ", "a1", "b2"]))
TITLES = st.one_of(st.none(), st.sampled_from(["", " ", "Gucci bag", "mug"]))
PRICES = st.one_of(
    st.none(),
    st.sampled_from(["12", "0", "-3", "€49,90", "$1,850", "1.299,00 €", "kr 100", "¥300", "abc"]),
    st.floats(allow_nan=True, allow_infinity=True),
)
CURRENCIES = st.one_of(st.none(), st.sampled_from(["", "usd", " EUR ", "JPY", "XXX", "sek"]))


def _row(listing_id: Any, title: Any, price: Any, currency: Any) -> dict[str, Any]:
    return {"listing_id": listing_id, "title": title, "price": price, "currency": currency}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(IDS, TITLES, PRICES, CURRENCIES), min_size=1, max_size=6))
def test_one_listing_and_a_batch_give_the_same_errors(rows: list[tuple[Any, ...]]) -> None:
    config = Settings()
    listings = [_row(*r) for r in rows]
    # one listing at a time: each is the first of its id, as the batch sees it alone
    for listing in listings:
        one = validated_record(coerce_record(listing, config), config)
        kind = pl.Float64 if isinstance(listing["price"], float) else pl.String
        frame = pl.DataFrame(
            [listing],
            schema={"listing_id": pl.String, "title": pl.String, "price": kind,
                    "currency": pl.String},
        )  # fmt: skip
        batch = validated_listings(conform(frame, source="t", settings=config).lazy(), config)
        got = batch.collect().row(0, named=True)
        assert (one["status"], one["error"], one["currency"]) == (
            got["status"],
            got["error"],
            got["currency"],
        ), listing


def test_every_rule_is_named_once_and_in_order() -> None:
    assert tuple(r.name for r in RULES) == RULE_NAMES
    assert len(set(RULE_NAMES)) == len(RULE_NAMES)
    for rule in RULES:
        assert rule.messages[-1][0] is None, f"{rule.name}: its last message needs no condition"


def test_a_listing_breaking_several_rules_lists_them_in_the_table_order() -> None:
    config = Settings()
    rec = coerce_record({"listing_id": " ", "title": "", "price": "€5", "currency": "USD"}, config)
    error = validated_record(rec, config)["error"]
    assert error is not None
    assert [part.split(":", 1)[0] for part in error.split("; ")] == [
        "id_present",
        "title_present",
        "currency_agrees",
    ]
    assert "price €5 is in EUR, but currency is USD" in error
