"""Prices as people write them: ``1,299.00``, ``€49,90``, ``$1,850``, ``1.299,00 €``,
``CHF 1'299.–``, ``1 299,00 zł``, ``₹1,00,000``.

One function, :func:`parse_price`, reads a price's text for the one-listing path;
:func:`parsed_prices` reads a column by the same rules (plain numbers cast by polars, the rest
cut the same way and read with polars expressions), and a property test checks that both give
the same value and currency mark for any text.

The rules, in order:

1. A plain number (``49.9``, ``1e3``, ``-5``) is that number, as ``float()`` reads it, unless it
   is the ambiguous case of rule 4.
2. A currency mark may stand before or after the number (``€``, ``US$``, ``EUR``, ``zł``...): a
   symbol, a word or any three-letter code. The mark says the price's currency
   (:func:`sign_currencies`); before and after, both must name the same one.
3. Spaces (also no-break and thin spaces) and apostrophes are always thousands separators. Where
   both ``.`` and ``,`` occur, the last one is the decimal mark. A mark that occurs more than
   once is a thousands separator. A mark followed by other than three digits is the decimal
   mark (``49,90``, ``1.5``). Thousands separators must group digits by three (or in the Indian
   way, ``1,00,000``); anything else is not a price. ``,-`` or ``.–`` at the end means no cents.
4. The ambiguous case, a lone ``.`` or ``,`` followed by exactly three digits (``1.299``,
   ``1,850``), follows ``price_locale``: ``point`` (the point is the decimal mark, ``,`` groups
   thousands), ``comma`` (the reverse), or ``auto``: the convention of the price's currency
   (its mark, else the ``currency`` column, else USD): a comma for the euro, real, rouble, lira,
   zloty, the Nordic crowns and others in :data:`COMMA_DECIMAL_CURRENCIES`, a point for the
   rest. ``$1,850`` is 1850 and ``1.299 €`` is 1299 either way; ``0,299`` is always 0.299.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import polars as pl

from filters.core.textops import strip_chars
from pipelines.config import DEFAULT_RATES

PRICE_LOCALES = ("auto", "point", "comma")

#: currency marks (lower case) -> the currencies they may stand for; the first is the one a
#: listing without a ``currency`` gets, where :data:`SIGN_DEFAULTS` allows it
CURRENCY_SIGNS: dict[str, tuple[str, ...]] = {
    "$": ("USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN"),
    "us$": ("USD",),
    "c$": ("CAD",),
    "ca$": ("CAD",),
    "a$": ("AUD",),
    "au$": ("AUD",),
    "nz$": ("NZD",),
    "hk$": ("HKD",),
    "s$": ("SGD",),
    "mx$": ("MXN",),
    "r$": ("BRL",),
    "€": ("EUR",),
    "euro": ("EUR",),
    "euros": ("EUR",),
    "£": ("GBP",),
    "¥": ("JPY", "CNY"),
    "￥": ("JPY", "CNY"),
    "円": ("JPY",),
    "jp¥": ("JPY",),
    "元": ("CNY",),
    "rmb": ("CNY",),
    "cn¥": ("CNY",),
    "₹": ("INR",),
    "rs": ("INR",),
    "rs.": ("INR",),
    "₩": ("KRW",),
    "₽": ("RUB",),
    "руб": ("RUB",),
    "руб.": ("RUB",),
    "₺": ("TRY",),
    "tl": ("TRY",),
    "zł": ("PLN",),
    "kr": ("SEK", "NOK", "DKK", "ISK"),
    "kr.": ("SEK", "NOK", "DKK", "ISK"),
    "fr.": ("CHF",),
    "sfr.": ("CHF",),
    "₪": ("ILS",),
    "฿": ("THB",),
    "₫": ("VND",),
    "₱": ("PHP",),
    "₴": ("UAH",),
    "₦": ("NGN",),
}
#: marks that stand for several currencies but mean the first where no currency is given: a
#: bare ``$`` is a US dollar, as a listing without a currency is
SIGN_DEFAULTS = frozenset({"$"})
#: currencies whose prices are written with a decimal comma (rule 4 of the module docstring)
COMMA_DECIMAL_CURRENCIES = frozenset(
    {
        "EUR", "BRL", "RUB", "TRY", "PLN", "SEK", "NOK", "DKK", "ISK", "CZK", "HUF", "RON",
        "BGN", "UAH", "ARS", "CLP", "COP", "IDR", "VND",
    }
)  # fmt: skip

#: a plain number, as the Python one-listing path and ``float()`` read it (and polars casts)
RE_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.I | re.A
)
#: the ambiguous case (rule 4): a lone mark, then exactly three digits
RE_AMBIGUOUS = r"^[+-]?[1-9][0-9]{0,2}[.,][0-9]{3}$"
_AMBIGUOUS = re.compile(RE_AMBIGUOUS)
#: characters that only ever group thousands
GROUPERS = " \u00a0\u202f\u2009'’"
#: Unicode's White_Space
_WS_CHARS = "\t\n\v\f\r \x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = f"[{_WS_CHARS}]"
#: a price is cut into the text before its first digit, the number (its first to its last
#: digit: digits, marks and thousands separators only) and the text after its last digit
NUMBER_PATTERN = f"^[0-9](?:[0-9.,{GROUPERS}]*[0-9])?$"
_NUMBER = re.compile(NUMBER_PATTERN)
#: before the number: a currency mark, a sign, a currency mark (each optional)
_BEFORE = re.compile(
    f"(?P<pre>[^0-9+\\-,]*?){_WS}*(?P<sign>[+-]?){_WS}*(?P<pre2>[^0-9+\\-.,{_WS_CHARS}]*?){_WS}*"
)
#: after it: ``,-`` (no cents), a currency mark (each optional)
_AFTER = re.compile(f"(?P<nocents>[.,][-–—])?{_WS}*(?P<post>[^0-9]*?)")


def grouped_pattern(decimal: str) -> str:
    """An integer part whose thousands are grouped by one of the marks that are not the
    decimal mark ``decimal`` (``.``, ``,`` or none): by three (``1,299,000``), or, with
    commas, the Indian way (``1,00,000``); or digits alone."""
    seps = GROUPERS + ("" if decimal == "." else ".") + ("" if decimal == "," else ",")
    alternatives = ["[0-9]+"]
    alternatives += [f"[1-9][0-9]{{0,2}}(?:[{c}][0-9]{{3}})+" for c in seps]
    if "," in seps:
        alternatives.append("[1-9][0-9]?(?:,[0-9]{2})*,[0-9]{3}")
    return "^(?:" + "|".join(alternatives) + ")$"


_GROUPED = {d: re.compile(grouped_pattern(d)) for d in (".", ",", "")}
#: a currency code: three capitals, or a configured currency's code in any case ("eur")
_CODE = re.compile(r"[A-Z]{3}")


def sign_currencies(sign: str) -> tuple[tuple[str, ...], str | None]:
    """The currencies a mark found in a price may stand for, and the one it means where the
    listing gives no currency (None: it must give one).

    Examples
    --------
    >>> sign_currencies("€"), sign_currencies("$")[1], sign_currencies("¥")
    ((('EUR',), 'EUR'), 'USD', (('JPY', 'CNY'), None))
    >>> sign_currencies("chf")
    (('CHF',), 'CHF')
    """
    found = CURRENCY_SIGNS.get(sign)
    if found is None:
        return (sign.upper(),), sign.upper()
    if len(found) == 1 or sign in SIGN_DEFAULTS:
        return found, found[0]
    return found, None


def _sign(pre: str, post: str) -> str | bool | None:
    """The currency mark around a number (lower case), None if there is none, False if the
    text around the number is not a currency mark (or two marks disagree)."""
    marks = []
    for raw in (pre, post):
        text = strip_chars(raw).lower()
        if not text:
            continue
        if text not in CURRENCY_SIGNS and not (
            _CODE.fullmatch(strip_chars(raw)) or text.upper() in DEFAULT_RATES
        ):
            return False
        marks.append(text)
    if not marks:
        return None
    if len(marks) == 2:
        first, second = (set(sign_currencies(m)[0]) for m in marks)
        if not first & second:
            return False
        # the narrower mark says more ("$ ... USD" is USD)
        return marks[0] if len(first) <= len(second) else marks[1]
    return marks[0]


def decimal_mark(num: str, decimal_comma: bool, nocents: str | None) -> str | None:
    """Which of ``.`` and ``,`` is the decimal mark of the number part of a price (rules 3
    and 4; ``""``: neither, ``None``: not a number)."""
    if nocents:
        return None if nocents in num else nocents
    dots, commas = num.count("."), num.count(",")
    if dots and commas:
        mark = "." if num.rfind(".") > num.rfind(",") else ","
    elif dots + commas == 1:
        mark = "." if dots else ","
        whole, frac = num.split(mark)
        spaced = any(ch in GROUPERS for ch in num)
        if not spaced and len(frac) == 3 and whole != "0" and (mark == ",") != decimal_comma:
            return ""  # the ambiguous case, read as thousands
    else:
        return ""
    return mark if num.count(mark) == 1 else None


def _number(num: str, decimal_comma: bool, nocents: str | None = None) -> float | None:
    """The value of the number part of a price (rules 3 and 4)."""
    dec = decimal_mark(num, decimal_comma, nocents)
    if dec is None:
        return None
    whole, frac = num.split(dec) if dec and not nocents else (num, "")
    if not re.fullmatch("[0-9]*", frac) or not _GROUPED[dec].match(whole):
        return None
    digits = re.sub("[^0-9]", "", whole)
    return float(f"{digits}.{frac}" if frac else digits)


def _decimal_comma(sign: str | None, currency: str | None, locale: str) -> bool:
    """Whether an ambiguous price is read with a decimal comma (rule 4)."""
    if locale != "auto":
        return locale == "comma"
    marks = sign_currencies(sign)[0] if sign is not None else ()
    if marks and all(c in COMMA_DECIMAL_CURRENCIES for c in marks):
        return True
    if marks and not any(c in COMMA_DECIMAL_CURRENCIES for c in marks):
        return False
    code = strip_chars(currency).upper() if currency else "USD"
    return code in COMMA_DECIMAL_CURRENCIES


def _around(
    before: str, after: str, currency: str | None, locale: str
) -> tuple[bool, str | None, str | None, bool] | None:
    """What the text around a price's number says: ``(negative, currency mark, no-cents
    mark, decimal comma)``, or None if it is not a sign and currency marks."""
    b, a = _BEFORE.fullmatch(before), _AFTER.fullmatch(after)
    if b is None or a is None or (b["pre"] and b["pre2"]):
        return None
    sign = _sign(b["pre"] or b["pre2"], a["post"])
    if sign is False:
        return None
    mark = sign if isinstance(sign, str) else None
    nocents = a["nocents"][0] if a["nocents"] else None
    return b["sign"] == "-", mark, nocents, _decimal_comma(mark, currency, locale)


def parse_price(
    text: str, locale: str = "auto", currency: str | None = None
) -> tuple[float | None, str | None]:
    """``(value, currency mark)`` of a price as written; ``(None, None)`` if it is no price.

    ``currency``: the listing's ``currency`` column, for the ambiguous case in ``auto``.

    Examples
    --------
    >>> parse_price("1,299.00"), parse_price("€49,90"), parse_price("$1,850")
    ((1299.0, None), (49.9, '€'), (1850.0, '$'))
    >>> parse_price("1.299 €"), parse_price("1.299", currency="USD"), parse_price("1.299", "comma")
    ((1299.0, '€'), (1.299, None), (1299.0, None))
    >>> parse_price("CHF 1'299.–"), parse_price("₹1,00,000"), parse_price("about 40")
    ((1299.0, 'chf'), (100000.0, '₹'), (None, None))
    """
    s = strip_chars(text)
    if RE_NUMBER.fullmatch(s) and not _AMBIGUOUS.match(s):
        return _float(s), None
    digits = [i for i, ch in enumerate(s) if "0" <= ch <= "9"]
    if not digits:
        return None, None
    num = s[digits[0] : digits[-1] + 1]
    around = _around(s[: digits[0]], s[digits[-1] + 1 :], currency, locale)
    if around is None or not _NUMBER.match(num):
        return None, None
    negative, mark, nocents, decimal_comma = around
    value = _number(num, decimal_comma, nocents)
    if value is None:
        return None, None
    return (-value if negative else value), mark


def _float(text: str) -> float:
    try:
        return float(text)
    except OverflowError:  # pragma: no cover - float() of text gives inf, never raises
        return math.inf


# ---------------------------------------------------------------- batch


def parsed_prices(
    texts: pl.Series, currencies: pl.Series | None, locale: str
) -> tuple[pl.Series, pl.Series]:
    """:func:`parse_price` of a column of price texts: ``(price, currency mark)``.

    Plain numbers are cast by polars (most exports). The others are read once per distinct
    ``(text, currency)``: each is cut into the text before its first digit, the number and the
    text after its last digit, as :func:`parse_price` cuts it; the number is read by the same
    rules in polars expressions, and the few distinct texts around numbers in Python.
    """
    stripped = texts.cast(pl.String).str.strip_chars()
    ambiguous = stripped.str.contains(RE_AMBIGUOUS).fill_null(False)
    fast = stripped.cast(pl.Float64, strict=False)
    slow = (stripped.is_not_null() & (fast.is_null() | ambiguous)).arg_true()
    signs = pl.repeat(None, texts.len(), dtype=pl.String, eager=True).alias("sign")
    if slow.len() == 0:
        return fast, signs
    currency = (
        currencies.cast(pl.String).gather(slow)
        if currencies is not None
        else pl.repeat(None, slow.len(), dtype=pl.String, eager=True)
    )
    text = stripped.gather(slow)
    # one key per distinct (text, currency): the currency matters to few prices
    key = pl.select(
        pl.when(currency.is_null())
        .then(text)
        .otherwise(pl.concat_str(text, pl.lit("\x00"), currency))
    ).to_series()
    first = key.is_first_distinct()
    distinct = pl.DataFrame({"t": text.filter(first), "c": currency.filter(first)})
    at = key.replace_strict(
        key.filter(first), pl.int_range(distinct.height, dtype=pl.UInt32, eager=True)
    )
    t = pl.col("t")
    cut = t.str.len_chars() - pl.col("before").str.len_chars() - pl.col("after").str.len_chars()
    parts = (
        distinct.with_row_index("i")
        .with_columns(
            t.str.extract(r"^([^0-9]*)[0-9]").alias("before"),
            t.str.extract(r"[0-9]([^0-9]*)$").alias("after"),
        )
        .with_columns(t.str.slice(pl.col("before").str.len_chars(), cut).alias("num"))
    )
    around = parts.select("before", "after", "c").unique().drop_nulls(["before", "after"])
    found = [_around(b, a, c, locale) for b, a, c in around.iter_rows()]
    around = around.with_columns(
        pl.Series("ok", [f is not None for f in found], dtype=pl.Boolean),
        pl.Series("negative", [f is not None and f[0] for f in found], dtype=pl.Boolean),
        pl.Series("mark", [f[1] if f else None for f in found], dtype=pl.String),
        pl.Series("nocents", [f[2] if f else None for f in found], dtype=pl.String),
        pl.Series("dc", [f[3] if f else False for f in found], dtype=pl.Boolean),
    )
    parts = parts.join(around, on=["before", "after", "c"], how="left", nulls_equal=True).sort("i")
    parts = parts.with_columns(
        (
            pl.col("ok").fill_null(False)
            & pl.col("num").str.contains(NUMBER_PATTERN).fill_null(False)
        ).alias("ok")
    )
    parts = parts.with_columns(_numbers(parts).alias("v")).with_columns(
        pl.when(pl.col("ok")).then("v").alias("v"),
    )
    parts = parts.with_columns(
        pl.when(pl.col("v").is_not_null()).then("mark").alias("mark"),
    )
    return (
        fast.scatter(slow, parts.get_column("v").gather(at)),
        signs.scatter(slow, parts.get_column("mark").gather(at)),
    )


def _full_pattern() -> str:
    """One pattern for the number parts the rules accept, each led by the decimal mark the
    rules chose and ``|``: ``.|1,299.00``, ``,|1.299,00``, ``|1.299.000``, and ``n.|1'299``
    for a number that ended in ``.-`` (no cents)."""

    def grouped(d: str) -> str:
        return grouped_pattern(d)[1:-1]

    return (
        "^(?:"
        + "|".join(
            [
                f"\\.\\|{grouped('.')}\\.[0-9]*",
                f",\\|{grouped(',')},[0-9]*",
                f"\\|{grouped('')}",
                f"n\\.\\|{grouped('.')}",
                f"n,\\|{grouped(',')}",
            ]
        )
        + ")$"
    )


FULL_PATTERN = _full_pattern()


def _numbers(parts: pl.DataFrame) -> pl.Series:
    """:func:`_number` (negated where ``negative``) over the columns ``num``, ``nocents``
    (its mark) and ``dc`` (decimal comma for the ambiguous case), with literal string
    operations and one regular expression (a number without thousands separators of other
    alphabets is ASCII, so byte and character offsets agree where it matters)."""
    num, nocents = pl.col("num"), pl.col("nocents")
    step = parts.select(
        "num",
        "nocents",
        "negative",
        pl.col("dc").fill_null(False),
        num.str.count_matches(".", literal=True).alias("dots"),
        num.str.count_matches(",", literal=True).alias("commas"),
        num.str.contains_any(list(GROUPERS)).alias("spaced"),
        pl.coalesce(num.str.find(".", literal=True), num.str.find(",", literal=True)).alias("at"),
        num.str.contains(r"\.[^.,]*$").alias("dot_last"),
        num.str.len_bytes().alias("length"),
        num.str.contains(nocents, literal=True).fill_null(False).alias("has_nocents"),
    )
    dots, commas, at = pl.col("dots"), pl.col("commas"), pl.col("at")
    single = pl.when(dots > 0).then(pl.lit(".")).otherwise(pl.lit(","))
    as_thousands = (
        ~pl.col("spaced")
        & (pl.col("length") - at - 1 == 3)
        & ~((at == 1) & num.str.starts_with("0"))
        & ((single == ",") != pl.col("dc"))
    )
    mark = (
        pl.when((dots > 0) & (commas > 0))
        .then(pl.when(pl.col("dot_last")).then(pl.lit(".")).otherwise(pl.lit(",")))
        .when(dots + commas == 1)
        .then(single)
        .otherwise(pl.lit(None, pl.String))
    )
    step = step.with_columns(mark.alias("mark"), as_thousands.alias("as_thousands"))
    mark = pl.col("mark")
    counted = pl.when(mark == ".").then(dots).otherwise(commas)
    tag = (
        pl.when(nocents.is_not_null())
        .then(
            pl.when(pl.col("has_nocents"))
            .then(pl.lit(None, pl.String))
            .otherwise(pl.concat_str(pl.lit("n"), nocents))
        )
        .when(mark.is_null())
        .then(pl.lit(""))
        .when((dots + commas == 1) & pl.col("as_thousands"))
        .then(pl.lit(""))
        .when(counted == 1)
        .then(mark)
        .otherwise(pl.lit(None, pl.String))
    )
    step = step.with_columns(tag.alias("tag"))
    tag = pl.col("tag")
    bare = num.str.replace_all(f"[{GROUPERS}]", "")
    cleaned = (
        pl.when(tag == ".")
        .then(bare.str.replace_all(",", "", literal=True))
        .when(tag == ",")
        .then(bare.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .otherwise(
            bare.str.replace_all(".", "", literal=True).str.replace_all(",", "", literal=True)
        )
    )
    value = cleaned.cast(pl.Float64, strict=False)
    valid = pl.concat_str(tag, pl.lit("|"), num).str.contains(FULL_PATTERN).fill_null(False)
    return step.select(
        pl.when(valid).then(pl.when(pl.col("negative")).then(-value).otherwise(value))
    ).to_series()


def sign_table(signs: Sequence[str | None]) -> dict[str, tuple[str, str | None]]:
    """For each distinct mark: its currencies ``/``-joined, and its default (or None)."""
    out = {}
    for s in {x for x in signs if x is not None}:
        found, default = sign_currencies(s)
        out[s] = ("/".join(found), default)
    return out
