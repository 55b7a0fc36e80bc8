"""Exports as marketplaces and spreadsheets write them: separators, encodings, byte-order marks,
blank lines, their own headers, prices as people type them and conditions as shops name them.

The files under ``tests/data/`` were written by Python's ``csv`` module with the dialects those
tools use (Excel's CRLF, semicolons, tabs) and encoded as they encode (Windows-1252, Latin-1,
UTF-16 with a byte-order mark): see each test for what it holds.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.api import Scorer
from pipelines.cli import main
from pipelines.config import Settings, load_settings
from pipelines.errors import FakestopError, SchemaError
from pipelines.io.csv import csv_format, sniff_separator
from pipelines.prices import parse_price, parsed_prices
from pipelines.registry import default_registry_dir
from pipelines.run import run_score
from pipelines.schema import PARSE_ERROR, read_listings
from pipelines.stages import ScoringPlan, score_frame

DATA = Path(__file__).parent / "data"
GERMAN = {
    "listing_id": "Artikelnummer",
    "title": "Titel",
    "price": "Preis",
    "currency": "Währung",
    "condition": "Zustand",
    "seller_id": "Verkäufer",
}


@pytest.fixture(scope="module")
def seed_plan() -> ScoringPlan:
    from pipelines.registry import load_registry

    return ScoringPlan.build(load_registry(default_registry_dir()))


def scored(path: Path | str, plan: ScoringPlan, settings: Settings | None = None) -> pl.DataFrame:
    if settings is not None:
        plan = ScoringPlan(
            registry=plan.registry,
            filters=plan.filters,
            fusion=plan.fusion,
            thresholds=plan.thresholds,
            settings=settings,
        )
    return score_frame(read_listings(path, plan.settings), plan)


def rows(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["listing_id"]: r for r in frame.iter_rows(named=True)}


# ---------------------------------------------------------------- the fixtures


def test_german_shop_export_cp1252_semicolons_crlf_decimal_commas(seed_plan: ScoringPlan) -> None:
    path = DATA / "shop_export_de_cp1252.csv"
    assert b"\r\n\r\n" in path.read_bytes() and b"\xe4" in path.read_bytes()  # blank lines, ä
    settings = Settings(columns=GERMAN, encoding="cp1252")
    out = scored(path, seed_plan, settings)
    # five listings, blank lines skipped, the quoted field with ; and a line break kept whole
    assert out.height == 5
    got = rows(out)
    assert got["DE-1003"]["title"] == "Kaffeebecher; weiß\r\n2er Set"
    assert [got[i]["price"] for i in sorted(got)] == [89.0, 1299.0, 12.5, 2450.0, 49.0]
    assert got["DE-1002"]["price_raw"] == "1.299,00 €"
    assert got["DE-1003"]["currency"] == "USD"  # no currency, no mark: the default
    assert [got[i]["condition"] for i in sorted(got)] == ["new", "used", "new", "used", "used"]
    assert set(out.get_column("status")) == {"ok"}
    assert got["DE-1001"]["decision"] == "block"  # a €89 "Replika" Submariner
    assert "Verkäufer" not in out.columns and got["DE-1005"]["seller_id"] == "sneaker_hh"


def test_marketplace_export_utf8_bom_crlf_prices_and_conditions(seed_plan: ScoringPlan) -> None:
    path = DATA / "marketplace_utf8_bom.csv"
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    out = scored(path, seed_plan)
    got = rows(out)
    assert list(got) == ["us-1", "us-2", "us-3", "us-4", "us-5", "us-6"]
    assert out.columns[:3] == ["listing_id", "title", "price"]
    assert [got[i]["price"] for i in got] == [50.0, 1299.0, 1850.0, 49.9, 120.0, 12.5]
    assert [got[i]["currency"] for i in got] == ["USD", "USD", "USD", "EUR", "USD", "GBP"]
    assert [got[i]["condition"] for i in got] == [
        "new",
        "used",
        "refurbished",
        "used",
        "parts",
        "new",
    ]
    assert set(out.get_column("status")) == {"ok"}
    # an unknown condition is priced as new and says so
    assert got["us-6"]["reasons"][-1] == (
        'condition "Like a dream" is not a known condition: priced as new'
    )
    assert got["us-1"]["decision"] == "block"
    # sold for parts: the price is not compared with an iPhone's
    assert got["us-5"]["price_score"] in (None, 0.0)
    assert any("not compared" in r for r in got["us-5"]["reasons"] or [])


def test_french_latin1_tab_separated_export(seed_plan: ScoringPlan) -> None:
    path = DATA / "export_fr_latin1_tabs.csv"
    # read as UTF-8 every row with an accent is refused for its bytes, and said so
    as_utf8 = read_listings(path)
    assert as_utf8.get_column(PARSE_ERROR).drop_nulls().str.contains("invalid UTF-8").all()
    out = scored(path, seed_plan, Settings(encoding="latin-1"))
    got = rows(out)
    assert got["fr-1"]["title"] == "Montre Rolex Datejust réplica"
    assert [got[i]["price"] for i in got] == [95.0, 7500.0, 34.9]
    assert [got[i]["condition"] for i in got] == ["new", "used", "used"]
    assert set(out.get_column("status")) == {"ok"}
    assert csv_format(path).separator == "\t"


def test_excel_unicode_text_is_utf16_with_a_byte_order_mark(seed_plan: ScoringPlan) -> None:
    path = DATA / "excel_unicode_text_utf16.csv"
    fmt = csv_format(path)
    assert (fmt.encoding, fmt.separator) == ("utf-16-le", "\t")
    got = rows(scored(path, seed_plan))
    assert got["jp-1"]["title"] == "ロレックス サブマリーナ スーパーコピー"
    assert [got[i]["price"] for i in got] == [8800.0, 198000.0]
    assert [got[i]["currency"] for i in got] == ["JPY", "JPY"]


def test_ndjson_export_with_nested_fields(seed_plan: ScoringPlan, tmp_path: Path) -> None:
    path = DATA / "api_export_nested.ndjson"
    out = scored(path, seed_plan)
    got = rows(out)
    assert list(got) == ["api-1", "api-2", "api-3"]  # the blank line is skipped
    assert [got[i]["price"] for i in got] == [45.0, 649.0, 1299.0]
    # polars reads a column of numbers and text as text: 649.0 is "649"
    assert [got[i]["price_raw"] for i in got] == ["$45.00", "649", "1.299,00 €"]
    assert [got[i]["condition"] for i in got] == ["new", "used", "new"]
    assert set(out.get_column("status")) == {"ok"}
    # the nested fields are carried through, and a CSV output holds them as JSON
    assert {"seller", "shipping", "photos"} <= set(out.columns)
    run_score(path, seed_plan, tmp_path / "o.csv", quiet=True)
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    assert json.loads(first["shipping"]) == {"from": "CN", "days": [7, 21]}
    assert json.loads(first["photos"]) == ["a.jpg", "b.jpg"]


# ---------------------------------------------------------------- CSV dialects


def test_blank_lines_are_skipped_not_quarantined(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes(b"\n  \nlisting_id,title,price\n\n1,a,2\n   \n\t\n2,b,3\n\n\n")
    frame = read_listings(p)
    assert frame.get_column("listing_id").to_list() == ["1", "2"]
    assert frame.get_column(PARSE_ERROR).null_count() == 2
    # a blank line inside a quoted field is part of the value
    p.write_bytes(b'listing_id,title,price\n1,"two\n\nparagraphs",2\n\n2,b,3\n')
    assert read_listings(p).get_column("title").to_list() == ["two\n\nparagraphs", "b"]
    # the forgiving reader (after a ragged record) skips them alike and names file lines
    p.write_bytes(b"listing_id,title,price\n\n1,a,2,extra\n\n2,b,3\n")
    frame = read_listings(p)
    assert frame.get_column("listing_id").to_list() == ["1", "2"]
    assert frame.get_column(PARSE_ERROR).to_list() == ["line 3: expected 3 fields, got 4", None]


@pytest.mark.parametrize(
    ("sample", "separator"),
    [
        ("id;title;price\n1;Gucci, bag;49,90\n2;lamp;5\n", ";"),
        ("id,title,price\n1,Gucci; bag,49.90\n", ","),
        ("id\ttitle\tprice\n1\ta, b; c\t3\n", "\t"),
        ("id|title|price\n1|x, y|3\n", "|"),
        ('"id";"title";"price"\n"1";"a,b,c,d";"1,5"\n', ";"),
        ("just one column\n", ","),
    ],
)
def test_separator_sniffing(sample: str, separator: str) -> None:
    assert sniff_separator(sample) == separator


def test_semicolon_export_was_refused_and_is_now_read(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text("listing_id;title;price\n1;Gucci bag;49,90\n2;lamp;5\n", encoding="utf-8")
    frame = read_listings(p)
    assert frame.get_column("price").to_list() == [49.9, 5.0]
    # a separator given is used as given
    with pytest.raises(SchemaError, match="missing required column"):
        read_listings(p, Settings(csv_separator=","))


def test_encoding_refusals_are_one_clear_line(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes(codecs.BOM_UTF16_LE + "listing_id,title,price\n".encode("utf-16-le"))
    with pytest.raises(SchemaError, match="UTF-16-LE byte-order mark, but its encoding is given"):
        read_listings(p, Settings(encoding="cp1252"))
    assert read_listings(p, Settings(encoding="utf-16")).height == 0
    p.write_bytes("listing_id,title,price\n1,a,2\n".encode("utf-16-le"))
    with pytest.raises(SchemaError, match="UTF-16 or UTF-32 text without a byte-order mark"):
        read_listings(p)
    assert read_listings(p, Settings(encoding="utf-16-le")).get_column("price").to_list() == [2.0]
    with pytest.raises(FakestopError, match="not a known text encoding"):
        Settings().with_input_options(encoding="klingon")


def test_bytes_invalid_in_the_given_encoding_quarantine_their_row(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    # 0x81 is undefined in Windows-1252; 0x80 is its euro sign
    p.write_bytes(b"listing_id,title,price\n1,caf\xe9,\x803\n2,bad \x81 byte,4\n")
    frame = read_listings(p, Settings(encoding="cp1252"))
    assert frame.get_column("title").to_list()[0] == "café"
    assert frame.get_column("price").to_list()[0] == 3.0
    assert frame.get_column(PARSE_ERROR).to_list() == [
        None,
        "line 3: bytes that are not valid cp1252",
    ]


# ---------------------------------------------------------------- headers


def test_headers_match_ignoring_case_and_separators(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text("Listing_ID,Title,PRICE,seller-id,Extra Col\n1,a,2,s,x\n", encoding="utf-8")
    frame = read_listings(p)
    assert {"listing_id", "title", "price", "seller_id", "Extra Col"} <= set(frame.columns)
    p.write_text("Listing ID,listing_id,Title,Price\n1,2,a,3\n", encoding="utf-8")
    # an exact name wins; the other is an extra column
    assert read_listings(p).get_column("listing_id").to_list() == ["2"]
    p.write_text("Title,TITLE,listing_id,price\na,b,1,2\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="'Title', 'TITLE' all read as title"):
        read_listings(p)


def test_columns_mapping_from_the_command_line_and_the_config(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "l.csv"
    p.write_text("Item,Name,Cost\n1,Gucci bag,49.9\n", encoding="utf-8")
    args = ["score", str(p), "--registry", str(tiny_registry_dir), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a.parquet")]) == 2
    assert "missing required column(s) listing_id, title, price" in capsys.readouterr().err
    mapping = "listing_id=Item,title=Name,price=cost"
    assert main([*args, "--out", str(tmp_path / "a.parquet"), "--columns", mapping]) == 0
    out = pl.read_parquet(tmp_path / "a.parquet")
    assert out.select("listing_id", "title", "price").row(0) == ("1", "Gucci bag", 49.9)
    config = tmp_path / "c.toml"
    config.write_text('[columns]\nlisting_id = "Item"\ntitle = "Name"\nprice = "Cost"\n')
    assert main([*args, "--out", str(tmp_path / "b.parquet"), "--config", str(config)]) == 0
    assert pl.read_parquet(tmp_path / "b.parquet").get_column("title").to_list() == ["Gucci bag"]
    # a mapped header that is not there, or a mapping that collides, is one clear line
    assert main([*args, "--out", str(tmp_path / "c.parquet"), "--columns", "title=Nom"]) == 2
    assert "--columns title=Nom: no column 'Nom'" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "c.parquet"), "--columns", "titel=Name"]) == 2
    assert "--columns.titel is not a listing column" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "c.parquet"), "--columns", "title"]) == 2
    assert "expected COLUMN=HEADER pairs" in capsys.readouterr().err


# ---------------------------------------------------------------- prices


@pytest.mark.parametrize(
    ("price", "currency", "value", "settled"),
    [
        ("1,299.00", None, 1299.0, "USD"),
        ("€49,90", None, 49.9, "EUR"),
        ("$1,850", None, 1850.0, "USD"),
        ("1.299,00 €", None, 1299.0, "EUR"),
        ("1.299 €", None, 1299.0, "EUR"),  # a euro price: the point groups thousands
        ("1.299", "USD", 1.299, "USD"),  # a dollar price: the point is the decimal mark
        ("1.299", "EUR", 1299.0, "EUR"),
        ("1,850", "EUR", 1.85, "EUR"),
        ("0,299", "USD", 0.299, "USD"),
        ("CHF 1'299.–", None, 1299.0, "CHF"),
        ("1 299,00 zł", None, 1299.0, "PLN"),
        ("₹1,00,000", None, 100000.0, "INR"),
        ("EUR 12,50", "eur", 12.5, "EUR"),
        ("US$ 45", None, 45.0, "USD"),
        ("$ 45 USD", None, 45.0, "USD"),
        ("49,-", "EUR", 49.0, "EUR"),
        ("¥8,800", "JPY", 8800.0, "JPY"),
        ("¥300", "CNY", 300.0, "CNY"),
    ],
)
def test_prices_as_people_write_them(
    tiny_registry_dir: Path, price: str, currency: str | None, value: float, settled: str
) -> None:
    scorer = Scorer.from_registry(tiny_registry_dir)
    listing = {"listing_id": "x", "title": "desk lamp", "price": price, "currency": currency}
    one = scorer.score_one(listing)
    frame = scorer.score(pl.DataFrame([listing], schema_overrides={"currency": pl.String}))
    assert one.status == "ok" and frame.get_column("status").item() == "ok"
    assert frame.get_column("price").item() == pytest.approx(value)
    assert frame.get_column("currency").item() == settled
    assert frame.get_column("price_raw").item() == one.price_raw == price


@pytest.mark.parametrize(
    ("price", "currency", "message"),
    [
        ("€49,90", "USD", "currency_agrees: price €49,90 is in EUR, but currency is USD"),
        ("$1,850", "GBP", "currency_agrees: price $1,850 is in USD, CAD, AUD"),
        ("¥300", None, "currency_agrees: price ¥300 may be in JPY, CNY; the currency column"),
        ("kr 1.299", None, "may be in SEK, NOK, DKK, ISK"),
        ("ca. 40", None, "price_positive: price ca. 40 is not a finite number > 0"),
        ("1,2,3", None, "price_positive: price 1,2,3 is not"),
        ("$49 EUR", None, "price_positive: price $49 EUR is not"),
        ("49.90 XYZ", None, "currency_known: currency XYZ has no configured rate"),
    ],
)
def test_prices_that_cannot_be_used_are_quarantined_and_kept(
    tiny_registry_dir: Path, price: str, currency: str | None, message: str
) -> None:
    scorer = Scorer.from_registry(tiny_registry_dir, on_error="quarantine")
    listing = {"listing_id": "x", "title": "desk lamp", "price": price, "currency": currency}
    one = scorer.score_one(listing)
    frame = scorer.score(pl.DataFrame([listing], schema_overrides={"currency": pl.String}))
    assert one.status == "quarantined" and message in (one.error or "")
    assert frame.get_column("error").item() == one.error
    assert frame.get_column("price_raw").item() == one.price_raw == price


def test_price_locale_decides_the_ambiguous_case(tmp_path: Path, tiny_registry_dir: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text('listing_id,title,price\n1,a,1.299\n2,b,"1,299"\n3,c,"12,50"\n4,d,1.5\n')
    assert read_listings(p).get_column("price").to_list() == [1.299, 1299.0, 12.5, 1.5]
    comma = read_listings(p, Settings(price_locale="comma")).get_column("price").to_list()
    assert comma == [1299.0, 1.299, 12.5, 1.5]
    point = read_listings(p, Settings(price_locale="point")).get_column("price").to_list()
    assert point == [1.299, 1299.0, 12.5, 1.5]
    config = tmp_path / "c.toml"
    config.write_text('[input]\nprice_locale = "comma"\n')
    assert load_settings(config).price_locale == "comma"
    out = tmp_path / "o.parquet"
    argv = ["score", str(p), "--registry", str(tiny_registry_dir), "--out", str(out), "--quiet"]
    assert main([*argv, "--price-locale", "comma"]) == 0
    assert pl.read_parquet(out).get_column("price").to_list() == comma


def test_an_unreadable_price_is_kept_in_price_raw_in_every_output(
    tmp_path: Path, tiny_registry_dir: Path
) -> None:
    p = tmp_path / "l.csv"
    p.write_text('listing_id,title,price\n1,a,"about 40"\n2,b,12\n', encoding="utf-8")
    run_score(p, Scorer.from_registry(tiny_registry_dir).plan, tmp_path / "o.parquet", quiet=True)
    out = pl.read_parquet(tmp_path / "o.parquet")
    assert out.select("price", "price_raw", "status").rows() == [
        (None, "about 40", "quarantined"),
        (12.0, "12", "ok"),
    ]


# ---------------------------------------------------------------- conditions


def test_condition_synonyms_are_configurable(tmp_path: Path, tiny_registry_dir: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[conditions]\n"like new" = 0.8\n'
        '[condition_synonyms]\n"Mint in box" = "new"\n"Gently loved" = "like new"\n'
    )
    scorer = Scorer.from_registry(tiny_registry_dir, config=config)
    conditions = ["Mint in box", "gently-loved", "Used - Like New", "Like new", "pre-owned"]
    frame = pl.DataFrame(
        {
            "listing_id": [str(i) for i in range(5)],
            "title": ["lamp"] * 5,
            "price": [3.0] * 5,
            "condition": conditions,
        }
    )
    out = scorer.score(frame)
    assert out.get_column("condition").to_list() == [
        "new",
        "like new",
        "used",
        "like new",
        "used",
    ]
    for listing, row in zip(frame.to_dicts(), out.iter_rows(named=True), strict=True):
        assert scorer.score_one(listing).reasons == tuple(row["reasons"])
    config.write_text('[condition_synonyms]\n"gently loved" = "like new"\n')
    with pytest.raises(FakestopError, match=r"condition_synonyms\.gently loved must name a"):
        load_settings(config)


def test_an_unknown_condition_is_scored_as_new_with_a_reason(tiny_registry_dir: Path) -> None:
    scorer = Scorer.from_registry(tiny_registry_dir)
    listing = {"listing_id": "x", "title": "Rolex Submariner", "price": 900.0, "condition": "??"}
    one = scorer.score_one(listing)
    assert one.status == "ok"
    assert one.reasons[-1] == 'condition "??" is not a known condition: priced as new'
    new = scorer.score_one({**listing, "condition": "new"})
    assert (one.risk, one.decision) == (new.risk, new.decision)
    assert one.reasons[:-1] == new.reasons[: len(one.reasons) - 1]


def test_sold_for_parts_is_not_compared_with_the_brand_price(tiny_registry_dir: Path) -> None:
    scorer = Scorer.from_registry(tiny_registry_dir)
    base = {"listing_id": "x", "title": "Rolex Submariner", "price": 300.0}
    new = scorer.score_one({**base, "condition": "new"})
    parts = scorer.score_one({**base, "condition": "For parts or not working"})
    assert new.price_score == 1.0
    assert not parts.price_score
    assert any("price not compared with Rolex's" in r for r in parts.reasons)
    frame = scorer.score(pl.DataFrame([{**base, "condition": "spares or repair"}]))
    assert frame.get_column("price_score").item() in (None, 0.0)
    assert tuple(frame.get_column("reasons").item()) == parts.reasons


def test_readme_condition_list_is_what_the_code_knows() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for condition in Settings().conditions:
        assert f"`{condition}`" in readme


# ---------------------------------------------------------------- one rule, both paths

PRICE_TEXT = st.lists(
    st.sampled_from(
        list("0123456789") * 3
        + [".", ",", " ", "\u00a0", "'", "-", "+", "e", "$", "€", "£", "¥", "EUR", "usd", "kr"]
        + [",-", ".–", "—", "R$", "US$", "zł", "Fr.", "CHF", "₹", "abc", "inf", "nan", "_"]
        + ["\t", "’", "\u202f", "\u2009", "1.299", "0,", "12,50", "1,000"]
    ),
    min_size=0,
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    texts=st.lists(PRICE_TEXT, min_size=1, max_size=20),
    currency=st.sampled_from([None, "EUR", "USD", " jpy ", "SEK", ""]),
    locale=st.sampled_from(["auto", "point", "comma"]),
)
def test_batch_prices_equal_the_one_listing_rule(
    texts: list[str], currency: str | None, locale: str
) -> None:
    series = pl.Series(texts, dtype=pl.String)
    currencies = pl.Series([currency] * len(texts), dtype=pl.String)
    values, signs = parsed_prices(series, currencies, locale)
    for text, value, sign in zip(texts, values.to_list(), signs.to_list(), strict=True):
        want, want_sign = parse_price(text, locale, currency)
        assert sign == want_sign, text
        if want is None or value is None:
            assert value is want, text
        else:
            assert value == pytest.approx(want, nan_ok=True), text


def test_the_price_rules_module_examples_hold() -> None:
    import doctest

    import pipelines.conditions
    import pipelines.prices

    for module in (pipelines.prices, pipelines.conditions):
        assert doctest.testmod(module).failed == 0
