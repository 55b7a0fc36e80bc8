"""train / bench / score --model / registry build / demo through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from filters.image import CACHE_FILE
from pipelines.cli import main
from pipelines.registry import default_registry_dir, load_registry
from seeds.images import attach_images, product_photo, sample_registry
from seeds.marketplace import generate_marketplace


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("market")
    base = load_registry(default_registry_dir())
    reg_dir = sample_registry(base, root / "registry", base.brand_names[:15], seed=1)
    reg = load_registry(reg_dir)
    frame = generate_marketplace(reg, 2500, seed=1, true_brand=True)
    frame = attach_images(frame, reg, root / "images", seed=1).drop("true_brand")
    frame.head(1500).write_parquet(root / "train.parquet")
    frame.slice(1500).write_parquet(root / "test.parquet")
    return {"root": root, "registry": reg_dir, "images": root / "images"}


def test_registry_build_caches_and_notices_changes(
    market: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reg = market["registry"]
    assert main(["registry", "build", str(reg)]) == 0
    assert (reg / CACHE_FILE).is_file()
    capsys.readouterr()
    assert main(["registry", "build", str(reg)]) == 0
    assert "0 hashed" in capsys.readouterr().out
    # a replaced photo is rehashed, the rest reused
    first = sorted((reg / "official").iterdir())[0]
    product_photo(999).save(first, "JPEG")
    assert main(["registry", "build", str(reg)]) == 0
    assert "1 hashed" in capsys.readouterr().out


def test_train_score_and_bench(market: dict[str, Path], tmp_path: Path) -> None:
    reg, images, root = market["registry"], market["images"], market["root"]
    model = tmp_path / "model.skops"
    common = ["--registry", str(reg), "--images", str(images)]
    assert main(["train", str(root / "train.parquet"), *common, "--out", str(model)]) == 0
    card = json.loads((tmp_path / "model.skops.card.json").read_text())
    assert card["registry_fingerprint"] == load_registry(reg).fingerprint
    out = tmp_path / "scores.parquet"
    assert main(["score", str(root / "test.parquet"), *common, "--model", str(model),
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    scores = pl.read_parquet(out)
    assert scores.height == 1000
    blocked = scores.filter(pl.col("decision") == "block")
    assert blocked.height > 0 and blocked.get_column("label").mean() >= 0.97  # type: ignore[operator]
    assert all(len(r) >= 1 for r in blocked.get_column("reasons").to_list())
    manifest = json.loads(Path(str(out) + ".manifest.json").read_text())
    assert manifest["model_card_sha256"]

    report = tmp_path / "report"
    assert main(["bench", str(root / "test.parquet"), *common, "--model", str(model),
                 "--report", str(report)]) == 0  # fmt: skip
    metrics = json.loads((report / "metrics.json").read_text())
    names = set(metrics["scorers"])
    assert {"text", "price", "image", "mean of filters", "learned fusion"} <= names
    assert metrics["scorers"]["learned fusion"]["pr_auc"] >= 0.97
    assert (report / "report.html").stat().st_size > 10_000


def test_bench_cross_validates_without_a_model(market: dict[str, Path], tmp_path: Path) -> None:
    reg, root = market["registry"], market["root"]
    report = tmp_path / "cv"
    assert main(["bench", str(root / "train.parquet"), "--registry", str(reg),
                 "--report", str(report)]) == 0  # fmt: skip
    metrics = json.loads((report / "metrics.json").read_text())
    assert "cross-validated" in metrics["learned_fusion"]
    assert {r["kind"] for r in metrics["by_kind"]} >= {"fake_typo", "genuine_used"}


def test_model_from_another_registry_fails_cleanly(
    market: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, root = market["registry"], market["root"]
    model = tmp_path / "m.skops"
    assert main(["train", str(root / "train.parquet"), "--registry", str(reg),
                 "--out", str(model)]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["score", str(root / "test.parquet"), "--registry", str(default_registry_dir()),
                 "--model", str(model), "--out", str(tmp_path / "o.parquet")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "another registry" in err and "Traceback" not in err


def test_train_without_labels_fails_cleanly(
    market: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = pl.read_parquet(market["root"] / "test.parquet").drop("label")
    path = tmp_path / "unlabelled.parquet"
    src.write_parquet(path)
    code = main(["train", str(path), "--registry", str(market["registry"]),
                 "--out", str(tmp_path / "m.skops")])  # fmt: skip
    assert code == 2
    assert "no label column 'label'" in capsys.readouterr().err


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--n", "1500", "--quiet"]) == 0
    for name in (
        "scores.parquet",
        "model.skops",
        "report/report.html",
        "report/review.html",
        "registry/brands.csv",
    ):
        assert (tmp_path / "demo" / name).exists(), name
    scores = pl.read_parquet(tmp_path / "demo" / "scores.parquet")
    assert scores.height == 660  # 40% of 1,500 + 150 listings a photo decides
    assert scores.get_column("image_score").drop_nulls().len() > 0
