"""Faults during a run: a full disk, a read-only output directory, an input that disappears,
SIGTERM, and a second run on the same output.

Each must end in one clear line (exit code 2, or 143 for SIGTERM), leave no partial output or
temporary file, and a rerun of the same command must finish the job with exactly the output of
an uninterrupted run. (kill -9 and resume: tests/test_run.py.)
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow.parquet as pq
import pytest

import pipelines.run as run_module
from pipelines.cli import main
from pipelines.errors import FakestopError
from pipelines.ledger import Ledger
from pipelines.manifest import verify_run
from pipelines.registry import load_registry
from pipelines.run import OutputLayout, run_score
from pipelines.stages import ScoringPlan, evidence_frame
from tests.conftest import listings

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 11, 1)
BATCH = 200
BATCHES = 6
TITLES = ["Rolex Submariner", "Gucci Marmont bag", "coffee mug", "Nike shoes", "desk lamp"]


def marketplace(n: int, offset: int = 0) -> pl.DataFrame:
    return listings(
        listing_id=[f"id{offset + i}" for i in range(n)],
        title=[TITLES[i % 5] for i in range(n)],
        price=[float([40, 1800, 9, 110, 25][i % 5] * (1 + (i % 13) / 10)) for i in range(n)],
        brand=[["Rolex", "Gucci", None, "Nike", None][i % 5] for i in range(n)],
        seller_id=[f"s{i % 40}" for i in range(n)],
    )


@dataclass
class Job:
    """An input, the command that scores it, and the output of an uninterrupted run."""

    src: Path
    registry: Path
    reference: pl.DataFrame

    def argv(self, out: Path | str) -> list[str]:
        return [
            "score", str(self.src), "--registry", str(self.registry), "--out", str(out),
            "--batch-size", str(BATCH), "--run-date", DAY.isoformat(), "--quiet",
        ]  # fmt: skip


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, tiny_registry_dir: Path) -> Job:
    root = tmp_path_factory.mktemp("faults")
    src = root / "in.parquet"
    marketplace(BATCH * BATCHES).write_parquet(src)
    ref = root / "ref.parquet"
    plan = ScoringPlan.build(load_registry(tiny_registry_dir))
    run_score(src, plan, ref, batch_size=BATCH, quiet=True, run_date=DAY)
    return Job(src, tiny_registry_dir, pl.read_parquet(ref))


def leftovers(directory: Path) -> list[str]:
    """Temporary files and locks a run must never leave behind."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.name.endswith((".tmp", ".lock"))
    )


def one_line(err: str, *wanted: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for text in wanted:
        assert text in lines[0], lines[0]
    return lines[0]


def committed(layout: OutputLayout, kind: str = "batches") -> int:
    """Batches the checkpoint records as scored (``kind`` "batches"), or as having their
    evidence computed by the first pass ("evidence"); 0 before the first commit."""
    try:
        return len(json.loads(layout.checkpoint.read_text())[kind])
    except (FileNotFoundError, ValueError):
        return 0


def check_finished(job: Job, out: Path) -> None:
    assert pl.read_parquet(out).equals(job.reference)
    assert verify_run(out) == []
    assert leftovers(out.parent) == []


# ---------------------------------------------------------------- disk full


@pytest.fixture
def write_fails(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], None]:
    """``write_fails(where, n)``: the n-th write of a batch part (evidence parts first, then
    the scored parts: "part") or of the merged output ("merge") runs out of space halfway,
    leaving a partial temporary file behind it."""

    def arm(where: str, n: int) -> None:
        calls = {"n": 0}
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if where == "part":
            original = pl.DataFrame.write_parquet

            def part(self: pl.DataFrame, file: Any, *a: Any, **k: Any) -> None:
                calls["n"] += 1
                if calls["n"] == n:
                    if hasattr(file, "write"):
                        file.write(b"PAR1 half a part")
                    else:
                        Path(file).write_bytes(b"PAR1 half a part")
                    raise full
                original(self, file, *a, **k)

            monkeypatch.setattr(pl.DataFrame, "write_parquet", part)
        else:
            original_join = run_module.concat_parquet

            def merge(parts: list[Path], out: BinaryIO) -> int:
                calls["n"] += 1
                if calls["n"] == n:
                    out.write(b"PAR1 half a file")
                    raise full
                return original_join(parts, out)

            monkeypatch.setattr(run_module, "concat_parquet", merge)

    return arm


