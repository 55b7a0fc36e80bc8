"""The review page in a real browser (Debian's chromium driven by Playwright): photo pairs,
keyboard decisions kept across a reload, CSV exports that ``fakestop train`` and ``fakestop
complaints add`` accept, and hostile listing text that runs nothing."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.review import write_review
from pipelines.schema import read_listings
from tests.review_fixture import (
    HOSTILE,
    HOSTILE_BRAND,
    HOSTILE_CATEGORY,
    HOSTILE_IMAGE,
    HOSTILE_SELLER,
    build_ledger,
    build_marketplace,
    build_network,
    read_csv,
)

CHROMIUM = os.environ.get("FAKESTOP_CHROMIUM", "/usr/bin/chromium")
IN_CI = bool(os.environ.get("CI"))


def _browser_available() -> str | None:
    """Why the browser tests cannot run here, or None. In CI they must run."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


_missing = _browser_available()
if _missing and IN_CI:
    raise RuntimeError(f"the review page's browser tests need a browser in CI: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("review")
    paths = build_marketplace(tmp)
    page = tmp / "out" / "review.html"
    write_review(
        paths["scores"],
        registry=paths["registry"],
        images=paths["images"],
        rings=build_network(tmp / "network"),
        ledger=build_ledger(tmp / "ledger.sqlite"),
        as_of=dt.date(2026, 3, 1),
        out=page,
    )
    return {**paths, "page": page, "tmp": tmp}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page with every dialog, page error and console error recorded."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: Path) -> Any:
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready]")
        return self.page

    def clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors
        assert self.page.evaluate("() => window.__pwned === undefined")


def selected_id(page: Any) -> str:
    text: str = page.locator("#detail .facts").first.inner_text()
    return text.split("listing ", 1)[1].split(" ", 1)[0]


