"""``fakestop review``: one self-contained HTML page for the people who decide flagged listings.

The page lists the flagged listings of a scores file (``block`` and ``review``) by risk and shows,
for each, its photo beside the reference photo it matched, the title with the matched words
highlighted, the price against the brand's reference, every reason, the seller's strikes and
ring. Moderators decide with the keyboard; decisions stay in the browser (localStorage) and export
as the CSV files ``fakestop train`` (labels) and ``fakestop complaints add`` (takedowns) read.

Where the evidence comes from: a scores file holds the contract's columns (risk, decision,
reasons, the brand) and the listing's own columns, but not which reference photo matched nor
where in the title the brand was found. The flagged listings are therefore scored again here by
the same filters, fitted on the same registry (:func:`pipelines.stages.score_frame` with the
filters' evidence kept): the photo match (reference, kind, variant, distance) is the image
filter's own evidence, and the highlighted words are those the text filter's reasons quote,
located in the raw title through the text filter's own folding. Nothing is matched a second way.
The risk, decision and reasons shown are the scores file's.

The page is static: no server, no network (a Content-Security-Policy forbids any fetch), data
embedded as JSON in a non-executable script element and written into the page with
``textContent`` only, so that listing text (titles, seller ids, brands, file names) is never
markup.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import html
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.errors import FakestopError

#: decisions the page lists
FLAGGED = ("block", "review")
#: the listing columns a labels export carries (those of them the scores file has), in order
LISTING_COLUMNS = (
    "listing_id",
    "title",
    "price",
    "currency",
    "description",
    "category",
    "brand",
    "seller_id",
    "condition",
    "image",
)
#: the columns the page reads from a seller-network directory (``fakestop network``):
#: ``rings.parquet`` has one row per ring; any other column of it is shown as the ring's evidence
RINGS_FILE = "rings.parquet"
RING_ID = "ring_id"
RING_SELLERS = "sellers"
#: ``links.parquet`` (optional): one row per linked seller pair and the evidence linking them
LINKS_FILE = "links.parquet"
LINK_SELLERS = ("seller_a", "seller_b")
LINK_EVIDENCE = "evidence"
#: links shown per seller
LINKS_SHOWN = 5
#: an embedded photo: WebP at the first (longest side in pixels, quality) that fits in
#: :data:`PHOTO_BYTES` (busy photographs need the later ones); this bounds the page's size
THUMB_STEPS = ((128, 55), (128, 35), (96, 35), (64, 30))
PHOTO_BYTES = 2_500
#: characters of a description shown (the labels export carries it whole)
DESCRIPTION_SHOWN = 400

TEMPLATE = "review_page.html"


# ---------------------------------------------------------------- reading inputs


def read_scores(path: str | Path) -> pl.DataFrame:
    """A scores file as ``fakestop score`` writes it: Parquet (a file or a directory of parts),
    CSV (list columns as JSON text) or NDJSON."""
    p = Path(path)
    if not p.exists():
        raise FakestopError(f"{p}: no such scores file or directory")
    try:
        if p.is_dir():
            parts = sorted(p.glob("*.parquet"))
            if not parts:
                raise FakestopError(f"{p}: a directory of scores holds no .parquet part")
            frame = pl.concat([pl.read_parquet(q) for q in parts], how="diagonal_relaxed")
        elif p.suffix.lower() in (".parquet", ".pq"):
            frame = pl.read_parquet(p)
        elif p.suffix.lower() == ".csv":
            frame = pl.read_csv(p, infer_schema=False)
            frame = _decoded_reasons(frame, p)
        elif p.suffix.lower() in (".ndjson", ".jsonl"):
            frame = pl.read_ndjson(p, infer_schema_length=None)
        else:
            raise FakestopError(
                f"{p}: unknown scores format {p.suffix or '(no extension)'}; expected "
                ".parquet, a directory of parts, .csv, .ndjson or .jsonl"
            )
    except FakestopError:
        raise
    except Exception as exc:  # polars' own errors name no file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FakestopError(f"{p}: cannot read scores ({first})") from None
    need = {"listing_id", "title", "risk", "decision", "reasons"}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise FakestopError(
            f"{p}: not a scores file: missing column(s) {', '.join(missing)} "
            "(expected the output of fakestop score)"
        )
    return frame


def _decoded_reasons(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """CSV scores hold the reasons list as JSON text; numbers as text."""
    reasons = []
    for i, text in enumerate(frame.get_column("reasons").to_list()):
        try:
            value = [] if text in (None, "") else json.loads(text)
        except ValueError:
            raise FakestopError(
                f"{path} row {i + 1}: reasons {text[:40]!r} is not a JSON list"
            ) from None
        if not isinstance(value, list):
            raise FakestopError(f"{path} row {i + 1}: reasons is not a JSON list")
        reasons.append([str(r) for r in value])
    numbers = [c for c in ("risk", "price", "text_score", "price_score", "image_score")]
    return frame.with_columns(
        pl.Series("reasons", reasons, dtype=pl.List(pl.String)),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in numbers if c in frame.columns),
    )


def _read_table(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FakestopError(f"{path}: cannot read ({first})") from None


@dataclass
class Rings:
    """Seller rings as the page shows them: ring id -> facts, seller -> ring id, seller ->
    its strongest links (other seller and evidence)."""

    rings: dict[str, dict[str, Any]]
    ring_of: dict[str, str]
    links: dict[str, list[dict[str, Any]]]


def read_rings(directory: str | Path) -> Rings:
    """Rings from ``DIR/rings.parquet`` and, when present, links from ``DIR/links.parquet``."""
    path = Path(directory) / RINGS_FILE
    if not path.is_file():
        raise FakestopError(f"{path}: no such file (--rings expects fakestop network's --out)")
    frame = _read_table(path)
    missing = [c for c in (RING_ID, RING_SELLERS) if c not in frame.columns]
    if missing:
        raise FakestopError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {RING_ID}, "
            f"{RING_SELLERS} (list of seller ids), ..."
        )
    if not isinstance(frame.schema[RING_SELLERS], pl.List):
        raise FakestopError(f"{path}: column {RING_SELLERS} must be a list of seller ids")
    rings: dict[str, dict[str, Any]] = {}
    by_seller: dict[str, str] = {}
    shown = [c for c in frame.columns if c not in (RING_ID, RING_SELLERS)]
    for row in frame.iter_rows(named=True):
        rid = str(row[RING_ID])
        sellers = [str(s) for s in row[RING_SELLERS] or [] if s is not None]
        facts = {c: _plain(row[c]) for c in shown if row[c] is not None}
        rings[rid] = {"id": rid, "sellers": len(sellers), "facts": facts}
        for s in sellers:
            by_seller.setdefault(s, rid)
    return Rings(rings, by_seller, _read_links(Path(directory) / LINKS_FILE))


def _read_links(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Seller -> its first :data:`LINKS_SHOWN` links (as listed: strongest first)."""
    if not path.is_file():
        return {}
    frame = _read_table(path)
    missing = [c for c in LINK_SELLERS if c not in frame.columns]
    if missing:
        raise FakestopError(
            f"{path}: missing column(s) {', '.join(missing)}; expected seller_a, seller_b, "
            f"{LINK_EVIDENCE}, ..."
        )
    has_evidence = LINK_EVIDENCE in frame.columns
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        a, b = (None if row[c] is None else str(row[c]) for c in LINK_SELLERS)
        if a is None or b is None:
            continue
        evidence = _plain(row[LINK_EVIDENCE]) if has_evidence else None
        for me, other in ((a, b), (b, a)):
            mine = out.setdefault(me, [])
            if len(mine) < LINKS_SHOWN:
                mine.append({"seller": other, "evidence": evidence})
    return out


