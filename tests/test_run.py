"""The nightly batch: resumable after kill -9, refuses to mix runs, audited, strike ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from pipelines.errors import FakestopError
from pipelines.ledger import Ledger
from pipelines.manifest import verify_run
from pipelines.registry import Registry
from pipelines.run import OutputLayout, run_score
from pipelines.stages import ScoringPlan
from tests.conftest import listings

DAY = dt.date(2026, 11, 1)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def marketplace(n: int, *, sellers: int = 50) -> pl.DataFrame:
    titles = ["Rolex Submariner", "Gucci Marmont bag", "coffee mug", "Nike shoes", "desk lamp"]
    return listings(
        listing_id=[f"id{i % (n - 7)}" for i in range(n)],  # a few repeated ids
        title=[titles[i % 5] for i in range(n)],
        price=[float([40, 1800, 9, 110, 25][i % 5] * (1 + (i % 13) / 10)) for i in range(n)],
        brand=[["Rolex", "Gucci", None, "Nike", None][i % 5] for i in range(n)],
        category=[["watches", "bags", None, "shoes", None][i % 5] for i in range(n)],
        seller_id=[f"s{i % sellers}" for i in range(n)],
        label=[[1, 0, 0, 0, 0][i % 5] for i in range(n)],
    )


@pytest.fixture(scope="module")
def plan(tiny_registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(tiny_registry)


def test_manifest_records_the_run_and_verify_accepts_it(tmp_path: Path, plan: ScoringPlan) -> None:
    src = tmp_path / "in.parquet"
    marketplace(3000).write_parquet(src)
    out = tmp_path / "out.parquet"
    summary = run_score(src, plan, out, batch_size=700, quiet=True, run_date=DAY)
    m = json.loads((tmp_path / "out.parquet.manifest.json").read_text())
    assert m["rows"]["in"] == m["rows"]["out"] == 3000 == summary.rows_in
    assert m["rows"]["quarantined"] == 7 == m["quarantined_by_rule"]["id_unique"]
    assert sum(m["decisions"].values()) == 3000 - 7
    assert m["inputs"][0]["sha256"] == sha(src)
    assert m["outputs"][0]["sha256"] == sha(out)
    assert m["registry_fingerprint"] == plan.registry.fingerprint
    assert m["labels"]["block_precision"] is not None
    assert m["batches"] == 5 and set(m["stage_seconds"]) >= {"read", "score", "write"}
    assert verify_run(out) == []
    assert not list(tmp_path.glob(".out.parquet*")), "staging files left behind"


def test_verify_catches_a_modified_output(tmp_path: Path, plan: ScoringPlan) -> None:
    src = tmp_path / "in.parquet"
    marketplace(500).write_parquet(src)
    out = tmp_path / "out.parquet"
    run_score(src, plan, out, quiet=True, run_date=DAY)
    frame = pl.read_parquet(out)
    frame.with_columns(pl.lit("allow").alias("decision")).write_parquet(out)
    problems = verify_run(out)
    assert problems and any("sha256" in p or "size" in p for p in problems)
    assert main(["verify", str(out)]) == 1


def test_rerun_with_changed_input_is_refused_until_restart(
    tmp_path: Path, plan: ScoringPlan
) -> None:
    src = tmp_path / "in.parquet"
    marketplace(1000).write_parquet(src)
    out = tmp_path / "out"
    layout_dir = f"{out}/"
    # leave an unfinished run behind: a checkpoint whose run differs
    (out).mkdir()
    (out / "_checkpoint.json").write_text(
        json.dumps({"run_id": "other", "batches": [], "frozen": []})
    )
    with pytest.raises(FakestopError, match=r"different inputs.*--restart"):
        run_score(src, plan, layout_dir, quiet=True, run_date=DAY)
    summary = run_score(src, plan, layout_dir, quiet=True, run_date=DAY, restart=True)
    assert summary.rows_out == 1000


def test_concurrent_runs_on_one_output_refuse(tmp_path: Path, plan: ScoringPlan) -> None:
    import fcntl

    src = tmp_path / "in.parquet"
    marketplace(100).write_parquet(src)
    lock = tmp_path / ".out.parquet.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(FakestopError, match="another fakestop run"):
            run_score(src, plan, tmp_path / "out.parquet", quiet=True, run_date=DAY)


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_output(tmp_path: Path, tiny_registry_dir: Path) -> None:
    src = tmp_path / "in.parquet"
    marketplace(60_000).write_parquet(src)
    args = [
        "score",
        str(src),
        "--registry",
        str(tiny_registry_dir),
        "--batch-size",
        "2000",
        "--run-date",
        DAY.isoformat(),
        "--quiet",
    ]
    ref = tmp_path / "ref.parquet"
    assert main([*args, "--out", str(ref)]) == 0

    out = tmp_path / "out.parquet"
    checkpoint = OutputLayout.of(out).checkpoint

    def committed() -> int:
        """Batches committed by either pass (evidence, then scores)."""
        try:
            state = json.loads(checkpoint.read_text())
            return len(state["evidence"]) + len(state["batches"])
        except (FileNotFoundError, ValueError):
            return 0

    rng = random.Random(4)
    kills = 0
    cmd = [sys.executable, "-m", "pipelines.cli", *args, "--out", str(out)]
    for _ in range(12):
        before = committed()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # killed at a random moment once this attempt has committed a batch: however fast
        # the machine, every attempt but the last is cut short and each makes progress
        deadline = time.monotonic() + 120
        while proc.poll() is None and committed() <= before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
            continue
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
        break
    else:
        done = subprocess.run(cmd, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
    assert kills >= 1, "the run finished before it could be killed; make it longer"
    assert pl.read_parquet(out).equals(pl.read_parquet(ref))
    assert sha(out) == sha(ref)
    assert verify_run(out) == []


def test_ledger_counts_strikes_once_and_freezes_at_three(tmp_path: Path, plan: ScoringPlan) -> None:
    db = tmp_path / "ledger.sqlite"
    src = tmp_path / "in.parquet"
    # seller A: two blatant fakes; seller B: honest
    listings(
        listing_id=["a1", "a2", "b1"],
        title=["Rolex Submariner", "Rolex Daytona", "Rolex Submariner"],
        price=[40.0, 45.0, 9000.0],
        brand=["Rolex"] * 3,
        category=["watches"] * 3,
        seller_id=["A", "A", "B"],
    ).write_parquet(src)
    for _ in range(2):  # the rerun of the same batch must not add strikes
        run_score(src, plan, tmp_path / "o1.parquet", quiet=True, ledger=db, run_date=DAY)
    with Ledger(db) as led:
        assert led.sellers(as_of=DAY).filter(pl.col("seller_id") == "A")["strikes"].item() == 2
    complaints = tmp_path / "c.csv"
    complaints.write_text(
        "seller_id,listing_id,brand,date\nA,a9,Gucci,2026-10-01\nA,a9,Gucci,2026-10-01\n"
    )
    assert main(["complaints", "add", str(complaints), "--ledger", str(db)]) == 0
    with Ledger(db) as led:
        s = led.sellers(as_of=DAY)
        a = s.filter(pl.col("seller_id") == "A")
        assert a["strikes"].item() == 3 and a["status"].item() == "frozen"
        assert (
            led.sellers(as_of=DAY + dt.timedelta(days=400))
            .filter(pl.col("seller_id") == "A")["status"]
            .item()
            == "active"
        )
    # next night: seller A's honest-looking listing is blocked because A is frozen
    src2 = tmp_path / "in2.parquet"
    listings(
        listing_id=["a3", "b2"],
        title=["Rolex Datejust", "Rolex Datejust"],
        price=[8000.0] * 2,
        brand=["Rolex"] * 2,
        category=["watches"] * 2,
        seller_id=["A", "B"],
    ).write_parquet(src2)
    run_score(src2, plan, tmp_path / "o2.parquet", quiet=True, ledger=db, run_date=DAY)
    res = pl.read_parquet(tmp_path / "o2.parquet")
    assert res["decision"].to_list() == ["block", "allow"]
    assert res["reasons"][0][0].startswith("seller A is frozen: 3 strikes")


def test_crash_between_batch_and_ledger_commit_stays_consistent(
    tmp_path: Path, plan: ScoringPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "ledger.sqlite"
    src = tmp_path / "in.parquet"
    marketplace(4000, sellers=40).write_parquet(src)
    ref_db = tmp_path / "ref.sqlite"
    run_score(
        src, plan, tmp_path / "ref.parquet", batch_size=500, quiet=True, ledger=ref_db, run_date=DAY
    )

    calls = {"n": 0}
    original = Ledger.record_blocks

    def crashing(self: Ledger, *a: object, **k: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("simulated crash after the batch was committed")
        return original(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "record_blocks", crashing)
    with pytest.raises(OSError, match="simulated"):
        run_score(
            src, plan, tmp_path / "out.parquet", batch_size=500, quiet=True, ledger=db, run_date=DAY
        )
    monkeypatch.setattr(Ledger, "record_blocks", original)
    run_score(
        src, plan, tmp_path / "out.parquet", batch_size=500, quiet=True, ledger=db, run_date=DAY
    )
    assert pl.read_parquet(tmp_path / "out.parquet").equals(
        pl.read_parquet(tmp_path / "ref.parquet")
    )
    with Ledger(db) as a, Ledger(ref_db) as b:
        assert a.sellers(as_of=DAY).equals(b.sellers(as_of=DAY))


def test_json_logs_are_one_object_per_line(tmp_path: Path, tiny_registry_dir: Path) -> None:
    src = tmp_path / "in.parquet"
    marketplace(900).write_parquet(src)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "score",
            str(src),
            "--registry",
            str(tiny_registry_dir),
            "--out",
            str(tmp_path / "o.parquet"),
            "--batch-size",
            "300",
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    # the first pass computes every batch's evidence, the second scores it
    assert [e["event"] for e in events] == ["batch"] * 6 + ["done"]
    assert [e["phase"] for e in events[:-1]] == ["evidence"] * 3 + ["score"] * 3
    assert events[2]["total_rows"] == events[-2]["total_rows"] == 900


@settings(max_examples=50, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "", " a", "é", "z9"]))),
        max_size=12,
    ),
    probe=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "", "x", "é"]))),
)
def test_seen_ids_equal_a_python_set(
    batches: list[list[str | None]], probe: list[str | None]
) -> None:
    from pipelines.run import SeenIds

    seen, naive = SeenIds(), set()
    for n, batch in enumerate(batches):
        ids = pl.Series("listing_id", batch, dtype=pl.String)
        got = seen.contains(ids).to_list()
        assert got == [i is not None and i in naive for i in batch]
        seen.add(ids, batch=n)
        naive |= {i for i in batch if i is not None}
    ids = pl.Series("listing_id", probe, dtype=pl.String)
    assert seen.contains(ids).to_list() == [i is not None and i in naive for i in probe]
    # runs stay few: each is more than twice the size of the next
    held = sum(run.height for run in seen.runs)
    assert len(seen.runs) <= max(1, held).bit_length()


class CollidingIds:
    """Every id hashes alike: lookups must still be exact."""

    @staticmethod
    def _hash(ids: pl.Series) -> pl.Series:
        return pl.Series(ids.name, [7] * ids.len(), dtype=pl.UInt64)


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "", "é", "z9"]))),
        max_size=8,
    ),
    release=st.booleans(),
)
def test_seen_ids_are_exact_when_hashes_collide_and_batches_are_read_back(
    batches: list[list[str | None]], release: bool
) -> None:
    from pipelines.run import SeenIds

    class Colliding(CollidingIds, SeenIds):
        pass

    stored: dict[int, pl.Series] = {}
    reads: list[int] = []

    def read_back(batch: int) -> pl.Series:
        reads.append(batch)
        return stored[batch]

    seen, naive = Colliding(batch_ids=read_back), set()
    for n, batch in enumerate(batches):
        ids = pl.Series("listing_id", batch, dtype=pl.String)
        assert seen.contains(ids).to_list() == [i is not None and i in naive for i in batch]
        seen.add(ids, batch=n)
        stored[n] = ids  # what the run's part holds: every id of the batch
        if release:
            seen.release(n)
        naive |= {i for i in batch if i is not None}
    if not release:
        assert reads == [], "ids held in memory were read back"


@pytest.mark.parametrize(("kind", "resumed"), [("part", 1), ("evidence", 0)])
def test_a_checkpoint_naming_a_missing_part_redoes_it(
    tmp_path: Path, plan: ScoringPlan, monkeypatch: pytest.MonkeyPatch, kind: str, resumed: int
) -> None:
    """A run cut short while its parts were removed: the batches from the first missing part
    on are done again (a missing evidence part: its batch's evidence, the run statistics and
    every batch scored with them), and the output equals an uninterrupted run's."""
    import pipelines.run as run

    src = tmp_path / "in.parquet"
    marketplace(3000).write_parquet(src)
    ref = tmp_path / "ref.parquet"
    run_score(src, plan, ref, batch_size=500, quiet=True, run_date=DAY)

    out = tmp_path / "out.parquet"
    writes: list[Path] = []
    for name in ("_write_evidence_atomic", "_write_parquet_atomic"):
        real_write = getattr(run, name)

        def crash_after_four(frame: pl.DataFrame, path: Path, real_write: Any = real_write) -> None:
            if len(writes) == 4:
                raise KeyboardInterrupt  # stands in for the process dying
            if path.name.startswith(kind):
                writes.append(path)
            real_write(frame, path)

        monkeypatch.setattr(run, name, crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        run_score(src, plan, out, batch_size=500, quiet=True, run_date=DAY)
    monkeypatch.undo()
    writes[1].unlink()
    summary = run_score(src, plan, out, batch_size=500, quiet=True, run_date=DAY)
    assert summary.resumed_batches == resumed
    assert sha(out) == sha(ref)
    assert verify_run(out) == []


def test_batches_finishing_out_of_order_are_committed_in_order(
    tmp_path: Path, plan: ScoringPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches are scored at once; when a later one finishes first, the output and the
    checkpoint still follow the input order, and ids repeated across batches are still
    quarantined in the later batch."""
    import pipelines.run as run

    frame = marketplace(3000)
    # an id of batch 0 repeated in batch 3
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 1700)
        .then(pl.lit(frame.item(10, "listing_id")))
        .otherwise(pl.col("listing_id"))
        .alias("listing_id")
    )
    src = tmp_path / "in.parquet"
    frame.write_parquet(src)
    ref = tmp_path / "ref.parquet"
    monkeypatch.setattr(run, "SCORING_THREADS", 1)
    run_score(src, plan, ref, batch_size=500, quiet=True, run_date=DAY)
    monkeypatch.undo()

    finished: dict[str, list[int]] = {"evidence_frame": [], "final_frame": []}

    def slow_even_batches(name: str) -> Any:
        real = getattr(run, name)

        def slow(batch: pl.DataFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
            first_row = int(batch.item(0, "__row"))
            if (first_row // 500) % 2 == 0:
                time.sleep(0.3)  # an even batch finishes after the odd one submitted after it
            out = real(batch, *args, **kwargs)
            finished[name].append(first_row // 500)
            return out

        return slow

    # both passes: the first computes each batch's evidence, the second scores it
    for name in finished:
        monkeypatch.setattr(run, name, slow_even_batches(name))
    out = tmp_path / "out.parquet"
    run_score(src, plan, out, batch_size=500, quiet=True, run_date=DAY)
    for order in finished.values():
        assert order != sorted(order), "the batches did not overlap"
    assert sha(out) == sha(ref)
    scores = pl.read_parquet(out)
    assert scores.filter(pl.col("listing_id") == frame.item(10, "listing_id")).get_column(
        "status"
    ).to_list() == ["ok", "quarantined"]
    assert verify_run(out) == []
