"""Seller rings: the operation behind many shops is found from what its shops share, and honest
shops that share official photos, generic phrases and product names are not linked."""

from __future__ import annotations

import datetime as dt
import io
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageDraw

from pipelines.cli import main
from pipelines.ledger import Ledger
from pipelines.network import (
    LINKS_SCHEMA,
    RINGS_SCHEMA,
    NetworkSettings,
    find_rings,
    minhash_signatures,
    normalised_tokens,
)
from pipelines.registry import Registry, load_registry
from seeds.images import product_photo, sample_registry

DAY = dt.date(2026, 3, 1)
GENERIC = "Brand new with tags. Fast shipping. 100% authentic. Message me with any questions."
TEMPLATE = (
    "Factory outlet since 2009, every {item} hand checked, we dispatch from Guangzhou within two "
    "days, wholesale buyers welcome, ask for the catalogue of our spring collection"
)


def _save(img: Image.Image, path: Path, quality: int) -> str:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    path.write_bytes(buf.getvalue())
    return path.name


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, tiny_registry: Registry) -> dict:
    """Two operations and eight honest shops, with photos on disk."""
    root = tmp_path_factory.mktemp("market")
    reg_dir = sample_registry(tiny_registry, root / "registry", ["Gucci", "Nike"], seed=3)
    registry = load_registry(reg_dir)
    images = root / "images"
    images.mkdir()
    official = {
        b: Image.open(p).convert("RGB")
        for p, b in registry.official_images.select("image", "brand").iter_rows()
    }
    op_photo = product_photo(424242, 256)
    rows: list[dict] = []

    def add(seller: str, title: str, description: str, image: str | None = None) -> None:
        rows.append(
            {
                "listing_id": f"{seller}-{len(rows)}",
                "seller_id": seller,
                "title": title,
                "description": description,
                "price": 30.0,
                "image": image,
            }
        )

    # operation A: a1 and a2 share a photo (re-saved, resized, watermarked) and a template
    # with words changed; a2 and a3 share a WeChat handle written two ways
    small = op_photo.resize((200, 200))
    marked = op_photo.copy()
    ImageDraw.Draw(marked).text((5, 5), "best deal", fill=(255, 255, 255))
    add(
        "a1",
        "Gucci bag black 1:1",
        TEMPLATE.format(item="bag"),
        _save(small, images / "a1.jpg", 70),
    )
    add("a1", "Gucci belt", "great belt")
    add(
        "a2",
        "GG Marmont bag",
        TEMPLATE.format(item="wallet").replace("days", "working days"),
        _save(marked, images / "a2.jpg", 85),
    )
    add("a2", "Nike shoes", "WeChat: Lee_Outlet88 for wholesale")
    add("a3", "Nike sneakers", "微信：lee_outlet88  sizes 36-45")
    # operation B: one phone number, international and national
    add("b1", "Nike hoodie", "call or text +44 7911 123456 for more")
    add("b2", "Nike tee", "Tel: 07911 123456")
    # honest shops: official photos (re-saved, one cropped), generic phrases, product names
    rnd = random.Random(0)
    for k in range(8):
        seller = f"h{k}"
        img = official["Gucci" if k % 2 else "Nike"]
        if k % 3 == 0:
            w, h = img.size
            img = img.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95)))
        add(
            seller,
            "Gucci GG Marmont bag black",
            GENERIC,
            _save(img, images / f"{seller}.jpg", rnd.choice([75, 90])),
        )
        add(seller, "Nike Air Max 90", f"{GENERIC} Shop {k} opening hours nine to five")
        # a helpline every shop quotes is no link either
        add(seller, "Nike socks", "Questions? marketplace helpline +1 415 555 0132")
    frame = pl.DataFrame(rows)
    return {"frame": frame, "registry": registry, "images": images, "root": root}


SETTINGS = NetworkSettings(max_shared_by=5)


def ring_sets(rings: pl.DataFrame) -> list[set[str]]:
    return [set(s) for s in rings.get_column("sellers").to_list()]