def _plain(value: Any) -> Any:
    """A Parquet value as JSON-able text, numbers, lists or objects."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, int | str | bool):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def read_strikes(ledger: str | Path, as_of: dt.date) -> dict[str, dict[str, Any]]:
    """Seller -> strikes, strikes in the window, status, from a strike ledger."""
    from pipelines.ledger import Ledger

    with Ledger(ledger, create=False) as led:
        table = led.sellers(as_of=as_of)
    return {
        str(r["seller_id"]): {
            "strikes": r["strikes"],
            "recent": r["strikes_365d"],
            "status": r["status"],
            "last": r["last_strike"],
        }
        for r in table.iter_rows(named=True)
    }


# ---------------------------------------------------------------- evidence


def _as_listings(flagged: pl.DataFrame) -> pl.DataFrame:
    """The listing's own columns of scored rows, as the scoring chain reads them."""
    cols = [c for c in LISTING_COLUMNS if c in flagged.columns]
    frame = flagged.select(cols)
    if "price_raw" in flagged.columns:
        frame = frame.with_columns(flagged.get_column("price_raw"))
    return frame.with_columns(pl.col("price").cast(pl.Float64, strict=False))


def evidence(flagged: pl.DataFrame, registry: Any, images: str | Path | None) -> pl.DataFrame:
    """The filters' evidence columns for ``flagged`` (same rows, same order), from the same
    filters fitted on ``registry``."""
    from pipelines.stages import ScoringPlan, score_frame

    plan = ScoringPlan.build(registry, images_root=images)
    listings = _as_listings(flagged)
    if "price" not in listings.columns:
        listings = listings.with_columns(pl.lit(None, pl.Float64).alias("price"))
    return score_frame(listings, plan, keep_evidence=True)


