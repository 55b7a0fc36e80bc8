"""The same input and statistics give the same results: across batch sizes, between the crawler
API and the command line, and before and after a kill -9 (Spark: tests/test_spark.py).

Compared with a trained model, which reads the seller shares and the robust price z-score:
risk within 1e-12, every other output column identical (decisions, reasons, scores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest

from models.fusion import train
from models.persist import save_model
from pipelines import Scorer
from pipelines.api import ScoreResult
from pipelines.cli import main
from pipelines.manifest import verify_run
from pipelines.registry import Registry
from pipelines.run import OutputLayout
from pipelines.stages import ScoringPlan, score_frame
from tests.test_run import DAY, marketplace


def assert_same_results(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns and a.height == b.height
    diff = (a["risk"] - b["risk"]).abs().max()
    assert a["risk"].is_null().equals(b["risk"].is_null())
    assert diff is None or diff <= 1e-12, diff  # type: ignore[operator]
    for c in a.columns:
        if c != "risk":
            assert a[c].equals(b[c]), c


@pytest.fixture(scope="module")
def model(tiny_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fusion model trained on listings whose sellers and prices matter."""
    labelled = marketplace(3000, sellers=40)
    scored = score_frame(labelled, ScoringPlan.build(tiny_registry), keep_evidence=True)
    # a small, easy marketplace: its calibration has few distinct values, which is what
    # these identity tests need (every decision compared), not a model to deploy
    with pytest.warns(UserWarning, match="degenerate model kept"):
        fusion = train(
            scored,
            registry_fingerprint=tiny_registry.fingerprint,
            folds=3,
            seed=0,
            allow_degenerate=True,
        )
    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(fusion, path)
    return path


def listings_file(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "in.parquet"
    # prices spread within each brand, sellers with many listings, a few repeated ids
    marketplace(n, sellers=23).write_parquet(src)
    return src


def score_cli(src: Path, out: Path, registry: Path, model: Path, *extra: str) -> pl.DataFrame:
    argv = [
        "score", str(src), "--registry", str(registry), "--model", str(model),
        "--out", str(out), "--run-date", DAY.isoformat(), "--quiet", *extra,
    ]  # fmt: skip
    assert main(argv) == 0
    return pl.read_parquet(out)


def test_batch_size_does_not_change_any_result(
    tmp_path: Path, tiny_registry_dir: Path, model: Path
) -> None:
    src = listings_file(tmp_path, 400)
    runs = {
        size: score_cli(
            src, tmp_path / f"b{size}.parquet", tiny_registry_dir, model, "--batch-size", str(size)
        )
        for size in (1, 7, 500)
    }
    for size in (1, 7):
        assert_same_results(runs[size], runs[500])
    # the statistics are the whole input's, whatever the batches
    fingerprints = {
        json.loads((tmp_path / f"b{size}.parquet.manifest.json").read_text())["statistics"][
            "fingerprint"
        ]
        for size in runs
    }
    assert len(fingerprints) == 1
    decided = runs[500].filter(pl.col("status") == "ok")
    assert decided["decision"].n_unique() >= 2, "a model that decides nothing proves nothing"
    assert decided["price_score"].drop_nulls().len() > 0


@pytest.mark.slow
def test_batch_sizes_500_100k_and_1m_give_the_same_results(
    tmp_path: Path, tiny_registry_dir: Path, model: Path
) -> None:
    """150,000 listings: --batch-size 100000 cuts them into two batches and 1000000 does not
    (any batch size from the input's size up gives one batch, so this is the 1M case)."""
    src = listings_file(tmp_path, 150_000)
    one = score_cli(
        src, tmp_path / "m1.parquet", tiny_registry_dir, model, "--batch-size", "1000000"
    )
    for size in ("100000", "500"):
        got = score_cli(src, tmp_path / f"b{size}.parquet", tiny_registry_dir, model,
                        "--batch-size", size)  # fmt: skip
        assert_same_results(got, one)


def test_score_one_score_batch_and_the_cli_agree_given_the_runs_statistics(
    tmp_path: Path, tiny_registry_dir: Path, model: Path
) -> None:
    src = listings_file(tmp_path, 600)
    out = tmp_path / "out.parquet"
    cli = score_cli(src, out, tiny_registry_dir, model, "--batch-size", "128")
    stats = Path(f"{out}.stats")
    assert verify_run(out) == []
    scorer = Scorer.from_registry(
        tiny_registry_dir, model=model, stats=stats, on_error="quarantine"
    )
    listings = pl.read_parquet(src).to_dicts()
    # a repeated id is quarantined by the run, not by a scorer that sees one listing at a time
    ok = cli.with_row_index("i").filter(~pl.col("error").fill_null("").str.contains("id_unique"))
    rows = [listings[i] for i in ok["i"]]
    expected = ok.drop("i")
    fields = ["risk", "decision", "text_score", "price_score", "image_score", "matched_brand",
              "status", "error"]  # fmt: skip

    def as_frame(results: Sequence[ScoreResult]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "listing_id": [r.listing_id for r in results],
                **{f: [getattr(r, f) for r in results] for f in fields},
                "reasons": [list(r.reasons) for r in results],
            },
            schema_overrides={"reasons": pl.List(pl.String)},
        )

    want = expected.select("listing_id", *fields, pl.col("reasons").fill_null([]))
    one = as_frame([scorer.score_one(r) for r in rows])
    batch = as_frame(scorer.score_batch(rows))
    assert_same_results(one.select(want.columns), want)
    assert_same_results(batch.select(want.columns), want)
    # the statistics changed decisions here: scored alone, some listings decide otherwise
    alone = Scorer.from_registry(tiny_registry_dir, model=model, on_error="quarantine")
    lone = as_frame([alone.score_one(r) for r in rows])
    assert not lone["risk"].equals(want["risk"])
    # a frame scored whole computes the statistics over itself, as the command line does
    frame = alone.score(pl.read_parquet(src))
    assert_same_results(frame.select(cli.columns), cli)


