"""Contact strings are normalised so that two ways of writing one contact agree, tested on
formats made by other tools: Google's libphonenumber example numbers of many countries, written
in its own international, national and E.164 forms; e-mail and URL forms as people write them."""

from __future__ import annotations

import phonenumbers
import polars as pl
import pytest

from pipelines.contacts import contact_keys, email_key, handle_key, phone_key, url_key

REGIONS = ["CN", "HK", "GB", "US", "DE", "FR", "JP", "IN", "BR", "TR", "AE", "NG", "VN", "IT"]


def keys(*texts: str) -> list[set[str]]:
    frame = pl.DataFrame({"row": list(range(len(texts))), "text": list(texts)})
    found = contact_keys(frame, "text")
    return [
        set(found.filter(pl.col("row") == i).get_column("key").to_list()) for i in range(len(texts))
    ]


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("kind", ["MOBILE", "FIXED_LINE"])
def test_one_number_in_libphonenumbers_formats_has_one_key(region: str, kind: str) -> None:
    number = phonenumbers.example_number_for_type(
        region, getattr(phonenumbers.PhoneNumberType, kind)
    )
    assert number is not None
    fmt = phonenumbers.PhoneNumberFormat
    international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, fmt.E164)
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    out_of_country = "00" + e164[1:]
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in international)
    found = keys(
        f"contact {international} anytime",
        f"WhatsApp:{e164}",
        f"Tel: {national}",
        f"call {out_of_country}",
        f"电话 {fullwidth}",
    )
    assert all(len(k) == 1 for k in found), (found, national)
    assert len(set.union(*found)) == 1, found


def test_numbers_that_are_not_phones_are_left_alone() -> None:
    found = keys(
        "price 1.299,00 EUR size 42 EU, 2024-05-12",
        "model CW2288-111, ref 5711/1A-010, SKU 194501234567",
        "36 x 24 x 12 cm, 100% cotton, 30 days returns",
        "+1 2",  # too short for any country
    )
    assert found == [set(), set(), set(), set()]


def test_distinct_numbers_keep_distinct_keys() -> None:
    a, b = keys("+86 138 0013 8000", "+86 138 0013 8001")
    assert a != b and len(a) == len(b) == 1


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("J.Doe+shop@GMail.com", "email:jdoe@gmail.com"),
        ("jdoe@googlemail.com", "email:jdoe@gmail.com"),
        ("jdoe (at) gmail (dot) com", "email:jdoe@gmail.com"),
        ("jdoe[at]gmail.com", "email:jdoe@gmail.com"),
        ("Sales.Team@Example.co.uk", "email:sales.team@example.co.uk"),
        ("sales.team+eu@example.co.uk", "email:sales.team@example.co.uk"),
    ],
)
def test_email_forms(written: str, key: str) -> None:
    assert email_key(written) == key
    assert keys(f"mail me: {written} thanks") == [{key}]


def test_dots_count_where_the_provider_counts_them() -> None:
    assert email_key("j.doe@outlook.com") != email_key("jdoe@outlook.com")


@pytest.mark.parametrize(
    ("written", "key"),
    [
        (
            "https://www.Shop-Lee.example/Store/?utm_source=ig&utm_medium=bio#top",
            "url:shop-lee.example/store",
        ),
        ("http://shop-lee.example/store/", "url:shop-lee.example/store"),
        ("www.shop-lee.example/store", "url:shop-lee.example/store"),
        ("shop-lee.com/store?id=7&fbclid=abc", "url:shop-lee.com/store?id=7"),
        ("https://bit.ly/3xYzAb", "url:bit.ly/3xYzAb"),
        ("https://t.me/ShopLee", "telegram:shoplee"),
        ("https://wa.me/8613800138000", "phone:13800138000"),
        ("https://api.whatsapp.com/send?phone=447911123456", "phone:7911123456"),
        ("line.me/ti/p/~shoplee88", "line:shoplee88"),
    ],
)
def test_url_forms(written: str, key: str) -> None:
    assert url_key(written) == key
    assert key in keys(f"visit {written} now")[0]


def test_a_shortened_link_keeps_its_case() -> None:
    assert url_key("bit.ly/AbC") != url_key("bit.ly/abc")


@pytest.mark.parametrize(
    "written",
    [
        "WeChat: Shop_Lee",
        "wechat id shop_lee",
        "微信：shop_lee",
        "Weixin SHOP_LEE",
        "WX: shop_lee",
        "vx:shop_lee",
    ],
)
def test_wechat_forms(written: str) -> None:
    assert keys(f"{written} for wholesale") == [{"wechat:shop_lee"}]


def test_messenger_names_that_are_ordinary_words_need_a_marker() -> None:
    assert keys("new line bags in stock", "linebacker gloves", "wax polish") == [set()] * 3
    assert keys("LINE: shoplee88", "Line ID shoplee88") == [{"line:shoplee88"}] * 2


def test_a_handle_ends_where_its_word_does() -> None:
    # handles are ASCII: a word with accents holds none, and is not cut short into one
    assert keys("Telegram @destruição") == [set()]
    assert handle_key("telegram", "destruir123") == "telegram:destruir123"


def test_phone_key_rejects_what_no_country_dials() -> None:
    assert phone_key("+999 1234 5678") is None
    assert phone_key("12-34") is None
