"""A real Scrapy crawl of a local marketplace (loopback only) with the fakestop pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("scrapy", reason="the scrapy extra is not installed")

LISTINGS = [
    # id, title, price, brand, category, seller, expected decision family
    ("p1", "Rolex Submariner date steel", 40.0, "Rolex", "watches", "s1", "block"),
    ("p2", "Rolex Submariner 2023 full set", 9800.0, "Rolex", "watches", "s2", "allow"),
    ("p3", "Handmade ceramic mug", 12.0, "", "", "s3", "allow"),
    ("p4", "Nike running shoes", 3.5, "Nike", "shoes", "s1", "block"),
    ("p5", "Gucci Marmont shoulder bag", 1750.0, "Gucci", "bags", "s4", "allow"),
]

SPIDER = """
import scrapy


class MarketSpider(scrapy.Spider):
    name = "market"

    def __init__(self, start_url, **kw):
        super().__init__(**kw)
        self.start_url = start_url

    async def start(self):
        yield scrapy.Request(self.start_url)

    def parse(self, response):
        for href in response.css("a.listing::attr(href)").getall():
            yield response.follow(href, self.parse_listing)

    def parse_listing(self, response):
        yield {
            "listing_id": response.css("#id::text").get(),
            "name": response.css("h1::text").get(),
            "price": float(response.css(".price::text").get()),
            "brand": response.css(".brand::text").get(),
            "category": response.css(".category::text").get(),
            "seller_id": response.css(".seller::text").get(),
            "image_urls": [response.urljoin(response.css("img::attr(src)").get())],
        }
"""


def build_site(root: Path) -> None:
    (root / "img").mkdir(parents=True)
    links = []
    for i, (lid, title, price, brand, cat, seller, _) in enumerate(LISTINGS):
        Image.new("RGB", (64, 64), (40 * i, 100, 200 - 30 * i)).save(root / "img" / f"{lid}.jpg")
        (root / f"{lid}.html").write_text(
            f"<html><body><span id='id'>{lid}</span><h1>{title}</h1>"
            f"<span class='price'>{price}</span><span class='brand'>{brand}</span>"
            f"<span class='category'>{cat}</span><span class='seller'>{seller}</span>"
            f"<img src='img/{lid}.jpg'></body></html>",
            encoding="utf-8",
        )
        links.append(f"<a class='listing' href='{lid}.html'>{title}</a>")
    (root / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging each request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    build_site(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def crawl(
    site: str, tmp: Path, registry: Path, on_block: str
) -> tuple[list[dict[str, object]], str]:
    spider = tmp / "spider.py"
    spider.write_text(SPIDER)
    out = tmp / f"items-{on_block}.jsonl"
    settings = {
        "ITEM_PIPELINES": json.dumps(
            {
                "scrapy.pipelines.images.ImagesPipeline": 1,
                "pipelines.scrapy.FakestopPipeline": 300,
            }
        ),
        "IMAGES_STORE": str(tmp / "images"),
        "FAKESTOP_REGISTRY": str(registry),
        "FAKESTOP_FIELDS": json.dumps({"name": "title"}),
        "FAKESTOP_ON_BLOCK": on_block,
        "ROBOTSTXT_OBEY": "False",
        "TELNETCONSOLE_ENABLED": "False",
        "LOG_LEVEL": "INFO",
    }
    args = [
        sys.executable,
        "-m",
        "scrapy",
        "runspider",
        str(spider),
        "-a",
        f"start_url={site}",
        "-O",
        f"{out}:jsonlines",
    ]
    for k, v in settings.items():
        args += ["-s", f"{k}={v}"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return items, proc.stderr


def test_crawl_annotates_every_item(site: str, tmp_path: Path, tiny_registry_dir: Path) -> None:
    items, log = crawl(site, tmp_path, tiny_registry_dir, "annotate")
    # the crawl downloads photos but the registry has none to compare them with: said once
    assert log.count("listing photos are not compared") == 1, log[-3000:]
    by_id = {i["listing_id"]: i for i in items}
    assert set(by_id) == {row[0] for row in LISTINGS}, "an item was lost"
    for lid, *_, expected in LISTINGS:
        item = by_id[lid]
        assert item["decision"] == expected, (lid, item)
        assert isinstance(item["risk"], float)
        if expected != "allow":
            assert item["reasons"]
        assert item["images"], "the images pipeline result is kept"


def test_crawl_drops_blocked_items_with_a_logged_reason(
    site: str, tmp_path: Path, tiny_registry_dir: Path
) -> None:
    items, log = crawl(site, tmp_path, tiny_registry_dir, "drop")
    kept = {i["listing_id"] for i in items}
    blocked = {row[0] for row in LISTINGS if row[-1] == "block"}
    assert kept == {row[0] for row in LISTINGS} - blocked
    for lid in blocked:
        assert f"fakestop blocked {lid}" in log
