"""Run configuration: currency rates, conditions, decision thresholds and how exports are read.

Defaults live here (the pricing ones in :mod:`filters.core.defaults`); a TOML file
(``fakestop score --config FILE``) may override any of them. The file is read strictly: an
unknown section or key, a value of the wrong type or out of range is an error naming the key
and the file::

    [rates]                 # USD per unit of currency (ISO 4217 codes), > 0
    EUR = 1.08
    [conditions]            # share of the new price a genuine item in this condition sells for
    used = 0.5
    [condition_synonyms]    # how exports name conditions -> new, used, refurbished, parts
    "gently used" = "used"
    [volumes]               # ml a category's reference price is for
    perfume = 100
    [decision]
    block = 0.8
    review = 0.5
    [input]
    csv_separator = "auto"  # or one character: ";", "|", "tab"
    encoding = "auto"       # or utf-8, utf-16, latin-1, cp1252 ...
    price_locale = "auto"   # or "point" (1,299.00), "comma" (1.299,00)
    [columns]               # listing column = the export's header
    title = "Name"
"""

from __future__ import annotations

import codecs
import difflib
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# the pricing defaults are defined with the filters, which read them
from filters.core.defaults import CONDITIONS as CONDITIONS
from filters.core.defaults import DEFAULT_CONDITION_FACTORS as DEFAULT_CONDITION_FACTORS
from filters.core.defaults import DEFAULT_RATES as DEFAULT_RATES
from filters.core.defaults import DEFAULT_STANDARD_VOLUMES as DEFAULT_STANDARD_VOLUMES
from filters.core.defaults import PARTS as PARTS
from pipelines.columns import INPUT_SCHEMA
from pipelines.errors import FakestopError

#: how marketplaces and their sellers name conditions (lower case, words separated by one
#: space: see :func:`pipelines.conditions.condition_key`) -> the condition it is priced as
DEFAULT_CONDITION_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            "brand new", "new with tags", "nwt", "bnwt", "new with box", "new in box", "nib",
            "bnib", "new without tags", "nwot", "new without box", "new other",
            "new other see details", "new old stock", "sealed", "factory sealed", "unopened",
            "unused", "neu", "neu mit etikett", "neu ohne etikett", "neuf", "neuf avec étiquette",
            "nuevo", "nuovo", "novo", "nowy", "nieuw",
        ],
        "new",
    ),
    **dict.fromkeys(
        [
            "pre owned", "preowned", "pre loved", "preloved", "second hand", "secondhand",
            "2nd hand", "used like new", "like new", "used very good", "very good",
            "used good", "good", "used acceptable", "acceptable", "fair", "worn",
            "gently used", "lightly used", "vintage", "gebraucht", "neuwertig", "wie neu",
            "occasion", "d occasion", "très bon état", "bon état",
            "usado", "usato", "używany", "gebruikt", "begagnad", "brugt", "käytetty",
        ],
        "used",
    ),
    **dict.fromkeys(
        [
            "renewed", "refurb", "certified refurbished", "manufacturer refurbished",
            "seller refurbished", "excellent refurbished", "very good refurbished",
            "good refurbished", "remanufactured", "reconditioned", "open box", "openbox",
            "generalüberholt", "reconditionné", "reacondicionado", "ricondizionato",
            "recondicionado",
        ],
        "refurbished",
    ),
    **dict.fromkeys(
        [
            "for parts", "for parts or not working", "parts only", "not working",
            "spares or repair", "spares repair", "broken", "defective", "as is", "defekt",
            "pour pièces", "para piezas", "per ricambi",
        ],
        "parts",
    ),
}  # fmt: skip

