"""The validation rules, in one table.

Each :class:`Rule` has a name, a polars expression that says which listings of a batch pass it,
a Python predicate that says whether one listing passes it, and its message. Both read the same
named *fields* of a listing: :func:`batch_fields` gives them as polars expressions (over the
working columns :func:`pipelines.schema.validated_listings` adds), :func:`record_fields` as
values of one listing (:func:`pipelines.record.validated_record`). A message is a template of
those fields, written once and rendered by both paths; a listing's ``error`` lists the
messages of every rule it breaks, in the table's order, each after its rule's name.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from filters.core.textops import strip_chars
from pipelines.config import Settings
from pipelines.io.base import PARSE_ERROR
from pipelines.prices import sign_currencies

#: the price as written (an output column: nothing is lost when a price cannot be read)
PRICE_RAW = "price_raw"
#: the currency mark written in the price (``€``, ``$``, ``eur``), if any
PRICE_SIGN = "__price_sign"
#: set by a runner that sees earlier batches or the whole input: the id was seen before
SEEN_EARLIER = "__seen_earlier"
#: working columns of validation: the currency column stripped and upper-cased, the
#: currencies the price's mark may stand for (``/``-joined) and the one it means by default
CURRENCY, SIGN_CURRENCIES, SIGN_DEFAULT = "__currency", "__sign_currencies", "__sign_default"


@dataclass(frozen=True)
class Rule:
    """One validation rule. ``passes`` and ``holds`` read the fields of :func:`batch_fields`
    and :func:`record_fields`; ``messages`` are ``(when, template)`` pairs, the first whose
    ``when`` field is true giving the message (``None``: always)."""

    name: str
    passes: Callable[[Mapping[str, pl.Expr]], pl.Expr]
    holds: Callable[[Mapping[str, Any]], bool]
    messages: tuple[tuple[str | None, str], ...]


def _finite_positive(price: Any) -> bool:
    return price is not None and math.isfinite(price) and price > 0


def _mark_agrees(f: Mapping[str, pl.Expr]) -> pl.Expr:
    """The currency column names one of the currencies the price's mark may stand for."""
    slashed = pl.concat_str(pl.lit("/"), f["sign_currencies"], pl.lit("/"))
    return slashed.str.contains(
        pl.concat_str(pl.lit("/"), f["currency"], pl.lit("/")), literal=True
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "row_parsed",
        lambda f: f["parse_error"].is_null(),
        lambda r: r["parse_error"] is None,
        ((None, "{parse_error}"),),
    ),
    Rule(
        "id_present",
        lambda f: ~f["id_blank"],
        lambda r: not r["id_blank"],
        ((None, "listing_id is missing or blank"),),
    ),
    Rule(
        "id_unique",
        lambda f: f["id_blank"] | f["first"],
        lambda r: bool(r["id_blank"] or r["first"]),
        ((None, "listing_id {listing_id} already seen in an earlier row"),),
    ),
    Rule(
        "title_present",
        lambda f: ~f["title_blank"],
        lambda r: not r["title_blank"],
        ((None, "title is missing or blank"),),
    ),
    Rule(
        "price_positive",
        lambda f: f["price"].is_not_null() & f["price"].is_finite() & (f["price"] > 0),
        lambda r: _finite_positive(r["price"]),
        ((None, "price {price_raw} is not a finite number > 0"),),
    ),
    Rule(
        "currency_known",
        lambda f: f["effective"].is_null() | f["effective"].is_in(f["known_list"].implode()),
        lambda r: not r["effective"] or r["effective"] in r["known_list"],
        ((None, "currency {effective} has no configured rate (known: {known})"),),
    ),
    Rule(
        "currency_agrees",
        lambda f: (
            f["sign_currencies"].is_null()
            | (f["currency_given"] & _mark_agrees(f))
            | (~f["currency_given"] & f["sign_default"].is_not_null())
        ),
        lambda r: bool(
            r["sign"] is None
            or (r["currency_given"] and r["currency"] in r["marks_list"])
            or (not r["currency_given"] and r["sign_default"] is not None)
        ),
        (
            ("currency_given", "price {price_raw} is in {marks}, but currency is {currency}"),
            (None, "price {price_raw} may be in {marks}; the currency column must say which"),
        ),
    ),
)