def test_stats_build_and_score_with_them_equal_the_run(
    tmp_path: Path, tiny_registry_dir: Path, model: Path
) -> None:
    src = listings_file(tmp_path, 500)
    ref = score_cli(src, tmp_path / "ref.parquet", tiny_registry_dir, model, "--batch-size", "64")
    stats = tmp_path / "stats.parquet"
    argv = ["stats", "build", str(src), "--registry", str(tiny_registry_dir),
            "--out", str(stats), "--batch-size", "37", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "ref.parquet.manifest.json").read_text())
    assert pl.read_parquet(stats).height > 0
    given = score_cli(src, tmp_path / "given.parquet", tiny_registry_dir, model,
                      "--stats", str(stats), "--batch-size", "100")  # fmt: skip
    assert_same_results(given, ref)
    recorded = json.loads((tmp_path / "given.parquet.manifest.json").read_text())["statistics"]
    # paths in a manifest are relative to the manifest
    assert recorded["source"] == "given"
    assert (tmp_path / recorded["path"]).resolve() == stats.resolve()
    assert recorded["fingerprint"] == manifest["statistics"]["fingerprint"]
    # a given statistics file that changes after the run is caught by verify
    assert verify_run(tmp_path / "given.parquet") == []
    pl.read_parquet(stats).head(1).write_parquet(stats)
    assert any("statistics were modified" in p for p in verify_run(tmp_path / "given.parquet"))


def test_kill_9_in_either_pass_then_resume_gives_identical_output(
    tmp_path: Path, tiny_registry_dir: Path, model: Path
) -> None:
    src = listings_file(tmp_path, 6000)
    ref = score_cli(src, tmp_path / "ref.parquet", tiny_registry_dir, model, "--batch-size", "200")
    out = tmp_path / "out.parquet"
    checkpoint = OutputLayout.of(out).checkpoint
    cmd = [
        sys.executable, "-m", "pipelines.cli", "score", str(src), "--registry",
        str(tiny_registry_dir), "--model", str(model), "--out", str(out), "--batch-size", "200",
        "--run-date", DAY.isoformat(), "--quiet",
    ]  # fmt: skip

    def state() -> dict[str, object]:
        try:
            loaded: dict[str, object] = json.loads(checkpoint.read_text())
            return loaded
        except (FileNotFoundError, ValueError):
            return {}

    def killed_when(reached: object) -> bool:
        """Run the command and kill -9 it once ``reached(checkpoint)`` holds; False if it
        finished first."""
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while proc.poll() is None and not reached(state()):  # type: ignore[operator]
            assert time.monotonic() < deadline, "no progress within 300 s"
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            return True
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
        return False

    # during the first pass (evidence committed, no statistics yet), then during the second
    in_first = killed_when(lambda s: len(s.get("evidence", [])) >= 3)
    first = state()
    assert in_first and first["statistics"] is None and not first["batches"]
    in_second = killed_when(lambda s: len(s.get("batches", [])) >= 3)
    second = state()
    assert in_second and second["statistics"] is not None
    assert len(second["evidence"]) == 30  # type: ignore[arg-type]
    assert not killed_when(lambda s: False)
    assert_same_results(pl.read_parquet(out), ref)
    assert pl.read_parquet(out).equals(ref)
    assert verify_run(out) == []
    assert not OutputLayout.of(out).evidence_dir.exists()
