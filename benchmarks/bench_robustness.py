"""Robustness of the text filter on material the project does not write.

Run: ``python -m benchmarks.bench_robustness`` (``--sections dnstwist,tr39,ordinary,brands``)

Each section is a function returning a dict; :func:`main` runs the chosen ones and writes
``benchmarks/results/bench_robustness.json``.

- **dnstwist**: every fuzzer of dnstwist (in-process, no network) on each protected brand whose
  name is five letters or more, the variant written as the title, with the brand's category
  and without one. Recall per fuzzer; variants that are themselves common words (the shipped
  wordfreq table) are counted apart.
- **tr39**: letters (general category L) of Unicode's confusables (UTS #39, the shipped
  ``confusables.txt``) that read as a Latin letter, grouped by the script of their Unicode
  name; each brand of five
  letters or more written with one or two of them (lower or upper case). Recall per script.
- **ordinary**: titles of 3-8 words drawn from wordfreq's word frequencies (the 50,000 most
  common words of each of ten languages, drawn as often as they are used). Flagged: the text
  filter's own score reaches 0.5 (a misspelt or disguised name, or a counterfeit phrase with
  a name); "named" counts any brand read, plain mentions included.
- **brands**: real brand names of device-detector's device data (phone, TV, camera makers)
  that are not protected by the registry and do not contain a protected name, as an
  electronics title. They must name no protected brand.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks import write_results
from filters.core.normalise import confusables, confusables_version
from filters.text import TextFilter
from pipelines.registry import Registry, brand_key, default_registry_dir, load_registry

LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "tr")
#: the floors the filter is held to
FLOORS = {
    "recall_per_fuzzer": 0.95,
    "recall_per_script": 0.95,
    "ordinary_flagged_overall": 0.002,
    "ordinary_flagged_per_language": 0.005,
    "unprotected_flagged": 0.01,
}


def _scored(f: TextFilter, titles: list[str], categories: list[str | None]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {"title": titles, "category": categories},
        schema={"title": pl.String, "category": pl.String},
    )
    return f.score(frame).collect()


def _brands(registry: Registry) -> dict[str, tuple[str, str]]:
    """Protected brands whose name is one run of five or more ASCII letters once keyed:
    key -> (brand, its first category)."""
    out: dict[str, tuple[str, str]] = {}
    for brand, category in registry.brands.select("brand", "category").iter_rows():
        key = brand_key(brand)
        if re.fullmatch(r"[a-z]{5,}", key) and key not in out:
            out[key] = (brand, category)
    return out


def dnstwist_section(
    f: TextFilter, registry: Registry, *, brands: int = 40, per_fuzzer: int = 40
) -> dict[str, Any]:
    """Recall per dnstwist fuzzer over ``brands`` brands drawn at random (dnstwist takes
    seconds a name), ``per_fuzzer`` variants a brand and fuzzer at most."""
    import dnstwist
    import wordfreq

    rng = random.Random(0)
    common = set(registry.lexicon.words.get_column("word").to_list())
    # the dictionary fuzzer glues words to the name: wordfreq's most common English words
    dictionary = [w for w in wordfreq.top_n_list("en", 300) if w.isalpha() and len(w) >= 3][:100]
    rows: list[tuple[str, str, str, str]] = []  # fuzzer, variant, brand, category
    chosen = sorted(_brands(registry).items())
    chosen = rng.sample(chosen, min(brands, len(chosen)))
    for key, (brand, category) in chosen:
        fuzzer = dnstwist.Fuzzer(f"{key}.com", dictionary=dictionary)
        fuzzer.generate()
        by_fuzzer: dict[str, set[str]] = defaultdict(set)
        for p in fuzzer.permutations(unicode=True):
            label = p["domain"].rsplit(".", 1)[0]
            if p["fuzzer"] != "*original" and label != key:
                by_fuzzer[p["fuzzer"]].add(label)
        for name, labels in by_fuzzer.items():
            for label in rng.sample(sorted(labels), min(per_fuzzer, len(labels))):
                rows.append((name, label, brand, category))
    titles = [r[1] for r in rows]
    with_cat = _scored(f, titles, [r[3] for r in rows])["text_brand"].to_list()
    without = _scored(f, titles, [None] * len(rows))["text_brand"].to_list()
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    for (name, label, brand, _), a, b in zip(rows, with_cat, without, strict=True):
        folded = unicodedata.normalize("NFKC", label).lower()
        part = "word" if folded in common else "other"
        stats[name][f"{part}_n"] += 1
        stats[name][f"{part}_found"] += a == brand
        stats[name][f"{part}_found_no_category"] += b == brand
    per_fuzzer_out = {}
    for name, c in sorted(stats.items()):
        n = c["other_n"]
        per_fuzzer_out[name] = {
            "variants": n,
            "recall": round(c["other_found"] / n, 4) if n else None,
            "recall_no_category": round(c["other_found_no_category"] / n, 4) if n else None,
            "common_word_variants": c["word_n"],
            "common_word_recall": round(c["word_found"] / c["word_n"], 4) if c["word_n"] else None,
        }
    return {
        "dnstwist": version("dnstwist"),
        "brands": len(chosen),
        "per_fuzzer": per_fuzzer_out,
        "min_recall": min(v["recall"] for v in per_fuzzer_out.values() if v["recall"] is not None),
    }


def _script(c: str) -> str:
    """The script (or symbol family) of a character, by the first word(s) of its name."""
    try:
        name = unicodedata.name(c)
    except ValueError:
        return "UNNAMED"
    if name.startswith("MATHEMATICAL"):
        return "MATHEMATICAL"
    if name.startswith("LATIN"):
        return "LATIN"
    for prefix in ("CANADIAN SYLLABICS", "OLD ITALIC", "LINEAR B", "CJK", "HALFWIDTH", "FULLWIDTH"):
        if name.startswith(prefix):
            return prefix
    return name.split()[0]


def tr39_section(f: TextFilter, registry: Registry) -> dict[str, Any]:
    """Recall per script of brand names written with UTS #39 look-alikes."""
    rng = random.Random(1)
    lookalikes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for source, target in confusables().items():
        letter = unicodedata.category(source).startswith("L") and not source.isascii()
        if letter and len(target) == 1 and target.isascii() and target.isalpha():
            lookalikes[_script(source)][target].append(source)
    rows: list[tuple[str, str, str, str]] = []  # script, title, brand, category
    for script, table in sorted(lookalikes.items()):
        for key, (brand, category) in _brands(registry).items():
            for written in (key, key.upper()):
                spots = [i for i, c in enumerate(written) if table.get(c)]
                if not spots:
                    continue
                chars = list(written)
                for i in rng.sample(spots, min(len(spots), rng.choice([1, 2]))):
                    chars[i] = rng.choice(table[chars[i]])
                rows.append((script, "".join(chars), brand, category))
    out = _scored(f, [r[1] for r in rows], [r[3] for r in rows])
    got = out["text_brand"].to_list()
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    for (script, _, brand, _), hit in zip(rows, got, strict=True):
        stats[script]["n"] += 1
        stats[script]["found"] += hit == brand
    per_script = {
        s: {"variants": c["n"], "recall": round(c["found"] / c["n"], 4)}
        for s, c in sorted(stats.items())
    }
    return {
        "confusables": confusables_version(),
        "per_script": per_script,
        "min_recall": min(v["recall"] for v in per_script.values()),
        "overall_recall": round(sum(c["found"] for c in stats.values()) / len(rows), 4),
    }


