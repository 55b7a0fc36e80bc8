"""The category taxonomy on a product taxonomy it was not written from.

Run: ``python -m benchmarks.bench_taxonomy --google-taxonomy DIR``

``DIR`` holds Google's product taxonomy in several languages (``taxonomy-with-ids.<locale>.txt``,
as Google publishes it for merchants: ``id - Segment > Segment > ...``). Every category is
labelled from its US English path by the rules of :data:`LABELS` (which registry category, if
any, a marketplace would file it under; written from the English names, not from the registry's
``categories.csv``), and each locale's path of the same id is read by the shipped taxonomy:

- *found*: a labelled category whose most specific covering segment covers its label;
- *wrong*: one whose reading covers registry categories, none of them its label;
- *missed*: one the taxonomy does not know at all (it then falls back to the title's nouns);
- for goods of no brand's (books, pets, furniture, tools), *false*: read as a brand's category.

Writes ``benchmarks/results/bench_taxonomy.json``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from benchmarks import write_results
from pipelines.registry import default_registry_dir, load_registry

#: US English path prefix -> registry category (None: goods of no brand's); the longest prefix
#: that a path starts with decides, "" (skip) leaves a category out as ambiguous
LABELS: dict[str, str | None] = {
    "Apparel & Accessories > Clothing": "fashion",
    "Apparel & Accessories > Clothing > Baby & Toddler Clothing": "",
    "Apparel & Accessories > Shoes": "shoes",
    "Apparel & Accessories > Jewelry": "jewelry",
    "Apparel & Accessories > Jewelry > Watches": "watches",
    "Apparel & Accessories > Jewelry > Watch Accessories": "",
    "Apparel & Accessories > Handbags, Wallets & Cases > Handbags": "bags",
    "Apparel & Accessories > Handbags, Wallets & Cases > Wallets & Money Clips": "accessories",
    "Apparel & Accessories > Clothing Accessories > Sunglasses": "eyewear",
    "Apparel & Accessories > Clothing Accessories > Belts": "accessories",
    "Apparel & Accessories > Clothing Accessories > Scarves & Shawls": "accessories",
    "Luggage & Bags": "bags",
    "Luggage & Bags > Luggage Accessories": "",
    "Health & Beauty > Personal Care > Cosmetics": "cosmetics",
    "Health & Beauty > Personal Care > Cosmetics > Perfume & Cologne": "perfume",
    "Health & Beauty > Personal Care > Cosmetics > Cosmetic Tools": "",
    "Health & Beauty > Health Care > Medicine & Drugs": "pharma",
    "Health & Beauty > Health Care > Fitness & Nutrition > Vitamins & Supplements": "pharma",
    "Electronics > Communications > Telephony > Mobile Phones": "electronics",
    "Electronics > Computers": "electronics",
    "Electronics > Audio > Audio Components > Headphones & Headsets": "electronics",
    "Electronics > Video Game Consoles": "electronics",
    "Cameras & Optics > Cameras": "electronics",
    "Home & Garden > Household Appliances": "home_appliances",
    "Home & Garden > Kitchen & Dining > Kitchen Appliances": "home_appliances",
    "Vehicles & Parts > Vehicle Parts & Accessories > Motor Vehicle Parts": "auto_parts",
    "Toys & Games > Toys": "toys",
    "Toys & Games > Games": "toys",
    "Toys & Games > Puzzles": "toys",
    "Sporting Goods > Athletics": "sports",
    "Sporting Goods > Exercise & Fitness": "sports",
    "Food, Beverages & Tobacco > Beverages > Alcoholic Beverages": "beverages",
    "Media > Books": None,
    "Animals & Pet Supplies": None,
    "Furniture": None,
    "Office Supplies": None,
    "Hardware > Tools": None,
}
LINE = re.compile(r"^(\d+) - (.+)$")


def read_taxonomy(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        found = LINE.match(line.strip())
        if found:
            out[found.group(1)] = found.group(2)
    return out


def label(path: str) -> str | bool | None:
    """The label of a US English path: a category, None (no brand's), False (unlabelled)."""
    best: str | bool | None = False
    size = -1
    for prefix, value in LABELS.items():
        if (path == prefix or path.startswith(prefix + " > ")) and len(prefix) > size:
            best, size = value, len(prefix)
    return False if best == "" else best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--google-taxonomy", required=True, type=Path)
    args = ap.parse_args()
    registry = load_registry(default_registry_dir())
    taxonomy = registry.taxonomy
    every = registry.categories
    us = read_taxonomy(args.google_taxonomy / "taxonomy-with-ids.en-US.txt")
    labels = {i: label(p) for i, p in us.items()}
    results: dict[str, dict[str, float | int]] = {}
    print("| locale | labelled | found | wrong | missed | no brand's | false |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in sorted(args.google_taxonomy.glob("taxonomy-with-ids.*.txt")):
        locale = path.name.split(".")[1]
        paths = read_taxonomy(path)
        found = wrong = missed = labelled = other = false = 0
        for i, text in paths.items():
            want = labels.get(i, False)
            if want is False:
                continue
            read = taxonomy.resolve(text)
            if want is None:
                other += 1
                false += bool(read.categories)
                continue
            labelled += 1
            cats, _ = read.for_brand(every)
            if want in cats:
                found += 1
            elif read.status == "known" and read.categories:
                wrong += 1
            else:
                missed += 1
        results[locale] = {
            "labelled": labelled,
            "found": round(found / labelled, 4) if labelled else 0.0,
            "wrong": round(wrong / labelled, 4) if labelled else 0.0,
            "missed": round(missed / labelled, 4) if labelled else 0.0,
            "no_brand": other,
            "false": round(false / other, 4) if other else 0.0,
        }
        r = results[locale]
        print(
            f"| {locale} | {labelled} | {r['found']:.3f} | {r['wrong']:.3f} | {r['missed']:.3f} "
            f"| {other} | {r['false']:.3f} |"
        )
    write_results("bench_taxonomy", {"locales": results})


if __name__ == "__main__":
    main()
