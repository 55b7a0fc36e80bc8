"""Learned fusion: estimator contract, calibration, thresholds, safe persistence, bench, report."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.features import FEATURES, feature_frame
from models.fusion import FusionModel, LearnedFusion, train
from models.persist import FORMAT_VERSION, card_path, load_model, save_model
from models.report import bench, write_report
from models.thresholds import NEVER, pick_block_threshold, pick_review_threshold
from pipelines.errors import ModelError


@parametrize_with_checks([FusionModel(cv=2, max_iter=20, random_state=0)])
def test_sklearn_estimator_checks(estimator: FusionModel, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features whose true positive probability is a known logistic function."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    p = 1.0 / (1.0 + np.exp(-(2.0 * X[:, 0] - 1.5 * X[:, 1])))
    y = (rng.random(n) < p).astype(np.int64)
    X[rng.random(n) < 0.1, 2] = np.nan  # missing values are allowed
    return X, y


def test_probabilities_are_calibrated() -> None:
    X, y = synthetic(6000)
    Xt, yt = synthetic(4000, seed=1)
    proba = FusionModel(random_state=0).fit(X, y).predict_proba(Xt)[:, 1]
    # in each probability decile the observed positive rate is close to the prediction
    bins = np.digitize(proba, np.linspace(0, 1, 11)[1:-1])
    for b in np.unique(bins):
        mask = bins == b
        if mask.sum() >= 100:
            assert abs(proba[mask].mean() - yt[mask].mean()) < 0.08


def test_monotone_price_ratio_never_lowers_risk() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    X = np.full((n, len(FEATURES)), np.nan)
    ratio = rng.uniform(-4, 1, n)
    j = FEATURES.index("price_log_ratio")
    X[:, j] = ratio
    y = ((ratio < -2) ^ (rng.random(n) < 0.1)).astype(np.int64)
    model = FusionModel(feature_names=FEATURES, random_state=0).fit(X, y)
    grid = np.full((50, len(FEATURES)), np.nan)
    grid[:, j] = np.linspace(-4, 1, 50)
    risk = model.predict_proba(grid)[:, 1]
    assert np.all(np.diff(risk) <= 1e-12), "a higher price ratio raised the risk"


def test_block_threshold_reaches_target_precision() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(20_000) < 0.3).astype(np.int64)
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.15), 0, 1)
    t = pick_block_threshold(y, p, target_precision=0.99)
    flagged = p >= t
    assert (y[flagged] == 1).mean() >= 0.99
    # the lowest such threshold: one notch lower misses the target
    lower = np.sort(np.unique(p[p < t]))[-1]
    assert (y[p >= lower] == 1).mean() < 0.99


def test_block_threshold_never_when_unreachable() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([0.9, 0.9, 0.1, 0.1])
    assert pick_block_threshold(y, p) == NEVER


def test_review_threshold_respects_budget_below_block() -> None:
    p = np.linspace(0, 1, 1001)
    block = 0.9
    t = pick_review_threshold(p, share=0.05, block=block)
    band = (p >= t) & (p < block)
    assert band.sum() <= 0.05 * len(p)
    assert band.sum() >= 0.05 * len(p) - 1
    assert t <= block


def scored_frame(n: int, seed: int) -> pl.DataFrame:
    """A frame of filter evidence such as the scoring chain produces, labelled."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int8)
    return pl.DataFrame(
        {
            "listing_id": [f"l{i}" for i in range(n)],
            "title": ["x"] * n,
            "seller_id": [f"s{i % 50}" for i in range(n)],
            "condition": rng.choice(["new", "used"], n),
            "text_score": np.clip(rng.normal(0.2 + 0.6 * y, 0.2), 0, 1),
            "price_score": [
                None if m else float(v)
                for m, v in zip(
                    rng.random(n) < 0.2,
                    np.clip(rng.normal(0.2 + 0.5 * y, 0.25), 0, 1),
                    strict=True,
                )
            ],
            # a typo for most fakes and a few genuine listings: a perfect separator would
            # collapse the calibration, which training refuses
            "text_match": [
                "typo" if (v and r < 0.9) or (not v and r < 0.05) else None
                for v, r in zip(y, rng.random(n), strict=True)
            ],
            "price_ratio": np.exp(rng.normal(-0.2 - 1.5 * y, 0.4)),
            "label": y,
        }
    )


@pytest.fixture(scope="module")
def fusion() -> LearnedFusion:
    return train(scored_frame(1500, 0), registry_fingerprint="reg-a", seed=0, folds=3)