@pytest.mark.parametrize(
    ("where", "n", "names"),
    [
        ("part", 4, "evidence-00003.parquet"),
        ("part", BATCHES + 4, "part-00003.parquet"),
        ("merge", 1, "out.parquet"),
    ],
)
def test_disk_full_is_one_line_and_a_rerun_resumes(
    job: Job,
    tmp_path: Path,
    write_fails: Callable[[str, int], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    n: int,
    names: str,
) -> None:
    out = tmp_path / "out.parquet"
    write_fails(where, n)
    assert main(job.argv(out)) == 2
    one_line(capsys.readouterr().err, names, "cannot write (No space left on device)")
    assert not out.exists()
    assert leftovers(tmp_path) == []
    layout = OutputLayout.of(out)
    if names.startswith("evidence"):
        assert committed(layout, "evidence") == n - 1 and committed(layout) == 0
    else:
        assert committed(layout, "evidence") == BATCHES
        assert committed(layout) == (n - 1 - BATCHES if where == "part" else BATCHES)
    monkeypatch.undo()
    assert main(job.argv(out)) == 0
    check_finished(job, out)
    # outputs get the permissions of any new file, not the 0600 of a temporary one
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A tmpfs of a given size in KiB (root only): a real disk that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        where = tmp_path / "disk"
        if mounted:
            opts = f"remount,size={kib}k"
        else:
            where.mkdir()
            opts = f"size={kib}k"
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    if mounted:
        subprocess.run(["umount", str(mounted[0])], check=True)


def test_a_real_full_disk_fails_cleanly_and_a_rerun_resumes(
    job: Job, tmp_path: Path, tiny_disk: Callable[[int], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # room for the six evidence parts and about three of the six scored parts (tmpfs counts
    # whole 4 KiB pages): the run stops in its second pass, at whichever write (a part or the
    # checkpoint) finds the disk full
    sample = tmp_path / "sample.parquet"
    job.reference.head(BATCH).write_parquet(sample)
    part_kib = 4 * (sample.stat().st_size // 4096 + 1)
    plan = ScoringPlan.build(load_registry(job.registry))
    evidence = tmp_path / "evidence.parquet"
    run_module._write_evidence_atomic(
        evidence_frame(pl.read_parquet(job.src).head(BATCH), plan), evidence
    )
    evidence_kib = 4 * (evidence.stat().st_size // 4096 + 1)
    disk = tiny_disk(BATCHES * evidence_kib + 3 * part_kib + 12)
    out = disk / "out.parquet"
    assert main(job.argv(out)) == 2
    one_line(capsys.readouterr().err, f"{disk}/.out.parquet.", "No space left on device")
    assert committed(OutputLayout.of(out), "evidence") + committed(OutputLayout.of(out)) > 0
    assert not out.exists()
    assert leftovers(disk) == []
    tiny_disk(64 * 1024)
    assert main(job.argv(out)) == 0
    check_finished(job, out)


def test_a_full_ledger_is_one_line_and_a_rerun_resumes(
    job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "strikes.sqlite"
    out = tmp_path / "out.parquet"
    original = Ledger.record_blocks
    calls = {"n": 0}

    def full(self: Ledger, *a: Any, **k: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, *a, **k)

    monkeypatch.setattr(Ledger, "record_blocks", full)
    assert main([*job.argv(out), "--ledger", str(db)]) == 2
    one_line(capsys.readouterr().err, f"{db}: cannot record strikes (database or disk is full)")
    assert committed(OutputLayout.of(out)) == 1
    monkeypatch.undo()
    assert main([*job.argv(out), "--ledger", str(db)]) == 0
    check_finished(job, out)
    # one strike per blocked listing of a seller, none lost and none counted twice
    blocked = job.reference.filter(
        (pl.col("decision") == "block") & pl.col("seller_id").is_not_null()
    )
    with Ledger(db) as ledger:
        assert ledger.sellers(as_of=DAY)["strikes"].sum() == blocked.height > 0


# ---------------------------------------------------------------- read-only output directory


def test_read_only_output_directory_is_refused_before_any_work(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o555)
    out = target / "out.parquet"
    argv = [sys.executable, "-m", "pipelines.cli", *job.argv(out)]
    if os.geteuid() == 0:
        # root writes anywhere: take away the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=120)
        assert proc.returncode == 2, proc.stderr
        one_line(proc.stderr, f"{target}: cannot write (Permission denied)")
        assert list(target.iterdir()) == []
    finally:
        target.chmod(0o755)
    assert main(job.argv(out)) == 0
    check_finished(job, out)


# ---------------------------------------------------------------- inputs that go away


@pytest.fixture
def after_commit(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, Callable[[], None]], None]:
    """``after_commit(n, action)``: run ``action`` once the n-th part (of evidence, then of
    scores) is committed."""

    def arm(n: int, action: Callable[[], None]) -> None:
        calls = {"n": 0}
        for name in ("_write_evidence_atomic", "_write_parquet_atomic"):
            original = getattr(run_module, name)

            def write(frame: pl.DataFrame, path: Path, original: Any = original) -> None:
                original(frame, path)
                calls["n"] += 1
                if calls["n"] == n:
                    action()

            monkeypatch.setattr(run_module, name, write)

    return arm


def test_an_input_part_deleted_mid_run_is_named_and_a_rerun_resumes(
    tmp_path: Path,
    tiny_registry_dir: Path,
    after_commit: Callable[[int, Callable[[], None]], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parts = tmp_path / "listings"
    parts.mkdir()
    for i in range(3):
        marketplace(2 * BATCH, offset=i * 2 * BATCH).write_parquet(parts / f"day-{i}.parquet")
    argv = ["score", str(parts), "--registry", str(tiny_registry_dir), "--batch-size", str(BATCH),
            "--run-date", DAY.isoformat(), "--quiet", "--out"]  # fmt: skip
    assert main([*argv, str(tmp_path / "ref.parquet")]) == 0
    last = parts / "day-2.parquet"
    kept = last.read_bytes()
    out = tmp_path / "out.parquet"
    after_commit(1, last.unlink)
    assert main([*argv, str(out)]) == 2
    one_line(capsys.readouterr().err, str(last), "No such file")
    # the batches read before it have their evidence committed
    assert not out.exists() and committed(OutputLayout.of(out), "evidence") == 4
    monkeypatch.undo()
    last.write_bytes(kept)
    assert main([*argv, str(out)]) == 0
    assert pl.read_parquet(out).equals(pl.read_parquet(tmp_path / "ref.parquet"))


def test_a_file_deleted_while_it_is_read_is_still_read_whole(
    job: Job, tmp_path: Path, after_commit: Callable[[int, Callable[[], None]], None]
) -> None:
    # the run holds the file open: deleting its name must not cut the output short
    src = tmp_path / "in.parquet"
    shutil.copy(job.src, src)
    after_commit(1, src.unlink)
    out = tmp_path / "out.parquet"
    plan = ScoringPlan.build(load_registry(job.registry))
    summary = run_score(src, plan, out, batch_size=BATCH, quiet=True, run_date=DAY)
    assert summary.rows_in == summary.rows_out == job.reference.height
    assert pl.read_parquet(out).equals(job.reference)


# ---------------------------------------------------------------- signals and a second run


def start(job: Job, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *job.argv(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


def wait_for_commit(proc: subprocess.Popen[str], layout: OutputLayout) -> None:
    deadline = time.monotonic() + 120
    while committed(layout) < 1:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before committing a batch: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no batch committed within 120 s")
        time.sleep(0.005)


def test_sigterm_stops_after_a_committed_batch_and_a_rerun_resumes(
    job: Job, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    layout = OutputLayout.of(out)
    proc = start(job, out)
    wait_for_commit(proc, layout)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    line = one_line(err, "stopped by SIGTERM", "rerun the same command to resume")
    done = committed(layout)
    assert 1 <= done < BATCHES, line
    assert f"{done} batch(es), {done * BATCH:,} rows committed" in line
    # every batch the checkpoint names is there, whole; nothing else was left
    for i in range(done):
        assert pq.ParquetFile(layout.part(i)).metadata.num_rows == BATCH
    assert not layout.part(done).exists() and not out.exists()
    assert leftovers(tmp_path) == []
    assert main(job.argv(out)) == 0
    check_finished(job, out)


def test_a_second_run_on_the_same_output_is_refused(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.parquet"
    first = start(job, out)
    wait_for_commit(first, OutputLayout.of(out))
    # hold the first run (another process) still, lock taken, while this process tries
    first.send_signal(signal.SIGSTOP)
    try:
        assert main(job.argv(out)) == 2
    finally:
        first.send_signal(signal.SIGCONT)
    one_line(capsys.readouterr().err, f"{out}: another fakestop run is writing this output")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    check_finished(job, out)


def test_a_lock_file_removed_under_a_run_does_not_let_a_second_run_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the run before us removes the lock file just after we opened it: the inode we lock is
    # then no longer the file at the path, and a later run would lock a fresh one
    lock = tmp_path / ".out.parquet.lock"
    out = tmp_path / "out.parquet"
    real_flock = fcntl.flock
    removed = {"done": False}

    def flock(fd: int, op: int) -> None:
        if not removed["done"]:
            removed["done"] = True
            lock.unlink()
        real_flock(fd, op)

    monkeypatch.setattr(run_module.fcntl, "flock", flock)
    with run_module._exclusive(lock, out):
        with (
            pytest.raises(FakestopError, match="another fakestop run"),
            run_module._exclusive(lock, out),
        ):
            pass
        assert lock.exists()
    assert not lock.exists()