# ---------------------------------------------------------------- title spans


def _utf16(text: str, index: int) -> int:
    """A code-point offset as the UTF-16 offset JavaScript strings use."""
    return index + sum(1 for c in text[:index] if ord(c) > 0xFFFF)


def _folded_stream(text: str) -> tuple[str, list[int]]:
    """The title's letters and digits as the text filter folds them, and for each folded
    character the index of the title character it came from."""
    from filters.core.normalise import fold

    chars: list[str] = []
    where: list[int] = []
    for i, c in enumerate(text):
        for f in fold(c):
            if f.isalnum():
                chars.append(f)
                where.append(i)
    return "".join(chars), where


@functools.cache
def _look_alike_table() -> dict[int, str]:
    """Unicode's confusables (the text filter's data) of other characters than ASCII that
    read as one character, so that a reading keeps every character's position in the
    title (ASCII look-alikes are leetspeak's)."""
    from filters.core.normalise import confusables

    return str.maketrans(
        {c: p.lower() for c, p in confusables().items() if not c.isascii() and len(p) == 1}
    )


def _readings(text: str) -> list[str]:
    """The folded text and its look-alike and leetspeak readings (the text filter's tables)."""
    from filters.core.normalise import _LEET_TABLE

    out = [text, text.translate(_look_alike_table())]
    out.append(out[1].translate(_LEET_TABLE))
    return out


QUOTED = re.compile(r'"([^"]+)"')


def quoted_terms(reasons: Iterable[str]) -> list[str]:
    """The words the text filter's reasons quote (the title's words and the brands named)."""
    terms: list[str] = []
    for reason in reasons:
        for term in QUOTED.findall(reason):
            if term not in terms:
                terms.append(term)
    return terms


