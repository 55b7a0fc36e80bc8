"""Run manifests: what a finished run read, wrote and decided, and how to re-check it."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

# the atomic-file helpers live with the filters, which write caches with them
from filters.core.files import LIBRARIES as LIBRARIES
from filters.core.files import file_digest as file_digest
from filters.core.files import library_versions as library_versions
from filters.core.files import temporary_beside as temporary_beside
from filters.core.files import write_bytes_atomic as write_bytes_atomic
from filters.core.files import write_json_atomic as write_json_atomic
from pipelines.errors import FakestopError


def _sum_counts(batches: list[dict[str, Any]], key: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for b in batches:
        for k, v in b.get(key, {}).items():
            total[k] = total.get(k, 0) + int(v)
    return dict(sorted(total.items()))


#: the manifest lists this many unmatched category values, the most frequent first
MAX_UNMATCHED_CATEGORIES = 200


def unmatched_categories(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """The listings' category values that the taxonomy reads as no category, with their
    numbers of rows (the most frequent :data:`MAX_UNMATCHED_CATEGORIES`), so that operators
    can map them in the registry's ``categories.csv``."""
    total: dict[str, int] = {}
    for b in batches:
        for k, v in b.get("unmatched_categories", {}).items():
            total[k] = total.get(k, 0) + int(v)
    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "rows": sum(total.values()),
        "values": len(total),
        "counts": dict(ranked[:MAX_UNMATCHED_CATEGORIES]),
    }


def build_manifest(
    *,
    run_id: str,
    started: float,
    seconds: float,
    inputs: list[dict[str, Any]],
    output: dict[str, str],
    outputs: list[dict[str, Any]],
    batches: list[dict[str, Any]],
    plan: Any,
    batch_size: int,
    run_date: dt.date,
    model_hash: str | None,
    timings: dict[str, float],
    ledger: str | None,
) -> dict[str, Any]:
    rows_in = sum(b["rows_in"] for b in batches)
    rows_out = sum(b["rows_out"] for b in batches)
    quarantined = sum(b["quarantined"] for b in batches)
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(seconds, 3),
        "throughput_rows_per_s": round(rows_in / seconds, 1) if seconds > 0 else None,
        "inputs": inputs,
        "output": output,
        "outputs": outputs,
        "rows": {
            "in": rows_in,
            "out": rows_out,
            "ok": rows_out - quarantined,
            "quarantined": quarantined,
        },
        "quarantined_by_rule": _sum_counts(batches, "quarantined_by_rule"),
        "decisions": _sum_counts(batches, "decisions"),
        "unmatched_categories": unmatched_categories(batches),
        "registry_fingerprint": plan.registry.fingerprint,
        # whether listing photos were compared at all, and with what
        "images": plan.image_summary() if hasattr(plan, "image_summary") else None,
        "model_card_sha256": model_hash,
        "libraries": library_versions(),
        "configuration": {
            **plan.settings.as_dict(),
            "block_threshold": plan.thresholds.block,
            "review_threshold": plan.thresholds.review,
            "thresholds_from": plan.thresholds_from,
            "batch_size": batch_size,
            "run_date": run_date.isoformat(),
            "filters": [type(f).__name__ for f in plan.filters],
            "fusion": type(plan.fusion).__name__,
            "ledger": ledger,
        },
        "stage_seconds": {k: round(v, 3) for k, v in timings.items()},
        "stage_rows_per_s": {k: round(rows_in / v, 1) for k, v in timings.items() if v > 0},
        "batches": len(batches),
    }
    trained_with = list(getattr(plan.fusion, "trained_inputs", ()))
    if trained_with:
        seen = {c for b in batches for c in b.get("inputs", ())}
        manifest["model_inputs"] = {
            "trained_with": trained_with,
            "missing": [c for c in trained_with if c not in seen],
        }
    labelled = [b["labels"] for b in batches if "labels" in b]
    if labelled:
        lab = {k: sum(x[k] for x in labelled) for k in labelled[0]}

        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 6) if b else None

        manifest["labels"] = {
            "positives": lab["positives"],
            "block_precision": ratio(lab["tp_block"], lab["tp_block"] + lab["fp_block"]),
            "block_recall": ratio(lab["tp_block"], lab["positives"]),
            "flag_precision": ratio(lab["tp_flag"], lab["tp_flag"] + lab["fp_flag"]),
            "flag_recall": ratio(lab["tp_flag"], lab["positives"]),
        }
    return manifest


