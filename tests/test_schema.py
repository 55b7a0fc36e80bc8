"""Readers and row rules: every input row comes out, bad rows say which rule they broke."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.errors import SchemaError
from pipelines.schema import read_listings, resolve_sources, validated_listings
from tests.conftest import listings


def check(frame: pl.DataFrame) -> pl.DataFrame:
    return validated_listings(frame.lazy(), Settings()).collect()


def errors_of(frame: pl.DataFrame) -> list[str | None]:
    return check(frame).get_column("error").to_list()


@pytest.mark.parametrize(
    ("columns", "rule"),
    [
        ({"listing_id": [None]}, "id_present"),
        ({"listing_id": ["  "]}, "id_present"),
        ({"title": [None]}, "title_present"),
        ({"title": ["   "]}, "title_present"),
        ({"price": [0.0]}, "price_positive"),
        ({"price": [-3.0]}, "price_positive"),
        ({"price": [math.nan]}, "price_positive"),
        ({"price": [math.inf]}, "price_positive"),
        ({"price": [None]}, "price_positive"),
        ({"currency": ["XYZ"]}, "currency_known"),
    ],
)
def test_each_rule_quarantines_with_its_name(columns: dict[str, list[object]], rule: str) -> None:
    out = check(listings(**columns))
    assert out.get_column("status").to_list() == ["quarantined"]
    assert rule in out.get_column("error").item()


def test_valid_row_passes_and_defaults_are_filled() -> None:
    out = check(listings(currency=[None], condition=["Used "]))
    assert out.get_column("status").to_list() == ["ok"]
    assert out.get_column("error").to_list() == [None]
    assert out.get_column("currency").to_list() == ["USD"]
    assert out.get_column("condition").to_list() == ["used"]


def test_duplicate_ids_keep_the_first_and_quarantine_later_ones() -> None:
    out = check(listings(listing_id=["a", "b", "a", "a"]))
    assert out.get_column("status").to_list() == ["ok", "ok", "quarantined", "quarantined"]
    assert "id_unique: listing_id a already seen" in out.get_column("error")[2]


def test_error_names_every_broken_rule() -> None:
    err = errors_of(listings(title=[""], price=[-1.0], currency=["ZZZ"]))[0]
    assert err is not None
    for rule in ("title_present", "price_positive", "currency_known"):
        assert rule in err


def test_csv_with_bad_bytes_and_ragged_rows_loses_only_those_rows(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes(
        b"listing_id,title,price\n"
        b"1,Gucci bag,10\n"
        b"2,bad \xff\xfe bytes,5\n"
        b"3,too,many,fields\n"
        b"4,fine,7.5\n"
    )
    frame = read_listings(p)
    out = check(frame)
    assert out.get_column("listing_id").to_list() == ["1", "2", "3", "4"]
    assert out.get_column("status").to_list() == ["ok", "quarantined", "quarantined", "ok"]
    errors = out.get_column("error").to_list()
    assert "invalid UTF-8" in errors[1] and "line 3" in errors[1]
    assert "expected 3 fields, got 4" in errors[2]


def test_csv_with_unparseable_price_keeps_the_raw_text_in_the_reason(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text("listing_id,title,price\n1,a,twelve\n2,b,12\n")
    out = check(read_listings(p))
    assert out.get_column("status").to_list() == ["quarantined", "ok"]
    assert "price twelve is not" in out.get_column("error")[0]


def test_ndjson_with_a_bad_line_keeps_the_others(tmp_path: Path) -> None:
    p = tmp_path / "l.ndjson"
    good = [json.dumps({"listing_id": str(i), "title": "x", "price": 3.0}) for i in range(3)]
    p.write_text("\n".join([good[0], "{not json", good[1], good[2]]) + "\n")
    out = check(read_listings(p))
    assert out.height == 4
    assert out.get_column("status").to_list() == ["ok", "quarantined", "ok", "ok"]
    assert "line 2: invalid JSON" in out.get_column("error")[1]


def test_parquet_directory_and_glob_read_every_part(tmp_path: Path) -> None:
    d = tmp_path / "parts"
    d.mkdir()
    for i in range(3):
        listings(listing_id=[f"{i}a", f"{i}b"]).write_parquet(d / f"p{i}.parquet")
    assert read_listings(d).height == 6
    assert read_listings(str(d / "p*.parquet")).get_column("__row").to_list() == list(range(6))


def test_unknown_extra_columns_are_kept(tmp_path: Path) -> None:
    p = tmp_path / "l.parquet"
    listings(shop_url=["https://x"]).write_parquet(p)
    assert read_listings(p).get_column("shop_url").to_list() == ["https://x"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("listing_id,title\n1,a\n", "missing required column(s) price"),
    ],
)
def test_fatal_input_problems_raise_schema_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    p = tmp_path / "l.csv"
    if content is not None:
        p.write_text(content)
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_listings(p)


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "l.xlsx"
    p.write_text("x")
    with pytest.raises(SchemaError, match="unknown format"):
        resolve_sources(p)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["a", "b", "c", " ", "d"])),
            st.one_of(st.none(), st.text(max_size=8)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.sampled_from([None, "USD", "EUR", "???"]),
            st.sampled_from([None, "new", "USED", "mint"]),
        ),
        max_size=25,
    )
)
def test_validation_never_loses_or_reorders_rows(rows: list[tuple[object, ...]]) -> None:
    frame = (
        pl.DataFrame(
            rows,
            schema={
                "listing_id": pl.String,
                "title": pl.String,
                "price": pl.Float64,
                "currency": pl.String,
                "condition": pl.String,
            },
            orient="row",
        )
        .with_row_index("__row")
        .with_columns(
            pl.lit(None, dtype=pl.String).alias("__parse_error"),
            pl.col("price").cast(pl.String).alias("__price_raw"),
        )
    )
    out = check(frame)
    assert out.height == frame.height
    assert out.get_column("__row").to_list() == list(range(frame.height))
    ok = out.get_column("status") == "ok"
    # an ok row satisfies every rule; a quarantined row has a reason
    assert (out.filter(~ok).get_column("error").is_not_null()).all()
    good = out.filter(ok)
    assert (good.get_column("price") > 0).all()
    assert good.get_column("listing_id").is_unique().all()
