"""``fakestop review`` without a browser: the data the page embeds, its escaping and policy,
the evidence it shows, and the inputs it refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.errors import FakestopError
from pipelines.registry import load_registry
from pipelines.review import (
    PHOTO_BYTES,
    quoted_terms,
    read_rings,
    read_scores,
    render_page,
    review_data,
    safe_json,
    title_spans,
    write_review,
)
from tests.review_fixture import (
    HOSTILE,
    HOSTILE_SELLER,
    build_ledger,
    build_marketplace,
    build_network,
)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("review-data")
    return {**build_marketplace(tmp), "tmp": tmp}


def embedded(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="review-data">(.*?)</script>', page, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


# ---------------------------------------------------------------- escaping and policy


@pytest.mark.parametrize("text", [*HOSTILE.values(), "a</SCRIPT >b", "x<!--y-->", "&lt;"])
def test_safe_json_cannot_end_the_script_element_and_reads_back(text: str) -> None:
    out = safe_json({"t": text, "l": [text]})
    assert "<" not in out and ">" not in out and "&" not in out
    assert "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == {"t": text, "l": [text]}


def test_page_policy_allows_only_its_own_style_and_script(market: dict[str, Path]) -> None:
    reg = load_registry(market["registry"])
    data = review_data(read_scores(market["scores"]), reg, images=market["images"], source="s")
    page = render_page(data)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp is not None
    policy = csp.group(1)
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert "unsafe" not in policy and "http" not in policy
    for kind in ("style", "script"):
        body = re.search(rf"<{kind}>(.*?)</{kind}>", page, re.S)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"{kind}-src 'sha256-{digest}'" in policy
    # two script elements only: the JSON data and the page's own code
    assert len(re.findall(r"<script\b", page, re.I)) == 2
    # no listing text anywhere outside the JSON block, which holds it escaped
    outside = re.sub(r'<script type="application/json".*?</script>', "", page, flags=re.S)
    assert "__pwned" not in outside
    assert embedded(page)["listings"] == json.loads(json.dumps(data.listings))


# ---------------------------------------------------------------- title spans


@pytest.mark.parametrize(
    ("title", "terms", "marked"),
    [
        ("Guccci Marmont bag", ['title "guccci" ~ brand "Gucci" (1 edit)'], ["Guccci"]),
        (
            "Ｇｕｃｃｉ bag",
            ['title "gucci" ~ brand "Gucci" (fullwidth characters)'],
            ["Ｇｕｃｃｉ"],
        ),
        ("Sρalding ball", ['title "sρalding" ~ brand "Spalding" (look-alike)'], ["Sρalding"]),
        ("R0lex watch", ['title "r0lex" ~ brand "Rolex" (leetspeak)'], ["R0lex"]),
        ("new G.u.c.c.i bag", ['title "gucci" ~ brand "Gucci" (spaced)'], ["G.u.c.c.i"]),
        ("😀 Guccci bag", ['title "guccci" ~ brand "Gucci" (1 edit)'], ["Guccci"]),
        (
            "Hermès bag replica",
            ['title mentions brand "Hermès"', 'counterfeit phrase "replica"'],
            ["Hermès", "replica"],
        ),
        ("HERMES birkin", ['title mentions "hermes" (brand "Hermès")'], ["HERMES"]),
        ("plain chair", ['title mentions brand "Gucci"'], []),
    ],
)
def test_title_spans_mark_the_quoted_words_in_the_raw_title(
    title: str, terms: list[str], marked: list[str]
) -> None:
    spans = title_spans(title, quoted_terms(terms))
    # offsets count UTF-16 code units, as JavaScript slices strings
    units = title.encode("utf-16-le")
    shown = [units[2 * s : 2 * e].decode("utf-16-le") for s, e in spans]
    assert shown == marked


# ---------------------------------------------------------------- the data


def test_review_data_flagged_only_riskiest_first_with_evidence(market: dict[str, Path]) -> None:
    scores = read_scores(market["scores"])
    reg = load_registry(market["registry"])
    data = review_data(
        scores,
        reg,
        images=market["images"],
        rings=read_rings(build_network(market["tmp"] / "network")),
    )
    flagged = scores.filter(pl.col("decision").is_in(["block", "review"]))
    ids = [i["id"] for i in data.listings]
    assert sorted(ids) == sorted(flagged.get_column("listing_id").to_list())
    risks = [i["risk"] for i in data.listings]
    assert risks == sorted(risks, reverse=True)
    by_id = {i["id"]: i for i in data.listings}
    # the photo match is the image filter's: the reference its reason names, and the variant
    for lid, ref, kind, variant in (
        ("F1", "fakes/gucci.jpg", "fake", "mirrored"),
        ("F2", "fakes/rolex.jpg", "fake", "cropped 10%"),
        ("F3", "official/nike.jpg", "official", "original"),
    ):
        m = by_id[lid]["match"]
        assert m is not None and (m["ref"], m["kind"], m["variant"]) == (ref, kind, variant)
        assert m["photo"] in data.photos and by_id[lid]["photo"] in data.photos
        image_reasons = [r for k, r in by_id[lid]["reasons"] if k == "image"]
        assert image_reasons and ref in image_reasons[0]
    # an unrelated photo matches nothing
    assert by_id["F4"]["match"] is None and by_id["F4"]["photo"] in data.photos
    # every reason of the scores file, each with its filter
    for item in data.listings:
        row = flagged.filter(pl.col("listing_id") == item["id"]).row(0, named=True)
        assert [r for _, r in item["reasons"]] == row["reasons"]
        assert {k for k, _ in item["reasons"]} <= {"text", "image", "price", "other"}
    assert by_id["F2"]["price"]["reference"] == 9500
    assert by_id["F1"]["ring"] == "7" and by_id["H1"]["ring"] == "7"
    assert by_id["F2"]["ring"] is None
    assert data.rings["7"]["facts"]["top_brands"] == ["Gucci"]
    assert by_id["F1"]["links"][0]["seller"] == "s-eve"
    # the same photo is embedded once
    assert len(set(data.photos.values())) == len(data.photos)


def test_page_stays_small_photos_as_small_webp(market: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = write_review(
        market["scores"], registry=market["registry"], images=market["images"], out=out
    )
    page = out.read_text(encoding="utf-8")
    photos = embedded(page)["photos"]
    assert isinstance(photos, dict) and done["photos"] == len(photos) >= 6
    for uri in photos.values():
        assert uri.startswith("data:image/webp;base64,")
        # each photo within the budget that bounds the page's size
        assert len(uri) <= len("data:image/webp;base64,") + 4 * (PHOTO_BYTES + 2) // 3
    assert done["bytes"] == out.stat().st_size


# ---------------------------------------------------------------- inputs refused


def test_bad_inputs_are_refused_naming_the_file(market: dict[str, Path], tmp_path: Path) -> None:
    reg = market["registry"]
    with pytest.raises(FakestopError, match="no such scores"):
        write_review(tmp_path / "none.parquet", registry=reg, out=tmp_path / "r.html")
    listings = market["listings"]
    with pytest.raises(FakestopError, match=r"listings\.parquet: not a scores file"):
        write_review(listings, registry=reg, out=tmp_path / "r.html")
    with pytest.raises(FakestopError, match=r"\.html"):
        write_review(market["scores"], registry=reg, out=tmp_path / "r.parquet")
    rings = tmp_path / "rings"
    rings.mkdir()
    pl.DataFrame({"ring": [1]}).write_parquet(rings / "rings.parquet")
    with pytest.raises(FakestopError, match=r"rings\.parquet: missing column\(s\) ring_id"):
        read_rings(rings)
    with pytest.raises(FakestopError, match="no such file"):
        read_rings(tmp_path)
    bad_csv = tmp_path / "scores.csv"
    bad_csv.write_text(
        "listing_id,title,risk,decision,reasons\nx,t,0.9,block,not json\n", encoding="utf-8"
    )
    with pytest.raises(FakestopError, match=r"scores\.csv row 1: reasons"):
        read_scores(bad_csv)


def test_scores_as_csv_read_like_parquet(market: dict[str, Path], tmp_path: Path) -> None:
    parquet = read_scores(market["scores"])
    csv_path = tmp_path / "scores.csv"
    text = parquet.with_columns(
        pl.col("reasons").map_elements(lambda r: json.dumps(list(r)), return_dtype=pl.String)
    )
    text.drop([c for c, t in text.schema.items() if t.is_nested()]).write_csv(csv_path)
    again = read_scores(csv_path)
    assert again.get_column("reasons").to_list() == parquet.get_column("reasons").to_list()
    assert again.get_column("risk").to_list() == parquet.get_column("risk").to_list()


def test_command_line_writes_the_page_and_reports_errors_in_one_line(
    market: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "page.html"
    ledger = build_ledger(tmp_path / "ledger.sqlite")
    cmd = [sys.executable, "-m", "pipelines.cli", "review", str(market["scores"])]
    done = subprocess.run(
        [
            *cmd,
            "--registry",
            str(market["registry"]),
            "--images",
            str(market["images"]),
            "--ledger",
            str(ledger),
            "--as-of",
            "2026-03-01",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "flagged listing(s)" in done.stdout and out.is_file()
    strikes = {i["seller"]: i["strikes"] for i in embedded(out.read_text())["listings"]}
    assert strikes["s-bob"]["strikes"] == 2 and strikes["s-ann"] is None
    assert HOSTILE_SELLER in strikes
    done = subprocess.run(
        [*cmd, "--registry", str(tmp_path / "missing"), "--out", str(tmp_path / "x.html")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_reasons_the_filters_no_longer_give_are_told_apart(market: dict[str, Path]) -> None:
    scores = read_scores(market["scores"])
    reg = load_registry(market["registry"])
    changed = scores.with_columns(
        pl.when(pl.col("listing_id") == "F1")
        .then(pl.concat_list(pl.col("reasons"), pl.lit(["image matches something old"])))
        .when(pl.col("listing_id") == "F5")
        .then(pl.concat_list(pl.col("reasons"), pl.lit(["risk 0.71 from several weak signals"])))
        .otherwise(pl.col("reasons"))
        .alias("reasons")
    )
    by_id = {i["id"]: i for i in review_data(changed, reg, images=market["images"]).listings}
    assert by_id["F1"]["stale"] and by_id["F1"]["reasons"][-1][0] == "other"
    assert not by_id["F5"]["stale"] and by_id["F5"]["reasons"][-1][0] == "fusion"
    assert not any(i["stale"] for k, i in by_id.items() if k not in ("F1",))
