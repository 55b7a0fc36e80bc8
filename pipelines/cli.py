"""The ``fakestop`` command line: every command and its options, described by ``--help``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipelines.errors import FakestopError, FakestopWarning

#: polars' allocator returns freed pages to the system at once by default: scoring frees and
#: reallocates the same hundreds of MB every batch, and the page faults cost ~0.5 s of system
#: time per million listings. The allocator reads this when polars first allocates, which the
#: command line does only after :func:`main` has started; a value the user set wins.
ALLOCATOR_SETTINGS = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:5000,muzzy_decay_ms:5000")


def _date(text: str | None, option: str = "--run-date") -> dt.date:
    """The date an option gives (default today), or an error naming the option."""
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FakestopError(f"{option} {text!r} is not YYYY-MM-DD") from None


def _settings(args: argparse.Namespace) -> Any:
    """The configuration file's settings with the command line's input options over them."""
    from pipelines.config import load_settings

    return load_settings(args.config).with_input_options(
        columns=args.columns,
        csv_separator=args.csv_separator,
        encoding=args.encoding,
        price_locale=args.price_locale,
    )


def _cmd_score(args: argparse.Namespace) -> int:
    from pipelines.registry import load_registry
    from pipelines.run import run_score
    from pipelines.stages import ScoringPlan

    settings = _settings(args)
    registry = load_registry(args.registry)
    plan = ScoringPlan.build(registry, settings=settings, images_root=args.images, model=args.model)
    statistics = None
    if args.stats is not None:
        from pipelines.statistics import load_statistics

        statistics = load_statistics(args.stats, plan)
    if args.engine == "spark":
        return _score_on_spark(args, plan, statistics)
    summary = run_score(
        args.listings,
        plan,
        args.out,
        batch_size=args.batch_size,
        quiet=args.quiet,
        restart=args.restart,
        ledger=args.ledger,
        run_date=_date(args.run_date),
        log_format=args.log_format,
        statistics=statistics,
        statistics_path=args.stats,
    )
    if not args.quiet and args.log_format == "text":
        print(summary.line())
    return 0


def _cmd_stats_build(args: argparse.Namespace) -> int:
    from pipelines.registry import load_registry
    from pipelines.run import build_statistics
    from pipelines.stages import ScoringPlan

    plan = ScoringPlan.build(
        load_registry(args.registry), settings=_settings(args), images_root=args.images
    )
    build_statistics(
        args.listings,
        plan,
        args.out,
        batch_size=args.batch_size,
        quiet=args.quiet,
        log_format=args.log_format,
    )
    return 0


def _score_on_spark(args: argparse.Namespace, plan: Any, statistics: Any) -> int:
    if args.ledger or args.restart:
        raise FakestopError(
            "--ledger and --restart are for the local engine; a Spark rerun "
            "overwrites its run-date partition"
        )
    try:
        from pipelines.spark import (
            check_inputs,
            check_java,
            check_master,
            score_spark_with_statistics,
            spark_error,
            spark_session,
        )
    except ImportError:
        raise FakestopError(
            "--engine spark needs the spark extra: pip install 'fakestop[spark]'"
        ) from None
    from pipelines.outputs import refuse_output_over_inputs
    from pipelines.schema import resolve_sources

    run_date = _date(args.run_date)
    master = args.master or "local[*]"
    check_master(master)
    check_inputs([str(args.listings)])
    if "://" not in str(args.listings) and "://" not in str(args.out):
        files = resolve_sources(args.listings)
        refuse_output_over_inputs(args.out, True, args.listings, files)
    check_java()
    try:
        spark = spark_session(master)
        if not os.environ.get("FAKESTOP_DEBUG"):
            # a failing task logs its Java stack trace; the failure is reported in one line
            spark.sparkContext.setLogLevel("FATAL")
        result, used = score_spark_with_statistics(
            spark, [str(args.listings)], plan, str(args.out), run_date=run_date,
            statistics=statistics,
        )  # fmt: skip
        count = result.count()
        if statistics is None and "://" not in str(args.out):
            # the statistics the run computed, where Spark's readers skip them
            used.save(Path(args.out) / "_statistics" / f"run_date={run_date.isoformat()}.parquet")
    except FakestopError:
        raise
    except Exception as exc:  # any JVM or Spark failure, as one line
        if os.environ.get("FAKESTOP_DEBUG"):
            raise
        raise spark_error(exc) from None
    if not args.quiet:
        print(f"scored {count:,} listings on Spark -> {args.out} (run_date={run_date.isoformat()})")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from pipelines.manifest import verify_run

    problems = verify_run(args.out)
    for p in problems:
        print(f"fakestop verify: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"{args.out}: ok (matches its manifest)")
    return 0


def _cmd_complaints_add(args: argparse.Namespace) -> int:
    from pipelines.ledger import Ledger

    with Ledger(args.ledger) as ledger:
        added = ledger.import_complaints(args.file)
    print(f"{added} new strike(s) from {args.file}")
    return 0


def _print_table(table: Any, limit: int) -> None:
    import polars as pl

    with pl.Config(
        tbl_rows=limit,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        fmt_str_lengths=80,
    ):
        print(table.head(limit))


def _cmd_sellers(args: argparse.Namespace) -> int:
    from pipelines.ledger import Ledger

    if args.ledger is None:
        raise FakestopError("sellers: --ledger FILE is required")
    as_of = _date(args.as_of, "--as-of")
    with Ledger(args.ledger, create=False) as ledger:
        table = ledger.sellers(as_of=as_of)
    _print_table(table, args.limit)
    return 0


def _cmd_sellers_unfreeze(args: argparse.Namespace) -> int:
    from pipelines.ledger import Ledger

    date = _date(args.date, "--date")
    with Ledger(args.ledger, create=False) as ledger:
        cleared = ledger.unfreeze(args.seller, date=date, reason=args.reason)
    print(
        f"seller {args.seller} unfrozen from {date.isoformat()}: its {cleared} strike(s) so far "
        f"no longer count (recorded in {args.ledger})"
    )
    return 0


def _cmd_strikes_remove(args: argparse.Namespace) -> int:
    from pipelines.ledger import Ledger

    date = _date(args.date, "--date")
    with Ledger(args.ledger, create=False) as ledger:
        sellers = ledger.remove_strike(args.listing, date=date, reason=args.reason)
    print(
        f"strike for listing {args.listing} (seller {', '.join(sellers)}) removed from "
        f"{date.isoformat()} (recorded in {args.ledger})"
    )
    return 0


def _cmd_strikes_list(args: argparse.Namespace) -> int:
    from pipelines.ledger import Ledger

    as_of = _date(args.as_of, "--as-of")
    with Ledger(args.ledger, create=False) as ledger:
        table = ledger.strikes(as_of=as_of, seller=args.seller)
    _print_table(table, args.limit)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    run_demo(Path(args.out), n=args.n, seed=args.seed, quiet=args.quiet)
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    from pipelines.review import write_review

    done = write_review(
        args.scores,
        registry=args.registry,
        images=args.images,
        rings=args.rings,
        ledger=args.ledger,
        as_of=_date(args.as_of, "--as-of"),
        out=args.out,
        limit=args.limit,
    )
    if not args.quiet:
        print(
            f"review page -> {args.out}: {done['listings']:,} flagged listing(s), "
            f"{done['photos']:,} photo(s), {done['bytes'] / 1e6:.1f} MB"
        )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import warnings

    from pipelines.learn import train_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        card = train_model(
            args.labelled,
            registry=args.registry,
            images=args.images,
            out=args.out,
            label=args.label,
            target_precision=args.target_precision,
            review_share=args.review_share,
            seed=args.seed,
            config=_settings(args),
            allow_degenerate=args.allow_degenerate,
            stats=args.stats,
        )
    for w in caught:
        print(f"fakestop: warning: {w.message}", file=sys.stderr)
    if args.quiet:
        return 0
    m = card["metrics"]
    th = card["thresholds"]
    rates = card["oof_flag_rates"]["as_given"]
    auc = "–" if m["pr_auc"] is None else f"{m['pr_auc']:.4f}"
    print(
        f"model -> {args.out} (card {args.out}.card.json): cross-validated PR-AUC {auc}; "
        f"block >= {th['block']:.4f} ({rates['block']:.1%} of listings out of fold), "
        f"review >= {th['review']:.4f} ({rates['review']:.1%})"
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from pipelines.learn import bench_labelled

    paths = bench_labelled(
        args.labelled,
        registry=args.registry,
        images=args.images,
        model=args.model,
        report=args.report,
        label=args.label,
        test=args.test,
        seed=args.seed,
        config=_settings(args),
    )
    print(f"report: {paths['html']}\nmetrics: {paths['metrics']}\nsummary: {paths['summary']}")
    print(paths["summary"].read_text(encoding="utf-8"))
    return 0


def _cmd_registry_build(args: argparse.Namespace) -> int:
    from filters.image import build_image_cache
    from pipelines.registry import load_registry

    report = build_image_cache(load_registry(args.dir), fast=not args.exact, workers=args.workers)
    print(
        f"{report.photos} registry photos: {report.reused} unchanged, {report.hashed} hashed, "
        f"{report.unusable} unusable -> {report.path}"
    )
    for message in report.copied:
        print(f"fakestop: warning: {message}", file=sys.stderr)
    return 0


def _cmd_network(args: argparse.Namespace) -> int:
    from pipelines.network import NetworkSettings, run_network

    settings = NetworkSettings(
        max_shared_by=args.max_shared_by, link_threshold=args.link_threshold
    )
    result, paths = run_network(
        args.listings,
        args.registry,
        args.out,
        images=args.images,
        scores=args.scores,
        ledger=args.ledger,
        run_date=_date(args.run_date),
        settings=settings,
        input_settings=_settings(args),
    )
    if not args.quiet:
        print(result.summary(limit=5), end="")
        print(f"-> {paths['rings']}, {paths['links']}, {paths['summary']}, {paths['html']}")
    return 0


def _input_options(parser: argparse.ArgumentParser) -> None:
    """Options saying how listings exports are written (also settable in the config's
    ``[input]`` and ``[columns]``)."""
    parser.add_argument(
        "--columns",
        default=None,
        metavar="COL=HEADER,...",
        help="export headers of listing columns, e.g. title=Name,price=Price "
        "(headers are otherwise matched ignoring case and separators)",
    )
    parser.add_argument(
        "--csv-separator",
        default=None,
        metavar="CHAR",
        help="CSV field separator: one character, tab or auto (default: sniffed)",
    )
    parser.add_argument(
        "--encoding",
        default=None,
        help="text encoding of CSV files, e.g. utf-8, utf-16, latin-1, cp1252 "
        "(default: UTF-8, or what a byte-order mark says)",
    )
    parser.add_argument(
        "--price-locale",
        default=None,
        choices=["auto", "point", "comma"],
        help="decimal mark of ambiguous prices such as 1.299 (default auto: the currency's)",
    )


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("fakestop")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


LISTINGS_HELP = (
    "a Parquet, CSV or NDJSON/JSONL file, a directory of Parquet parts, or a glob of files "
    "of any of these formats (quote it)"
)


def build_parser() -> argparse.ArgumentParser:
    from pipelines.run import DEFAULT_BATCH_SIZE

    parser = argparse.ArgumentParser(
        prog="fakestop", description="Score marketplace listings for counterfeit risk."
    )
    parser.add_argument("--version", action="version", version=f"fakestop {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    score = sub.add_parser(
        "score", help="score listings into a Parquet, CSV or NDJSON file or a directory of parts"
    )
    score.add_argument("listings", help=LISTINGS_HELP)
    score.add_argument("--registry", required=True, help="brand registry directory")
    score.add_argument("--images", default=None, help="directory that image paths are relative to")
    score.add_argument(
        "--out",
        required=True,
        help="OUT.parquet, OUT.csv, OUT.ndjson or OUT.jsonl, or OUT_DIR/ for one Parquet "
        "part per batch (never an input, nor inside an input directory)",
    )
    score.add_argument("--model", default=None, help="model file from `fakestop train`")
    score.add_argument(
        "--stats",
        default=None,
        metavar="STATS",
        help="run statistics to score with (`fakestop stats build`, or a run's "
        "OUT.stats); default: computed over the whole input",
    )
    score.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"listings scored and committed at a time (default {DEFAULT_BATCH_SIZE:,})",
    )
    score.add_argument(
        "--config", default=None, help="TOML file: rates, conditions, thresholds, input options"
    )
    score.add_argument("--restart", action="store_true", help="discard an unfinished run's batches")
    score.add_argument("--ledger", default=None, help="seller strike ledger (SQLite file)")
    score.add_argument(
        "--run-date", default=None, help="date of the run, YYYY-MM-DD (default today)"
    )
    score.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="progress off a terminal: one text line or JSON object per batch (default text)",
    )
    score.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="local: this machine, streaming and resumable (default); spark: Apache Spark "
        "(Parquet input, output partitioned by run date)",
    )
    score.add_argument("--master", default=None, help="Spark master URL (default local[*])")
    score.add_argument("--quiet", action="store_true", help="no progress or summary")
    _input_options(score)
    score.set_defaults(func=_cmd_score)

    stats = sub.add_parser("stats", help="run statistics")
    ssub = stats.add_subparsers(dest="stats_command", required=True)
    sbuild = ssub.add_parser(
        "build", help="robust price statistics and seller shares over a whole input"
    )
    sbuild.add_argument("listings", help=LISTINGS_HELP)
    sbuild.add_argument("--registry", required=True, help="brand registry directory")
    sbuild.add_argument("--images", default=None, help="directory that image paths are relative to")
    sbuild.add_argument(
        "--config", default=None, help="TOML file: rates, conditions, thresholds, input options"
    )
    sbuild.add_argument("--out", required=True, help="statistics file to write (Parquet)")
    sbuild.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"listings read at a time (default {DEFAULT_BATCH_SIZE:,}; no effect on the result)",
    )
    sbuild.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="progress off a terminal: one text line or JSON object per batch (default text)",
    )
    sbuild.add_argument("--quiet", action="store_true", help="no progress or summary")
    _input_options(sbuild)
    sbuild.set_defaults(func=_cmd_stats_build)

    train = sub.add_parser("train", help="train the fusion model on labelled listings")
    train.add_argument("labelled", help=f"listings with a 0/1 label column: {LISTINGS_HELP}")
    train.add_argument("--registry", required=True, help="brand registry directory")
    train.add_argument("--images", default=None, help="directory that image paths are relative to")
    train.add_argument("--out", required=True, help="model file to write (skops)")
    train.add_argument("--label", default="label", help="label column (default: label)")
    train.add_argument(
        "--target-precision",
        type=float,
        default=0.99,
        help="block precision the block threshold is chosen for (default 0.99)",
    )
    train.add_argument(
        "--review-share",
        type=float,
        default=0.02,
        help="review budget, share of listings (default 0.02)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument(
        "--config", default=None, help="TOML file: rates, conditions, thresholds, input options"
    )
    train.add_argument(
        "--allow-degenerate",
        action="store_true",
        help="keep a model that never flags, has too few examples of a class or whose "
        "calibration collapsed (with a warning) instead of failing",
    )
    train.add_argument(
        "--stats",
        default=None,
        metavar="STATS",
        help="run statistics to score the listings with (default: their own)",
    )
    train.add_argument("--quiet", action="store_true", help="no summary line")
    _input_options(train)
    train.set_defaults(func=_cmd_train)

    bench = sub.add_parser("bench", help="precision/recall of every filter and the fusion")
    bench.add_argument("labelled", help=f"listings with a 0/1 label column: {LISTINGS_HELP}")
    bench.add_argument("--registry", required=True, help="brand registry directory")
    bench.add_argument("--images", default=None, help="directory that image paths are relative to")
    bench.add_argument("--model", default=None, help="trained model (else cross-validated)")
    bench.add_argument("--report", required=True, help="directory for report.html etc.")
    bench.add_argument("--test", default=None, help="separate labelled test set")
    bench.add_argument("--label", default="label", help="label column (default: label)")
    bench.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    bench.add_argument(
        "--config", default=None, help="TOML file: rates, conditions, thresholds, input options"
    )
    _input_options(bench)
    bench.set_defaults(func=_cmd_bench)

    registry = sub.add_parser("registry", help="brand registry tools")
    rsub = registry.add_subparsers(dest="registry_command", required=True)
    rbuild = rsub.add_parser("build", help="hash the registry's images once into a cache")
    rbuild.add_argument("dir", help="brand registry directory")
    rbuild.add_argument("--exact", action="store_true", help="full decode (imagehash-exact)")
    rbuild.add_argument(
        "--workers", type=int, default=2, help="processes hashing photos (default 2)"
    )
    rbuild.set_defaults(func=_cmd_registry_build)

    verify = sub.add_parser("verify", help="re-check a finished run against its manifest")
    verify.add_argument("out", help="the output to check (its OUT.manifest.json must be beside it)")
    verify.set_defaults(func=_cmd_verify)

    complaints = sub.add_parser("complaints", help="rights-holder complaints")
    csub = complaints.add_subparsers(dest="complaints_command", required=True)
    cadd = csub.add_parser("add", help="import seller_id,listing_id,brand,date complaints")
    cadd.add_argument("file", help="CSV with seller_id,listing_id,brand,date columns")
    cadd.add_argument(
        "--ledger", required=True, help="strike ledger (SQLite file; made if missing)"
    )
    cadd.set_defaults(func=_cmd_complaints_add)

    sellers = sub.add_parser(
        "sellers",
        help="sellers by status and strikes; `sellers unfreeze` records an upheld appeal",
    )
    sellers.add_argument("--ledger", default=None, help="strike ledger (SQLite file)")
    sellers.add_argument("--as-of", default=None, help="YYYY-MM-DD (default today)")
    sellers.add_argument("--limit", type=int, default=50, help="rows shown (default 50)")
    sellers.set_defaults(func=_cmd_sellers)
    ssub = sellers.add_subparsers(dest="sellers_command")
    unfreeze = ssub.add_parser(
        "unfreeze", help="the seller's strikes so far no longer count (recorded, not deleted)"
    )
    unfreeze.add_argument("--ledger", required=True, help="strike ledger (SQLite file)")
    unfreeze.add_argument("--seller", required=True, help="seller_id")
    unfreeze.add_argument("--reason", required=True, help="why, for the audit trail")
    unfreeze.add_argument("--date", default=None, help="from when, YYYY-MM-DD (default today)")
    unfreeze.set_defaults(func=_cmd_sellers_unfreeze)

    strikes = sub.add_parser("strikes", help="strikes and their appeals")
    ksub = strikes.add_subparsers(dest="strikes_command", required=True)
    remove = ksub.add_parser(
        "remove", help="a listing's strike no longer counts (recorded, not deleted)"
    )
    remove.add_argument("--ledger", required=True, help="strike ledger (SQLite file)")
    remove.add_argument("--listing", required=True, help="listing_id")
    remove.add_argument("--reason", default=None, help="why, for the audit trail")
    remove.add_argument("--date", default=None, help="from when, YYYY-MM-DD (default today)")
    remove.set_defaults(func=_cmd_strikes_remove)
    klist = ksub.add_parser("list", help="every strike, whether it counts, and why not")
    klist.add_argument("--ledger", required=True, help="strike ledger (SQLite file)")
    klist.add_argument("--seller", default=None, help="only this seller_id")
    klist.add_argument("--as-of", default=None, help="YYYY-MM-DD (default today)")
    klist.add_argument("--limit", type=int, default=50, help="rows shown (default 50)")
    klist.set_defaults(func=_cmd_strikes_list)

    network = sub.add_parser(
        "network", help="seller rings: sellers linked by shared photos, texts and contacts"
    )
    network.add_argument("listings", help=LISTINGS_HELP)
    network.add_argument("--registry", required=True, help="brand registry directory")
    network.add_argument(
        "--images", default=None, help="directory that image paths are relative to"
    )
    network.add_argument(
        "--scores",
        default=None,
        help="a scoring run's output: its risk and matched_brand give the rings' risk and brands",
    )
    network.add_argument(
        "--ledger",
        default=None,
        help="strike ledger: strikes raise a ring's risk, and the rings are stored so that the "
        "next scoring run sends ring members of a frozen seller to review",
    )
    network.add_argument(
        "--out",
        required=True,
        help="output directory: rings.parquet, links.parquet, summary.txt, report.html",
    )
    network.add_argument(
        "--max-shared-by",
        type=int,
        default=60,
        metavar="N",
        help="evidence shared by more sellers than this is common, not a link (default 60)",
    )
    network.add_argument(
        "--link-threshold",
        type=float,
        default=1.0,
        metavar="W",
        help="weight of shared evidence that links two sellers (default 1.0: one contact, or "
        "two photos or texts)",
    )
    network.add_argument("--run-date", default=None, help="YYYY-MM-DD (default today)")
    network.add_argument(
        "--config", default=None, help="TOML file: input options (how exports are written)"
    )
    network.add_argument("--quiet", action="store_true", help="no summary")
    _input_options(network)
    network.set_defaults(func=_cmd_network)

    review = sub.add_parser(
        "review", help="one self-contained HTML page to review flagged listings and export verdicts"
    )
    review.add_argument("scores", help="scores from fakestop score (Parquet, CSV or NDJSON)")
    review.add_argument("--registry", required=True, help="brand registry directory")
    review.add_argument("--images", default=None, help="directory that image paths are relative to")
    review.add_argument(
        "--rings", default=None, help="fakestop network's output directory (rings.parquet)"
    )
    review.add_argument("--ledger", default=None, help="strike ledger: each seller's strikes")
    review.add_argument(
        "--as-of", default=None, help="date the strikes are counted on, YYYY-MM-DD (default today)"
    )
    review.add_argument(
        "--limit", type=int, default=None, metavar="N", help="only the N riskiest flagged listings"
    )
    review.add_argument("--out", required=True, help="the page to write, e.g. review.html")
    review.add_argument("--quiet", action="store_true", help="no summary line")
    review.set_defaults(func=_cmd_review)

    demo = sub.add_parser("demo", help="generate the sample marketplace and score it")
    demo.add_argument("--out", default="demo", help="output directory (default: demo/)")
    demo.add_argument("--n", type=int, default=20_000, help="number of listings to generate")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress or tables")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """fakestop's own warnings as one line on stderr; others as Python shows them."""
    if issubclass(category, FakestopWarning):
        print(f"fakestop: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), file=sys.stderr)


def _with_warning_lines(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        # the command line says each of its own warnings once, as a line, whatever the
        # interpreter's warning filters
        warnings.simplefilter("default", FakestopWarning)
        warnings.showwarning = _show_warning
        return func(args)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault(*ALLOCATOR_SETTINGS)
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from pipelines.run import RunStopped

    try:
        return _with_warning_lines(func, args)
    except RunStopped as exc:
        # the shell's code for "ended by this signal"; committed batches are kept
        print(f"fakestop: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except FakestopError as exc:
        print(f"fakestop: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fakestop: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"fakestop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = (
            "; the batches committed so far are kept: rerun the same command to resume"
            if getattr(args, "command", None) == "score" and getattr(args, "engine", "") == "local"
            else ""
        )
        print(f"fakestop: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("FAKESTOP_DEBUG"):
            raise
        print(
            f"fakestop: internal error: {type(exc).__name__}: {exc} "
            "(set FAKESTOP_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
