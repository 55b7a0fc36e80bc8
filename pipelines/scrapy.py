"""Scrapy item pipeline: score every scraped listing in-process (optional extra ``scrapy``).

Enable it in the project settings::

    ITEM_PIPELINES = {
        "scrapy.pipelines.images.ImagesPipeline": 1,      # optional: downloads item images
        "pipelines.scrapy.FakestopPipeline": 300,
    }
    FAKESTOP_REGISTRY = "seeds/registry"
    FAKESTOP_MODEL = None                    # optional trained model
    FAKESTOP_IMAGES = None                   # image root; defaults to IMAGES_STORE
    FAKESTOP_FIELDS = {"name": "title"}      # item field -> fakestop field, when names differ
    FAKESTOP_ON_BLOCK = "annotate"           # or "drop": blocked items are dropped, with the reason

Each item gets ``risk``, ``decision`` and ``reasons`` (and ``fakestop_status``/``fakestop_error``
when the item could not be scored: it is annotated, never lost).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from pipelines.api import Scorer
from pipelines.schema import INPUT_SCHEMA

logger = logging.getLogger(__name__)
ON_BLOCK = ("annotate", "drop")


class FakestopPipeline:
    def __init__(
        self,
        scorer: Scorer,
        *,
        fields: dict[str, str] | None = None,
        on_block: str = "annotate",
        images_store: str | None = None,
    ) -> None:
        if on_block not in ON_BLOCK:
            raise NotConfigured(f"FAKESTOP_ON_BLOCK must be one of {ON_BLOCK}, got {on_block!r}")
        self.scorer = scorer
        self.fields = dict(fields or {})
        self.on_block = on_block
        self.images_store = images_store

    @classmethod
    def from_crawler(cls, crawler: Any) -> FakestopPipeline:
        settings = crawler.settings
        registry = settings.get("FAKESTOP_REGISTRY")
        if not registry:
            raise NotConfigured("FAKESTOP_REGISTRY is not set")
        store = settings.get("IMAGES_STORE") or settings.get("FILES_STORE")
        images = settings.get("FAKESTOP_IMAGES") or store
        scorer = Scorer.from_registry(
            registry, model=settings.get("FAKESTOP_MODEL"), images=images, on_error="quarantine"
        )
        return cls(
            scorer,
            fields=settings.getdict("FAKESTOP_FIELDS"),
            on_block=settings.get("FAKESTOP_ON_BLOCK", "annotate"),
            images_store=str(store) if store else None,
        )

    def listing_of(self, item: Any) -> dict[str, Any]:
        """The fakestop listing behind an item: mapped fields, image from the images pipeline."""
        adapter = ItemAdapter(item)
        reverse = {ours: theirs for theirs, ours in self.fields.items()}
        listing: dict[str, Any] = {}
        for name in INPUT_SCHEMA:
            key = reverse.get(name, name)
            if key in adapter and adapter.get(key) is not None:
                listing[name] = adapter.get(key)
        downloaded = adapter.get("images") or adapter.get("files")
        if "image" not in listing and downloaded and self.images_store:
            first = downloaded[0]
            path = first.get("path") if isinstance(first, dict) else None
            if path:
                listing["image"] = str(Path(self.images_store) / path)
        return listing

    async def process_item(self, item: Any) -> Any:
        result = await self.scorer.ascore_one(self.listing_of(item))
        adapter = ItemAdapter(item)
        adapter["risk"] = result.risk
        adapter["decision"] = result.decision
        adapter["reasons"] = list(result.reasons)
        if result.status != "ok":
            adapter["fakestop_status"] = result.status
            adapter["fakestop_error"] = result.error
            logger.warning("fakestop could not score %s: %s", result.listing_id, result.error)
        if result.decision == "block" and self.on_block == "drop":
            raise DropItem(f"fakestop blocked {result.listing_id}: {'; '.join(result.reasons)}")
        return item
