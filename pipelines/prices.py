"""Prices as people write them: ``1,299.00``, ``€49,90``, ``$1,850``, ``1.299,00 €``,
``CHF 1'299.–``, ``1 299,00 zł``, ``₹1,00,000``.

One function, :func:`parse_price`, reads a price's text; the batch readers apply it to the
distinct texts of a column (:func:`parsed_prices`) and the one-listing path to its one text, so
both read every price alike.

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

from filters.textops import strip_chars
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

#: a plain number, as the Python one-listing path and ``float()`` read it
RE_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|nan)", re.I)
#: the ambiguous case (rule 4): a lone mark, then exactly three digits
RE_AMBIGUOUS = r"^[+-]?[1-9]\d{0,2}[.,]\d{3}$"
_AMBIGUOUS = re.compile(RE_AMBIGUOUS)
_SPACES = " \u00a0\u202f\u2009"
_GROUPERS = _SPACES + "'’"
_PRICE = re.compile(
    r"(?P<pre>[^\d+\-,]*?)\s*(?P<sign>[+-]?)\s*(?P<pre2>[^\d+\-.,\s]*?)\s*"
    r"(?P<num>\d(?:[\d.,'’" + _SPACES + r"]*\d)?)(?P<nocents>[.,][-–—])?"
    r"\s*(?P<post>[^\d]*?)",
    re.S,
)
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
        both = first & second
        if not both:
            return False
        # the narrower mark says more ("$ ... USD" is USD)
        return marks[0] if len(first) <= len(second) else marks[1]
    return marks[0]


def _grouped(digits: str, marks: str, *, indian: bool) -> str | None:
    """``digits`` (an integer part) without its thousands separators ``marks``, or None if
    they do not group digits by three (or, ``indian``, by two then three)."""
    seps = {ch for ch in digits if not ch.isdigit()}
    if not seps:
        return digits if digits.isdigit() else None
    if len(seps) > 1 or not seps <= set(marks):
        return None
    groups = re.split("[" + re.escape("".join(seps)) + "]", digits)
    if not all(g.isdigit() for g in groups) or groups[0].startswith("0"):
        return None
    if len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]):
        return "".join(groups)
    if (
        indian
        and len(groups[0]) <= 2
        and all(len(g) == 2 for g in groups[1:-1])
        and len(groups[-1]) == 3
    ):
        return "".join(groups)
    return None


def _number(num: str, decimal_comma: bool, nocents: str | None = None) -> float | None:
    """The value of the digits and marks of a price (rules 3 and 4); ``nocents``: the mark
    of a ``,-`` or ``.–`` that ended it (the decimal mark, with no decimals)."""
    spaced = any(ch in _GROUPERS for ch in num)
    dots, commas = num.count("."), num.count(",")
    if nocents:
        dec = ""
        if nocents in num:
            return None
        group_marks = _GROUPERS + ("," if nocents == "." else ".")
    else:
        if dots and commas:
            dec = "." if num.rfind(".") > num.rfind(",") else ","
        elif dots + commas == 1:
            mark = "." if dots else ","
            whole, frac = num.split(mark)
            if spaced or len(frac) != 3 or strip_chars(whole) in ("0", ""):
                dec = mark
            else:
                dec = "," if decimal_comma else "."
                if dec != mark:
                    dec = ""
        else:
            dec = ""  # no mark, or one mark more than once: thousands separators only
        if dec and num.count(dec) != 1:
            return None
        group_marks = _GROUPERS + ("" if dec == "." else ".") + ("" if dec == "," else ",")
    whole, frac = num.split(dec) if dec else (num, "")
    if frac and not frac.isdigit():
        return None
    digits = _grouped(whole, group_marks, indian="," in whole)
    if digits is None:
        return None
    return float(f"{digits}.{frac}" if frac else digits)


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
    m = _PRICE.fullmatch(s)
    if m is None or (m["pre"] and m["pre2"]):
        return None, None
    sign = _sign(m["pre"] or m["pre2"], m["post"])
    if sign is False:
        return None, None
    num = m["num"]
    if locale == "auto":
        marks = sign_currencies(sign)[0] if isinstance(sign, str) else ()
        if marks and all(c in COMMA_DECIMAL_CURRENCIES for c in marks):
            decimal_comma = True
        elif marks and not any(c in COMMA_DECIMAL_CURRENCIES for c in marks):
            decimal_comma = False
        else:
            code = strip_chars(currency).upper() if currency else "USD"
            decimal_comma = code in COMMA_DECIMAL_CURRENCIES
    else:
        decimal_comma = locale == "comma"
    value = _number(num, decimal_comma, m["nocents"][0] if m["nocents"] else None)
    if value is None:
        return None, None
    return (-value if m["sign"] == "-" else value), (sign if isinstance(sign, str) else None)


def _float(text: str) -> float:
    try:
        return float(text)
    except OverflowError:  # pragma: no cover - float() of text gives inf, never raises
        return math.inf


# ---------------------------------------------------------------- batch


def parsed_prices(
    texts: pl.Series, currencies: pl.Series | None, locale: str
) -> tuple[pl.Series, pl.Series]:
    """:func:`parse_price` of a column of price texts: ``(price, price sign)``.

    Plain numbers are cast by polars (most exports), the rest parsed once per distinct
    ``(text, currency)``."""
    stripped = texts.str.strip_chars()
    ambiguous = stripped.str.contains(RE_AMBIGUOUS).fill_null(False)
    fast = stripped.cast(pl.Float64, strict=False)
    slow = (stripped.is_not_null() & (fast.is_null() | ambiguous)).arg_true()
    sign = pl.Series("sign", [None] * texts.len(), dtype=pl.String)
    if slow.len() == 0:
        return fast, sign
    currency = (
        currencies.cast(pl.String).gather(slow)
        if currencies is not None
        else pl.repeat(None, slow.len(), dtype=pl.String, eager=True)
    )
    pairs = pl.DataFrame({"t": stripped.gather(slow), "c": currency})
    distinct = pairs.unique(maintain_order=True)
    values: list[float | None] = []
    signs: list[str | None] = []
    for text, cur in distinct.iter_rows():
        value, mark = parse_price(text, locale, cur)
        values.append(value)
        signs.append(mark)
    table = distinct.with_columns(
        pl.Series("v", values, dtype=pl.Float64), pl.Series("s", signs, dtype=pl.String)
    )
    found = pairs.join(table, on=["t", "c"], how="left", nulls_equal=True, maintain_order="left")
    return (
        fast.scatter(slow, found.get_column("v")),
        sign.scatter(slow, found.get_column("s")),
    )


def sign_table(signs: Sequence[str | None]) -> dict[str, tuple[str, str | None]]:
    """For each distinct mark: its currencies ``/``-joined, and its default (or None)."""
    out = {}
    for s in {x for x in signs if x is not None}:
        found, default = sign_currencies(s)
        out[s] = ("/".join(found), default)
    return out