def test_page_shows_pairs_keys_decide_reload_keeps_and_exports_round_trip(
    market: dict[str, Path], browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    w = Watched(context)
    page = w.open(market["page"])
    scores = pl.read_parquet(market["scores"])
    flagged = scores.filter(pl.col("decision").is_in(["block", "review"]))
    assert page.locator("#list li").count() == flagged.height
    # riskiest first
    risks = [float(t) for t in page.locator("#list li .risk").all_inner_texts()]
    assert risks == sorted(risks, reverse=True)

    # the photo pairs: the listing's photo beside the reference it matched, with the variant
    for listing, kind, variant in (
        ("F1", "known fake", "mirrored"),
        ("F2", "known fake", "cropped 10%"),
        ("F3", "official photo", "as is"),
    ):
        page.fill("#f-seller", "")
        idx = page.evaluate(
            "(id) => JSON.parse(document.getElementById('review-data').textContent)"
            ".listings.findIndex(l => l.id === id)",
            listing,
        )
        page.click(f"#item-{idx}")
        assert selected_id(page) == listing
        imgs = page.locator("#detail figure img")
        assert imgs.count() == 2
        # both photos decoded from their data: URIs
        for i in range(2):
            assert imgs.nth(i).evaluate("(im) => im.complete && im.naturalWidth > 0")
            assert imgs.nth(i).get_attribute("src").startswith("data:image/")
        caption = page.locator("#detail figure figcaption").nth(1).inner_text()
        assert f"Matched {kind}" in caption and variant in caption and "distance" in caption
    # the title's matched span is highlighted ("Guccci" in F1)
    page.click("#item-0")
    marks_f1 = page.evaluate(
        "() => { const d = JSON.parse(document.getElementById('review-data').textContent);"
        " const i = d.listings.findIndex(l => l.id === 'F1');"
        " document.getElementById('item-' + i).click();"
        " return [...document.querySelectorAll('#detail h2 mark')].map(m => m.textContent); }"
    )
    assert "Guccci" in marks_f1 and "replica" in marks_f1

    # keyboard: j/k move, c/g/s decide and move on
    page.click("#item-0")
    page.locator("#list").focus()
    first = selected_id(page)
    page.keyboard.press("j")
    second = selected_id(page)
    assert second != first
    page.keyboard.press("k")
    assert selected_id(page) == first
    verdicts: dict[str, str] = {}
    for key, verdict in zip(
        "cgcgcgcgcgcgs", ["counterfeit", "genuine"] * 6 + ["skip"], strict=True
    ):
        verdicts[selected_id(page)] = verdict
        page.keyboard.press(key)
    assert len(verdicts) == 13
    assert "13 of 13 decided (6 counterfeit)" in page.inner_text("#progress")

    # a reload loses nothing
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert "13 of 13 decided (6 counterfeit)" in page.inner_text("#progress")
    page.select_option("#f-verdict", "genuine")
    assert page.locator("#list li:visible").count() == 6
    page.select_option("#f-verdict", "")

    # the ring filter keeps the ring's sellers' listings; strikes and links are shown
    page.select_option("#f-ring", "7")
    shown = page.locator("#list li:visible .m").all_inner_texts()
    assert len(shown) == 4 and all("ring 7" in m for m in shown)
    detail = page.inner_text("#detail")
    assert "In ring 7 of 3 sellers" in detail and "photo 2, known fake 1, contact 1" in detail
    assert "linked to" in detail
    page.select_option("#f-ring", "")
    page.fill("#f-seller", "s-bob")
    assert page.locator("#list li:visible").count() == 1
    assert "2 strike(s), 2 in the last 365 days" in page.inner_text("#detail")
    page.fill("#f-seller", "")

    # exports
    with page.expect_download() as d:
        page.click("#export-labels")
    labels = tmp_path / "labels.csv"
    d.value.save_as(labels)
    page.fill("#takedown-date", "2026-03-01")
    with page.expect_download() as d:
        page.click("#export-takedowns")
    takedowns = tmp_path / "takedowns.csv"
    d.value.save_as(takedowns)
    w.clean()
    context.close()

    # labels: the listings as they were, with 1 for counterfeit and 0 for genuine
    rows = read_csv(labels)
    assert {r["listing_id"]: r["label"] for r in rows} == {
        k: {"counterfeit": "1", "genuine": "0"}[v] for k, v in verdicts.items() if v != "skip"
    }
    read = read_listings(labels)
    original = pl.read_parquet(market["listings"])
    joined = read.join(original, on="listing_id", suffix="_orig")
    assert joined.height == 12
    for col in ("title", "seller_id", "image", "brand", "description", "category"):
        assert joined.get_column(col).to_list() == joined.get_column(f"{col}_orig").to_list()
    assert joined.get_column("price").to_list() == joined.get_column("price_orig").to_list()
    model = tmp_path / "model.skops"
    fakestop = [sys.executable, "-m", "pipelines.cli"]
    done = subprocess.run(
        [
            *fakestop,
            "train",
            str(labels),
            "--registry",
            str(market["registry"]),
            "--images",
            str(market["images"]),
            "--out",
            str(model),
            # a dozen verdicts are too few for a model worth using, not for the file's form
            "--allow-degenerate",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert model.is_file()

    # takedowns: seller_id,listing_id,brand,date for the counterfeit verdicts
    taken = read_csv(takedowns)
    assert list(taken[0]) == ["seller_id", "listing_id", "brand", "date"]
    counterfeit = {k for k, v in verdicts.items() if v == "counterfeit"}
    assert {r["listing_id"] for r in taken} == counterfeit
    assert {r["date"] for r in taken} == {"2026-03-01"}
    ledger = tmp_path / "ledger.sqlite"
    done = subprocess.run(
        [*fakestop, "complaints", "add", str(takedowns), "--ledger", str(ledger)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(counterfeit)} new strike(s)" in done.stdout
    with sqlite3.connect(ledger) as db:
        struck = {r[0] for r in db.execute("SELECT listing_id FROM strikes")}
    assert struck == counterfeit


def test_hostile_text_runs_nothing_and_reads_as_text(market: dict[str, Path], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    w = Watched(context)
    page = w.open(market["page"])
    # every listing shown in turn, so that every title, seller, reason and file name is rendered
    n = page.locator("#list li").count()
    page.click("#item-0")
    page.locator("#list").focus()
    for _ in range(n):
        page.keyboard.press("j")
    titles = page.locator("#list li .t").all_inner_texts()
    for text in HOSTILE.values():
        # shown as the text it is (line separators aside, which the list renders as spaces)
        assert text.split("\u2028")[0] in "\n".join(titles)
    assert page.locator("script").count() == 2
    assert page.locator("[onerror], [onload], svg, iframe").count() == 0
    srcs = page.evaluate("() => [...document.images].map(i => i.src)")
    assert all(s.startswith("data:image/") for s in srcs)
    # the hostile seller id and file name, on the listing that has them
    idx = page.evaluate(
        "() => JSON.parse(document.getElementById('review-data').textContent)"
        ".listings.findIndex(l => l.id === 'H1')"
    )
    page.click(f"#item-{idx}")
    assert HOSTILE_SELLER in page.inner_text("#detail")
    idx = page.evaluate(
        "() => JSON.parse(document.getElementById('review-data').textContent)"
        ".listings.findIndex(l => l.id === 'F7')"
    )
    page.click(f"#item-{idx}")
    assert HOSTILE_IMAGE in page.inner_text("#detail")
    # the declared brand (quoted by a reason) and the category, on the listing that has them
    idx = page.evaluate(
        "() => JSON.parse(document.getElementById('review-data').textContent)"
        ".listings.findIndex(l => l.id === 'H3')"
    )
    page.click(f"#item-{idx}")
    detail = page.inner_text("#detail")
    assert HOSTILE_CATEGORY in detail and HOSTILE_BRAND in detail
    page.locator("#list").focus()
    page.hover("#detail")
    w.clean()
    # the policy is enforced: even script that got into the page as markup would not run
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
        s.textContent = 'window.__pwned = "inline"'; document.body.appendChild(s);
        const i = document.createElement('img'); i.src = 'https://example.invalid/x.png';
        document.body.appendChild(i); return window.__pwned; }"""
    )
    assert ran is None
    assert any("Content Security Policy" in e for e in w.errors)
    context.close()


def test_page_fits_a_laptop_and_a_narrow_window(market: dict[str, Path], browser: Any) -> None:
    for width, height in ((1280, 720), (1366, 768), (800, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        w = Watched(context)
        page = w.open(market["page"])
        # nothing wider than the window: no horizontal scrolling
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        # the decision buttons are on screen without scrolling the page
        box = page.locator("#do-counterfeit").bounding_box()
        assert box is not None and box["y"] + box["height"] <= height
        w.clean()
        context.close()


CONTRAST = """() => {
  function rgb(s) {
    const m = s.match(/[\\d.]+/g).map(Number);
    return m.length > 3 ? m : [...m, 1];
  }
  function lum(c) {
    const f = v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  }
  function background(el) {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { return c; }
    }
    return [255, 255, 255, 1];
  }
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el.offsetParent || el.closest("script")) { continue; }
    const style = getComputedStyle(el);
    const fg = rgb(style.color), bg = background(el);
    const a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) { out.push([n.textContent.trim().slice(0, 40), ratio.toFixed(2)]); }
  }
  return out;
}"""

UNLABELLED = """() => [...document.querySelectorAll('button, input, select, [role=listbox]')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
    && !e.textContent.trim())
  .map(e => e.outerHTML.slice(0, 80))"""


def test_controls_are_labelled_and_text_meets_wcag_aa_contrast(
    market: dict[str, Path], browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    w = Watched(context)
    page = w.open(market["page"])
    page.locator("#list").focus()
    page.keyboard.press("c")  # a verdict tag and the progress line are shown too
    for idx in range(page.locator("#list li").count()):
        page.click(f"#item-{idx}")
        assert page.evaluate(CONTRAST) == []
    assert page.evaluate(UNLABELLED) == []
    w.clean()
    context.close()
