"""Pricing defaults: currency rates, condition factors and standard volumes. A run's
configuration file may override each of them."""

from __future__ import annotations

#: USD per unit of each currency (ISO 4217); a listing in a currency not listed is quarantined
DEFAULT_RATES: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "CNY": 0.14,
    "JPY": 0.0067,
    "CAD": 0.73,
    "AUD": 0.66,
    "CHF": 1.13,
    "HKD": 0.128,
    "KRW": 0.00073,
    "INR": 0.012,
    "BRL": 0.18,
    "MXN": 0.055,
    "RUB": 0.011,
    "TRY": 0.029,
    "SEK": 0.095,
    "PLN": 0.25,
    "AED": 0.272,
    "SGD": 0.74,
}

#: share of the new retail price a genuine item in this condition typically sells for
DEFAULT_CONDITION_FACTORS: dict[str, float] = {"new": 1.0, "refurbished": 0.7, "used": 0.5}

#: the volume (ml) a category's reference price is for: a title stating another volume ("30ml",
#: "3.4 oz") is compared with the reference scaled to it
DEFAULT_STANDARD_VOLUMES: dict[str, float] = {"perfume": 100.0}


#: the conditions a listing is priced as; ``parts`` (sold for parts or not working) is never
#: compared with a brand's price, the others with their share of it
PARTS = "parts"
CONDITIONS = ("new", "used", "refurbished", PARTS)