def ordinary_section(f: TextFilter, *, per_language: int = 5000) -> dict[str, Any]:
    """Share of wordfreq titles the text filter flags, per language."""
    import wordfreq

    rng = random.Random(2)
    per: dict[str, Any] = {}
    flagged_total = titles_total = 0
    for lang in LANGUAGES:
        words = [w for w in wordfreq.top_n_list(lang, 50_000) if any(c.isalpha() for c in w)]
        weights = [wordfreq.word_frequency(w, lang) for w in words]
        titles = []
        for _ in range(per_language):
            picked = rng.choices(words, weights, k=rng.randint(3, 8))
            titles.append(" ".join(picked).capitalize())
        out = _scored(f, titles, [None] * len(titles))
        flagged = out.filter(pl.col("text_score") >= 0.5)
        named = out.filter(pl.col("text_brand").is_not_null())
        per[lang] = {
            "titles": len(titles),
            "flagged": flagged.height,
            "flagged_share": round(flagged.height / len(titles), 5),
            "named_share": round(named.height / len(titles), 5),
            "examples": [
                [t, b] for t, b in flagged.select("title", "text_brand").head(5).iter_rows()
            ],
        }
        flagged_total += flagged.height
        titles_total += len(titles)
    return {
        "wordfreq": version("wordfreq"),
        "per_language": per,
        "flagged_share": round(flagged_total / titles_total, 5),
        "max_language_share": max(v["flagged_share"] for v in per.values()),
    }


def _device_brands() -> list[str]:
    """Brand names of device-detector's device data (the top-level keys of its YAML)."""
    import device_detector

    root = Path(device_detector.__file__).resolve().parent / "regexes" / "upstream" / "device"
    names: set[str] = set()
    key = re.compile(r"""^(['"]?)([^\s#'"-][^:]*?)\1:\s*$""")
    for path in sorted(root.glob("*.yml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = key.match(line)
            if m:
                names.add(m.group(2).strip())
    return sorted(names)


def brands_section(f: TextFilter, registry: Registry) -> dict[str, Any]:
    """Share of real, unprotected brand names read as a protected brand."""
    protected = {brand_key(b) for b in registry.brand_names} | {
        brand_key(a) for al in registry.brands.get_column("aliases").to_list() for a in al
    }
    names = []
    for name in _device_brands():
        words = {brand_key(w) for w in re.split(r"[\W_]+", name) if w}
        # a protected name as one of its words names that brand ("Sony Ericsson")
        if brand_key(name) in protected or words & protected:
            continue
        names.append(name)
    titles = [f"{n} smartphone" for n in names]
    out = _scored(f, titles, ["electronics"] * len(titles))
    hits = out.filter(pl.col("text_brand").is_not_null())
    without = _scored(f, titles, [None] * len(titles)).filter(pl.col("text_brand").is_not_null())
    return {
        "device_detector": version("device-detector"),
        "names": len(names),
        "flagged": hits.height,
        "flagged_share": round(hits.height / len(names), 5),
        "flagged_share_no_category": round(without.height / len(names), 5),
        "flagged_examples": [
            [t, b, m] for t, b, m in hits.select("title", "text_brand", "text_match").iter_rows()
        ][:40],
    }


SECTIONS: dict[str, Callable[[TextFilter, Registry], dict[str, Any]]] = {
    "dnstwist": dnstwist_section,
    "tr39": tr39_section,
    "ordinary": lambda f, _: ordinary_section(f),
    "brands": brands_section,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    args = ap.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown sections {unknown}; expected some of {list(SECTIONS)}")
    registry = load_registry(default_registry_dir())
    f = TextFilter().fit(registry)
    results: dict[str, Any] = {}
    for name in chosen:
        t0 = time.perf_counter()
        results[name] = SECTIONS[name](f, registry)
        results[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(results[name], ensure_ascii=False)[:2000])
    results["floors"] = FLOORS
    print(f"-> {write_results('bench_robustness', results, sections=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