def test_operations_are_found_and_honest_shops_are_not(market: dict) -> None:
    result = find_rings(
        market["frame"], market["registry"], images_root=market["images"], settings=SETTINGS
    )
    assert ring_sets(result.rings) == [{"a1", "a2", "a3"}, {"b1", "b2"}]
    assert dict(result.rings.schema) == RINGS_SCHEMA
    assert dict(result.links.schema) == LINKS_SCHEMA
    strong = result.links.filter("strong")
    pairs = {tuple(p) for p in strong.select("seller_a", "seller_b").rows()}
    assert pairs == {("a1", "a2"), ("a2", "a3"), ("b1", "b2")}
    a12 = strong.filter(pl.col("seller_a") == "a1").row(0, named=True)
    assert a12["evidence_counts"]["photo"] == 1
    assert a12["evidence_counts"]["description"] == 1
    assert any(
        "wechat:lee_outlet88" in e
        for e in strong.filter(pl.col("seller_a") == "a2").get_column("evidence")[0]
    )
    ring_a = result.rings.row(0, named=True)
    assert ring_a["listings"] == 5
    assert ring_a["evidence"]["contact"] == 1 and ring_a["evidence"]["photo"] == 1
    assert "ring 1: 3 sellers (a1, a2, a3)" in result.summary()


def test_without_photos_the_other_evidence_still_links(market: dict) -> None:
    # a1 and a2 still share a long template that nobody else writes: a fingerprint
    result = find_rings(market["frame"].drop("image"), market["registry"], settings=SETTINGS)
    assert ring_sets(result.rings) == [{"a1", "a2", "a3"}, {"b1", "b2"}]
    a12 = result.links.filter(pl.col("seller_a") == "a1").row(0, named=True)
    assert a12["evidence_counts"]["description"] == 1 and a12["strong"]


def test_a_short_shared_text_needs_corroboration() -> None:
    short = "made in Porto by Maria"
    frame = pl.DataFrame(
        {
            "listing_id": ["x1", "x2", "x3", "x4"],
            "seller_id": ["s1", "s2", "s3", "s4"],
            "description": [short, short.upper() + "!!", short + " " + TEMPLATE, TEMPLATE],
        }
    )
    result = find_rings(frame)
    assert ring_sets(result.rings) == [{"s3", "s4"}]
    weak = result.links.filter(pl.col("seller_a") == "s1", pl.col("seller_b") == "s2")
    assert weak.height == 1 and not weak.get_column("strong").item()


def test_evidence_shared_by_more_sellers_weighs_less() -> None:
    phones = ["+86 138 0013 8000"] * 2 + ["+86 139 0013 8000"] * 8
    frame = pl.DataFrame(
        {
            "listing_id": [f"x{i}" for i in range(10)],
            "seller_id": [f"s{i}" for i in range(10)],
            "description": [f"whatsapp {p}" for p in phones],
        }
    )
    ev = find_rings(frame, settings=NetworkSettings(max_shared_by=7)).evidence
    # the number eight sellers quote is over the limit: no evidence at all
    assert set(ev.get_column("seller_id")) == {"s0", "s1"}
    ev = find_rings(frame).evidence
    w = dict(ev.group_by("shared_by").agg(pl.col("weight").first()).iter_rows())
    assert w[2] > w[8] > 0


def test_minhash_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    doc = np.sort(rng.integers(0, 50, 2000))
    shingle = rng.integers(0, 2**64, 2000, dtype=np.uint64)
    sig = minhash_signatures(doc, shingle, 50, 16, seed=7)
    gen = np.random.default_rng(7)
    a = gen.integers(0, 2**63, 16, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = gen.integers(0, 2**63, 16, dtype=np.uint64)
    for d in range(50):
        mine = [int(x) for x in shingle[doc == d]]
        for j in range(16):
            want = min(
                (((x * int(a[j]) + int(b[j])) % 2**64) >> 32 for x in mine), default=2**32 - 1
            )
            assert sig[d, j] == want


def test_minhash_agreement_estimates_jaccard() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**64, 200, dtype=np.uint64)
    for share in (0.2, 0.5, 0.9):
        k = int(200 * share)
        other = np.concatenate([base[:k], rng.integers(0, 2**64, 200 - k, dtype=np.uint64)])
        jaccard = k / (400 - k)
        doc = np.repeat([0, 1], 200)
        sig = minhash_signatures(doc, np.concatenate([base, other]), 2, 256, seed=3)
        assert abs((sig[0] == sig[1]).mean() - jaccard) < 0.08


def test_tokens_leave_out_brands_digits_and_punctuation() -> None:
    tokens = normalised_tokens(pl.Series(["ＧＵＣＣＩ bag 100%!! 🔥 NEW", None]), ["gucci"])
    assert tokens.rows() == [(0, "bag"), (0, "new")]


