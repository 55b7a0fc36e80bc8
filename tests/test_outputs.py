"""Outputs never destroy inputs; the output's format follows its extension; ``verify`` checks
the files it is given."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.errors import FakestopError
from pipelines.manifest import verify_run
from pipelines.registry import Registry
from pipelines.run import run_score
from pipelines.stages import ScoringPlan
from tests.conftest import listings

DAY = dt.date(2026, 11, 1)


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def sample(n: int = 40) -> pl.DataFrame:
    titles = ["Rolex Submariner replica AAA", "Gucci bag", "coffee mug", 'lamp "retro", 1970']
    return listings(
        listing_id=[f"id{i}" for i in range(n)],
        title=[titles[i % 4] for i in range(n)],
        price=[[40.0, 1800.0, 9.0, 25.0][i % 4] for i in range(n)],
        seller_id=[f"s{i % 5}" for i in range(n)],
    )


@pytest.fixture(scope="module")
def plan(tiny_registry: Registry) -> ScoringPlan:
    return ScoringPlan.build(tiny_registry)


def score_cli(src: Path | str, out: Path | str, registry: Path, *extra: str) -> int:
    return main(
        ["score", str(src), "--registry", str(registry), "--out", str(out), "--quiet", *extra]
    )


# ---------------------------------------------------------------- outputs never destroy inputs


def test_out_equal_to_the_input_file_is_refused_and_the_input_kept(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "same.parquet"
    sample().write_parquet(src)
    before = digest(src)
    assert score_cli(src, src, tiny_registry_dir) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is the input file" in err and "overwritten" in err
    assert digest(src) == before
    # through a symbolic link or another spelling of the same path: the same file
    link = tmp_path / "link.parquet"
    link.symlink_to(src)
    assert score_cli(src, link, tiny_registry_dir) == 2
    assert score_cli(src, f"{tmp_path}/./same.parquet", tiny_registry_dir) == 2
    assert digest(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.parquet", "same.parquet"]


def test_out_inside_the_input_directory_is_refused(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sample().write_parquet(data / "a.parquet")
    for out in (f"{data}/scores/", f"{data}/scores.parquet", f"{data}/deep/er/scores.csv"):
        assert score_cli(data, out, tiny_registry_dir) == 2
        assert "inside the input directory" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["a.parquet"]
    # beside it is fine
    assert score_cli(data, tmp_path / "scores.parquet", tiny_registry_dir) == 0


def test_out_directory_holding_an_input_file_is_refused(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "part-00000.parquet"
    sample().write_parquet(src)
    before = digest(src)
    assert score_cli(src, f"{tmp_path}/", tiny_registry_dir) == 2
    assert "holds the input file" in capsys.readouterr().err
    assert digest(src) == before


def test_out_matched_by_the_input_glob_is_refused(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sample().write_parquet(data / "a.parquet")
    pattern = f"{data}/*.parquet"
    assert score_cli(pattern, data / "scores.parquet", tiny_registry_dir) == 2
    assert "matches the input pattern" in capsys.readouterr().err
    assert score_cli(f"{tmp_path}/**/*.parquet", f"{data}/scores/", tiny_registry_dir) == 2
    # a file the glob does not match may live beside the inputs
    assert score_cli(pattern, data / "scores.csv", tiny_registry_dir) == 0
    assert score_cli(pattern, f"{data}/scores/", tiny_registry_dir) == 0
    # the run statistics left beside each output are not read by the glob either
    assert score_cli(pattern, data / "again.csv", tiny_registry_dir) == 0
    assert sorted(p.name for p in data.iterdir() if not p.name.endswith(".json")) == [
        "a.parquet",
        "again.csv",
        "again.csv.stats",
        "scores",
        "scores.csv",
        "scores.csv.stats",
        "scores.stats",
    ]
    # an output whose statistics a glob would read is refused
    other = tmp_path / "other"
    other.mkdir()
    sample().write_parquet(other / "a.parquet")
    capsys.readouterr()
    assert score_cli(f"{other}/a*", f"{other}/all/", tiny_registry_dir) == 2
    assert "matches the input pattern" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["a.parquet"]


@pytest.mark.parametrize("out", ["scores.txt", "scores.xlsx", "scores", "scores.parquet.bak"])
def test_an_unknown_output_extension_is_refused_before_any_work(
    tmp_path: Path, tiny_registry_dir: Path, out: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.parquet"
    sample().write_parquet(src)
    assert score_cli(src, tmp_path / out, tiny_registry_dir) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected OUT.parquet, OUT.csv" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


# ---------------------------------------------------------------- formats


def test_csv_output_holds_the_same_rows_with_lists_as_json(
    tmp_path: Path, plan: ScoringPlan
) -> None:
    src = tmp_path / "in.parquet"
    sample().write_parquet(src)
    ref = pl.read_parquet(run_score(src, plan, tmp_path / "ref.parquet", quiet=True).output)
    out = tmp_path / "scores.csv"
    run_score(src, plan, out, batch_size=7, quiet=True, run_date=DAY)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == ref.height
    assert list(rows[0]) == ref.columns
    for got, want in zip(rows, ref.iter_rows(named=True), strict=True):
        assert got["listing_id"] == want["listing_id"]
        assert got["title"] == want["title"]
        assert got["decision"] == (want["decision"] or "")
        assert json.loads(got["reasons"]) == want["reasons"]
        assert float(got["risk"]) == pytest.approx(want["risk"])
    assert any(len(json.loads(r["reasons"])) > 1 for r in rows)
    assert verify_run(out) == []


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl"])
def test_ndjson_output_holds_the_same_rows(tmp_path: Path, plan: ScoringPlan, suffix: str) -> None:
    src = tmp_path / "in.parquet"
    sample().write_parquet(src)
    ref = pl.read_parquet(run_score(src, plan, tmp_path / "ref.parquet", quiet=True).output)
    out = tmp_path / f"scores{suffix}"
    run_score(src, plan, out, batch_size=7, quiet=True)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == ref.to_dicts()
    assert verify_run(out) == []


def test_nested_and_binary_input_columns_survive_a_text_output(
    tmp_path: Path, plan: ScoringPlan
) -> None:
    src = tmp_path / "in.parquet"
    frame = sample(4).with_columns(
        pl.Series("shipping", [{"from": "CN", "days": [3, 9]}] * 4),
        pl.Series("thumb", [b"\x89PNG\xff", None, b"", b"x"]),
    )
    frame.write_parquet(src)
    run_score(src, plan, tmp_path / "o.csv", quiet=True)
    run_score(src, plan, tmp_path / "o.ndjson", quiet=True)
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert json.loads(rows[0]["shipping"]) == {"from": "CN", "days": [3, 9]}
    assert rows[0]["thumb"] == "iVBOR/8="  # base64
    nd = [json.loads(line) for line in (tmp_path / "o.ndjson").read_text().splitlines()]
    assert nd[0]["shipping"] == {"from": "CN", "days": [3, 9]}
    assert nd[0]["thumb"] == "iVBOR/8=" and nd[1]["thumb"] is None


# ---------------------------------------------------------------- verify checks what it is given


def _run(tmp_path: Path, plan: ScoringPlan, out: str) -> Path:
    src = tmp_path / "in.parquet"
    sample().write_parquet(src)
    run_score(src, plan, f"{tmp_path}/{out}", batch_size=9, quiet=True, run_date=DAY)
    return tmp_path / out.rstrip("/")


def _all_allowed(path: Path) -> None:
    frame = pl.read_parquet(path)
    frame.with_columns(
        pl.when(pl.col("decision").is_not_null()).then(pl.lit("allow")).alias("decision")
    ).write_parquet(path)


def test_verify_checks_a_copy_not_the_original(tmp_path: Path, plan: ScoringPlan) -> None:
    out = _run(tmp_path, plan, "scores.parquet")
    copy = tmp_path / "copy.parquet"
    shutil.copy(out, copy)
    shutil.copy(f"{out}.manifest.json", f"{copy}.manifest.json")
    assert verify_run(copy) == []
    _all_allowed(copy)
    problems = verify_run(copy)
    assert problems and all(str(copy) in p for p in problems)
    assert verify_run(out) == []
    assert main(["verify", str(copy)]) == 1


def test_verify_checks_a_copied_directory_of_parts(tmp_path: Path, plan: ScoringPlan) -> None:
    out = _run(tmp_path, plan, "scores/")
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(out, copy)
    shutil.copy(f"{out}.manifest.json", f"{copy}.manifest.json")
    assert verify_run(f"{copy}/") == [] and verify_run(copy) == []
    _all_allowed(copy / "part-00001.parquet")
    assert any("part-00001" in p and str(copy) in p for p in verify_run(copy))
    (copy / "part-00002.parquet").unlink()
    assert any("part-00002.parquet: output file is missing" in p for p in verify_run(copy))
    assert verify_run(out) == []


def test_verify_a_moved_output_from_another_directory(
    tmp_path: Path, plan: ScoringPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    monkeypatch.chdir(first)
    src = first / "in.csv"
    sample().write_csv(src)
    run_score("in.csv", plan, "scores.csv", quiet=True, run_date=DAY)
    manifest = json.loads((first / "scores.csv.manifest.json").read_text())
    assert manifest["output"] == {"path": "scores.csv", "format": "csv"}
    assert manifest["outputs"][0]["path"] == "scores.csv"
    assert manifest["inputs"][0]["path"] == "in.csv"
    moved = tmp_path / "archive" / "2026"
    moved.mkdir(parents=True)
    for name in ("in.csv", "scores.csv", "scores.csv.manifest.json"):
        shutil.move(first / name, moved / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert verify_run(os.path.relpath(moved / "scores.csv")) == []
    assert main(["verify", str(moved / "scores.csv")]) == 0
    # the input, next to the manifest again, is checked too
    (moved / "in.csv").write_text("listing_id,title,price\n")
    assert any("input changed" in p for p in verify_run(moved / "scores.csv"))


def test_verify_catches_a_tampered_csv(tmp_path: Path, plan: ScoringPlan) -> None:
    out = _run(tmp_path, plan, "scores.csv")
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace(",block,", ",allow,"), encoding="utf-8")
    assert any("sha256 differs" in p for p in verify_run(out))


def test_verify_without_a_manifest_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FakestopError, match="cannot read the run manifest"):
        verify_run(tmp_path / "nothing.parquet")
