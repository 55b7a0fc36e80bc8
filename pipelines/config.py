"""Run configuration: currency rates, condition adjustments and decision thresholds.

Defaults live here; a TOML file (``fakestop score --config FILE``) may override any of them::

    [rates]        # USD per unit of currency
    EUR = 1.08
    [decision]
    block = 0.8
    review = 0.5
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.errors import FakestopError

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


@dataclass(frozen=True)
class Settings:
    """Everything a run can be configured with, besides its inputs."""

    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    condition_factors: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CONDITION_FACTORS)
    )
    standard_volumes: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_STANDARD_VOLUMES)
    )
    block_threshold: float = 0.8
    review_threshold: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return {
            "rates": dict(sorted(self.rates.items())),
            "condition_factors": dict(sorted(self.condition_factors.items())),
            "standard_volumes": dict(sorted(self.standard_volumes.items())),
            "block_threshold": self.block_threshold,
            "review_threshold": self.review_threshold,
        }


def _number(path: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FakestopError(f"{path}: {key} must be a finite number, got {value!r}")
    return float(value)


def load_settings(path: str | Path | None = None) -> Settings:
    """Default settings, overridden by a TOML file when given."""
    settings = Settings()
    if path is None:
        return settings
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FakestopError(f"{path}: cannot read configuration ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FakestopError(f"{path}: invalid TOML ({exc})") from None
    rates = dict(settings.rates)
    for cur, value in data.get("rates", {}).items():
        rate = _number(path, f"rates.{cur}", value)
        if rate <= 0:
            raise FakestopError(f"{path}: rates.{cur} must be > 0")
        rates[cur.upper()] = rate
    factors = dict(settings.condition_factors)
    for cond, value in data.get("conditions", {}).items():
        factors[cond.lower()] = _number(path, f"conditions.{cond}", value)
    volumes = dict(settings.standard_volumes)
    for category, value in data.get("volumes", {}).items():
        ml = _number(path, f"volumes.{category}", value)
        if ml <= 0:
            raise FakestopError(f"{path}: volumes.{category} must be > 0 (ml)")
        volumes[category] = ml
    decision = data.get("decision", {})
    block = _number(path, "decision.block", decision.get("block", settings.block_threshold))
    review = _number(path, "decision.review", decision.get("review", settings.review_threshold))
    if not 0 <= review <= block <= 1:
        raise FakestopError(f"{path}: need 0 <= decision.review <= decision.block <= 1")
    return replace(
        settings,
        rates=rates,
        condition_factors=factors,
        standard_volumes=volumes,
        block_threshold=block,
        review_threshold=review,
    )
