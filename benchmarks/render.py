"""Write benchmarks/README.md from the results the benchmark scripts store.

Run: ``python -m benchmarks.render`` (``--check``: exit 1 if the README differs from what the
results give, without writing it).

Every figure in the README comes from ``benchmarks/results/<script>.json``; the prose here
says what each benchmark measures, its command, its baseline and its floors, never a figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import RESULTS

README = Path(__file__).resolve().parent / "README.md"

Row = Mapping[str, Any]
Cell = Callable[[Any], str]


# ---------------------------------------------------------------- formatting


def num(v: Any, digits: int = 0) -> str:
    """``v`` with thousands separators and ``digits`` decimals; an empty cell for None."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    return f"{v:,.{digits}f}"


def fixed(digits: int) -> Cell:
    return lambda v: num(v, digits)


def share(v: Any, digits: int = 1) -> str:
    """A share as a percentage."""
    return "" if v is None else f"{100 * v:.{digits}f}%"


def sci(v: Any) -> str:
    """Small rates in scientific notation."""
    if v is None:
        return ""
    return f"{v:.1e}" if 0 < abs(v) < 0.01 else f"{v:.3f}"


def times(v: Any, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}x"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column (l or r, default r after the
    first column)."""
    spec = (align or "l").ljust(len(header), "r")
    sep = ["---:" if a == "r" else "---" for a in spec]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def records(rows: Iterable[Row], columns: Sequence[tuple[str, str, Cell]]) -> str:
    """A table of ``rows`` (dicts): each column is (header, key, format)."""
    return table([h for h, _, _ in columns], [[f(r.get(k)) for _, k, f in columns] for r in rows])


def stored_table(t: Mapping[str, Any]) -> str:
    """A table a script stored as header, align and rows of formatted cells."""
    return table(t["header"], t["rows"], t["align"])


def load(v: Any) -> str:
    if isinstance(v, list):
        return f"{v[0]:.1f}"
    return f"{v:.1f}"


def provenance(run: Mapping[str, Any] | None) -> str:
    """One line: the command, the code, the date, the duration, the load and the machine."""
    if not run:
        return "*Run record not stored with these results.*"
    when = datetime.fromisoformat(run["started"]).strftime("%Y-%m-%d %H:%M UTC")
    code = f"commit `{run['commit'][:9]}`"
    if run.get("product_commit"):
        code += f" (product code of `{run['product_commit'][:9]}`)"
    if run.get("uncommitted_changes"):
        code += " with uncommitted changes"
    return (
        f"*Measured by `{run['command']}` on {code}, {when}, {num(run['seconds'])} s; load "
        f"average {load(run['load_average_start'])} at the start and "
        f"{load(run['load_average_end'])} at the end on {run['cores']} cores "
        f"(Python {run['python']}).*"
    )


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


# ---------------------------------------------------------------- sections

Section = Callable[[Mapping[str, Any]], list[str]]


def kinds_table(rows: Iterable[Row]) -> str:
    return records(
        rows,
        [
            ("kind", "kind", str),
            ("n", "n", num),
            ("block", "block", share),
            ("review", "review", share),
            ("mean risk", "mean_risk", fixed(3)),
        ],
    )


def quality(d: Mapping[str, Any]) -> list[str]:
    fam = {r["family"]: r for r in d["families"]}
    photos_p = d["photos_block_precision"]
    return [
        "Zero-shot fusion (text + price, and photos where a family has them) on listings "
        "made by `seeds.marketplace`, each labelled genuine or counterfeit by the generator. "
        "The baselines are the single filters' scores, in the same run.",
        "Scores (PR-AUC, precision at recall 0.8 and 0.9, recall at precision 0.99):",
        records(
            d["scores"],
            [
                ("score", "score", str),
                ("PR-AUC", "pr_auc", fixed(3)),
                ("P@R0.8", "p@r0.8", fixed(3)),
                ("P@R0.9", "p@r0.9", fixed(3)),
                ("R@P0.99", "r@p0.99", fixed(3)),
            ],
        ),
        "Decisions at the shipped thresholds:",
        records(
            d["decisions"],
            [
                ("decision", "decision", str),
                ("counterfeit", "fake", num),
                ("genuine", "genuine", num),
                ("precision", "precision", fixed(3)),
            ],
        ),
        "Brand mentions the text filter reads, per way of disguising the name (*found*: the "
        "right brand read; *flagged*: text score >= 0.5), and genuine titles:",
        records(
            d["text_recall"],
            [
                ("titles", "kind", str),
                ("n", "n", num),
                ("brand found", "brand_found", share),
                ("flagged", "flagged", share),
            ],
        ),
        "Per kind of listing:",
        kinds_table(d["kinds"]),
        "### Families of harder listings",
        "Each family is generated by its own function of `seeds.marketplace`, half genuine and "
        "half counterfeit, and scored with the same plan. *Everyday*: plurals, small perfume "
        "bottles, fan kits, model names, a brand's other name; *small goods*: a brand's own "
        "chargers, socks, key rings... at 40-100% (genuine) or 5-25% (counterfeit) of their "
        "share of the reference price.",
        "Everyday listings:",
        kinds_table(d["everyday"]),
        "A brand's own small goods:",
        kinds_table(d["small_goods"]),
        "Brands named in other scripts (`SCRIPT_NAMES`: Japanese, Korean, Russian, Arabic, "
        "Hebrew, Thai, Greek), named only in a description of 50-300 words, and listed under "
        "the category paths of a dozen marketplaces (`seeds/marketplace_categories.py`, written "
        "independently of the registry's categories). Recall counts a counterfeit sent to "
        "review or blocked. Floors: recall >= 0.95 and block precision >= 0.98.",
        records(
            d["families"],
            [
                ("family", "family", str),
                ("n", "n", num),
                ("counterfeit", "fakes", num),
                ("recall", "recall", fixed(3)),
                ("block recall", "block_recall", fixed(3)),
                ("block precision", "block_precision", fixed(3)),
                ("genuine flagged", "genuine_flagged", fixed(3)),
            ],
        ),
        "Floors: "
        + "; ".join(
            f"{name}: recall {met(r['recall'] >= 0.95)}, block precision "
            f"{met(r['block_precision'] >= 0.98)}"
            for name, r in fam.items()
        )
        + ".",
        *[
            part
            for family, rows in d["family_kinds"].items()
            for part in (f"Per kind, {family}:", kinds_table(rows))
        ],
        "Listings a photo decides (`generate_reseller_photos`, in a registry of 60 brands with "
        "2 official photos and 2 look-alike known fakes each): resellers at 85-125% of the "
        "reference showing the official photo (cropped, mirrored, rescaled, recompressed), "
        "counterfeits at 25-60% showing a known fake's photo, and counterfeits at 2-12% "
        "showing the official photo. Floor: zero-shot block precision >= 0.98.",
        kinds_table(d["photos"]),
        f"Block precision on this family: {photos_p:.3f} (floor 0.98: {met(photos_p >= 0.98)}).",
    ]


def taxonomy(d: Mapping[str, Any]) -> list[str]:
    rows = sorted(d["locales"].items())
    return [
        "Google's product taxonomy (`taxonomy-with-ids.<locale>.txt`, as Google publishes it "
        "for merchants; not shipped) read with the shipped taxonomy. Each category is labelled "
        "from its US English path (`benchmarks/bench_taxonomy.py`, `LABELS`), then each "
        "locale's path of the same id is read. *Found*: the most specific covering segment "
        "covers the label; *wrong*: it covers other categories only; *missed*: not known (the "
        "title's nouns decide); *false*: goods of no brand's (books, pets, furniture, office, "
        "tools) read as a brand's category. Dutch and Polish are not lexicon languages.",
        table(
            ["locale", "labelled", "found", "wrong", "missed", "no brand's", "false"],
            [
                [
                    loc,
                    num(r["labelled"]),
                    num(r["found"], 3),
                    num(r["wrong"], 3),
                    num(r["missed"], 3),
                    num(r["no_brand"]),
                    num(r["false"], 3),
                ]
                for loc, r in rows
            ],
        ),
    ]


def shift(d: Mapping[str, Any]) -> list[str]:
    tr = d["train"]
    rows = []
    for name, m in d["shifts"].items():
        lm, zm = m["learned"], m["zero_shot"]
        rows.append(
            [
                name,
                f"{num(m['n'])} ({num(m['positives'])})",
                num(lm["pr_auc"], 4),
                num(lm["block_precision"], 4),
                num(lm["block_recall"], 4),
                num(zm["pr_auc"], 4),
                num(zm["block_precision"], 4),
                num(zm["block_recall"], 4),
                num(m["floor_violations"]),
                met(all(m["floors_met"].values())),
            ]
        )
    return [
        "A model trained as `fakestop train` trains it, on generated listings with photos "
        f"(seed 0, {num(tr['listings'])} listings, {tr['brands_with_photos']} brands with "
        "photos), against the zero-shot fusion (the baseline), each at its own thresholds, "
        "on listings that differ from the training data in one way each. P and R are block "
        "precision and recall; *violations* counts listings the zero-shot fusion scores >= "
        "0.95 that the model allows without a legitimate context. Floors: learned block "
        "precision >= 0.98, learned block recall >= zero-shot block recall - 0.02, no "
        "violation.",
        table(
            [
                "shift",
                "listings (counterfeit)",
                "learned PR-AUC",
                "learned P",
                "learned R",
                "zero-shot PR-AUC",
                "zero-shot P",
                "zero-shot R",
                "violations",
                "floors",
            ],
            rows,
        ),
        f"Learned thresholds: block >= {tr['thresholds']['block']:.4f}, review >= "
        f"{tr['thresholds']['review']:.4f}; zero-shot block >= "
        f"{d['zero_shot_thresholds']['block']}. Training took {num(tr['seconds'])} s.",
    ]


def fusion(d: Mapping[str, Any]) -> list[str]:
    h = d["held_out"]
    return [
        f"Features for {num(d['listings'])} generated listings and {num(d['copies'])} copies "
        "with optional inputs dropped (as `fakestop train` scores them; text + price, no "
        "photos) are computed once; `models.fusion.train` (5-fold out-of-fold metrics and "
        "thresholds, then a calibrated refit) is timed against the baseline, one plain "
        "`HistGradientBoostingClassifier` fit on the same matrix.",
        table(
            ["step", "seconds", "ratio"],
            [
                ["features (text + price chain)", num(d["features_s"], 1), ""],
                ["baseline: one HistGradientBoosting fit", num(d["baseline_fit_s"], 1), "1.0"],
                ["`fakestop train`", num(d["train_s"], 1), num(d["train_over_baseline"], 1)],
            ],
        ),
        "Held out (trained on the first 60% and their copies, scored on the rest):",
        table(
            ["listings", "PR-AUC", "P@R0.9", "block precision", "block recall"],
            [
                [
                    num(h["listings"]),
                    num(h["pr_auc"], 4),
                    num(h["precision_at_recall_0.9"], 4),
                    num(h["block_precision"], 4),
                    num(h["block_recall"], 4),
                ]
            ],
        ),
    ]


def api(d: Mapping[str, Any]) -> list[str]:
    calls = d["calls"]
    plain = [c for c in calls if c["call"].startswith("`score_one`") and "JPEG" not in c["call"]]
    photo = [c for c in calls if c["call"].startswith("`score_one`") and "JPEG" in c["call"]]
    p50 = max(c["p50_ms"] for c in plain)
    p99 = max(c["p99_ms"] for c in plain)
    p50_photo = max(c["p50_ms"] for c in photo)
    start = max(d["startup_s"], d["startup_with_model_s"])
    return [
        "`Scorer.score_one`, the one-listing path a crawler calls, against the baseline: the "
        "frame path (`score_batch` of one listing) in the same run. Start-up is "
        f"`Scorer.from_registry` on the seed registry with {num(d['cached_photo_hashes'])} "
        "cached photo hashes. Listings are generated, each seen once unless the row says "
        "*repeated*; photos are distinct 800x800 JPEGs given as bytes. The trained model is "
        "trained on other generated listings.",
        records(
            calls,
            [
                ("call", "call", str),
                ("calls", "calls", num),
                ("p50 ms", "p50_ms", fixed(3)),
                ("p99 ms", "p99_ms", fixed(3)),
                ("p50 speed-up vs baseline", "speedup_p50", lambda v: num(v) + "x" if v else ""),
            ],
        ),
        f"Start-up: zero-shot {d['startup_s']:.2f} s, with a model "
        f"{d['startup_with_model_s']:.2f} s.",
        f"Floors: p50 <= 1 ms and p99 <= 5 ms without a photo: {met(p50 <= 1 and p99 <= 5)} "
        f"(slowest row: p50 {p50:.2f} ms, p99 {p99:.2f} ms); p50 <= 10 ms with an 800x800 "
        f"JPEG: {met(p50_photo <= 10)}; start-up <= 2 s: {met(start <= 2)}. The p99 figures "
        "include scheduling delays when the machine is loaded (see the load below).",
    ]


def speed(d: Mapping[str, Any]) -> list[str]:
    t = d["throughput"]
    n = t["listings"]
    naive = t["naive_listings_per_s"]
    rows = []
    for label, key in (
        ("`fakestop score`, end to end (subprocess, Parquet in and out)", "end_to_end_s"),
        ("`fakestop score`, end to end, every title distinct", "end_to_end_distinct_s"),
        ("scoring chain, in-process", "in_process_s"),
    ):
        rate = n / t[key]
        rows.append([label, num(t[key], 2), num(rate), times(rate / naive, 1)])
    rows.append(
        [
            f"naive per-row `extractOne` (sample of {num(t['naive_sample'])})",
            num(t["naive_s"], 2),
            num(naive),
            "1x",
        ]
    )
    e2e_rate = n / t["end_to_end_s"]
    desc = d.get("descriptions")
    out = [
        f"{num(n)} generated listings (seed 7) scored by text + price. The baseline is the "
        "naive peer, per-row `rapidfuzz.process.extractOne(title, brand names, "
        "scorer=partial_ratio, score_cutoff=90)` over a sample, in the same run. *Every title "
        "distinct* runs the same listings with a model number appended to each title: the "
        "generated titles repeat, and the text filter scores each distinct listing text once, "
        "so this is the figure to expect from a catalogue with no repeats.",
        table(["path", "seconds", "listings/s", "vs naive"], rows),
        f"Peak RSS of `fakestop score`: {num(t['peak_rss_mb'])} MB.",
        f"Floors: >= 200,000 listings/s end to end: {met(e2e_rate >= 200_000)}; >= 30x the "
        f"naive loop end to end: {met(e2e_rate / naive >= 30)}; <= 1.5 GB at 1M: "
        f"{met(t['peak_rss_mb'] <= 1536)}.",
        provenance(t.get("run")),
    ]
    if desc:
        out += [
            "### Reading descriptions",
            "`python -m benchmarks.bench_speed --n 1000000 --only descriptions` gives the "
            f"same listings descriptions of 50-300 words "
            f"({desc['description_words_mean']:.0f} on average; the first "
            f"{desc['description_chars_read']} characters are read) and scores them batch by "
            "batch, alternately with the text filter reading descriptions and not (the "
            "baseline). Floor: reading costs at most 1.2x.",
            table(
                ["", "wall s", "CPU s"],
                [
                    [
                        "not reading descriptions",
                        num(desc["not_reading_s"], 1),
                        num(desc["not_reading_cpu_s"], 1),
                    ],
                    ["reading them", num(desc["reading_s"], 1), num(desc["reading_cpu_s"], 1)],
                    [
                        "ratio (floor 1.2)",
                        f"**{desc['ratio']:.2f}**",
                        f"**{desc['cpu_ratio']:.2f}**",
                    ],
                ],
            ),
            f"Floor: {met(desc['cpu_ratio'] <= 1.2)} (the CPU ratio is the firmer figure on a "
            "loaded machine).",
            provenance(desc.get("run")),
        ]
    return out


def text_share(d: Mapping[str, Any]) -> list[str]:
    n = d["listings"]
    naive = d["naive_listings_per_s"]
    rows = []
    for label, key in (("real text filter", "real_s"), ("text filter free", "free_s")):
        best = min(d[key])
        rows.append(
            [
                label,
                " / ".join(num(s, 2) for s in d[key]),
                num(n / best),
                times(n / best / naive, 1),
            ]
        )
    return [
        f"The 1M `fakestop score` command ({num(n)} generated listings) as is, and with the "
        "text filter's work replaced by a gather of its first batch's real output (reading, "
        "validation, price, seller, fusion, reasons and writing unchanged), alternately. The "
        "free figure bounds what any text filter can reach: the rest of the path costs that "
        "much. The baseline is the naive per-row loop of the throughput section, in the same "
        "run.",
        table(["path", "seconds per round", "listings/s (best)", "vs naive (best)"], rows),
    ]


NIGHTLY_FORMATS = {
    "parquet": "a directory of 1M-row Parquet parts",
    "csv": "one CSV file",
    "ndjson": "one NDJSON file",
}


def nightly(d: Mapping[str, Any]) -> list[str]:
    out = [
        "`fakestop score` of a night's input in a child process, at each size, with the "
        "default batch size: wall time, rate and the child's peak RSS; the stage shares are "
        "the manifest's `stage_seconds` (three batches are scored at once, so they are shares "
        "of busy time). The input is one generated million (seed 7) repeated with distinct "
        "ids, each later million with a reference number of its own ending each title. "
        "Floor: <= 1.5 GB for 10M listings.",
    ]
    for fmt, what in NIGHTLY_FORMATS.items():
        sec = d.get(fmt)
        if not sec:
            continue
        stages = list(sec["runs"][0]["stage_seconds"])
        rows = []
        for r in sec["runs"]:
            total = sum(r["stage_seconds"].values()) or 1.0
            rows.append(
                [
                    num(r["listings"]),
                    num(r["wall_s"], 1),
                    num(r["listings_per_s"]),
                    num(r["peak_rss_mb"]),
                    *(share(r["stage_seconds"][s] / total, 0) for s in stages),
                ]
            )
        biggest = max(sec["runs"], key=lambda r: r["listings"])
        out += [
            f"### {fmt.upper() if fmt != 'parquet' else 'Parquet'} input ({what})",
            table(["listings", "wall s", "listings/s", "peak RSS MB", *stages], rows),
            f"Naive per-row `extractOne` in the same run: {num(sec['naive_listings_per_s'])} "
            f"listings/s. Peak memory at {num(biggest['listings'])} listings: "
            f"{num(biggest['peak_rss_mb'])} MB"
            + (
                f" (floor: {met(biggest['peak_rss_mb'] <= 1536)})."
                if biggest["listings"] >= 10_000_000
                else "."
            ),
        ]
        stages_one = sec.get("stages_one_batch")
        if stages_one:
            total = sum(stages_one.values()) or 1.0
            out += [
                "One batch of 100,000 listings, stage by stage (in-process):",
                table(
                    ["stage", "seconds", "share"],
                    [[k, num(v, 3), share(v / total, 0)] for k, v in stages_one.items()],
                ),
            ]
        out.append(provenance(sec.get("run")))
    return out


def exports(d: Mapping[str, Any]) -> list[str]:
    rv, pc = d["read_and_validate_seconds"], d["price_column_seconds"]
    return [
        f"The same {num(d['rows'])} listings as a plain CSV (the baseline) and as a shop's "
        "export (Windows-1252, semicolons, CRLF, blank lines, its own headers, prices such as "
        f"`1.299,00 €` with {num(d['distinct_shop_prices'])} distinct values, conditions "
        "`Gebraucht`), each read in batches and validated, alternated in one process (best "
        "of the repeats); then the price column alone.",
        table(
            ["", "seconds", "ratio"],
            [
                ["plain CSV, read + validate", num(rv["plain"], 2), "1.00"],
                ["shop export, read + validate", num(rv["shop"], 2), num(d["shop_over_plain"], 2)],
                ["price column: cast of plain numbers", num(pc["cast_plain_numbers"], 3), ""],
                [
                    "price column: plain numbers through the price rules",
                    num(pc["parsed_plain_numbers"], 3),
                    "",
                ],
                ["price column: shop prices", num(pc["parsed_shop_prices"], 3), ""],
                [
                    f"price column: {num(d['rows'])} distinct shop prices",
                    num(pc["parsed_all_distinct_shop_prices"], 3),
                    "",
                ],
            ],
        ),
    ]


def spark(d: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            num(r["listings"]),
            num(r["local_s"], 1),
            num(r["spark_s"], 1),
            times(r["spark_over_local"]),
            num(r["given_statistics_local_s"], 1),
            num(r["given_statistics_spark_s"], 1),
            times(r["given_statistics_spark_over_local"]),
            num(r.get("spark_pass_through_s"), 1),
            times(r.get("pass_through_over_local")),
        ]
        for r in d["runs"]
    ]
    return [
        f"Generated listings in {d['parts']} Parquet parts, text + price + seller, scored by "
        "the local engine (`fakestop score`, the baseline) and by Spark (`--engine spark "
        "--master local[2]`), both as subprocesses, one after the other; then both again with "
        "the run statistics given (`--stats`), so that each makes one pass. Spark's start-up "
        "is included.",
        table(
            [
                "listings",
                "local s",
                "Spark s",
                "Spark/local",
                "statistics given: local s",
                "Spark s",
                "Spark/local",
                "Spark pass-through s",
                "pass-through/local",
            ],
            rows,
        ),
        "*Pass-through* moves the rows through Spark's Python workers (read, `mapInArrow` "
        "through a polars frame, write) without scoring them: the least any scoring on Spark "
        "can take. Its ratio is over the local engine with the statistics given.",
        f"Starting a `local[2]` Spark context alone: {d['spark_startup_s']:.1f} s.",
    ]


def robustness(d: Mapping[str, Any]) -> list[str]:
    fl = d["floors"]
    dn, tr, od, br = d["dnstwist"], d["tr39"], d["ordinary"], d["brands"]
    fuzz_rows = [
        [
            name,
            num(f["variants"]),
            num(f["recall"], 3),
            num(f["recall_no_category"], 3),
            num(f["common_word_variants"]),
        ]
        for name, f in sorted(dn["per_fuzzer"].items())
    ]
    script_rows = [
        [name, num(s["variants"]), num(s["recall"], 3)]
        for name, s in sorted(tr["per_script"].items())
    ]
    lang_rows = [
        [
            lang,
            num(x["titles"]),
            num(x["flagged"]),
            share(x["flagged_share"], 2),
            share(x["named_share"], 2),
        ]
        for lang, x in sorted(od["per_language"].items())
    ]
    return [
        "The text filter on names written by tools and data the project does not write. "
        f"Floors: recall >= {fl['recall_per_fuzzer']} per fuzzer and per script (brands of 5+ "
        f"letters); ordinary titles flagged <= {share(fl['ordinary_flagged_overall'])} "
        f"overall and <= {share(fl['ordinary_flagged_per_language'])} per language; real "
        f"unprotected names flagged <= {share(fl['unprotected_flagged'], 0)}.",
        f"dnstwist {dn['dnstwist']}: {dn['brands']} brands of 5+ letters drawn at random, up "
        "to 40 variants a brand and fuzzer; recall = the brand named, with the brand's "
        "category and without any. Variants that are themselves common words are counted "
        "apart (never read as the brand, by design).",
        table(
            ["fuzzer", "variants", "recall", "recall, no category", "common-word variants"],
            fuzz_rows,
        ),
        f"Lowest recall with the category: {dn['min_recall']:.3f} (floor "
        f"{fl['recall_per_fuzzer']}: {met(dn['min_recall'] >= fl['recall_per_fuzzer'])}). "
        "Without a category, a misspelling of an ambiguous name (Nike, Samsung and Chanel are "
        "common words by frequency) or an edit of a first letter needs the listing's support, "
        "and these titles are the variant alone.",
        f"UTS #39 look-alikes (confusables {tr['confusables']}): each brand of 5+ letters "
        "written with 1-2 letters of another script or letter family, in lower and upper "
        f"case. Overall recall {tr['overall_recall']:.4f}; lowest script "
        f"{tr['min_recall']:.3f} (floor: {met(tr['min_recall'] >= fl['recall_per_script'])}).",
        table(["script", "variants", "recall"], script_rows),
        f"wordfreq {od['wordfreq']} titles: 3-8 words drawn by frequency from each language's "
        "50,000 most common; *flagged* = text score >= 0.5, *named* = any brand read. "
        f"Overall {share(od['flagged_share'], 3)} flagged (floor: "
        f"{met(od['flagged_share'] <= fl['ordinary_flagged_overall'])}); highest language "
        f"{share(od['max_language_share'], 2)} (floor: "
        f"{met(od['max_language_share'] <= fl['ordinary_flagged_per_language'])}).",
        table(["language", "titles", "flagged", "flagged share", "named share"], lang_rows),
        f"Real unprotected brand names (device-detector {br['device_detector']}: "
        f"{num(br['names'])} phone, TV and camera makers not in the registry and holding no "
        'protected name), titled "NAME smartphone": '
        f"{share(br['flagged_share'], 2)} read as a protected brand with the electronics "
        f"category (floor: {met(br['flagged_share'] <= fl['unprotected_flagged'])}), "
        f"{share(br['flagged_share_no_category'], 2)} without a category.",
        *(provenance(d[k].get("run")) for k in ("dnstwist", "tr39", "ordinary", "brands")),
    ]


def image_robustness(d: Mapping[str, Any]) -> list[str]:
    im = d["images"]
    dists = [16, 18, 20, 24, 28, 32]
    tail = {r["distance"]: r for r in im["unrelated_tail"]}
    kinds = [
        ("different photographs", "different photographs: share"),
        (f"shipped beta-binomial tail {tuple(im['shipped_tail'])}", "shipped model"),
        (f"refit on this run {tuple(im['refit_tail'])}", "refit model"),
        ("portraits", "portraits: share"),
    ]
    tail_rows = [[name, *(sci(tail[x][key]) for x in dists if x in tail)] for name, key in kinds]
    fm = im["false_matches"]
    listings = sum(r["listings"] for r in fm if r["thresholds"] == "shipped")
    matched = sum(r["matched"] for r in fm if r["thresholds"] == "shipped")
    copies = im["copies"]
    return [
        f"Material the project does not write: the {len(im['photographs'])} sample "
        "photographs of scikit-image, matplotlib and scikit-learn, random crops of them, and "
        f"the {im['portraits']} portraits of scikit-image's LFW subset.",
        "Share of unrelated pairs within a combined (pHash + dHash) distance, each crop "
        "against every reference variant of the crops of the other photographs "
        f"({num(im['unrelated_pairs']['different photographs'])} pairs; portraits: "
        f"{num(im['unrelated_pairs']['portraits'])}), beside the tail model the filter ships:",
        table(["within d", *(str(x) for x in dists if x in tail)], tail_rows),
        "False matches per listing at the shipped thresholds (registry: crops of half of the "
        "photographs; listings: crops of the other half, both ways round). Floor: <= 1 in "
        "10,000 listings.",
        records(
            fm,
            [
                ("registry", "registry", str),
                # "band 28 (before)": the fixed band the filter no longer uses
                ("thresholds", "thresholds", lambda v: str(v).replace(" (before)", ", fixed")),
                ("reference hashes", "reference_hashes", num),
                ("band", "band", num),
                ("listings", "listings", num),
                ("matched", "matched", num),
                ("rate", "rate", sci),
                ("model's bound", "model_rate", sci),
            ],
        ),
        f"At the shipped thresholds: {num(matched)} in {num(listings)} listings (floor: "
        f"{met(matched / listings <= 1e-4)}).",
        f"Copies found ({copies['photos']} photos and portraits in one registry, "
        f"{num(copies['reference_hashes'])} hashes, band {copies['band']}):",
        records(
            copies["rows"],
            [
                ("edit", "edit", str),
                ("copies", "copies", num),
                ("found", "found", share),
                ("wrong photo", "wrong photo", num),
                ("median distance", "median distance", fixed(0)),
                ("mean strength", "mean strength", fixed(2)),
            ],
        ),
        provenance(im.get("run")),
    ]


def image(d: Mapping[str, Any]) -> list[str]:
    th, m, rb = d["throughput"], d["matching"], d["robustness"]
    return [
        f"{num(d['jpegs'])} generated {d['size']}x{d['size']} JPEGs (quality {d['quality']}), "
        f"hashed on {d['workers']} threads (best of {d['reps']}). The baseline is the plain "
        "`imagehash.phash(Image.open(p))` loop; the floors are decoding alone (full, and "
        "draft mode at 64x64, as the fast mode decodes).",
        table(th["header"], th["rows"], th["align"]),
        f"Floors: >= 4x the imagehash loop: {met(th['default_speedup'] >= 4)} "
        f"({th['default_speedup']:.1f}x for the filter default); within 1.3x of the bare "
        f"draft decode: {met(th['default_over_draft_floor'] <= 1.3)} "
        f"({th['default_over_draft_floor']:.2f}x).",
        "### Exactness against imagehash",
        stored_table(d["exactness"]),
        "### Hamming matching",
        "Random 64-bit hashes, against brute force and naive loops (extrapolated from a "
        "sample of queries):",
        stored_table(m["random"]),
        f"Floor: 100k x 100k <= 5 s: {met(m['best_matches_s'] <= 5)} (`best_matches` "
        f"{m['best_matches_s']:.2f} s).",
        "Clustered hashes (many near-duplicates give more candidates), each checked against "
        "brute force on a slice of the queries:",
        stored_table(m["clustered"]),
        "### Robustness to edits",
        f"{rb['official_photos']} official photos, {num(rb['reference_hashes'])} reference "
        "hashes; queries hashed in the filter's default fast mode; a match is "
        f"`best_matches(max_distance={rb['max_distance']}, max_phash={rb['max_phash']})`.",
        stored_table(rb["edits"]),
        stored_table(rb["false_matches"]),
    ]


def network(d: Mapping[str, Any]) -> list[str]:
    r = d["rings"]
    rules = r["other_rules"]
    bm = d.get("best_matches", {})
    rule_rows = [
        [
            "photos need another kind of evidence (default)",
            num(r["precision"], 4),
            num(r["recall"], 3),
            num(r["honest_in_rings"]),
        ],
        *[
            [name, num(x["precision"], 4), num(x["recall"], 3), num(x["honest_in_rings"])]
            for name, x in rules.items()
        ],
    ]
    honest = r["sellers"] - r["sellers_in_operations"]
    out = [
        f"A generated marketplace (`seeds.network.generate_network`): {num(r['listings'])} "
        f"listings, {num(r['sellers'])} sellers, {num(r['listings_with_photo'])} with a photo "
        f"given as hashes; {num(r['operations'])} operations of 2-40 shops "
        f"({num(r['sellers_in_operations'])} sellers) sharing photos, templates, contacts and "
        f"accounts; honest shops sharing official photos and generic phrases, and "
        f"{num(r['dropshippers'])} honest dropshippers sharing a supplier's photos. Seller "
        "pairs put in one ring are scored against the generator's operations. `find_rings` "
        "runs in a child process, so the peak memory is its own.",
        table(
            ["`find_rings`", "figure", "floor"],
            [
                ["pairwise precision", num(r["precision"], 4), ">= 0.95"],
                ["pairwise recall", num(r["recall"], 3), ">= 0.90"],
                [
                    "honest sellers in a ring",
                    f"{num(r['honest_in_rings'])} of {num(honest)}",
                    "<= 0.5%",
                ],
                [
                    "wall time (hashes given)",
                    f"{num(r['find_rings_seconds'], 1)} s "
                    f"({num(r['find_rings_cpu_seconds'], 1)} s CPU)",
                    "<= 60 s",
                ],
                ["peak memory", f"{r['peak_rss_gb']:.2f} GB", "<= 2 GB"],
            ],
        ),
        "Floors: precision "
        f"{met(r['precision'] >= 0.95)}, recall {met(r['recall'] >= 0.90)}, honest sellers "
        f"{met(r['honest_in_rings'] / honest <= 0.005)}, time "
        f"{met(r['find_rings_seconds'] <= 60)}, memory {met(r['peak_rss_gb'] <= 2)}.",
        "Each evidence stage timed alone on the same input:",
        table(["stage", "seconds"], [[k, num(v, 1)] for k, v in r["stage_seconds"].items()]),
        "Photos corroborate and never link alone. The rules that would let them, on the same "
        "marketplace (the last row links every pair sharing any key: the recall ceiling):",
        table(["rule", "precision", "recall", "honest sellers in a ring"], rule_rows),
    ]
    if bm:
        out += [
            "The nearest-photo search the rings rely on, 100k x 100k (pHash + dHash, max 28 / "
            "pHash 14), against brute force over a slice of the queries in the same process:",
            table(
                ["hashes", "seconds", "brute force (extrapolated)", "same as brute force"],
                [
                    [
                        name,
                        num(x["best_matches_seconds"], 2),
                        num(x["brute_force_seconds_extrapolated"], 1),
                        num(x["same"]),
                    ]
                    for name, x in bm.items()
                ],
            ),
        ]
    return out


def review(d: Mapping[str, Any]) -> list[str]:
    base, page = d["baseline_empty_page"], d["page"]
    return [
        f"A generated marketplace of {num(d['listings_scored'])} listings with photos, scored "
        f"zero-shot; `fakestop review` writes the page of its {num(d['listings_shown'])} "
        f"riskiest flagged listings ({num(d['listings_with_a_photo'])} with a photo), opened "
        "in Debian's chromium. *Ready* is the page's own clock when its script has built the "
        "list, shown the first listing and bound the keys; the baseline is the same page with "
        "no listing, in the same browser. The bound is the page with every listing showing a "
        "photo of its own at the per-photo budget.",
        table(
            ["", "page with no listing", f"{num(d['listings_shown'])} flagged listings", "floor"],
            [
                [
                    "page size",
                    "",
                    f"{d['page_bytes'] / 1e6:.2f} MB (bound "
                    f"{d['page_bytes_bound_every_listing_own_photo_at_budget'] / 1e6:.2f} MB)",
                    "<= 5 MB",
                ],
                [
                    f"ready, median / max of {page['repeats']}",
                    f"{num(base['ready_ms_median'])} / {num(base['ready_ms_max'])} ms",
                    f"{num(page['ready_ms_median'])} / {num(page['ready_ms_max'])} ms",
                    "<= 2 s",
                ],
                [
                    "`j` to the next listing, median / max",
                    "",
                    f"{num(page['key_ms_median'], 1)} / {num(page['key_ms_max'], 1)} ms",
                    "",
                ],
                ["writing the page", "", f"{num(d['write_seconds'], 1)} s", ""],
            ],
            "lrrr",
        ),
        f"Floors: size {met(d['floor_bytes_met'])}, ready {met(d['floor_ready_met'])}.",
    ]


#: README sections in order: title, the results file, the command, what renders it
SECTIONS: list[tuple[str, str, str, Section]] = [
    (
        "Quality on the generated marketplace",
        "bench_quality",
        "python -m benchmarks.bench_quality --n 20000 --seed 1",
        quality,
    ),
    (
        "Marketplace categories",
        "bench_taxonomy",
        "python -m benchmarks.bench_taxonomy --google-taxonomy DIR",
        taxonomy,
    ),
    (
        "Learned fusion under distribution shift",
        "bench_shift",
        "python -m benchmarks.bench_shift",
        shift,
    ),
    (
        "Training time and held-out quality",
        "bench_fusion",
        "python -m benchmarks.bench_fusion --n 100000",
        fusion,
    ),
    ("Crawler API latency", "bench_api", "python -m benchmarks.bench_api", api),
    (
        "Throughput at 1,000,000 listings",
        "bench_speed",
        "python -m benchmarks.bench_speed --n 1000000",
        speed,
    ),
    (
        "What the text filter costs",
        "bench_text_share",
        "python -m benchmarks.bench_text_share --n 1000000 --rounds 2",
        text_share,
    ),
    (
        "Nightly batch",
        "bench_nightly",
        "python -m benchmarks.bench_nightly --sizes 1000000 10000000 [--format csv|ndjson]",
        nightly,
    ),
    (
        "Reading shop exports",
        "bench_exports",
        "python -m benchmarks.bench_exports --rows 1000000",
        exports,
    ),
    ("Spark", "bench_spark", "python -m benchmarks.bench_spark --sizes 1000000", spark),
    (
        "Robustness of the text filter on data the project does not write",
        "bench_robustness",
        "python -m benchmarks.bench_robustness",
        robustness,
    ),
    (
        "Robustness on real photographs",
        "bench_image_robustness",
        "python -m benchmarks.bench_image_robustness",
        image_robustness,
    ),
    ("Image filter", "bench_image", "python -m benchmarks.bench_image", image),
    (
        "Seller rings",
        "bench_network",
        "python -m benchmarks.bench_network --listings 1000000 --sellers 50000",
        network,
    ),
    ("Review page", "bench_review", "python -m benchmarks.bench_review --flagged 1000", review),
]

#: results files whose sections carry their own run record
PER_SECTION_RUNS = {"bench_speed", "bench_nightly", "bench_robustness", "bench_image_robustness"}

INTRO = """\
# Benchmarks