PRICE_LOCALES = ("auto", "point", "comma")
AUTO = "auto"


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
    #: condition as exports write it (keyed by ``condition_key``) -> condition it is priced as
    condition_synonyms: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_CONDITION_SYNONYMS)
    )
    #: listing column -> the export's header for it (``--columns``)
    columns: dict[str, str] = field(default_factory=dict)
    #: CSV field separator; None: sniffed from the file
    csv_separator: str | None = None
    #: text encoding of CSV files; None: UTF-8 unless a byte-order mark says otherwise
    encoding: str | None = None
    #: how an ambiguous price (``1.299``) is read: ``auto``, ``point`` or ``comma``
    price_locale: str = AUTO
    #: the configuration file whose ``[decision]`` set the thresholds (None = defaults); set
    #: thresholds override a trained model's own
    decision_from: str | None = None

    @property
    def conditions(self) -> tuple[str, ...]:
        """Every condition a listing can be priced as."""
        return tuple(dict.fromkeys([*self.condition_factors, PARTS]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rates": dict(sorted(self.rates.items())),
            "condition_factors": dict(sorted(self.condition_factors.items())),
            "standard_volumes": dict(sorted(self.standard_volumes.items())),
            "block_threshold": self.block_threshold,
            "review_threshold": self.review_threshold,
            "condition_synonyms": dict(sorted(self.condition_synonyms.items())),
            "columns": dict(sorted(self.columns.items())),
            "csv_separator": self.csv_separator,
            "encoding": self.encoding,
            "price_locale": self.price_locale,
        }

    def with_input_options(
        self,
        *,
        columns: str | None = None,
        csv_separator: str | None = None,
        encoding: str | None = None,
        price_locale: str | None = None,
    ) -> Settings:
        """These settings with the command line's input options applied over the file's."""
        where = "command line"
        changes: dict[str, Any] = {}
        if columns is not None:
            changes["columns"] = {**self.columns, **parse_columns(columns)}
        if csv_separator is not None:
            changes["csv_separator"] = _separator(where, "--csv-separator", csv_separator)
        if encoding is not None:
            changes["encoding"] = _encoding(where, "--encoding", encoding)
        if price_locale is not None:
            changes["price_locale"] = _choice(where, "--price-locale", price_locale, PRICE_LOCALES)
        return replace(self, **changes) if changes else self


# ---------------------------------------------------------------- checking values


def _fail(where: str | Path, key: str, what: str) -> FakestopError:
    return FakestopError(f"{where}: {key} {what}")


def _number(where: str | Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, key, f"must be a finite number, got {value!r}")
    return float(value)


def _in_range(
    where: str | Path, key: str, value: object, low: float, high: float, *, open_low: bool
) -> float:
    number = _number(where, key, value)
    if (number <= low if open_low else number < low) or number > high:
        bounds = f"{'(' if open_low else '['}{low:g}, {high:g}]" if high != math.inf else None
        what = f"in {bounds}" if bounds else f"> {low:g}" if open_low else f">= {low:g}"
        raise _fail(where, key, f"must be {what}, got {value!r}")
    return number


def _text(where: str | Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(where, key, f"must be text, got {value!r}")
    return value


def _choice(where: str | Path, key: str, value: object, choices: tuple[str, ...]) -> str:
    text = _text(where, key, value).strip().lower()
    if text not in choices:
        raise _fail(where, key, f"must be one of {', '.join(choices)}, got {value!r}")
    return text


def _separator(where: str | Path, key: str, value: object) -> str | None:
    text = _text(where, key, value)
    if text.lower() == AUTO:
        return None
    if text.lower() in ("tab", "\\t"):
        return "\t"
    if len(text) != 1 or text in '"\r\n':
        raise _fail(
            where, key, f'must be "auto", "tab" or one character (not a quote), got {value!r}'
        )
    return text


def _encoding(where: str | Path, key: str, value: object) -> str | None:
    text = _text(where, key, value).strip()
    if text.lower() == AUTO:
        return None
    try:
        return codecs.lookup(text).name
    except LookupError:
        raise _fail(
            where,
            key,
            f"{value!r} is not a known text encoding (utf-8, utf-16, latin-1, cp1252 ...)",
        ) from None


def _input_columns() -> tuple[str, ...]:
    return tuple(INPUT_SCHEMA)


def _column_map(where: str | Path, key: str, mapping: dict[str, object]) -> dict[str, str]:
    known = _input_columns()
    out: dict[str, str] = {}
    for column, header in mapping.items():
        if column not in known:
            raise _fail(where, f"{key}.{column}", f"is not a listing column ({', '.join(known)})")
        text = _text(where, f"{key}.{column}", header)
        if not text.strip():
            raise _fail(where, f"{key}.{column}", "must name a column, got an empty name")
        out[column] = text
    headers: dict[str, str] = {}
    for column, header in out.items():
        if header in headers:
            raise _fail(
                where, f"{key}.{column}", f"and {key}.{headers[header]} both name {header!r}"
            )
        headers[header] = column
    return out


def parse_columns(text: str) -> dict[str, str]:
    """``--columns title=Name,price=Price`` as ``{"title": "Name", "price": "Price"}``."""
    pairs: dict[str, object] = {}
    for item in text.split(","):
        column, sep, header = item.partition("=")
        if not sep or not column.strip():
            raise FakestopError(
                f"--columns {text!r}: expected COLUMN=HEADER pairs separated by commas, "
                f"got {item!r}"
            )
        pairs[column.strip()] = header.strip()
    return _column_map("command line", "--columns", pairs)


# ---------------------------------------------------------------- the file


def _table(where: Path, key: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"[{key}]", f"must be a table, got {value!r}")
    return value


def _unknown(where: Path, what: str, name: str, known: list[str]) -> FakestopError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return FakestopError(f"{where}: unknown {what} {name} ({hint}known: {', '.join(known)})")


def _rates(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    rates = dict(settings.rates)
    for cur, value in table.items():
        if len(cur) != 3 or not cur.isascii() or not cur.isalpha():
            raise _fail(where, f"rates.{cur}", "is not a currency code (three letters, ISO 4217)")
        rates[cur.upper()] = _in_range(where, f"rates.{cur}", value, 0, math.inf, open_low=True)
    return {"rates": rates}


def _conditions(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from pipelines.conditions import condition_key

    factors = dict(settings.condition_factors)
    for cond, value in table.items():
        key = condition_key(cond)
        if not key or key == "parts":
            raise _fail(where, f"conditions.{cond}", "cannot be priced (parts never is)")
        factors[key] = _in_range(where, f"conditions.{cond}", value, 0, 1, open_low=True)
    return {"condition_factors": factors}


def _synonyms(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from pipelines.conditions import condition_key

    synonyms = dict(settings.condition_synonyms)
    # the conditions of this file's [conditions] count too: check after they are read
    for name, value in table.items():
        target = condition_key(_text(where, f"condition_synonyms.{name}", value))
        if not condition_key(name):
            raise _fail(where, f"condition_synonyms.{name}", "names no condition")
        synonyms[condition_key(name)] = target
    return {"condition_synonyms": synonyms}


def _volumes(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    volumes = dict(settings.standard_volumes)
    for category, value in table.items():
        volumes[category] = _in_range(
            where, f"volumes.{category}", value, 0, math.inf, open_low=True
        )
    return {"standard_volumes": volumes}


def _decision(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    _keys(where, "decision", table, ["block", "review"])
    block = _in_range(
        where, "decision.block", table.get("block", settings.block_threshold), 0, 1, open_low=False
    )
    review = _in_range(
        where,
        "decision.review",
        table.get("review", settings.review_threshold),
        0,
        1,
        open_low=False,
    )
    if review > block:
        raise _fail(where, "decision.review", f"({review:g}) must be <= decision.block ({block:g})")
    return {"block_threshold": block, "review_threshold": review}


def _input(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    _keys(where, "input", table, ["csv_separator", "encoding", "price_locale"])
    out: dict[str, Any] = {}
    if "csv_separator" in table:
        out["csv_separator"] = _separator(where, "input.csv_separator", table["csv_separator"])
    if "encoding" in table:
        out["encoding"] = _encoding(where, "input.encoding", table["encoding"])
    if "price_locale" in table:
        out["price_locale"] = _choice(
            where, "input.price_locale", table["price_locale"], PRICE_LOCALES
        )
    return out


def _columns(where: Path, table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return {"columns": _column_map(where, "columns", table)}


def _keys(where: Path, section: str, table: dict[str, Any], known: list[str]) -> None:
    for key in table:
        if key not in known:
            raise _unknown(where, "key", f"{section}.{key}", [f"{section}.{k}" for k in known])


#: the sections of a configuration file, in the order they are read
SECTIONS: dict[str, Callable[[Path, dict[str, Any], Settings], dict[str, Any]]] = {
    "rates": _rates,
    "conditions": _conditions,
    "condition_synonyms": _synonyms,
    "volumes": _volumes,
    "decision": _decision,
    "input": _input,
    "columns": _columns,
}


def load_settings(path: str | Path | Settings | None = None) -> Settings:
    """Default settings, overridden by a TOML file when given (read strictly: see the module
    docstring). Settings given as such are returned as they are.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.toml")
    >>> _ = open(p, "w").write("[decisions]\\nblock = 0.9\\n")
    >>> load_settings(p)
    Traceback (most recent call last):
    ...
    pipelines.errors.FakestopError: ...: unknown section [decisions] (did you mean [decision]? ...
    """
    if isinstance(path, Settings):
        return path
    settings = Settings()
    if path is None:
        return settings
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FakestopError(f"{path}: cannot read configuration ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise FakestopError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FakestopError(f"{path}: invalid TOML ({exc})") from None
    for name in data:
        if name not in SECTIONS:
            raise _unknown(path, "section", f"[{name}]", [f"[{s}]" for s in SECTIONS])
    changes: dict[str, Any] = {}
    for name, read in SECTIONS.items():
        if name in data:
            changes.update(read(path, _table(path, name, data[name]), settings))
    if "decision" in data:
        changes["decision_from"] = str(path)
    settings = replace(settings, **changes)
    known = settings.conditions
    for name, target in settings.condition_synonyms.items():
        if target not in known:
            raise _fail(
                path,
                f"condition_synonyms.{name}",
                f"must name a condition ({', '.join(known)}), got {target!r}",
            )
    return settings
