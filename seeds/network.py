"""A marketplace with seller rings: operations that sell under many shop names, and honest
sellers who look alike without being related.

An *operation* is a group of 2-40 seller accounts run by the same people. Its shops share
assets, each shop using some of them: a pool of product photos (its own, and some known fakes),
one or two description templates, contact details (a phone number in one of several countries,
a messenger handle, an e-mail address) and a payment account. Every reuse is lightly edited, by
families of edits chosen independently of how the linker reads text and photos:

- photos: the edits of :func:`seeds.images.reuse` (crop, mirror, rotation, rescale, brightness,
  border, watermark) followed by JPEG re-compression, hashed from the decoded image;
- text: words replaced by a synonym, dropped, duplicated or swapped with the next, a sentence
  moved, emoji and decorations added, letters in upper case, a typo;
- contacts: the number written in E.164, with spaces, dashes or brackets, with ``00`` instead of
  ``+``, nationally, in fullwidth digits; the handle after "WeChat", "微信", "wx", "WeChat ID",
  in another case; mailboxes with dots and "+tags" or spelt "(at)".

Honest sellers share what honest sellers share: the brand's official photos (re-saved and
cropped by each), the same short template phrases ("Brand new with tags", "Fast shipping") and
the brand's own product names. Each also has a shop blurb and contacts of its own. Some are
*dropshippers*: independent shops that sell a supplier's catalogue with the supplier's own
product photos (neither official nor known fakes), each shop re-saving and editing them: groups
of shops of the same sizes as operations, sharing photos and nothing else.

Photos of listings that are neither an operation's nor an official photo are drawn as random
64-bit pHash/dHash pairs: unrelated photos are about Binomial(64, 1/2) bits apart.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from filters.image import phash_dhash
from pipelines.registry import Registry, default_registry_dir
from seeds.images import product_photo, reuse, sample_registry

#: short phrases every kind of seller writes
TEMPLATE_PHRASES = [
    "Brand new with tags.",
    "Fast shipping.",
    "Ships within 24 hours.",
    "Free returns within 30 days.",
    "100% authentic.",
    "Please check the size chart before ordering.",
    "Message me with any questions.",
    "Smoke-free home.",
    "Original packaging included.",
    "Buy with confidence.",
    "Combined shipping available.",
    "Thanks for looking!",
    "See photos for details.",
    "Limited stock, order now.",
    "Tracked delivery worldwide.",
]
#: synonyms an operation's copywriter swaps in (the linker knows none of them)
SYNONYMS: dict[str, list[str]] = {
    "quality": ["grade", "standard", "level"],
    "fast": ["quick", "rapid", "speedy", "express"],
    "shipping": ["delivery", "dispatch", "postage"],
    "cheap": ["low cost", "affordable", "budget"],
    "best": ["top", "finest", "greatest"],
    "original": ["genuine", "authentic", "real"],
    "price": ["cost", "rate"],
    "order": ["purchase", "buy"],
    "contact": ["message", "reach", "ask"],
    "wholesale": ["bulk", "trade"],
    "new": ["brand new", "fresh", "unused"],
    "free": ["complimentary", "no charge"],
}
DECORATIONS = ["🔥", "✅", "⭐", "💯", "👍", "!!", "***", "~", "✨", "🎁", "【HOT】", "->"]
OPERATION_LINES = [
    "{adj} quality {noun} at the best price, factory direct wholesale",
    "we ship fast worldwide with tracking, contact us for bulk order discount",
    "same as original, {adj} materials, {n} years experience in this trade",
    "order now and get free shipping, cheap price guaranteed for our buyers",
    "all items checked before dispatch, new stock arrives every week",
    "dropshipping welcome, we accept paypal and bank transfer payments",
]
ADJECTIVES = ["premium", "top", "high", "superior", "excellent", "perfect"]

#: countries an operation's phone may come from: (country code, national numbers look like)
PHONE_PLANS = [
    ("86", "13{:09d}"),  # China mobile, 11 digits
    ("852", "9{:07d}"),  # Hong Kong mobile, 8 digits
    ("44", "79{:08d}"),  # UK mobile, 10 digits
    ("1", "415{:07d}"),  # US, 10 digits
    ("90", "53{:08d}"),  # Turkey mobile, 10 digits
    ("971", "50{:07d}"),  # UAE mobile, 9 digits
    ("234", "80{:08d}"),  # Nigeria mobile, 10 digits
    ("84", "9{:08d}"),  # Vietnam mobile, 9 digits
]
#: national trunk prefix written before a nationally dialled number
TRUNK = {"86": "", "852": "", "44": "0", "1": "", "90": "0", "971": "0", "234": "0", "84": "0"}


@dataclass
class _Operation:
    op_id: str
    sellers: list[str]
    photos: list[tuple[int, int]]  # (phash, dhash) of edited copies, by base photo
    photo_bases: list[list[int]]  # indices into ``photos`` per base photo
    templates: list[str]
    phone: tuple[str, str]
    handle: tuple[str, str]
    email: str
    account: str
    brands: list[str] = field(default_factory=list)


def _jpeg_round_trip(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


def _edited_hashes(
    bases: list[Image.Image], copies: int, rng: random.Random
) -> list[list[tuple[int, int]]]:
    """``copies`` reuses of every base photo, hashed like listing photos are."""
    images = []
    for base in bases:
        for _ in range(copies):
            images.append(_jpeg_round_trip(reuse(base, rng), rng.choice([60, 75, 90])))
    ph, dh = phash_dhash(images)
    out: list[list[tuple[int, int]]] = []
    for i in range(len(bases)):
        out.append([(int(ph[j]), int(dh[j])) for j in range(i * copies, (i + 1) * copies)])
    return out


def _spin(text: str, rng: random.Random, edits: int) -> str:
    """A light rewrite of ``text``: ``edits`` edits drawn from the families above."""
    words = text.split()
    for _ in range(edits):
        if not words:
            break
        i = rng.randrange(len(words))
        family = rng.randrange(7)
        w = words[i]
        bare = w.strip(".,!?").lower()
        if family == 0 and bare in SYNONYMS:
            words[i] = rng.choice(SYNONYMS[bare])
        elif family == 1 and len(words) > 6:
            del words[i]
        elif family == 2:
            words.insert(i, w)
        elif family == 3 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], w
        elif family == 4:
            words.insert(i, rng.choice(DECORATIONS))
        elif family == 5:
            words[i] = w.upper()
        elif len(w) > 3:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def _phone_written(cc: str, national: str, rng: random.Random) -> str:
    trunk = TRUNK[cc]
    groups = " ".join(national[i : i + 4] for i in range(0, len(national), 4))
    dashed = "-".join(national[i : i + 3] for i in range(0, len(national), 3))
    forms = [
        f"+{cc}{national}",
        f"+{cc} {groups}",
        f"00{cc} {national}",
        f"+{cc}-{dashed}",
        f"+{cc} ({trunk or '0'}){national}" if trunk else f"+{cc} {national}",
        f"Tel: {trunk}{groups}",
        f"call/whatsapp {trunk}{national}",
        _fullwidth(f"+{cc} {groups}"),
    ]
    return rng.choice(forms)


def _handle_written(app: str, handle: str, rng: random.Random) -> str:
    h = rng.choice([handle, handle.upper(), handle.capitalize()])
    if app == "wechat":
        forms = [f"WeChat: {h}", f"微信：{h}", f"wechat id {h}", f"WX: {h}", f"Weixin {h}"]
    elif app == "telegram":
        forms = [f"Telegram @{h}", f"t.me/{h}", f"TG: {h}", f"telegram: {h}"]
    else:
        forms = [f"LINE ID: {h}", f"Line: {h}", f"line.me/ti/p/~{h}"]
    return rng.choice(forms)


def _email_written(email: str, rng: random.Random) -> str:
    local, host = email.split("@")
    forms = [
        email,
        email.upper(),
        f"{local}+{rng.choice(['shop', 'orders', 'sale'])}@{host}",
        f"{local} (at) {host.replace('.', ' (dot) ')}",
        f"{local}[at]{host}",
    ]
    if host == "gmail.com" and len(local) > 3:
        forms.append(f"{local[:2]}.{local[2:]}@{host}")
    return rng.choice(forms)


def _random_hash(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64, n, dtype=np.uint64)


def generate_network(
    n_listings: int,
    n_sellers: int,
    registry_dir: Path,
    *,
    registry: Registry | None = None,
    seed: int = 0,
    photo_share: float = 0.2,
    operation_share: float = 0.06,
    official_copies: int = 8,
    photo_copies: int = 3,
    dropship_share: float = 0.05,
) -> tuple[pl.DataFrame, Registry]:
    """``n_listings`` listings by ``n_sellers`` sellers, about ``operation_share`` of them in
    operations and ``dropship_share`` honest dropshippers. Returns the listings
    (``listing_id``, ``seller_id``, ``title``, ``description``, ``brand``, ``category``,
    ``price``, ``payment_account``, ``phash``, ``dhash`` (null without a photo), ``label`` and
    the truth: ``operation``, null for sellers who belong to none, and ``photo_kind``:
    operation, supplier, known_fake, official, own) and the registry written to
    ``registry_dir``: ``registry`` (default: the bundled one) with one official photo and one
    known fake per brand, which the listing photos reuse.
    """
    if n_sellers < 2 or n_listings < n_sellers:
        raise ValueError("need at least 2 sellers and one listing per seller")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    base = registry or Registry.load(default_registry_dir())
    brands = base.brands.select("brand", "category", "reference_price").rows()
    # the registry's common words (ten languages), in a fixed order
    words = sorted(w for w in base.lexicon.common_words if w.isalpha()) or ["item"]
    # handles and mailboxes are ASCII
    ascii_words = [w for w in words if w.isascii()] or ["shop"]

    # registry photos: official (shared by honest resellers) and known fakes
    brand_names = sorted({b for b, _, _ in brands})
    photos_registry = Registry.load(
        sample_registry(
            base, registry_dir, brand_names, seed=seed, official_per_brand=1, fakes_per_brand=1
        )
    )

    def opened(table: pl.DataFrame) -> list[Image.Image]:
        by_brand = dict(table.select("brand", "image").iter_rows())
        out = []
        for b in brand_names:
            with Image.open(by_brand[b]) as im:
                out.append(im.convert("RGB"))
        return out

    official_imgs = opened(photos_registry.official_images)
    fake_imgs = opened(photos_registry.known_fakes)
    official_copies_h = _edited_hashes(official_imgs, official_copies, rng)
    fake_copies_h = _edited_hashes(fake_imgs, photo_copies, rng)

    seller_ids = [f"shop{i:06d}" for i in range(n_sellers)]
    order = list(range(n_sellers))
    rng.shuffle(order)
    n_op_sellers = int(n_sellers * operation_share)
    ops: list[_Operation] = []
    pos = 0
    while pos < n_op_sellers - 1:
        size = min(n_op_sellers - pos, max(2, min(40, int(rng.paretovariate(1.3) * 2))))
        members = [seller_ids[order[pos + k]] for k in range(size)]
        pos += size
        op_no = len(ops)
        n_base = rng.randint(2, 6)
        bases = [product_photo(seed * 104_729 + op_no * 16 + k, 128) for k in range(n_base)]
        hashed = _edited_hashes(bases, photo_copies, rng)
        photos: list[tuple[int, int]] = []
        photo_bases = []
        for copies in hashed:
            photo_bases.append(list(range(len(photos), len(photos) + len(copies))))
            photos += copies
        cc, plan = rng.choice(PHONE_PLANS)
        national = plan.format(rng.randrange(10 ** (plan.count("0") + 5)))
        national = national[: len(plan.format(0))]
        app = rng.choice(["wechat", "wechat", "telegram", "line"])
        handle = f"{rng.choice(ascii_words)}{rng.choice(['_', '', '.'])}{rng.randrange(10, 9999)}"
        local = f"{rng.choice(ascii_words)}{rng.choice(ascii_words)}{rng.randrange(10, 99)}"
        host = rng.choice(["gmail.com", "outlook.com", "qq.com", "163.com", "proton.me"])
        templates = []
        for _ in range(rng.randint(1, 2)):
            lines = rng.sample(OPERATION_LINES, 3)
            own = " ".join(rng.choice(words) for _ in range(8))
            text = ". ".join(
                ln.format(adj=rng.choice(ADJECTIVES), noun="{noun}", n=rng.randint(3, 15))
                for ln in lines
            )
            templates.append(f"{text}. {own}.")
        ops.append(
            _Operation(
                op_id=f"op{op_no:04d}",
                sellers=members,
                photos=photos,
                photo_bases=photo_bases,
                templates=templates,
                phone=(cc, national),
                handle=(app, handle.lower()),
                email=f"{local}@{host}",
                account=f"ACC-{nrng.integers(10**9, 10**10)}",
                brands=[rng.choice(brand_names) for _ in range(3)],
            )
        )
    op_of: dict[str, _Operation] = {s: op for op in ops for s in op.sellers}
    # honest dropshippers: groups of shops (sized like operations) selling one supplier's
    # catalogue of 3-12 products with its photos; photos are drawn when first used
    supplier_of: dict[str, tuple[int, int]] = {}
    n_drop = int(n_sellers * dropship_share)
    n_suppliers = 0
    while pos < n_op_sellers + n_drop - 1:
        size = min(n_op_sellers + n_drop - pos, max(2, min(40, int(rng.paretovariate(1.3) * 2))))
        catalogue = rng.randint(3, 12)
        for k in range(size):
            supplier_of[seller_ids[order[pos + k]]] = (n_suppliers, catalogue)
        pos += size
        n_suppliers += 1
    # (supplier, product) -> index into ``drop_photos`` (filled after the listings)
    drop_products: dict[tuple[int, int], int] = {}
    drop_rows: list[tuple[int, int, int]] = []  # (listing, product index, copy)
    # which of its operation's assets each member shop uses (at least one)
    uses: dict[str, set[str]] = {}
    for op in ops:
        for s in op.sellers:
            chosen = {
                a
                for a, p in (
                    ("photo", 0.6),
                    ("text", 0.6),
                    ("contact", 0.5),
                    ("account", 0.3),
                    ("fake", 0.3),
                )
                if rng.random() < p
            }
            uses[s] = chosen or {rng.choice(["photo", "text", "contact"])}

    # listings per seller: a long tail
    weights = nrng.pareto(1.5, n_sellers) + 1
    counts = np.maximum(1, np.floor(weights / weights.sum() * n_listings)).astype(int)
    while counts.sum() > n_listings:
        counts[counts.argmax()] -= counts.sum() - n_listings
    counts[nrng.integers(0, n_sellers)] += n_listings - counts.sum()

    cols: dict[str, list[object]] = {
        c: []
        for c in (
            "listing_id",
            "seller_id",
            "title",
            "description",
            "brand",
            "category",
            "price",
            "payment_account",
            "label",
            "operation",
            "photo_kind",
        )
    }
    photo_p: list[int | None] = []
    photo_d: list[int | None] = []
    n_random = 0
    for s_index, sid in enumerate(seller_ids):
        mine = op_of.get(sid)
        use = uses.get(sid, set())
        own_blurb = " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))
        own_account = f"ACC-{nrng.integers(10**9, 10**10)}"
        own_handle = f"{rng.choice(ascii_words)}{rng.randrange(100, 99999)}"
        fav = rng.choice(brand_names)
        for _ in range(int(counts[s_index])):
            brand, category, price = brands[rng.randrange(len(brands))]
            if mine is not None and rng.random() < 0.6:
                brand = rng.choice(mine.brands)
            elif mine is None and rng.random() < 0.5:
                brand = fav
            noun = rng.choice(
                [
                    "bag",
                    "watch",
                    "sneakers",
                    "wallet",
                    "hoodie",
                    "sunglasses",
                    "perfume",
                    "belt",
                    "earbuds",
                    "scarf",
                ]
            )
            colour = rng.choice(["black", "white", "brown", "red", "navy", "beige", "gold"])
            fake = mine is not None or rng.random() < 0.1
            photo: tuple[int, int] | None = None
            kind = None
            if rng.random() < photo_share:
                b = brand_names.index(brand)
                supplier = supplier_of.get(sid)
                if mine is not None and "photo" in use and rng.random() < 0.8:
                    same_base = rng.choice(mine.photo_bases)
                    photo, kind = mine.photos[rng.choice(same_base)], "operation"
                elif supplier is not None and rng.random() < 0.8:
                    product = (supplier[0], rng.randrange(supplier[1]))
                    index = drop_products.setdefault(product, len(drop_products))
                    drop_rows.append((len(cols["listing_id"]), index, rng.randrange(photo_copies)))
                    kind = "supplier"
                elif fake and ("fake" in use or mine is None) and rng.random() < 0.4:
                    photo, kind = rng.choice(fake_copies_h[b]), "known_fake"
                elif rng.random() < 0.35:
                    photo, kind = rng.choice(official_copies_h[b]), "official"
                else:
                    kind = "own"
                    n_random += 1
            if mine is not None:
                title = rng.choice(
                    [
                        f"{brand} {noun} {colour} 1:1 top quality",
                        f"{brand} {noun} {colour} AAA grade",
                        f"New {brand} {noun} {colour} factory price",
                    ]
                )
                if "text" in use and rng.random() < 0.85:
                    text = rng.choice(mine.templates).replace("{noun}", noun)
                    desc = _spin(text, rng, rng.randint(0, 4))
                else:
                    desc = " ".join(rng.sample(TEMPLATE_PHRASES, 2))
                if "contact" in use and rng.random() < 0.6:
                    pick = rng.randrange(3)
                    if pick == 0:
                        contact = _phone_written(*mine.phone, rng)
                    elif pick == 1:
                        contact = _handle_written(*mine.handle, rng)
                    else:
                        contact = "Email: " + _email_written(mine.email, rng)
                    desc = f"{desc} {contact}"
                account = mine.account if "account" in use else own_account
                price = price * rng.uniform(0.05, 0.3)
            else:
                title = f"{brand} {noun} {colour} {rng.choice(['', 'new', 'size M', '2024'])}"
                parts = rng.sample(TEMPLATE_PHRASES, rng.randint(1, 3))
                if rng.random() < 0.5:
                    parts.append(own_blurb)
                if rng.random() < 0.05:
                    parts.append(f"Questions? Telegram @{own_handle}")
                desc = " ".join(parts)
                account = own_account
                price = price * (rng.uniform(0.05, 0.3) if fake else rng.uniform(0.6, 1.1))
            cols["listing_id"].append(f"n{seed}-{len(cols['listing_id']):08d}")
            cols["seller_id"].append(sid)
            cols["title"].append(" ".join(title.split()))
            cols["description"].append(desc)
            cols["brand"].append(brand)
            cols["category"].append(category)
            cols["price"].append(round(max(1.0, price), 2))
            cols["payment_account"].append(account)
            cols["label"].append(int(fake))
            cols["operation"].append(None if mine is None else mine.op_id)
            cols["photo_kind"].append(kind)
            photo_p.append(None if photo is None else photo[0])
            photo_d.append(None if photo is None else photo[1])
    # unrelated photos: random hashes
    rp = iter(_random_hash(nrng, n_random).tolist())
    rd = iter(_random_hash(nrng, n_random).tolist())
    for i, drawn in enumerate(cols["photo_kind"]):
        if drawn == "own":
            photo_p[i], photo_d[i] = next(rp), next(rd)
    # suppliers' photos, each used product drawn once and edited by each shop's re-saves
    catalogue_photos = [
        product_photo(seed * 7_919 + 1_000_003 + supplier * 64 + product, 128)
        for supplier, product in drop_products
    ]
    drop_hashes = _edited_hashes(catalogue_photos, photo_copies, rng)
    for i, index, copy in drop_rows:
        photo_p[i], photo_d[i] = drop_hashes[index][copy]
    frame = pl.DataFrame(cols, schema_overrides={"label": pl.Int8}).with_columns(
        pl.Series("phash", photo_p, pl.UInt64), pl.Series("dhash", photo_d, pl.UInt64)
    )
    return frame, photos_registry


def ring_truth(frame: pl.DataFrame) -> pl.DataFrame:
    """``seller_id`` -> ``operation`` for the sellers of operations."""
    return (
        frame.filter(pl.col("operation").is_not_null())
        .select("seller_id", "operation")
        .unique()
        .sort("seller_id")
    )


def pairwise_scores(truth: pl.DataFrame, rings: pl.DataFrame, all_sellers: int) -> dict[str, float]:
    """Pairwise precision and recall of ``rings`` (``ring_id``, ``sellers``) against
    ``truth`` (``seller_id``, ``operation``), and the share of sellers outside every
    operation that were put in a ring."""
    pred = rings.select("ring_id", "sellers").explode("sellers").rename({"sellers": "seller_id"})

    def pairs(groups: pl.DataFrame, col: str) -> int:
        sizes = groups.group_by(col).len().get_column("len").to_numpy().astype(np.int64)
        return int((sizes * (sizes - 1) // 2).sum())

    both = pred.join(truth, on="seller_id", how="inner")
    hit = pairs(both.with_columns(pl.format("{}|{}", "ring_id", "operation").alias("k")), "k")
    n_pred, n_true = pairs(pred, "ring_id"), pairs(truth, "operation")
    honest_in = pred.join(truth, on="seller_id", how="anti").height
    honest_total = all_sellers - truth.height
    return {
        "precision": hit / n_pred if n_pred else 1.0,
        "recall": hit / n_true if n_true else 1.0,
        "true_pairs": n_true,
        "predicted_pairs": n_pred,
        "honest_in_rings": honest_in,
        "honest_share_in_rings": honest_in / honest_total if honest_total else 0.0,
    }