Each section says what a benchmark measures, the command that runs it, its baseline (run in the
same process or the same run) and the floors set for it, then the current results. Every figure
here is written by `python -m benchmarks.render` from `benchmarks/results/<script>.json`, which
the command writes; each section ends with the run that produced its figures: the command, the
commit, the date, the load average and the cores. The project machine has 2 cores shared with
other work, so wall times are upper bounds; ratios against a baseline in the same run are the
firmer figures. How the figures changed over time is in `CHANGELOG.md`.

To re-run a benchmark and refresh this page:

    python -m benchmarks.bench_speed --n 1000000     # writes benchmarks/results/bench_speed.json
    python -m benchmarks.render                      # rewrites benchmarks/README.md

A *floor* is a figure a feature was built to reach; the sections say whether the current result
meets it.
"""


def paragraph(text: str) -> str:
    """``text`` wrapped at 100 characters, unless it is a table, a heading or a command."""
    if text.startswith(("|", "#")) or "\n" in text:
        return text
    return textwrap.fill(text, width=100, break_long_words=False, break_on_hyphens=False)


def read_results(results: Path = RESULTS) -> dict[str, Any]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(results.glob("*.json"))
    }


def render(results: Mapping[str, Any]) -> str:
    """The README for ``results`` (script name -> its stored results)."""
    parts = [INTRO]
    for title, script, command, section in SECTIONS:
        data = results.get(script)
        parts.append(f"## {title}\n")
        parts.append(f"`{command}`\n")
        if data is None:
            parts.append(f"*No results stored (`benchmarks/results/{script}.json`).*\n")
            continue
        for part in section(data):
            parts.append(paragraph(part) + "\n")
        if script not in PER_SECTION_RUNS:
            parts.append(paragraph(provenance(data.get("run"))) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="exit 1 if the README is not current")
    args = ap.parse_args(argv)
    text = render(read_results())
    if args.check:
        if README.read_text(encoding="utf-8") != text:
            print(f"{README} differs from the results; run python -m benchmarks.render")
            return 1
        return 0
    README.write_text(text, encoding="utf-8")
    print(f"-> {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
