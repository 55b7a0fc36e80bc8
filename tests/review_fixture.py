"""A small scored marketplace for the review page's tests: real photographs as the registry's
official photos and known fakes, listings showing them mirrored, cropped or as they are, and
listings whose every text field is hostile markup."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
from PIL import Image

from pipelines.registry import default_registry_dir, load_registry
from pipelines.run import run_score
from pipelines.stages import ScoringPlan

#: markup that runs script if a page ever parses it as HTML; each sets ``window.__pwned``
HOSTILE = {
    "script": '<script>window.__pwned="title-script"</script> Gucci replica bag 1:1',
    "onerror": "<img src=x onerror=\"window.__pwned='title-img'\"> Rolex replica AAA watch",
    "svg": "Gucci <svg onload=window.__pwned='svg'> mirror quality bag, \"quoted\", comma",
    "comment": "<!-- Rolex --> replica watch </script><script>window.__pwned='close'</script>",
    "separators": "Gucci replica\u2028bag\u2029 with line separators",
}
HOSTILE_SELLER = "\"><img src=x onerror=window.__pwned='seller'>"
HOSTILE_IMAGE = "x\"><img src=x onerror=window.__pwned='file'>.jpg"
#: a declared brand and a category holding markup (the reasons quote the declared brand)
HOSTILE_BRAND = "<b onmouseover=window.__pwned='brand'>Gucci & Co</b>"
HOSTILE_CATEGORY = "<iframe srcdoc='<script>parent.__pwned=1</script>'>"
HOSTILE_DESCRIPTION = "</script><script>window.__pwned='description'</script> 1:1 copy"

#: registry brand -> (official photo, known fake photo): parts of real photographs
REFERENCES = {
    "Gucci": ("china-top-left", "flower-top"),
    "Rolex": ("hopper", "china-bottom-right"),
    "Nike": ("present", "flower-bottom"),
}


def real_photographs() -> dict[str, Image.Image]:
    """Real photographs shipped by scikit-learn and matplotlib, and distinct parts of them."""
    import matplotlib
    import sklearn

    images = Path(sklearn.__file__).parent / "datasets" / "images"
    china = Image.open(images / "china.jpg").convert("RGB")
    flower = Image.open(images / "flower.jpg").convert("RGB")
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    w, h = china.size
    fw, fh = flower.size
    return {
        "china-top-left": china.crop((0, 0, w // 2, h // 2)),
        "china-bottom-right": china.crop((w // 2, h // 2, w, h)),
        "china-bottom-left": china.crop((0, h // 2, w // 2, h)),
        "flower-top": flower.crop((0, 0, fw, fh // 2)),
        "flower-bottom": flower.crop((0, fh // 2, fw, fh)),
        "hopper": Image.open(sample / "grace_hopper.jpg").convert("RGB"),
        "present": Image.open(sample / "Minduka_Present_Blue_Pack.png").convert("RGB"),
    }


def _jpeg(img: Image.Image, path: Path, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    path.write_bytes(buf.getvalue())


def _crop(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * share), int(h * share)
    return img.crop((dx, dy, w - dx, h - dy))


def build_registry(root: Path, photos: dict[str, Image.Image]) -> Path:
    """The seed registry's brands with a real photograph as each brand's official photo and
    another as its known fake."""
    base = default_registry_dir()
    root.mkdir(parents=True, exist_ok=True)
    for name in ("brands.csv", "lexicon.toml", "common_words.txt"):
        if (base / name).is_file():
            (root / name).write_bytes((base / name).read_bytes())
    official, fakes = ["image,brand"], ["image,brand"]
    for brand, (o, f) in REFERENCES.items():
        slug = brand.lower()
        _jpeg(photos[o].resize((320, 320)), root / "official" / f"{slug}.jpg", 92)
        _jpeg(photos[f].resize((320, 320)), root / "fakes" / f"{slug}.jpg", 85)
        official.append(f"official/{slug}.jpg,{brand}")
        fakes.append(f"fakes/{slug}.jpg,{brand}")
    (root / "official_images.csv").write_text("\n".join(official) + "\n", encoding="utf-8")
    (root / "known_fakes.csv").write_text("\n".join(fakes) + "\n", encoding="utf-8")
    return root


def build_marketplace(tmp: Path) -> dict[str, Path]:
    """Registry, images, listings and their scores under ``tmp``."""
    photos = real_photographs()
    registry = build_registry(tmp / "registry", photos)
    images = tmp / "images"
    images.mkdir(parents=True, exist_ok=True)

    def ref(name: str) -> Image.Image:
        return photos[name].resize((320, 320)).convert("RGB")

    shots = {
        "fake-mirrored.jpg": ref("flower-top").transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "fake-cropped.jpg": _crop(ref("china-bottom-right"), 0.10),
        "official-as-is.jpg": ref("present"),
        "unrelated.jpg": photos["china-bottom-left"].resize((300, 300)).convert("RGB"),
        HOSTILE_IMAGE: ref("flower-bottom"),
    }
    for name, img in shots.items():
        _jpeg(img, images / name, 88)
    rows = [
        ("F1", "Guccci Marmont bag replica", 59.0, "Gucci", "s-ann", "fake-mirrored.jpg"),
        ("F2", "R0lex Submariner AAA copy watch", 120.0, "Rolex", "s-bob", "fake-cropped.jpg"),
        ("F3", "Nike Air Max 1:1 replica shoes", 19.0, "Nike", "s-cy", "official-as-is.jpg"),
        ("F4", "Ｇｕｃｃｉ bag mirror quality", 45.0, "Gucci", "s-ann", "unrelated.jpg"),
        ("F5", "Rolexx Daytona watch", 150.0, None, "s-dee", None),
        ("F6", "Gucci belt replica", 15.0, "Gucci", "s-eve", None),
        ("F7", "Nikee running shoes replica", 12.0, "Nike", "s-fay", HOSTILE_IMAGE),
        ("F8", "Rolex Datejust 1:1 super clone", 200.0, "Rolex", "s-gus", None),
        ("H1", HOSTILE["script"], 30.0, "Gucci", HOSTILE_SELLER, "fake-mirrored.jpg"),
        ("H2", HOSTILE["onerror"], 80.0, "Rolex", "s-hal", None),
        ("H3", HOSTILE["svg"], 25.0, HOSTILE_BRAND, "s-ivy", None),
        ("H4", HOSTILE["comment"], 90.0, "Rolex", "s-jo", None),
        ("H5", HOSTILE["separators"], 20.0, "Gucci", "s-kim", None),
        ("A1", "Plain cotton t-shirt", 10.0, None, "s-lee", None),
        ("A2", "Wooden chair oak", 60.0, None, "s-max", None),
    ]
    frame = pl.DataFrame(
        {
            "listing_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "price": [r[2] for r in rows],
            "brand": [r[3] for r in rows],
            "seller_id": [r[4] for r in rows],
            "image": [r[5] for r in rows],
            "description": [HOSTILE_DESCRIPTION if r[0] == "H2" else None for r in rows],
            "category": [HOSTILE_CATEGORY if r[0] == "H3" else None for r in rows],
        },
        schema_overrides={
            "brand": pl.String,
            "image": pl.String,
            "description": pl.String,
            "category": pl.String,
        },
    )
    listings = tmp / "listings.parquet"
    frame.write_parquet(listings)
    plan = ScoringPlan.build(load_registry(registry), images_root=images)
    scores = tmp / "scores.parquet"
    run_score(listings, plan, scores, quiet=True)
    return {"registry": registry, "images": images, "listings": listings, "scores": scores}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


#: the seller-network tables as ``fakestop network`` documents them
RING_KINDS = ("photo", "known_fake", "title", "description", "contact", "account")


def build_network(root: Path) -> Path:
    """``rings.parquet`` and ``links.parquet``: one ring of three sellers, the hostile one
    among them."""
    root.mkdir(parents=True, exist_ok=True)
    evidence = pl.Struct({k: pl.Int64() for k in RING_KINDS})
    pl.DataFrame(
        {
            "ring_id": [7],
            "sellers": [["s-ann", "s-eve", HOSTILE_SELLER]],
            "listings": [4],
            "evidence": [
                {
                    "photo": 2,
                    "known_fake": 1,
                    "title": 0,
                    "description": 0,
                    "contact": 1,
                    "account": 0,
                }
            ],
            "top_brands": [["Gucci"]],
            "risk": [0.97],
        },
        schema_overrides={"evidence": evidence},
    ).write_parquet(root / "rings.parquet")
    pl.DataFrame(
        {
            "seller_a": ["s-ann", "s-ann"],
            "seller_b": ["s-eve", HOSTILE_SELLER],
            "ring_id": [7, 7],
            "strength": [1.85, 1.25],
            "strong": [True, True],
            "evidence": [["same photo m-1.jpg", "contact +44 20 7946 0000"], ["same wechat id"]],
        }
    ).write_parquet(root / "links.parquet")
    return root


def build_ledger(path: Path) -> Path:
    """A strike ledger where seller s-bob has two complaints."""
    from pipelines.ledger import Ledger

    complaints = path.with_suffix(".csv")
    complaints.write_text(
        "seller_id,listing_id,brand,date\ns-bob,old-1,Rolex,2026-01-05\ns-bob,old-2,Rolex,"
        "2026-02-10\n",
        encoding="utf-8",
    )
    with Ledger(path) as ledger:
        ledger.import_complaints(complaints)
    return path