def test_the_command_writes_rings_links_summary_and_report(
    market: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "listings.parquet"
    market["frame"].write_parquet(src)
    out = tmp_path / "rings"
    code = main(
        [
            "network",
            str(src),
            "--registry",
            str(market["registry"].root),
            "--images",
            str(market["images"]),
            "--out",
            str(out),
            "--max-shared-by",
            "5",
        ]
    )
    assert code == 0
    rings = pl.read_parquet(out / "rings.parquet")
    assert ring_sets(rings) == [{"a1", "a2", "a3"}, {"b1", "b2"}]
    assert pl.read_parquet(out / "links.parquet").columns == list(LINKS_SCHEMA)
    assert "ring 1: 3 sellers" in (out / "summary.txt").read_text()
    assert '<section id="seller-rings">' in (out / "report.html").read_text()
    assert "ring 1: 3 sellers" in capsys.readouterr().out


def test_the_command_names_what_is_missing(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "no_sellers.csv"
    src.write_text("listing_id,title,price\nx,Gucci bag,10\n")
    assert (
        main(
            [
                "network",
                str(src),
                "--registry",
                str(tiny_registry_dir),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no seller_id column" in capsys.readouterr().err


def test_scores_give_the_rings_risk_and_brands(market: dict, tmp_path: Path) -> None:
    scores = market["frame"].select(
        "listing_id",
        pl.when(pl.col("seller_id").str.starts_with("a")).then(0.9).otherwise(0.1).alias("risk"),
        pl.lit("Gucci").alias("matched_brand"),
    )
    result = find_rings(
        market["frame"].drop("image"), market["registry"], scores=scores, settings=SETTINGS
    )
    by_id = {r["ring_id"]: r for r in result.rings.iter_rows(named=True)}
    assert by_id[1]["risk"] == pytest.approx(0.9)
    assert by_id[2]["risk"] == pytest.approx(0.1)
    assert by_id[1]["top_brands"] == ["Gucci"]


def test_ring_mates_of_a_frozen_seller_go_to_review_not_block(
    market: dict, tmp_path: Path, tiny_registry_dir: Path
) -> None:
    db = tmp_path / "ledger.sqlite"
    src = tmp_path / "listings.parquet"
    market["frame"].write_parquet(src)
    assert (
        main(
            [
                "network",
                str(src),
                "--registry",
                str(market["registry"].root),
                "--out",
                str(tmp_path / "rings"),
                "--ledger",
                str(db),
                "--max-shared-by",
                "5",
                "--quiet",
                "--images",
                str(market["images"]),
            ]
        )
        == 0
    )
    complaints = tmp_path / "complaints.csv"
    complaints.write_text(
        "seller_id,listing_id,brand,date\n"
        + "".join(f"b1,b1-c{i},Nike,{DAY.isoformat()}\n" for i in range(3))
    )
    assert main(["complaints", "add", str(complaints), "--ledger", str(db)]) == 0
    tonight = pl.DataFrame(
        {
            "listing_id": ["n1", "n2", "n3"],
            "title": ["plain mug", "plain mug", "plain mug"],
            "price": [10.0, 10.0, 10.0],
            "seller_id": ["b1", "b2", "h1"],
        }
    )
    nightly = tmp_path / "tonight.parquet"
    tonight.write_parquet(nightly)
    out = tmp_path / "scores.parquet"
    assert (
        main(
            [
                "score",
                str(nightly),
                "--registry",
                str(tiny_registry_dir),
                "--out",
                str(out),
                "--ledger",
                str(db),
                "--run-date",
                (DAY + dt.timedelta(days=1)).isoformat(),
                "--quiet",
            ]
        )
        == 0
    )
    scored = {r["seller_id"]: r for r in pl.read_parquet(out).iter_rows(named=True)}
    assert scored["b1"]["decision"] == "block"
    assert scored["b2"]["decision"] == "review"
    reason = scored["b2"]["reasons"][0]
    assert "ring with frozen seller(s) b1" in reason and "phone:7911123456" in reason
    assert scored["h1"]["decision"] == "allow"
    # review is no strike
    with Ledger(db, create=False) as led:
        assert led.strikes(as_of=DAY + dt.timedelta(days=2), seller="b2").height == 0