def test_train_records_card_and_thresholds(fusion: LearnedFusion) -> None:
    card = fusion.card
    assert card["features"] == list(FEATURES)
    assert card["class_balance"]["counterfeit"] + card["class_balance"]["genuine"] == 1500
    assert 0.0 <= fusion.thresholds.review <= fusion.thresholds.block <= 1.0
    assert card["metrics"]["pr_auc"] > 0.9
    assert len(card["training_data_sha256"]) == 64


def test_missing_features_stay_missing() -> None:
    lf = pl.LazyFrame({"text_score": [0.5, None], "price_ratio": [0.5, None]})
    out = feature_frame(lf).collect()
    assert out.get_column("text_score").to_list() == [0.5, None]
    assert out.get_column("price_log_ratio").null_count() == 1
    assert out.get_column("image_score").null_count() == 2


def test_round_trip_gives_identical_risks(fusion: LearnedFusion, tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    save_model(fusion, path)
    loaded = load_model(path, registry_fingerprint="reg-a")
    frame = scored_frame(300, 7)
    np.testing.assert_array_equal(loaded.predict(frame), fusion.predict(frame))
    assert loaded.thresholds == fusion.thresholds
    card = json.loads(card_path(path).read_text())
    assert card["libraries"]["scikit-learn"] and card["model_sha256"]


def test_model_from_another_registry_is_refused(fusion: LearnedFusion, tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    save_model(fusion, path)
    with pytest.raises(ModelError, match="another registry"):
        load_model(path, registry_fingerprint="reg-b")


def test_tampered_model_is_refused(fusion: LearnedFusion, tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    save_model(fusion, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its model card"):
        load_model(path)


class Payload:
    """A type no fusion model contains; building it would leave a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, str]) -> None:
        Path(state["marker"]).write_text("executed")
        self.__dict__.update(state)


def _card_for(path: Path) -> None:
    card = {
        "format": "fakestop-fusion",
        "format_version": FORMAT_VERSION,
        "features": list(FEATURES),
        "thresholds": {"block": 0.9, "review": 0.5},
        "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    card_path(path).write_text(json.dumps(card))


def test_model_with_foreign_types_is_refused_before_loading(tmp_path: Path) -> None:
    # a valid skops file whose card matches it, but asking to build an arbitrary type
    path = tmp_path / "m.skops"
    marker = tmp_path / "executed"
    sio.dump(Payload(str(marker)), path)
    _card_for(path)
    with pytest.raises(ModelError, match="types a fusion model never has"):
        load_model(path)
    assert not marker.exists(), "the payload ran"


def test_model_of_another_estimator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    X, y = synthetic(200)
    sio.dump(LogisticRegression().fit(np.nan_to_num(X), y), path)
    _card_for(path)
    with pytest.raises(ModelError, match="not a fusion model"):
        load_model(path)


def test_file_without_card_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "m.skops"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ModelError, match="not a fakestop model"):
        load_model(path)


def test_bench_numbers_equal_sklearn() -> None:
    frame = scored_frame(800, 4)
    frame = frame.with_columns(
        ((pl.col("text_score") + pl.col("price_score").fill_null(0)) / 2).alias("risk")
    )
    metrics = bench(frame, scores={"text_score": "text", "risk": "fused", "max": "max"})
    y = frame.get_column("label").to_numpy()
    for col, name in (("text_score", "text"), ("risk", "fused")):
        s = frame.get_column(col).to_numpy()
        assert metrics["scorers"][name]["pr_auc"] == pytest.approx(average_precision_score(y, s))
        p, r, _ = precision_recall_curve(y, s)
        expected = p[r >= 0.9].max()
        assert metrics["scorers"][name]["precision_at_recall"]["0.9"] == pytest.approx(expected)
    mx = np.fmax(
        frame.get_column("text_score").to_numpy(),
        frame.get_column("price_score").fill_null(0).to_numpy(),
    )
    assert metrics["scorers"]["max"]["pr_auc"] == pytest.approx(average_precision_score(y, mx))


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag == "table":
            self.tables += 1


def test_report_renders_self_contained(tmp_path: Path) -> None:
    frame = scored_frame(400, 5).with_columns(pl.col("text_score").alias("risk"))
    metrics = bench(frame, scores={"text_score": "text", "risk": "fused"})
    paths = write_report(metrics, frame, tmp_path)
    parser = _Images()
    parser.feed(paths["html"].read_text())
    assert parser.tables >= 1
    # PR curves plus one histogram per scorer, embedded (no external files)
    assert len(parser.images) >= 3
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert json.loads(paths["metrics"].read_text())["n"] == 400
    assert "| text |" in paths["summary"].read_text()