#: the rules' names, in the order an ``error`` lists them
RULE_NAMES = tuple(rule.name for rule in RULES)


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def batch_fields(
    columns: set[str], settings: Settings, seen_ids: pl.Series | None = None
) -> dict[str, pl.Expr]:
    """The rules' fields over a batch holding the working columns of validation.
    ``seen_ids``: ids of earlier batches of the same run, so uniqueness spans batches."""
    first = pl.col("listing_id").is_first_distinct()
    if SEEN_EARLIER in columns:
        first = first & ~pl.col(SEEN_EARLIER).fill_null(False)
    if seen_ids is not None and seen_ids.len():
        first = first & ~pl.col("listing_id").is_in(seen_ids.implode())
    currency = pl.col(CURRENCY)
    given = currency.is_not_null() & (currency != "")
    known = sorted(settings.rates)
    return {
        "parse_error": pl.col(PARSE_ERROR),
        "listing_id": pl.col("listing_id"),
        "id_blank": _blank("listing_id"),
        "first": first,
        "title_blank": _blank("title"),
        "price": pl.col("price"),
        "price_raw": pl.col(PRICE_RAW).fill_null("(missing)"),
        "currency": currency,
        "currency_given": given,
        "effective": pl.when(given).then(currency).otherwise(pl.col(SIGN_DEFAULT)),
        "known": pl.lit(", ".join(known)),
        "known_list": pl.lit(pl.Series(known, dtype=pl.String)),
        "sign_currencies": pl.col(SIGN_CURRENCIES),
        "sign_default": pl.col(SIGN_DEFAULT),
        "marks": pl.col(SIGN_CURRENCIES).str.replace_all("/", ", ", literal=True),
    }


def record_fields(rec: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The rules' fields of one coerced listing (it is the first of its id by definition)."""
    value = rec.get("currency")
    currency = None if value is None else strip_chars(value).upper()
    sign = rec.get(PRICE_SIGN)
    marks, default = sign_currencies(sign) if sign is not None else ((), None)
    raw = rec.get(PRICE_RAW)
    known = sorted(settings.rates)
    return {
        "parse_error": rec.get(PARSE_ERROR),
        "listing_id": rec.get("listing_id"),
        "id_blank": _blank_value(rec.get("listing_id")),
        "first": True,
        "title_blank": _blank_value(rec.get("title")),
        "price": rec.get("price"),
        "price_raw": "(missing)" if raw is None else raw,
        "currency": currency,
        "currency_given": bool(currency),
        "effective": currency if currency else default,
        "known": ", ".join(known),
        "known_list": known,
        "sign": sign,
        "sign_default": default,
        "marks": ", ".join(marks),
        "marks_list": marks,
    }


def _blank_value(value: object) -> bool:
    return value is None or strip_chars(str(value)) == ""


def _polars_message(template: str, fields: Mapping[str, pl.Expr]) -> pl.Expr:
    parts = list(string.Formatter().parse(template))
    names = [name for _, name, _, _ in parts if name]
    if not names:
        return pl.lit(template)
    text = "".join(literal + ("{}" if name else "") for literal, name, _, _ in parts)
    return pl.format(text, *(fields[n] for n in names))


def batch_rules(fields: Mapping[str, pl.Expr]) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Each rule as ``name -> (passes, message)`` over a batch's fields; the message is
    prefixed with the rule's name."""
    out: dict[str, tuple[pl.Expr, pl.Expr]] = {}
    for rule in RULES:
        *guarded, (_, last) = rule.messages
        message = _polars_message(last, fields)
        for when, template in reversed(guarded):
            assert when is not None
            message = (
                pl.when(fields[when]).then(_polars_message(template, fields)).otherwise(message)
            )
        out[rule.name] = (rule.passes(fields), pl.format(f"{rule.name}: {{}}", message))
    return out


def record_errors(fields: Mapping[str, Any]) -> list[str]:
    """The messages of the rules one listing breaks, in the table's order."""
    errors = []
    for rule in RULES:
        if rule.holds(fields):
            continue
        template = next(t for when, t in rule.messages if when is None or fields[when])
        errors.append(f"{rule.name}: {template.format(**fields)}")
    return errors