def title_spans(title: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Where ``terms`` occur in ``title`` once both are folded (case, accents, look-alike
    letters, leetspeak, punctuation and spaces inside a word ignored): merged
    ``(start, end)`` offsets in UTF-16 code units, for the page's JavaScript."""
    from filters.core.normalise import fold

    if not title or not terms:
        return []
    stream, where = _folded_stream(title)
    readings = _readings(stream)
    found: list[tuple[int, int]] = []
    for term in terms:
        needle = "".join(c for c in fold(term) if c.isalnum())
        if len(needle) < 2:
            continue
        for reading, target in zip(_readings(needle), readings, strict=True):
            start = target.find(reading)
            hit = False
            while start >= 0:
                hit = True
                end = start + len(reading) - 1
                found.append((where[start], where[end] + 1))
                start = target.find(reading, start + len(reading))
            if hit:
                break
    merged: list[tuple[int, int]] = []
    for s, e in sorted(found):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return [(_utf16(title, s), _utf16(title, e)) for s, e in merged]


# ---------------------------------------------------------------- photos


def thumbnail(source: str | Path, root: str | Path | None) -> str | None:
    """A small WebP of a photo as a ``data:`` URI, or None when it cannot be read (the image
    filter's checks: paths leaving ``root``, oversized and undecodable files are refused)."""
    from PIL import Image

    from filters.image import open_image

    try:
        img = open_image(str(source), root=None if root is None else str(root))
    except Exception:
        return None
    data = b""
    for side, quality in THUMB_STEPS:
        small = img.copy()
        small.thumbnail((side, side), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        small.save(buf, format="WEBP", quality=quality, method=4)
        data = buf.getvalue()
        if len(data) <= PHOTO_BYTES:
            break
    return "data:image/webp;base64," + base64.b64encode(data).decode("ascii")


class _Photos:
    """Thumbnails embedded once each, by key; :meth:`prepare` makes them in threads (Pillow
    decodes and encodes without the GIL)."""

    def __init__(self) -> None:
        self.uris: dict[str, str] = {}
        self._keys: dict[tuple[str, str], str | None] = {}
        self._made: dict[tuple[str, str], str | None] = {}

    def prepare(self, sources: Iterable[tuple[str, str | Path | None]], workers: int) -> None:
        todo = list(dict.fromkeys((str(s), None if r is None else str(r)) for s, r in sources))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            made = pool.map(lambda sr: thumbnail(sr[0], sr[1]), todo)
            self._made.update(((s, str(r)), uri) for (s, r), uri in zip(todo, made, strict=True))

    def add(self, source: str | Path, root: str | Path | None) -> str | None:
        k = (str(source), str(root))
        if k not in self._keys:
            uri = self._made[k] if k in self._made else thumbnail(source, root)
            key = None
            if uri is not None:
                key = f"p{len(self.uris)}"
                self.uris[key] = uri
            self._keys[k] = key
        return self._keys[k]


# ---------------------------------------------------------------- the page's data


#: the fusion's own reason for a flag no filter explains (see :func:`pipelines.stages.explained`)
FUSION_REASON = re.compile(r"risk [0-9.]+ from several weak signals")


def _reason_kinds(
    file_reasons: Sequence[str], ev: Mapping[str, Any]
) -> tuple[list[list[str]], bool]:
    """Every reason of the scores file with the filter that gave it (``text``, ``image``,
    ``price``; ``fusion`` for the fusion's own; ``other`` for the rest), and whether the
    scores file has a reason the filters do not give today (the scores came from another
    registry or another version: the evidence shown may not be what flagged the listing)."""
    by_filter: dict[str, str] = {}
    for name in ("text", "image", "price"):
        for r in ev.get(f"{name}_reasons") or []:
            by_filter.setdefault(r, name)
    known = set(ev.get("reasons") or [])
    out: list[list[str]] = []
    stale = False
    for r in file_reasons or []:
        kind = by_filter.get(r)
        if kind is None:
            kind = "fusion" if FUSION_REASON.fullmatch(r) else "other"
            stale = stale or (kind == "other" and r not in known)
        out.append([kind, r])
    return out, stale


def _photo_match(row: Mapping[str, Any], registry: Any) -> dict[str, Any] | None:
    """The reference photo the image filter matched, from its evidence columns."""
    ref = row.get("image_match")
    if not ref:
        return None
    return {
        "ref": ref,
        "kind": row.get("image_match_kind"),
        "variant": row.get("image_match_variant"),
        "distance": row.get("image_match_distance"),
        "brand": row.get("image_brand"),
    }


def _reference_paths(registry: Any) -> dict[str, str]:
    """Reference photo as the image filter names it (path relative to the registry) -> file."""
    out: dict[str, str] = {}
    for table in (registry.official_images, registry.known_fakes):
        if table.height and {"relpath", "image"} <= set(table.columns):
            for rel, path in table.select("relpath", "image").iter_rows():
                out[str(rel)] = str(path)
    return out


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


@dataclass
class ReviewData:
    """What the page embeds: listings, photos, rings and a page id for its saved decisions."""

    listings: list[dict[str, Any]]
    photos: dict[str, str]
    rings: dict[str, dict[str, Any]]
    columns: list[str]
    page_id: str
    source: str
    created: str
    ledger: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "listings": self.listings,
            "photos": self.photos,
            "rings": self.rings,
            "columns": self.columns,
            "page": self.page_id,
            "source": self.source,
            "created": self.created,
            "ledger": self.ledger,
        }


def review_data(
    scores: pl.DataFrame,
    registry: Any,
    *,
    images: str | Path | None = None,
    rings: Rings | None = None,
    strikes: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "",
    limit: int | None = None,
) -> ReviewData:
    """Gather what the page shows for the flagged listings of ``scores``, riskiest first."""
    flagged = scores.filter(pl.col("decision").is_in(FLAGGED))
    if "status" in flagged.columns:
        flagged = flagged.filter(pl.col("status").fill_null("ok") == "ok")
    flagged = flagged.sort(["risk", "listing_id"], descending=[True, False], nulls_last=True)
    if limit is not None:
        flagged = flagged.head(limit)
    ev = evidence(flagged, registry, images) if flagged.height else flagged
    refs = _reference_paths(registry)
    photos = _Photos()
    wanted: list[tuple[str, str | Path | None]] = (
        [(str(i), images) for i in flagged.get_column("image").to_list() if i]
        if "image" in flagged.columns
        else []
    )
    if "image_match" in ev.columns:
        wanted += [
            (refs[m], None) for m in ev.get_column("image_match").to_list() if m and m in refs
        ]
    photos.prepare(wanted, workers=os.cpu_count() or 1)
    rings = rings or Rings({}, {}, {})
    seller_strikes = strikes or {}
    columns = [c for c in LISTING_COLUMNS if c in flagged.columns]
    out: list[dict[str, Any]] = []
    for row, extra in zip(flagged.iter_rows(named=True), ev.iter_rows(named=True), strict=True):
        title = str(row.get("title") or "")
        seller = None if row.get("seller_id") is None else str(row["seller_id"])
        photo = None
        if row.get("image"):
            photo = photos.add(str(row["image"]), images)
        match = _photo_match(extra, registry)
        if match is not None:
            path = refs.get(str(match["ref"]))
            match["photo"] = None if path is None else photos.add(path, None)
            match["name"] = Path(str(match["ref"])).name
        desc = row.get("description")
        reasons, stale = _reason_kinds(row.get("reasons") or [], extra)
        item = {
            "id": str(row["listing_id"]),
            "title": title,
            "spans": title_spans(title, quoted_terms(extra.get("text_reasons") or [])),
            "description": None if desc is None else str(desc)[:DESCRIPTION_SHOWN],
            "seller": seller,
            "brand": row.get("matched_brand"),
            "declared": None if row.get("brand") is None else str(row["brand"]),
            "category": row.get("category"),
            "risk": _number(row.get("risk")),
            "decision": row.get("decision"),
            "scores": {n: _number(row.get(f"{n}_score")) for n in ("text", "image", "price")},
            "reasons": reasons,
            "stale": stale,
            "price": {
                "shown": None if row.get("price_raw") is None else str(row["price_raw"]),
                "value": _number(row.get("price")),
                "currency": row.get("currency"),
                "usd": _number(extra.get("price_usd")),
                "reference": _number(extra.get("price_reference")),
            },
            "photo": photo,
            "image_name": None if not row.get("image") else Path(str(row["image"])).name,
            "match": match,
            "ring": None if seller is None else rings.ring_of.get(seller),
            "links": None if seller is None else rings.links.get(seller),
            "strikes": None if seller is None else seller_strikes.get(seller),
            "row": {c: _export_value(row.get(c)) for c in columns},
        }
        out.append(item)
    digest = hashlib.sha256()
    digest.update(source.encode("utf-8"))
    for item in out:
        digest.update(item["id"].encode("utf-8") + b"\x00")
    used = {i["ring"] for i in out if i["ring"] is not None}
    return ReviewData(
        listings=out,
        photos=photos.uris,
        rings={k: v for k, v in rings.rings.items() if k in used},
        columns=columns,
        page_id=digest.hexdigest()[:16],
        source=source,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        ledger=strikes is not None,
    )


def _export_value(value: Any) -> str | float | int | None:
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


# ---------------------------------------------------------------- the page


def safe_json(value: Any) -> str:
    """JSON that can sit inside a ``<script type="application/json">`` element: no ``<``, ``>``
    or ``&`` (so no ``</script>`` nor ``<!--``), no U+2028/U+2029 line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _csp_hash(text: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
    )


_BLOCK = re.compile(r"<(style|script)>(.*?)</\1>", re.S)


def render_page(data: ReviewData) -> str:
    """The page: the template with the data embedded and a Content-Security-Policy that lets
    only its own style and script run, and images come only from ``data:`` URIs."""
    template = resources.files("pipelines").joinpath(TEMPLATE).read_text(encoding="utf-8")
    blocks = {kind: body for kind, body in _BLOCK.findall(template)}
    if set(blocks) != {"style", "script"}:
        raise FakestopError(f"{TEMPLATE}: expected one <style> and one <script> block")
    csp = (
        "default-src 'none'; "
        f"style-src {_csp_hash(blocks['style'])}; "
        f"script-src {_csp_hash(blocks['script'])}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    page = template.replace("__CSP__", html.escape(csp, quote=False).replace('"', "&quot;"), 1)
    page = page.replace("__TITLE__", html.escape(f"fakestop review: {data.source}"), 1)
    head, sep, tail = page.partition("__DATA__")
    if not sep:
        raise FakestopError(f"{TEMPLATE}: no __DATA__ placeholder")
    return head + safe_json(data.as_json()) + tail


def write_review(
    scores: str | Path,
    *,
    registry: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    rings: str | Path | None = None,
    ledger: str | Path | None = None,
    as_of: dt.date | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Write the review page for ``scores`` to ``out``; returns a summary (listings shown,
    photos embedded, bytes written).

    Examples
    --------
    >>> import tempfile, pathlib                                     # doctest: +SKIP
    >>> write_review("demo/scores.parquet", registry="demo/registry",  # doctest: +SKIP
    ...              images="demo/images", out="demo/review.html")
    """
    from pipelines.outputs import refuse_output_over_inputs
    from pipelines.registry import load_registry

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise FakestopError(f"--out {out}: the review page is an .html file")
    refuse_output_over_inputs(out, False, scores, [Path(scores)])
    frame = read_scores(scores)
    reg = load_registry(registry)
    data = review_data(
        frame,
        reg,
        images=images,
        rings=None if rings is None else read_rings(rings),
        strikes=None if ledger is None else read_strikes(ledger, as_of or dt.date.today()),
        source=Path(scores).name,
        limit=limit,
    )
    page = render_page(data)
    from pipelines.manifest import write_bytes_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    payload = page.encode("utf-8")
    write_bytes_atomic(out, payload)
    return {"listings": len(data.listings), "photos": len(data.photos), "bytes": len(payload)}
