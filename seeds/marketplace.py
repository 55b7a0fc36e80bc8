"""A deterministic, labelled sample marketplace over a brand registry.

Every listing has a ``label`` (1 = counterfeit) and a ``kind`` naming the case it stands for, so
benchmarks can report quality per case. The hard cases are covered both ways:

genuine
    ``genuine_generic`` unbranded goods; ``genuine_authorised`` brand at a normal price;
    ``genuine_sale`` 55-80% of retail; ``genuine_used`` / ``genuine_refurbished`` second-hand;
    ``genuine_accessory`` "case compatible with iPhone 15" at accessory prices;
    ``genuine_ordinary`` brand words as ordinary words ("coach jacket", "omega 3 fish oil");
    ``genuine_replica_nobrand`` legitimate replicas with no brand (ship models, props);
    ``genuine_word_brand`` a brand name that is an ordinary word, used as that word in a
    category none of the brand's ("Scallop shell soap dish" under home);
    ``genuine_fits`` accessories made to fit a brand's product, written in several languages
    ("Funda para iPhone 15", "Armband kompatibel mit Apple Watch", "iPhone 15 için kılıf")
counterfeit
    ``fake_phrase`` blatant phrases in several languages; ``fake_native`` native-script names;
    ``fake_typo`` / ``fake_confusable`` / ``fake_fullwidth`` / ``fake_zero_width`` /
    ``fake_leet`` / ``fake_spaced`` / ``fake_masked`` obfuscated names; ``fake_low_price`` the
    correct name at a few percent of retail; ``fake_premium`` "1:1" copies priced near retail

:func:`generate_small_goods` adds a brand's own small goods (an Apple charger, Nike socks), genuine
at the brand's price and counterfeit far below it; :func:`generate_reseller_photos` adds listings
that a photo decides (resellers showing the official photo beside counterfeits showing known
fakes).

Run ``python -m seeds.marketplace --n 20000 --out listings.parquet``.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from filters.text import ambiguous_keys, plural_key
from pipelines.config import DEFAULT_STANDARD_VOLUMES
from pipelines.registry import Registry, brand_key, default_registry_dir, load_registry

GENUINE_KINDS: dict[str, float] = {
    "genuine_generic": 0.32,
    "genuine_word_brand": 0.03,
    "genuine_fits": 0.05,
    "genuine_authorised": 0.19,
    "genuine_sale": 0.08,
    "genuine_used": 0.10,
    "genuine_refurbished": 0.03,
    "genuine_accessory": 0.10,
    "genuine_ordinary": 0.07,
    "genuine_replica_nobrand": 0.03,
}
FAKE_KINDS: dict[str, float] = {
    "fake_phrase": 0.22,
    "fake_native": 0.06,
    "fake_typo": 0.08,
    "fake_confusable": 0.06,
    "fake_fullwidth": 0.05,
    "fake_zero_width": 0.05,
    "fake_leet": 0.06,
    "fake_spaced": 0.06,
    "fake_masked": 0.05,
    "fake_low_price": 0.19,
    "fake_premium": 0.12,
}
#: the columns and types of a generated listing
LISTING_SCHEMA: dict[str, pl.DataType] = {
    "listing_id": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "seller_id": pl.String(),
    "currency": pl.String(),
    "condition": pl.String(),
    "price": pl.Float64(),
    "label": pl.Int8(),
    "kind": pl.String(),
}
OBFUSCATIONS = ("typo", "confusable", "fullwidth", "zero_width", "leet", "spaced", "masked")

NOUNS: dict[str, list[str]] = {
    "accessories": ["wallet", "belt", "card holder", "key ring", "scarf", "silk tie"],
    "auto_parts": ["brake pads", "oil filter", "spark plugs", "wiper blades", "air filter"],
    "bags": ["shoulder bag", "tote bag", "handbag", "crossbody bag", "backpack", "clutch"],
    "beverages": ["bottle 750ml", "gift set", "case of 6"],
    "cosmetics": ["lipstick", "foundation", "eyeshadow palette", "mascara", "face cream"],
    "electronics": ["smartphone 128GB", "wireless earbuds", "tablet", "laptop", "headphones"],
    "eyewear": ["sunglasses", "aviator sunglasses", "optical frames"],
    "fashion": ["hoodie", "t-shirt", "jacket", "sweater", "polo shirt", "dress"],
    "home_appliances": ["hair dryer", "vacuum cleaner", "blender", "coffee machine"],
    "jewelry": ["bracelet", "necklace", "ring", "earrings", "pendant"],
    "lubricants": ["engine oil 5W-30 4L", "motor oil 5L", "gear oil 1L"],
    "luxury": ["leather bag", "limited edition piece", "gift box set"],
    "perfume": ["eau de parfum 100ml", "eau de toilette 50ml", "perfume gift set"],
    "pharma": ["tablets 30 pack", "capsules", "pain relief gel", "vitamin tablets"],
    "shoes": ["sneakers", "running shoes", "trainers", "loafers", "boots", "sandals"],
    "sports": ["football", "tennis racket", "training jersey", "gym bag", "golf balls"],
    "toys": ["building set", "action figure", "doll", "plush toy", "puzzle"],
    "watches": ["watch", "automatic watch", "chronograph", "dive watch"],
}
COLOURS = ["black", "white", "brown", "red", "navy", "beige", "pink", "green", "grey", "gold"]
EXTRAS = ["new", "2024", "size M", "size 42", "limited", "classic", "medium", "small", "large"]

GENERIC_ITEMS = [
    "ceramic coffee mug",
    "stainless steel water bottle",
    "wooden cutting board",
    "desk lamp",
    "cotton bath towel set",
    "yoga mat",
    "garden hose 20m",
    "cast iron skillet",
    "kids bicycle helmet",
    "LED light bulbs 4 pack",
    "phone tripod",
    "notebook A5 dotted",
    "scented candle",
    "wool socks 3 pairs",
    "kitchen knife set",
    "picture frame 8x10",
    "dog leash",
    "cat scratching post",
    "plant pot with saucer",
    "bluetooth speaker",
    "travel pillow",
    "rain jacket",
    "denim jeans",
    "leather belt",
    "silk scarf",
    "running shorts",
    "winter gloves",
    "board game",
    "jigsaw puzzle 1000 pieces",
    "acrylic paint set",
    "fishing rod",
    "camping tent 2 person",
    "electric kettle",
    "bed sheets queen",
    "shower curtain",
    "laundry basket",
    "ballpoint pens 10 pack",
    "vintage postcard",
    "handmade soap",
    "baby blanket",
    "office chair cushion",
    "wall clock",
    "backpack for school",
    "reading glasses",
    "sun hat",
    "umbrella",
]
#: brand words used as ordinary words, with a category that is not the brand's
ORDINARY = [
    ("Coach jacket windbreaker", "fashion"),
    ("Life coach session voucher", None),
    ("Toy coach bus model", "toys"),
    ("Sea shell necklace handmade", "jewelry"),
    ("Soft shell hiking jacket", "fashion"),
    ("Shell earrings abalone", "jewelry"),
    ("Omega 3 fish oil 1000mg 120 capsules", "pharma"),
    ("Omega-3 krill oil", "pharma"),
    ("Apple pie dish ceramic", None),
    ("Green apple scented candle", None),
    ("Apple cider vinegar 500ml", None),
    ("Victor Hugo Les Miserables paperback", None),
    ("Like a boss coffee mug", None),
    ("Puma plush toy 30cm", "toys"),
    ("Fossil fuel history book", None),
    ("Ammonite fossil specimen", None),
    ("Diesel engine oil filter for tractor", "auto_parts"),
    ("Fabric swatch book", None),
    ("Senior citizen bus pass holder", None),
    ("Pandora's box board game", "toys"),
    ("Tiffany lamp stained glass", None),
    ("Supreme court history book", None),
    ("Baby shark plush", "toys"),
    ("Crocodile leather look notebook", None),
    ("Camper vans model kit", "toys"),
    ("Canon in D sheet music", None),
]
#: brand names that are ordinary words, used as those words in categories none of the brand's:
#: (title, category); what a shop sells, not phrases the filter knows
WORD_BRANDS: dict[str, list[tuple[str, str]]] = {
    "Apple": [
        ("Apple scented soy candle 200g", "home"),
        ("Dried apple rings 500g organic", "food"),
        ("Apple tree sapling 1.5m Braeburn", "garden"),
        ("Apple slicer and corer stainless steel", "home"),
    ],
    "Shell": [
        ("Scallop shell soap dish ceramic", "home"),
        ("Shell shaped cake mould silicone", "home"),
        ("Shell fossil specimen polished", "collectibles"),
    ],
    "Coach": [
        ("Coach tactics board magnetic 45cm", "sports"),
        ("Vintage coach lamp brass outdoor", "home"),
    ],
    "Boss": [
        ("Boss lady wall sign wooden", "home"),
        ("Boss battle board game expansion", "games"),
    ],
    "Omega": [("Omega pendant charm stainless steel", "crafts")],
    "Puma": [("Puma wildlife photography calendar 2025", "books")],
    "Canon": [("Canon law handbook paperback", "books")],
    "Diesel": [("Diesel heater 5kW for garage", "home_appliances")],
    "Shark": [("Shark tooth necklace cord", "crafts"), ("Shark kite for kids", "toys")],
    "Fossil": [("Fossil hunting kit for kids", "toys")],
    "Citizen": [("Citizen science field guide paperback", "books")],
    "Supreme": [("Supreme pizza seasoning 80g", "food")],
    "Beats": [("Lo-fi beats vinyl record", "music")],
    "Creed": [("Creed soundtrack vinyl LP", "music")],
    "Jordan": [("Jordan travel guide 2025 paperback", "books")],
    "Braun": [("Braun sauce recipe cookbook", "books")],
    "Wilson": [("Wilson family history book hardcover", "books")],
}
#: categories the generator lists goods under besides the registry's
OTHER_CATEGORIES = frozenset(
    {"accessories", "toys", *(c for uses in WORD_BRANDS.values() for _, c in uses)}
)
#: accessories made to fit a brand's product, by language ({m}: the product)
FITS = [
    "Silicone band for {m} 41mm",
    "Fits {m} - replacement strap black",
    "Compatible with {m} fast charger 20W",
    "Designed for {m} magnetic car mount",
    "{m} case shockproof clear",
    "{m} screen protector 2 pack",
    "Funda para {m} silicona",
    "Correa compatible con {m}",
    "Soporte de coche para {m}",
    "Coque pour {m} antichoc",
    "Bracelet compatible avec {m}",
    "Chargeur conçu pour {m}",
    "Hülle für {m} transparent",
    "Armband kompatibel mit {m}",
    "Halterung passend für {m}",
    "Custodia per {m}",
    "Cinturino compatibile con {m}",
    "Capa para {m} anti-impacto",
    "Pulseira compatível com {m}",
    "Чехол для {m}",
    "Ремешок для {m}",
    "{m} için kılıf şeffaf",
    "{m} ile uyumlu kordon",
]
#: products accessories are made to fit (as a title writes them)
FIT_PRODUCTS = [
    "Apple Watch",
    "iPhone 15 Pro",
    "AirPods Pro",
    "iPad Air",
    "Galaxy S24",
    "Galaxy Watch",
    "Garmin Fenix 7",
    "Fitbit Charge 6",
    "Pixel 8",
    "Xiaomi Redmi Note 13",
    "Huawei Watch GT 4",
    "Sony WH-1000XM5",
]
REPLICA_NOBRAND = [
    "Titanic replica ship model 1:350",
    "Museum replica Roman gladius sword",
    "Replica dinosaur skull cast",
    "Replica fossil trilobite",
    "Scale replica steam locomotive",
    "Prop replica wand collector box",
    "Replica coin set ancient Rome",
    "Ship model replica HMS Victory kit",
    "Replica fossil shark tooth",
    "Replica jersey 1970 retro",
]
#: accessories made *for* a brand's product, by category of that brand
ACCESSORY: dict[str, list[str]] = {
    "electronics": [
        "Silicone case compatible with {b} {m}",
        "Screen protector for {b} {m} tempered glass",
        "Charger compatible with {b} {m}",
        "Case for {b} {m} clear",
        "Stand for {b} {m}",
        "{b} {m} compatible case shockproof",
        "{b} {m} charger cable compatible fast charging",
    ],
    "watches": [
        "Watch strap for {b} {m} 20mm leather",
        "Band compatible with {b} {m}",
        "Replacement strap for {b} watch",
        "{b} {m} band compatible 44mm",
    ],
    "shoes": [
        "Replacement laces for {b} {m}",
        "Insoles for {b} sneakers",
        "Shoe trees for {b} {m}",
    ],
    "bags": [
        "Dust bag for {b} handbag",
        "Organizer insert for {b} {m}",
        "Strap for {b} {m} bag",
    ],
    "home_appliances": [
        "Replacement filter for {b} {m}",
        "Wall mount compatible with {b} {m}",
        "{b} {m} compatible filter 2 pack",
    ],
    "eyewear": ["Replacement lenses for {b} {m}", "Case for {b} sunglasses"],
    "auto_parts": ["Floor mats fit for {b} {m}", "Key fob cover for {b} {m}"],
}
#: model names that accessories are made for
MODELS: dict[str, list[str]] = {
    "Apple": ["iPhone 15 Pro", "iPhone 14", "iPad Air", "MacBook Air 13", "AirPods Pro"],
    "Samsung": ["Galaxy S24", "Galaxy S23 Ultra", "Galaxy Tab S9"],
    "Sony": ["PS5 controller", "WH-1000XM5"],
    "Nike": ["Air Force 1", "Air Max 90"],
    "Adidas": ["Stan Smith", "Superstar"],
    "Rolex": ["Submariner", "Datejust"],
    "Omega": ["Speedmaster", "Seamaster"],
    "Louis Vuitton": ["Neverfull", "Speedy 30"],
    "Gucci": ["Marmont", "Dionysus"],
    "Dyson": ["V11", "V15 Detect"],
    "Ray-Ban": ["Wayfarer", "Aviator"],
    "Toyota": ["Corolla", "RAV4"],
    "BMW": ["X5", "3 Series"],
}
PHRASES = [
    "{b} {n} replica AAA",
    "1:1 {b} {n} mirror quality",
    "{b} {n} super copy",
    "Fake {b} {n}",
    "{b} {n} high copy best quality",
    "Réplica {b} {n} calidad espejo",
    "{b} {n} réplique",
    "{b} {n} Replik",
    "Реплика {b} {n}",
    "{b} {n} 1:1 top quality",
    "{b} {n} UA batch",
    "{b} {n} first copy",
    "Cópia {b} {n} primeira linha",
    "{b} {n} 7A grade",
]
PREMIUM = [
    "{b} {n} 1:1 mirror quality",
    "{b} {n} super copy top grade",
    "{b} {n} replica best version",
    "Top copy {b} {n} with box",
]
NATIVE_PHRASES = ["高仿 {z} {n}", "{z} 复刻 {n}", "{z} 精仿 {n} A货", "一比一 {z} {n}"]

#: Latin letter -> look-alike letters from other scripts
LOOKALIKE = {
    "a": "аα",
    "c": "сϲ",
    "e": "е",
    "i": "іι",
    "j": "ј",
    "k": "кκ",
    "o": "оο",
    "p": "рρ",
    "s": "ѕ",
    "x": "хχ",
    "y": "у",
    "h": "һ",
}
LEET_OUT = {"o": "0", "e": "3", "a": "4", "s": "5", "i": "1", "t": "7", "b": "8", "g": "9"}
VOWELS = "aeiou"


@dataclass(frozen=True)
class _Brand:
    name: str
    categories: tuple[tuple[str, float], ...]
    aliases: tuple[str, ...]
    native: str | None
    key: str
    #: aliases on some of the brand's rows only (product lines) -> those rows' categories
    lines: tuple[tuple[str, frozenset[str]], ...] = ()


def _volume_share(category: str, noun: str) -> float:
    """A bottle's share of its category's reference price, which is for the standard volume:
    (volume / standard) ** 0.5, as the price filter expects ("eau de toilette 50ml": 0.71)."""
    standard = DEFAULT_STANDARD_VOLUMES.get(category)
    found = re.search(r"([0-9]+)ml\b", noun)
    if standard is None or found is None:
        return 1.0
    return float((int(found.group(1)) / standard) ** 0.5)


def _brands(registry: Registry) -> list[_Brand]:
    out = []
    for name in registry.brand_names:
        sub = registry.brands.filter(pl.col("brand") == name)
        cats = tuple(zip(sub["category"].to_list(), sub["reference_price"].to_list(), strict=True))
        aliases = sorted({a for al in sub["aliases"].to_list() for a in al})
        native = next((a for a in aliases if re.search(r"[\u3400-\u9fff]", a)), None)
        latin = tuple(a for a in aliases if not re.search(r"[\u3400-\u9fff]", a))
        rows = list(zip(sub["category"].to_list(), sub["aliases"].to_list(), strict=True))
        lines = tuple(
            (a, frozenset(c for c, al in rows if a in al))
            for a in aliases
            if sum(a in al for _, al in rows) < len(rows)
        )
        out.append(_Brand(name, cats, latin, native, brand_key(name), lines))
    return out


def _typo(word: str, rng: random.Random) -> str:
    """One edit of the given family, never the word itself."""
    inner = [j for j in range(1, len(word) - 1) if word[j].isalpha()]
    for _ in range(20):
        i = rng.choice(inner)
        op = rng.choice(["insert", "omit", "repeat", "transpose", "replace", "vowel"])
        if op == "insert":
            out = word[:i] + rng.choice("aeiourstnl") + word[i:]
        elif op == "omit":
            out = word[:i] + word[i + 1 :]
        elif op == "repeat":
            out = word[:i] + word[i] + word[i:]
        elif op == "transpose":
            if not word[i + 1].isalpha():
                continue
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif op == "replace":
            out = word[:i] + rng.choice("bcdfghklmnprstvz") + word[i + 1 :]
        else:
            vowels = [j for j, c in enumerate(word) if c.lower() in VOWELS and j > 0]
            if not vowels:
                continue
            j = rng.choice(vowels)
            out = word[:j] + rng.choice([v for v in VOWELS if v != word[j].lower()]) + word[j + 1 :]
        if out.lower() != word.lower():
            return out
    return word + word[-1]


def obfuscate(name: str, family: str, rng: random.Random) -> str:
    """``name`` written the way a counterfeiter hides it from exact matching."""
    letters = [i for i, c in enumerate(name) if c.isalpha() and c.isascii()]
    if family == "typo":
        words = name.split()
        j = max(range(len(words)), key=lambda k: len(words[k]))
        words[j] = _typo(words[j], rng)
        return " ".join(words)
    if family == "confusable":
        swappable = [i for i in letters if name[i].lower() in LOOKALIKE]
        chars = list(name)
        for i in rng.sample(swappable, k=min(len(swappable), rng.choice([1, 2]))):
            chars[i] = rng.choice(LOOKALIKE[name[i].lower()])
        return "".join(chars)
    if family == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)
    if family == "zero_width":
        cut = rng.randrange(1, len(name))
        return name[:cut] + rng.choice(["\u200b", "\u200c", "\u00ad", "\u200d"]) + name[cut:]
    if family == "leet":
        swappable = [i for i in letters if name[i].lower() in LEET_OUT]
        chars = list(name)
        for i in rng.sample(swappable, k=min(len(swappable), rng.choice([1, 1, 2]))):
            chars[i] = LEET_OUT[name[i].lower()]
        return "".join(chars)
    if family == "spaced":
        sep = rng.choice([" ", ".", "-", " "])
        return sep.join(c for c in name.upper() if c.isalnum())
    if family == "masked":
        inner = [i for i in letters if 0 < i < len(name) - 1]
        k = 1 if len(inner) < 5 else rng.choice([1, 2])
        chars = list(name)
        for i in rng.sample(inner, k=k):
            chars[i] = "*"
        return "".join(chars)
    raise ValueError(f"unknown obfuscation family {family!r}; expected one of {OBFUSCATIONS}")


def _eligible(brand: _Brand, family: str, keys: set[str], ambiguous: set[str]) -> bool:
    """Brands for which the family makes a realistic, readable mention."""
    name = brand.name
    if not name.isascii() or not re.fullmatch(r"[A-Za-z][A-Za-z .&'-]*", name):
        return False
    if family == "typo":
        # names of 4 letters or less have no edit budget; ordinary words are never fuzzy-matched
        return len(brand.key) >= 5 and brand.key not in ambiguous
    if family == "confusable":
        return any(c.lower() in LOOKALIKE for c in name)
    if family == "leet":
        return any(c.lower() in LEET_OUT for c in name)
    if family == "masked":
        return len(brand.key) >= 5 and " " not in name
    return len(brand.key) >= 3


def _masked_is_unique(text: str, keys: set[str]) -> bool:
    pattern = re.compile(
        "^" + "".join("." if c == "*" else re.escape(c) for c in text.lower()) + "$"
    )
    return sum(bool(pattern.match(k)) for k in keys) == 1


def generate_marketplace(
    registry: Registry,
    n: int,
    *,
    seed: int = 0,
    fake_share: float = 0.35,
    true_brand: bool = False,
    kinds: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """``n`` labelled listings over ``registry``: contract columns plus ``label`` and ``kind``
    (and ``true_brand``, the brand the listing is about, when asked for).

    ``kinds`` replaces the weights of the named kinds (:data:`GENUINE_KINDS`,
    :data:`FAKE_KINDS`) for another mix of cases; the weights of each side are relative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= fake_share <= 1.0:
        raise ValueError(f"fake_share must be within [0, 1], got {fake_share}")
    weights = {**GENUINE_KINDS, **FAKE_KINDS}
    for kind, weight in (kinds or {}).items():
        if kind not in weights:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(weights)}")
        if not weight >= 0.0:
            raise ValueError(f"the weight of {kind!r} must be >= 0, got {weight}")
        weights[kind] = float(weight)
    rng = random.Random(seed)
    brands = _brands(registry)
    keys = {brand_key(x) for b in brands for x in (b.name, *b.aliases)}
    ambiguous = ambiguous_keys(registry)
    eligible = {f: [b for b in brands if _eligible(b, f, keys, ambiguous)] for f in OBFUSCATIONS}
    plain = [b for b in brands if brand_key(b.name) not in ambiguous]
    native = [b for b in plain if b.native]
    accessory_brands = [b for b in brands if any(c in ACCESSORY for c, _ in b.categories)]
    registry_names = set(registry.brand_names)
    genuine_kinds, fake_kinds = list(GENUINE_KINDS), list(FAKE_KINDS)
    genuine_w = [weights[k] for k in genuine_kinds]
    fake_w = [weights[k] for k in fake_kinds]
    if not sum(genuine_w) > 0 or not sum(fake_w) > 0:
        raise ValueError("kinds leaves a side (genuine or counterfeit) with no weight")
    fake_sellers = max(1, n // 40)
    honest_sellers = max(1, n // 25)

    truth: list[str] = []
    cols: dict[str, list[object]] = {
        c: []
        for c in (
            "listing_id",
            "title",
            "description",
            "category",
            "brand",
            "seller_id",
            "currency",
            "condition",
            "price",
            "label",
            "kind",
        )
    }
    for i in range(n):
        fake = rng.random() < fake_share
        kind = (
            rng.choices(fake_kinds, fake_w)[0] if fake else rng.choices(genuine_kinds, genuine_w)[0]
        )
        family = kind.removeprefix("fake_")
        pool = eligible.get(family) or (native if kind == "fake_native" else plain)
        brand = rng.choice(pool)
        category, ref = rng.choice(brand.categories)
        noun = rng.choice(NOUNS.get(category, ["item"]))
        ref *= _volume_share(category, noun)
        name = rng.choice([brand.name] * 3 + list(brand.aliases)) if brand.aliases else brand.name
        # a product line's alias only in its own categories ("Apple Watch" among watches)
        if any(a == name and category not in cats for a, cats in brand.lines):
            name = brand.name
        colour, extra = rng.choice(COLOURS), rng.choice(EXTRAS)
        condition, declared, description = "new", None, ""
        cat: str | None = category
        if kind == "genuine_generic":
            title = f"{rng.choice(GENERIC_ITEMS)} {colour}".capitalize()
            cat, ref = None, rng.uniform(8, 120)
            price = ref
        elif kind in ("genuine_authorised", "genuine_sale", "genuine_refurbished", "genuine_used"):
            title = f"{name} {noun} {colour} {extra}"
            declared = brand.name
            low, high = {
                "genuine_authorised": (0.85, 1.25),
                "genuine_sale": (0.55, 0.8),
                "genuine_refurbished": (0.6, 0.85),
                "genuine_used": (0.35, 0.75),
            }[kind]
            price = ref * rng.uniform(low, high)
            if kind == "genuine_used":
                condition = "used"
                title = rng.choice(["Pre-owned ", "Used ", "", "Vintage "]) + title
                description = "Pre-owned, light signs of wear. Original receipt included."
            elif kind == "genuine_refurbished":
                condition = "refurbished"
                description = "Refurbished, tested, 12 month warranty"
            elif kind == "genuine_sale":
                description = "End of season sale, authorised retailer"
            else:
                description = rng.choice(
                    ["Authorised dealer, full warranty", "Brand new with tags", ""]
                )
        elif kind == "genuine_accessory":
            brand = rng.choice(accessory_brands)
            kinds_of = [c for c, _ in brand.categories if c in ACCESSORY]
            model = rng.choice(MODELS.get(brand.name, [""]))
            title = rng.choice(ACCESSORY[rng.choice(kinds_of)]).format(b=brand.name, m=model)
            title = " ".join(title.split())
            if brand.name in ("Apple", "Samsung") and rng.random() < 0.5:
                title = title.replace(f"{brand.name} ", "")  # "case for iPhone 15 Pro"
            cat, price = "accessories", rng.uniform(4, 35)
        elif kind == "genuine_ordinary":
            title, cat = rng.choice(ORDINARY)
            price = rng.uniform(5, 60)
        elif kind == "genuine_word_brand":
            words = [w for w in WORD_BRANDS if w in registry_names]
            word = rng.choice(words)
            title, cat = rng.choice(WORD_BRANDS[word])
            price = rng.uniform(5, 45)
        elif kind == "genuine_fits":
            product = rng.choice(FIT_PRODUCTS)
            title = rng.choice(FITS).format(m=product)
            # listed as an accessory, or under the product's own category
            cat = "accessories" if rng.random() < 0.7 else "electronics"
            price = rng.uniform(4, 40)
        elif kind == "genuine_replica_nobrand":
            title, cat, price = rng.choice(REPLICA_NOBRAND), "toys", rng.uniform(15, 250)
        elif kind == "fake_phrase":
            title = rng.choice(PHRASES).format(b=name, n=noun)
            price = ref * rng.uniform(0.02, 0.2)
            description = rng.choice(["", "Top quality, fast shipping", "Same as original"])
        elif kind == "fake_native":
            assert brand.native is not None
            title = rng.choice(NATIVE_PHRASES).format(z=brand.native, n=noun)
            price = ref * rng.uniform(0.03, 0.2)
        elif kind == "fake_low_price":
            title = f"{name} {noun} {colour} {extra}"
            price = ref * rng.uniform(0.02, 0.12)
            declared = brand.name if rng.random() < 0.5 else None
        elif kind == "fake_premium":
            title = rng.choice(PREMIUM).format(b=name, n=noun)
            price = ref * rng.uniform(0.4, 0.9)
        else:
            written = obfuscate(brand.name, family, rng)
            for _ in range(5):
                if family != "masked" or _masked_is_unique(written, keys):
                    break
                written = obfuscate(brand.name, family, rng)
            else:
                written = obfuscate(brand.name, "spaced", rng)
                kind = "fake_spaced"
            title = f"{written} {noun} {colour}"
            price = ref * rng.uniform(0.03, 0.3)
        if fake:
            seller = f"s{rng.randrange(fake_sellers):05d}f"
            if rng.random() < 0.3:
                cat = None
        else:
            seller = f"s{rng.randrange(honest_sellers):05d}g"
        currency = rng.choices(["USD", "EUR", "GBP", "CNY"], [0.7, 0.15, 0.1, 0.05])[0]
        rate = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CNY": 0.14}[currency]
        cols["listing_id"].append(f"m{seed}-{i:08d}")
        cols["title"].append(title)
        cols["description"].append(description)
        cols["category"].append(cat)
        cols["brand"].append(declared)
        cols["seller_id"].append(seller)
        cols["currency"].append(currency)
        cols["condition"].append(condition)
        cols["price"].append(round(max(price, 1.0) / rate, 2))
        cols["label"].append(int(fake))
        cols["kind"].append(kind)
        truth.append(brand.name)
    frame = pl.DataFrame(
        cols,
        schema=LISTING_SCHEMA,
    )
    return frame.with_columns(pl.Series("true_brand", truth, pl.String)) if true_brand else frame


#: a brand's own small goods by category of the brand: (lexicon phrase, title template)
SMALL_GOODS: dict[str, list[tuple[str, str]]] = {
    "electronics": [
        ("charger", "{b} 20W USB-C charger"),
        ("power adapter", "{b} power adapter 30W"),
        ("usb cable", "{b} USB cable 1m"),
    ],
    "eyewear": [
        ("cleaning cloth", "{b} lens cleaning cloth"),
        ("glasses case", "{b} glasses case"),
    ],
    "shoes": [("socks", "{b} crew socks 3 pack"), ("shoelaces", "{b} shoelaces 120cm")],
    "sports": [("socks", "{b} training socks")],
    "fashion": [("socks", "{b} socks {c}")],
    "toys": [("keychain", "{b} keychain"), ("minifigure", "{b} minifigure")],
    "bags": [("key ring", "{b} key ring {c}"), ("bag charm", "{b} bag charm")],
    "accessories": [("keychain", "{b} keychain {c}")],
}


def _listing(
    listing_id: str,
    title: str,
    category: str | None,
    price: float,
    kind: str,
    rng: random.Random,
    n: int,
) -> dict[str, object]:
    """A listing of the side generators: new, in USD, no declared brand, by one of ``n // 20``
    sellers of its side."""
    fake = kind.startswith("fake_")
    return {
        "listing_id": listing_id,
        "title": title,
        "description": "",
        "category": category,
        "brand": None,
        "seller_id": f"s{rng.randrange(max(1, n // 20)):05d}{'f' if fake else 'g'}",
        "currency": "USD",
        "condition": "new",
        "price": round(max(price, 1.0), 2),
        "label": int(fake),
        "kind": kind,
    }


def generate_small_goods(registry: Registry, n: int, *, seed: int = 0) -> pl.DataFrame:
    """``n`` labelled listings of brands' own small goods: half ``genuine_small_goods`` at 40-100%
    of the item's share of the brand's dearest reference price (the lexicon's
    ``[small_goods]``), half ``fake_small_goods`` at 5-25% of it (a $3 "Apple charger"); only
    items whose share comes to $10 or more."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    shares = registry.lexicon.small_goods_shares()
    dearest = registry.brands.group_by("brand").agg(pl.col("reference_price").max())
    top = dict(dearest.iter_rows())
    choices = [
        (b.name, cat, phrase, template)
        for b in _brands(registry)
        for cat, _ in b.categories
        for phrase, template in SMALL_GOODS.get(cat, [])
        # a brand whose dearest goods are cheap sells no $1 charger: its item would be noise
        if phrase in shares and shares[phrase] * top[b.name] >= 10
    ]
    if not choices and n:
        raise ValueError("the registry has no brand in a category with small goods")
    rows: list[dict[str, object]] = []
    for i in range(n):
        brand, cat, phrase, template = rng.choice(choices)
        fake = i % 2 == 1
        low, high = (0.05, 0.25) if fake else (0.4, 1.0)
        price = shares[phrase] * top[brand] * rng.uniform(low, high)
        title = template.format(b=brand, c=rng.choice(COLOURS))
        kind = "fake_small_goods" if fake else "genuine_small_goods"
        rows.append(_listing(f"g{seed}-{i:08d}", title, cat, price, kind, rng, n))
    return pl.DataFrame(
        rows,
        schema=LISTING_SCHEMA,
    )


#: football clubs for fan kits, which the clubs' suppliers call "replica" shirts
CLUBS = ["England", "Real Madrid", "Arsenal", "Juventus", "Brazil", "Bayern", "Boca Juniors"]
#: volumes (ml) of genuine small bottles
BOTTLES = [
    ("eau de toilette {v}ml", 30),
    ("eau de parfum {v}ml", 50),
    ("travel spray {v}ml", 10),
    ("mini {v}ml", 5),
]


def generate_everyday(registry: Registry, n: int, *, seed: int = 0) -> pl.DataFrame:
    """``n`` labelled listings of the everyday kinds a marketplace sees that a crude filter gets
    wrong both ways, by turns genuine and counterfeit:

    - ``genuine_plural``: a brand in the plural at its price ("Timberlands boots");
    - ``genuine_small_bottle``: a 5-50 ml perfume at its volume's price
      ((volume / 100 ml) ** 0.5 of the reference);
    - ``genuine_fan_kit``: a sportswear brand's "home replica shirt" of a club at its price;
    - ``fake_model_name``: a brand's other name alone (a model name such as "Submariner", or
      "LV") at 2-12% of the reference, listed in the brand's category;
    - ``fake_plural``: a brand in the plural at 2-12% of the reference;
    - ``fake_small_bottle``: a small bottle at 2-12% of its volume's price."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    brands = _brands(registry)
    ambiguous = ambiguous_keys(registry)
    common = {w.lower() for w in registry.lexicon.common_words}
    # one-word names whose plural is the name and "s", and no word of its own
    plural = [
        b
        for b in brands
        if re.fullmatch(r"[A-Za-z]{5,}", b.name)
        and b.key not in ambiguous
        and plural_key(b.key) == b.key + "s"
        and b.key + "s" not in common
    ]
    perfume = [b for b in brands if any(c == "perfume" for c, _ in b.categories)]
    sports = [b for b in brands if any(c == "sports" for c, _ in b.categories)]
    named = [(b, a) for b in brands for a in b.aliases if brand_key(a) != b.key]
    genuine = ["genuine_plural", "genuine_small_bottle", "genuine_fan_kit"]
    fakes = ["fake_model_name", "fake_plural", "fake_small_bottle"]
    rows: list[dict[str, object]] = []
    for i in range(n):
        fake = i % 2 == 1
        kind = rng.choice(fakes if fake else genuine)
        share = rng.uniform(0.02, 0.12) if fake else rng.uniform(0.85, 1.2)
        colour = rng.choice(COLOURS)
        if kind in ("genuine_plural", "fake_plural"):
            brand = rng.choice(plural)
            cat, ref = rng.choice(brand.categories)
            title = f"{brand.name}s {rng.choice(NOUNS.get(cat, ['item']))} {colour}"
        elif kind in ("genuine_small_bottle", "fake_small_bottle"):
            brand = rng.choice(perfume)
            cat, ref = next((c, r) for c, r in brand.categories if c == "perfume")
            template, volume = rng.choice(BOTTLES)
            title = f"{brand.name} {template.format(v=volume)}"
            ref *= _volume_share(cat, template.format(v=volume))
        elif kind == "genuine_fan_kit":
            brand = rng.choice(sports)
            cat, ref = next((c, r) for c, r in brand.categories if c == "sports")
            title = f"{brand.name} {rng.choice(CLUBS)} home replica shirt 2024"
        else:
            brand, alias = rng.choice(named)
            # the categories whose row lists the alias: a product line's alias in its own
            on = dict(brand.lines).get(alias)
            cat, ref = rng.choice([(c, r) for c, r in brand.categories if on is None or c in on])
            title = f"{alias} {rng.choice(NOUNS.get(cat, ['item']))} {colour}"
        rows.append(_listing(f"e{seed}-{i:08d}", title, cat, ref * share, kind, rng, n))
    return pl.DataFrame(rows, schema=LISTING_SCHEMA)


def generate_categories(registry: Registry, n: int, *, seed: int = 0) -> pl.DataFrame:
    """``n`` labelled listings whose categories are written as marketplaces write them (the
    paths of :mod:`seeds.marketplace_categories`, in a dozen languages) or are missing, by
    turns genuine and counterfeit:

    - ``genuine_category_path`` / ``fake_category_path``: a brand's goods at 85-125% / 2-12%
      of the reference of the category the path files them under;
    - ``genuine_no_category`` / ``fake_no_category``: the same without a category, the title
      naming the goods ("shoulder bag", "sunglasses");
    - ``fake_ambiguous_category``: a brand whose name is an ordinary word ("Jordan", "Coach",
      "Pandora") at 2-12% under a path of one of its categories;
    - ``genuine_brand_media``: a book or poster about a brand at $8-60, filed with books or
      prints."""
    from seeds.marketplace_categories import BRAND_MEDIA, BRAND_MEDIA_PATHS, MARKETPLACE_PATHS

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    brands = _brands(registry)
    ambiguous = {brand_key(w) for w in registry.lexicon.ordinary}
    plain = [b for b in brands if b.key not in ambiguous]
    # an ordinary-word name a title may use, with its brand ("Jordan": Air Jordan)
    words = [
        (b, name)
        for b in brands
        for name in (b.name, *b.aliases)
        if brand_key(name) in ambiguous and re.fullmatch(r"[A-Za-z ]+", name)
    ]
    # goods that are not a brand's small goods (a key ring is priced as a share of the
    # brand's goods: another family)
    small = registry.lexicon.small_goods_shares()
    nouns = {
        c: [x for x in ns if not any(re.search(rf"\b{re.escape(p)}\b", x) for p in small)]
        for c, ns in NOUNS.items()
    }
    genuine = ["genuine_category_path", "genuine_no_category", "genuine_brand_media"]
    fakes = ["fake_category_path", "fake_no_category", "fake_ambiguous_category"]
    rows: list[dict[str, object]] = []
    for i in range(n):
        fake = i % 2 == 1
        kind = rng.choice(fakes if fake else genuine)
        colour = rng.choice(COLOURS)
        if kind == "genuine_brand_media":
            brand = rng.choice(plain)
            title = rng.choice(BRAND_MEDIA).format(b=brand.name)
            rows.append(
                _listing(
                    f"c{seed}-{i:08d}",
                    title,
                    rng.choice(BRAND_MEDIA_PATHS),
                    rng.uniform(8, 60),
                    kind,
                    rng,
                    n,
                )
            )
            continue
        if kind == "fake_ambiguous_category":
            brand, name = rng.choice(words)
        else:
            brand = rng.choice(plain)
            name = (
                rng.choice([brand.name] * 3 + list(brand.aliases)) if brand.aliases else brand.name
            )
        cat, ref = rng.choice(brand.categories)
        if any(a == name and cat not in cats for a, cats in brand.lines):
            name = brand.name
        noun = rng.choice(nouns.get(cat) or ["item"])
        ref *= _volume_share(cat, noun)
        title = f"{name} {noun} {colour}"
        category = None if kind.endswith("no_category") else rng.choice(MARKETPLACE_PATHS[cat])
        share = rng.uniform(0.02, 0.12) if fake else rng.uniform(0.85, 1.25)
        rows.append(_listing(f"c{seed}-{i:08d}", title, category, ref * share, kind, rng, n))
    return pl.DataFrame(rows, schema=LISTING_SCHEMA)


#: the photo families of :func:`generate_reseller_photos` and their shares
RESELLER_PHOTO_KINDS: dict[str, float] = {
    "genuine_reseller_photo": 0.6,
    "fake_known_photo": 0.25,
    "fake_official_photo": 0.15,
}


def generate_reseller_photos(registry: Registry, n: int, *, seed: int = 0) -> pl.DataFrame:
    """``n`` labelled listings of brands that have reference photos in ``registry``, for a
    photo to decide (give them photos with :func:`seeds.images.attach_images`):

    - ``genuine_reseller_photo``: an authorised reseller at 85-125% of the reference price,
      declaring the brand and showing the brand's official photo (as resellers reuse it:
      cropped, rescaled, recompressed...), in a registry whose known fakes of the brand are
      other photos;
    - ``fake_known_photo``: a counterfeit at 25-60% of the reference price under a plain
      title, showing the photo of a counterfeit removed before (a known fake, reused);
    - ``fake_official_photo``: a counterfeit at 2-12% of the reference price showing the
      brand's stolen official photo.

    Every listing has ``true_brand`` (the brand its photo comes from)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pictured = set(registry.official_images.get_column("brand").to_list()) & set(
        registry.known_fakes.get_column("brand").to_list()
    )
    brands = [b for b in _brands(registry) if b.name in pictured]
    if n and not brands:
        raise ValueError("the registry has no brand with both official photos and known fakes")
    rng = random.Random(seed)
    kinds, weights = list(RESELLER_PHOTO_KINDS), list(RESELLER_PHOTO_KINDS.values())
    rows: list[dict[str, object]] = []
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        brand = rng.choice(brands)
        category, ref = rng.choice(brand.categories)
        noun = rng.choice(NOUNS.get(category, ["item"]))
        ref *= _volume_share(category, noun)
        title = f"{brand.name} {noun} {rng.choice(COLOURS)}"
        low, high = {
            "genuine_reseller_photo": (0.85, 1.25),
            "fake_known_photo": (0.25, 0.6),
            "fake_official_photo": (0.02, 0.12),
        }[kind]
        row = _listing(
            f"r{seed}-{i:08d}", title, category, ref * rng.uniform(low, high), kind, rng, n
        )
        if kind == "genuine_reseller_photo":
            row["brand"] = brand.name
            row["description"] = rng.choice(["Authorised dealer, full warranty", ""])
        row["true_brand"] = brand.name
        rows.append(row)
    return pl.DataFrame(rows, schema={**LISTING_SCHEMA, "true_brand": pl.String()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fake-share", type=float, default=0.35)
    parser.add_argument("--registry", default=str(default_registry_dir()))
    parser.add_argument("--out", required=True, help="listings file (.parquet, .csv or .ndjson)")
    args = parser.parse_args(argv)
    frame = generate_marketplace(
        load_registry(args.registry), args.n, seed=args.seed, fake_share=args.fake_share
    )
    out = Path(args.out)
    if out.suffix == ".csv":
        frame.write_csv(out)
    elif out.suffix in (".ndjson", ".jsonl"):
        frame.write_ndjson(out)
    else:
        frame.write_parquet(out)
    print(f"{frame.height} listings ({int(frame['label'].sum())} counterfeit) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


#: brand names as sellers write them in other scripts, by language, written for this generator
#: from those languages' marketplace titles (not read from the registry's names.csv), with the
#: forms running text gives them: Russian case endings, Arabic and Hebrew prefixes, Arabic
#: spelling variants (hamza, alef maksura, diacritics, tatweel), Japanese with and without the
#: middle dot, Greek in capitals
SCRIPT_NAMES: dict[str, dict[str, list[str]]] = {
    "ja": {
        "Rolex": ["ロレックス"],
        "Louis Vuitton": ["ルイヴィトン", "ルイ・ヴィトン", "ルイ ヴィトン"],
        "Chanel": ["シャネル"],
        "Gucci": ["グッチ"],
        "Hermès": ["エルメス"],
        "Prada": ["プラダ"],
        "Dior": ["ディオール"],
        "Nike": ["ナイキ"],
        "Adidas": ["アディダス"],
        "Omega": ["オメガ"],
        "Cartier": ["カルティエ"],
        "Balenciaga": ["バレンシアガ"],
        "Celine": ["セリーヌ"],
        "Moncler": ["モンクレール"],
        "Dyson": ["ダイソン"],
        "Sony": ["ソニー"],
        "New Balance": ["ニューバランス"],
        "Tiffany & Co.": ["ティファニー"],
    },
    "ko": {
        "Rolex": ["롤렉스"],
        "Louis Vuitton": ["루이비통", "루이 비통"],
        "Chanel": ["샤넬"],
        "Gucci": ["구찌"],
        "Hermès": ["에르메스"],
        "Prada": ["프라다"],
        "Dior": ["디올"],
        "Nike": ["나이키"],
        "Adidas": ["아디다스"],
        "Balenciaga": ["발렌시아가"],
        "Moncler": ["몽클레르"],
        "Cartier": ["까르띠에"],
        "Samsung": ["삼성"],
        "Dyson": ["다이슨"],
        "The North Face": ["노스페이스"],
    },
    "ru": {
        "Rolex": ["Ролекс", "Ролекса"],
        "Louis Vuitton": ["Луи Виттон", "Луи Виттона"],
        "Chanel": ["Шанель"],
        "Gucci": ["Гуччи"],
        "Prada": ["Прада", "Прады"],
        "Dior": ["Диор", "Диора"],
        "Nike": ["Найк", "Найки"],
        "Adidas": ["Адидас", "Адидаса"],
        "Balenciaga": ["Баленсиага", "Баленсиаги"],
        "Versace": ["Версаче"],
        "Cartier": ["Картье"],
        "Moncler": ["Монклер", "Монклера"],
        "Dyson": ["Дайсон", "Дайсона"],
        "Samsung": ["Самсунг"],
        "New Balance": ["Нью Баланс"],
    },
    "ar": {
        "Rolex": ["رولكس", "روليكس", "رُولِكْس", "ورولكس"],
        "Louis Vuitton": ["لويس فيتون", "لوي فيتون"],
        "Chanel": ["شانيل"],
        "Gucci": ["غوتشي", "جوتشى", "قوتشي"],
        "Dior": ["ديور"],
        "Nike": ["نايكي", "نايكى"],
        "Adidas": ["أديداس", "اديداس"],
        "Cartier": ["كارتييه"],
        "Versace": ["فيرساتشي"],
        "Balenciaga": ["بالنسياغا"],
        "Samsung": ["سامسونج", "سامسونغ"],
    },
    "he": {
        "Rolex": ["רולקס", "הרולקס"],
        "Louis Vuitton": ["לואי ויטון"],
        "Chanel": ["שאנל"],
        "Gucci": ["גוצ'י"],
        "Prada": ["פראדה"],
        "Nike": ["נייקי", "הנייקי"],
        "Adidas": ["אדידס"],
        "Balenciaga": ["בלנסיאגה"],
        "Samsung": ["סמסונג"],
        "Cartier": ["קרטייה"],
    },
    "th": {
        "Rolex": ["โรเล็กซ์"],
        "Louis Vuitton": ["หลุยส์วิตตอง", "หลุยส์ วิตตอง"],
        "Chanel": ["ชาแนล"],
        "Gucci": ["กุชชี่"],
        "Prada": ["ปราด้า"],
        "Dior": ["ดิออร์"],
        "Nike": ["ไนกี้"],
        "Adidas": ["อาดิดาส"],
        "Balenciaga": ["บาเลนเซียก้า"],
        "Samsung": ["ซัมซุง"],
    },
    "el": {
        "Rolex": ["Ρόλεξ", "ΡΟΛΕΞ"],
        "Louis Vuitton": ["Λουί Βιτόν"],
        "Chanel": ["Σανέλ"],
        "Gucci": ["Γκούτσι"],
        "Prada": ["Πράντα"],
        "Nike": ["Νάικι"],
        "Adidas": ["Αντιντάς", "ΑΝΤΙΝΤΑΣ"],
        "Versace": ["Βερσάτσε"],
    },
}
#: product nouns by category in each language
SCRIPT_NOUNS: dict[str, dict[str, list[str]]] = {
    "ja": {
        "watches": ["腕時計", "メンズ 時計", "自動巻き 腕時計"],
        "bags": ["ショルダーバッグ", "ハンドバッグ", "トートバッグ", "長財布"],
        "shoes": ["スニーカー", "ランニングシューズ"],
        "fashion": ["パーカー", "Tシャツ", "ダウンジャケット"],
        "perfume": ["香水 100ml"],
        "jewelry": ["ネックレス", "リング"],
        "home_appliances": ["掃除機", "ドライヤー"],
        "electronics": ["ワイヤレスイヤホン", "ヘッドホン"],
    },
    "ko": {
        "watches": ["시계", "남성 시계"],
        "bags": ["숄더백", "토트백", "가방", "지갑"],
        "shoes": ["운동화", "스니커즈"],
        "fashion": ["후드티", "패딩", "티셔츠"],
        "perfume": ["향수 100ml"],
        "jewelry": ["목걸이", "반지"],
        "home_appliances": ["청소기", "드라이기"],
        "electronics": ["갤럭시 스마트폰", "무선 이어폰"],
    },
    "ru": {
        "watches": ["часы мужские", "наручные часы"],
        "bags": ["сумка женская", "сумка через плечо", "кошелек"],
        "shoes": ["кроссовки", "кеды"],
        "fashion": ["худи", "пуховик", "футболка"],
        "perfume": ["духи 100 мл"],
        "jewelry": ["колье", "кольцо"],
        "home_appliances": ["пылесос", "фен"],
        "electronics": ["смартфон", "наушники"],
    },
    "ar": {
        "watches": ["ساعة رجالي", "ساعة يد"],
        "bags": ["شنطة نسائية", "حقيبة يد"],
        "shoes": ["حذاء رياضي", "كوتشي"],
        "fashion": ["تيشيرت", "جاكيت"],
        "perfume": ["عطر 100 مل"],
        "electronics": ["جوال", "سماعة"],
    },
    "he": {
        "watches": ["שעון יד", "שעון לגבר"],
        "bags": ["תיק צד", "תיק יד"],
        "shoes": ["נעלי ספורט", "סניקרס"],
        "fashion": ["קפוצ'ון", "חולצה"],
        "electronics": ["סמארטפון", "אוזניות"],
    },
    "th": {
        "watches": ["นาฬิกาข้อมือ", "นาฬิกาผู้ชาย"],
        "bags": ["กระเป๋าสะพาย", "กระเป๋าถือ"],
        "shoes": ["รองเท้าผ้าใบ", "รองเท้าวิ่ง"],
        "fashion": ["เสื้อยืด", "เสื้อฮู้ด"],
        "perfume": ["น้ำหอม 100ml"],
        "electronics": ["โทรศัพท์มือถือ", "หูฟัง"],
    },
    "el": {
        "watches": ["ρολόι χειρός", "ανδρικό ρολόι"],
        "bags": ["τσάντα ώμου", "τσάντα χειρός"],
        "shoes": ["αθλητικά παπούτσια", "sneakers"],
        "fashion": ["φούτερ", "μπλουζάκι"],
        "perfume": ["άρωμα 100ml"],
    },
}
#: counterfeit phrases as sellers of each language write them
SCRIPT_FAKE_WORDS: dict[str, list[str]] = {
    "ja": ["スーパーコピー", "N級品", "コピー品", "偽物", "S級品 レプリカ"],
    "ko": ["레플리카", "짝퉁", "이미테이션", "미러급 레플리카", "가품"],
    "ru": ["реплика", "копия", "люкс копия", "реплика 1:1", "подделка"],
    "ar": ["تقليد", "ماستر كوبي", "هاي كوبي", "كوبي ون", "طبق الأصل"],
    "he": ["חיקוי", "העתק", "רפליקה", "מזויף"],
    "th": ["ของก๊อป", "งานก๊อป", "เกรดมิเรอร์", "ก๊อปเกรดพรีเมียม", "ของปลอม"],
    "el": ["ρέπλικα", "απομίμηση", "μαϊμού"],
}
#: what honest sellers add ("genuine", "with receipt", "new")
SCRIPT_GENUINE_WORDS: dict[str, list[str]] = {
    "ja": ["正規品", "新品", "保証書付き", ""],
    "ko": ["정품", "새상품", "국내 매장판", ""],
    "ru": ["оригинал", "новые", "с чеком", ""],
    "ar": ["أصلي", "جديد", ""],
    "he": ["מקורי", "חדש", ""],
    "th": ["ของแท้", "ของใหม่", ""],
    "el": ["γνήσιο", "καινούργιο", ""],
}


def generate_scripts(registry: Registry, n: int, *, seed: int = 0) -> pl.DataFrame:
    """``n`` labelled listings naming a brand in Japanese, Korean, Russian, Arabic, Hebrew, Thai
    or Greek (:data:`SCRIPT_NAMES`), by turns genuine and counterfeit:

    - ``genuine_script``: the name and a product noun of that language, at 85-120% of the
      brand's reference price in its category, sometimes with "genuine" or "new";
    - ``fake_script_phrase``: the name with a counterfeit phrase of that language, at 2-20%;
    - ``fake_script_price``: the name alone at 2-12% of the reference (only the price says it).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    refs = {
        (b, c): p
        for b, c, p in registry.brands.select("brand", "category", "reference_price").iter_rows()
    }
    choices = [
        (lang, brand, cat)
        for lang, names in SCRIPT_NAMES.items()
        for brand in names
        for (b, cat) in refs
        if b == brand and cat in SCRIPT_NOUNS[lang]
    ]
    if not choices and n:
        raise ValueError("no brand of the registry has a name in SCRIPT_NAMES")
    rows: list[dict[str, object]] = []
    for i in range(n):
        lang, brand, cat = rng.choice(choices)
        name = rng.choice(SCRIPT_NAMES[lang][brand])
        noun = rng.choice(SCRIPT_NOUNS[lang][cat])
        ref = refs[(brand, cat)] * _volume_share(cat, noun.replace(" ", ""))
        fake = i % 2 == 1
        if not fake:
            kind, share = "genuine_script", rng.uniform(0.85, 1.2)
            title = f"{name} {noun} {rng.choice(SCRIPT_GENUINE_WORDS[lang])}"
        elif rng.random() < 0.6:
            kind, share = "fake_script_phrase", rng.uniform(0.02, 0.2)
            words = rng.choice(SCRIPT_FAKE_WORDS[lang])
            title = rng.choice([f"{name} {noun} {words}", f"{words} {name} {noun}"])
        else:
            kind, share = "fake_script_price", rng.uniform(0.02, 0.12)
            title = f"{name} {noun}"
        listing = _listing(
            f"x{seed}-{i:08d}", " ".join(title.split()), cat, ref * share, kind, rng, n
        )
        if rng.random() < 0.25:
            listing["category"] = None
        rows.append(listing)
    return pl.DataFrame(rows, schema=LISTING_SCHEMA)


#: filler sentences of product descriptions (no brand), for descriptions of realistic length
FILLER = [
    "Ships within two business days from our warehouse.",
    "Please check the measurements before ordering.",
    "Colour may look slightly different on your screen.",
    "Comes in a gift box, ready to give.",
    "We accept returns within 30 days of delivery.",
    "Made with care and checked before dispatch.",
    "Suitable for everyday wear and special occasions.",
    "Water resistant and easy to clean with a soft cloth.",
    "Message us with any question, we answer within a day.",
    "Combined shipping available for multiple items.",
    "Lightweight and comfortable, true to size.",
    "Stainless steel case and scratch resistant glass.",
    "Soft lining, magnetic closure and an inner zip pocket.",
    "Adjustable strap fits most wrist sizes.",
    "Tracking number provided for every order.",
    "Store in a cool dry place away from sunlight.",
    "Free gift wrapping on request.",
    "Handled with care, smoke free home.",
    "Battery included, ready to use out of the box.",
    "Perfect present for birthdays, anniversaries and holidays.",
    "All photos are of the actual item you will receive.",
    "Stitching is tight and even, hardware feels solid.",
    "Dimensions are listed in the photos.",
    "Envío a todo el país, pago seguro.",
    "Быстрая доставка по всей стране.",
]


def description_text(rng: random.Random, lead: list[str], words: tuple[int, int]) -> str:
    """A description of ``words[0]``-``words[1]`` words: the ``lead`` sentences among the first
    three, then filler sentences."""
    target = rng.randint(*words)
    sentences = list(lead)
    at = min(len(sentences), rng.randint(0, 2))
    filler: list[str] = []
    count = sum(len(s.split()) for s in lead)
    while count < target:
        s = rng.choice(FILLER)
        filler.append(s)
        count += len(s.split())
    return " ".join([*filler[:at], *sentences, *filler[at:]])


#: honest descriptions naming a brand to say what an item fits or is like, and the titles,
#: categories and prices of those items ({b}: the brand, {m}: one of its models)
COMPARED = [
    ("Replacement shoe laces 120cm", "shoes", (3, 12), "Fits Nike, Adidas and most sneakers."),
    (
        "Cordless stick vacuum cleaner",
        "home_appliances",
        (60, 150),
        "Works like Dyson at a third of the price.",
    ),
    (
        "Clear phone case shockproof",
        "accessories",
        (5, 20),
        "Compatible with Apple iPhone 15. Not affiliated with Apple Inc.",
    ),
    (
        "Automatic diver watch 40mm",
        "watches",
        (150, 400),
        "A Rolex Submariner homage with a ceramic bezel, our own brand.",
    ),
    (
        "Leather watch strap 20mm",
        "accessories",
        (10, 40),
        "Fits Rolex, Omega and Seiko lug widths.",
    ),
    ("Quilted crossbody bag", "bags", (25, 80), "Chanel style quilting, vegan leather."),
    ("Eau de parfum 50ml", "perfume", (15, 40), "Similar to Chanel No 5, our own house blend."),
    ("Wireless earbuds", "electronics", (20, 60), "Better than AirPods for half the price."),
    ("Sneaker cleaning kit", "shoes", (8, 25), "Safe for Nike, Jordan and Yeezy sneakers."),
    (
        "Watch winder for 2 watches",
        "accessories",
        (40, 120),
        "Perfect for Rolex and Omega automatic watches.",
    ),
    ("Dust bag for handbags", "accessories", (5, 15), "Fits Louis Vuitton Neverfull MM."),
    ("Silk scarf 90cm", "accessories", (20, 60), "Hermès inspired print, made in Italy."),
]
#: a brand named plainly in a description: {b} brand, {m} model
DESCRIBED = [
    "{b} {m}, full set with box and papers.",
    "Original {b} {m}. Bought at the boutique in 2023.",
    "{b} {m} in very good condition.",
    "This is a {b} {m}, serial number on request.",
    "Brand: {b}. Model: {m}.",
]
#: counterfeit descriptions: a brand and a counterfeit phrase
DESCRIBED_FAKE = [
    "{b} {m} replica, AAA quality, 1:1.",
    "Top quality {b} {m} mirror copy, looks exactly like the original.",
    "{b} {m} super clone, clean factory.",
    "1:1 {b} {m}, same as original, best batch.",
    "Réplica {b} {m} calidad espejo.",
    "Реплика {b} {m} люкс качества.",
]
#: generic titles for a category, which name no brand
PLAIN_TITLES: dict[str, list[str]] = {
    "watches": ["Luxury diver watch", "Men's automatic watch", "Chronograph steel watch"],
    "bags": ["Leather shoulder bag", "Designer tote bag", "Women's handbag"],
    "shoes": ["Men's sneakers", "Running shoes", "Leather loafers"],
    "fashion": ["Winter puffer jacket", "Oversized hoodie", "Cotton t-shirt"],
    "perfume": ["Eau de parfum 100ml", "Perfume for women 100ml"],
    "jewelry": ["Gold bracelet", "Love ring 18k", "Clover necklace"],
    "eyewear": ["Aviator sunglasses", "Polarized sunglasses"],
    "electronics": ["Wireless earbuds", "Noise cancelling headphones"],
}


def generate_descriptions(
    registry: Registry, n: int, *, seed: int = 0, words: tuple[int, int] = (50, 300)
) -> pl.DataFrame:
    """``n`` labelled listings whose title names no brand, with descriptions of ``words``
    words, by turns genuine and counterfeit:

    - ``genuine_desc_brand``: the description names the brand and a model plainly, at 85-120%
      of the brand's reference price in the category;
    - ``genuine_desc_compared``: an honest description that names a brand to say what the item
      fits or is like ("Fits Nike", "Works like Dyson", "Rolex Submariner homage"), at the
      item's own price;
    - ``fake_desc_phrase``: the description names the brand with a counterfeit phrase ("Rolex
      Submariner replica, AAA quality, 1:1"), at 2-20% of the reference;
    - ``fake_desc_price``: the description names the brand plainly, at 2-12% of it."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    brands = {b.name: b for b in _brands(registry)}
    ambiguous = {brand_key(w) for w in registry.lexicon.ordinary}
    choices = [
        (b, cat, ref)
        for b in brands.values()
        for cat, ref in b.categories
        if cat in PLAIN_TITLES
        and b.key not in ambiguous
        and re.fullmatch(r"[A-Za-z .&'-]+", b.name)
    ]
    rows: list[dict[str, object]] = []
    for i in range(n):
        fake = i % 2 == 1
        brand, cat, ref = rng.choice(choices)
        model = rng.choice([*MODELS.get(brand.name, [""]), ""])
        title = rng.choice(PLAIN_TITLES[cat])
        if fake:
            if rng.random() < 0.6:
                kind, share = "fake_desc_phrase", rng.uniform(0.02, 0.2)
                lead = rng.choice(DESCRIBED_FAKE)
            else:
                kind, share = "fake_desc_price", rng.uniform(0.02, 0.12)
                lead = rng.choice(DESCRIBED)
            price = ref * share
        elif rng.random() < 0.5:
            kind, lead = "genuine_desc_brand", rng.choice(DESCRIBED)
            price = ref * rng.uniform(0.85, 1.2)
        else:
            kind = "genuine_desc_compared"
            title, cat, (low, high), lead = rng.choice(COMPARED)
            price = rng.uniform(low, high)
        sentence = " ".join(lead.format(b=brand.name, m=model).split())
        listing = _listing(f"d{seed}-{i:08d}", title, cat, price, kind, rng, n)
        listing["description"] = description_text(rng, [sentence], words)
        rows.append(listing)
    return pl.DataFrame(rows, schema=LISTING_SCHEMA)


def with_descriptions(
    listings: pl.DataFrame, *, seed: int = 0, words: tuple[int, int] = (50, 300)
) -> pl.DataFrame:
    """``listings`` with descriptions of ``words`` words: the listing's own description first,
    then filler sentences (for speed measurements)."""
    rng = random.Random(seed)
    own = listings.get_column("description").fill_null("").to_list()
    texts = [description_text(rng, [d] if d else [], words) for d in own]
    return listings.with_columns(pl.Series("description", texts, dtype=pl.String))