def manifest_path(out: str | Path) -> Path:
    path = Path(str(out).rstrip("/" + os.sep))
    return path.parent / f"{path.name}.manifest.json"


def relative_to_manifest(path: Path, manifest: Path) -> str:
    """``path`` as the manifest stores it: relative to the manifest's directory, with ``/``."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(manifest.parent))
    return Path(rel).as_posix()


def _given_output(entry: str, recorded: str, out: Path, base: Path) -> Path:
    """Where the output file the manifest recorded as ``entry`` is now: the output the run
    wrote (``recorded``) is the one named on the command line (``out``), wherever it was
    copied or moved to, so a part ``scores/part-00000.parquet`` is ``out/part-00000.parquet``."""
    if entry == recorded:
        return out
    prefix = recorded.rstrip("/") + "/"
    if entry.startswith(prefix):
        return out / entry[len(prefix) :]
    return base / entry


def verify_run(out: str | Path) -> list[str]:
    """Re-check a finished run against its manifest; returns the problems found (none = ok).

    The files checked are those at ``out`` (a copy or a moved output is checked, not the
    place the run wrote to); the manifest is ``<out>.manifest.json`` beside it, and the other
    paths it names are relative to it.
    """
    from pipelines.outputs import output_columns, output_rows

    mpath = manifest_path(out)
    try:
        manifest = json.loads(mpath.read_text())
    except OSError as exc:
        raise FakestopError(f"{mpath}: cannot read the run manifest ({exc.strerror})") from None
    except ValueError as exc:
        raise FakestopError(f"{mpath}: not a valid manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), dict):
        raise FakestopError(f"{mpath}: not a run manifest of this fakestop version (no output)")
    base = mpath.parent
    given = Path(str(out).rstrip("/" + os.sep) or "/")
    recorded = str(manifest["output"].get("path", ""))
    fmt = str(manifest["output"].get("format", "parquet"))
    problems: list[str] = []
    frames = []
    for entry in manifest.get("outputs", []):
        p = _given_output(str(entry["path"]), recorded, given, base)
        if not p.is_file():
            problems.append(f"{p}: output file is missing")
            continue
        if p.stat().st_size != entry["size"]:
            problems.append(f"{p}: size {p.stat().st_size} != manifest {entry['size']}")
        if file_digest(p) != entry["sha256"]:
            problems.append(f"{p}: sha256 differs from the manifest (file was modified)")
            continue
        file_fmt = "parquet" if fmt == "parts" else fmt
        try:
            rows = output_rows(p, file_fmt)
            frames.append(output_columns(p, file_fmt, ["status", "decision"]))
        except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
            problems.append(f"{p}: unreadable output ({str(exc).splitlines()[0]})")
            continue
        if rows != entry["rows"]:
            problems.append(f"{p}: {rows} rows != manifest {entry['rows']}")
    if frames and not problems:
        data = pl.concat(frames, how="diagonal_relaxed")
        rows = manifest["rows"]
        if data.height != rows["out"] or rows["out"] != rows["in"]:
            problems.append(f"rows out {data.height} != rows in {rows['in']}")
        quarantined = int((data.get_column("status") == "quarantined").sum())
        if quarantined != rows["quarantined"]:
            problems.append(f"quarantined {quarantined} != manifest {rows['quarantined']}")
        decisions = {
            str(d): int(n)
            for d, n in data.get_column("decision").drop_nulls().value_counts().iter_rows()
        }
        if dict(sorted(decisions.items())) != manifest["decisions"]:
            problems.append(f"decisions {decisions} != manifest {manifest['decisions']}")
    for entry in manifest.get("inputs", []):
        p = base / entry["path"]
        if p.is_file() and p.stat().st_size != entry["size"]:
            problems.append(f"{p}: input changed since the run (size differs)")
    # run statistics, like inputs, are checked where they are: the run's own sit beside its
    # output, named after it (``<out>.stats``, and after a copy's name when copied with it);
    # scores copied without them still verify
    stats = manifest.get("statistics") or {}
    if stats.get("path") and stats.get("sha256"):
        p = base / stats["path"]
        if stats.get("source") != "given" and not p.is_file():
            p = Path(f"{given}.stats")
        if p.is_file() and file_digest(p) != stats["sha256"]:
            problems.append(f"{p}: sha256 differs from the manifest (statistics were modified)")
    return problems
