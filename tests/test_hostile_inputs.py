"""Hostile input through every entry point: ``fakestop score`` and the Python API.

Every case completes and keeps every row (rows out == rows in, in order), and the row's status,
error or reasons say what happened; a file that cannot be read at all is one error line naming
it, exit code 2, no traceback. The CLI cases run in child processes, whose peak memory
(``ru_maxrss``) must stay under :data:`MEMORY_BOUND_MIB`: decompression bombs, a 1 MB title or
an archive that inflates to 512 MB must not blow it up.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from PIL import Image

from models.features import FEATURES
from models.persist import FORMAT_VERSION, card_path
from pipelines import Scorer, ValidationError
from pipelines.registry import default_registry_dir, load_registry
from pipelines.validation import RULE_NAMES
from seeds.images import product_photo
from tests.test_fusion import Payload

REPO = Path(__file__).resolve().parents[1]
#: peak resident memory allowed for one scoring process: an idle one holds about 300 MB;
#: decoding the 50,000 x 50,000 PNG bomb alone would take 2.5 GB
MEMORY_BOUND_MIB = 1024
ESCAPES = "path escapes the images directory"


# ---------------------------------------------------------------- images


def jpeg(img: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A 100-byte PNG declaring a ``width`` x ``height`` image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def bomb_gif(width: int, height: int) -> bytes:
    """A tiny GIF whose screen and image descriptor declare ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    at = data.index(0x2C, 13)  # image descriptor
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bomb_jpeg(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) declares ``width`` x ``height``."""
    data = bytearray(jpeg(Image.new("RGB", (16, 16), (9, 9, 9))))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_rotated(img: Image.Image) -> bytes:
    """``img`` stored turned by 90°, with EXIF orientation 6 saying how to turn it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg(img.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())


def animated(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


def listing_photos(fake: Image.Image) -> dict[str, bytes]:
    """The known fake in every odd form a listing may carry it, plus broken and bomb files."""
    good = jpeg(fake)
    gray16 = (np.asarray(fake.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    alpha = fake.convert("RGBA")
    alpha.paste((0, 0, 0, 0), (0, 0, 12, 12))  # a transparent corner
    return {
        "truncated.jpg": good[: len(good) // 2],
        "garbage.jpg": b"this is not an image, just text " * 20,
        "empty.jpg": b"",
        "fake_png.jpg": png(fake),
        "fake_cmyk.jpg": jpeg(fake.convert("CMYK")),
        "fake_16bit.png": png(Image.fromarray(gray16)),
        "fake_palette.png": png(fake.quantize(64)),
        "fake_animated.gif": animated([fake, product_photo(303)]),
        "fake_exif.jpg": exif_rotated(fake),
        "fake_alpha.png": png(alpha),
        "bomb.png": bomb_png(50_000, 50_000),
        "bomb.gif": bomb_gif(65_535, 65_535),
        "bomb.jpg": bomb_jpeg(65_000, 65_000),
    }


# ---------------------------------------------------------------- the hostile table


@dataclass(frozen=True)
class Row:
    """One hostile listing and what must come out for it."""

    listing_id: str
    title: str
    price: str
    image: str = ""
    #: rules the row breaks (none: it is scored)
    rules: tuple[str, ...] = ()
    #: text one of its reasons contains
    reason: str | None = None
    brand: str | None = None
    #: its photo is the registry's known fake in disguise
    fake_photo: bool = False


LAMP = "desk lamp"
_words = random.Random(0)
HUGE_TITLE = " ".join(
    "".join(_words.choices(string.ascii_lowercase, k=_words.randint(3, 9))) for _ in range(160_000)
)[:1_000_000]

ROWS = [
    # prices
    Row("p-nan", LAMP, "nan", rules=("price_positive",)),
    Row("p-inf", LAMP, "inf", rules=("price_positive",)),
    Row("p-minus-inf", LAMP, "-inf", rules=("price_positive",)),
    Row("p-overflow", LAMP, "1e400", rules=("price_positive",)),
    Row("p-negative", LAMP, "-5", rules=("price_positive",)),
    Row("p-zero", LAMP, "0", rules=("price_positive",)),
    Row("p-minus-zero", LAMP, "-0.0", rules=("price_positive",)),
    Row("p-words", LAMP, "twelve dollars", rules=("price_positive",)),
    Row("p-comma", LAMP, "1,5"),  # a decimal comma: 1.5
    Row("p-groups", LAMP, "1,2,3", rules=("price_positive",)),
    Row("p-symbols", LAMP, "$€5", rules=("price_positive",)),
    Row("p-hex", LAMP, "0x10", rules=("price_positive",)),
    Row("p-missing", LAMP, "", rules=("price_positive",)),
    Row("p-padded", LAMP, "  12.5  "),
    Row("p-tiny", LAMP, "1e-300"),
    Row("p-huge", "Rolex Submariner", "1e308", brand="Rolex"),
    # titles
    Row("t-empty", "", "10", rules=("title_present",)),
    Row("t-blank", " \t  ", "10", rules=("title_present",)),
    Row("t-huge", HUGE_TITLE, "10"),
    Row("t-control", "Rolex\x07 Submariner \x1b[31mAAA\x1b[0m", "40", brand="Rolex"),
    Row("t-nul", "Rolex\x00Submariner", "40", brand="Rolex"),
    Row("t-bidi", "\u202eRolex\u202c replica watch", "40", brand="Rolex", reason="replica"),
    Row("t-zero-width", "Ro\u200blex watch", "40", brand="Rolex", reason="zero-width"),
    Row("t-mixed-script", "R\u043elex watch", "40", brand="Rolex", reason="look-alike"),
    Row("t-rtl-emoji", "ساعة رولكس Rolex 🔥🔥", "40", brand="Rolex"),
    # ids
    Row("dup", LAMP, "10"),
    Row("dup", LAMP, "10", rules=("id_unique",)),
    Row("", LAMP, "10", rules=("id_present",)),
    Row("   ", LAMP, "10", rules=("id_present",)),
    Row("\u202eid-bidi\u200b", LAMP, "10"),
    # images: every row is valid, the photo alone is hostile
    Row("i-truncated", LAMP, "10", "truncated.jpg", reason="truncated"),
    Row("i-garbage", LAMP, "10", "garbage.jpg", reason="not a recognised image format"),
    Row("i-zero-byte", LAMP, "10", "empty.jpg", reason="empty file"),
    Row("i-wrong-extension", LAMP, "10", "fake_png.jpg", fake_photo=True),
    Row("i-cmyk", LAMP, "10", "fake_cmyk.jpg", fake_photo=True),
    Row("i-16bit", LAMP, "10", "fake_16bit.png", fake_photo=True),
    Row("i-palette", LAMP, "10", "fake_palette.png", fake_photo=True),
    Row("i-animated", LAMP, "10", "fake_animated.gif", fake_photo=True),
    Row("i-exif-rotated", LAMP, "10", "fake_exif.jpg", fake_photo=True),
    Row("i-alpha", LAMP, "10", "fake_alpha.png", fake_photo=True),
    Row("i-bomb-png", LAMP, "10", "bomb.png", reason="declared size 50000x50000 exceeds"),
    Row("i-bomb-gif", LAMP, "10", "bomb.gif", reason="declared size 65535x65535 exceeds"),
    Row("i-bomb-jpeg", LAMP, "10", "bomb.jpg", reason="declared size 65000x65000 exceeds"),
    Row("i-dotdot", LAMP, "10", "../outside/secret.jpg", reason=ESCAPES),
    Row("i-absolute", LAMP, "10", "{outside}/secret.jpg", reason=ESCAPES),
    Row("i-absolute-inside", LAMP, "10", "{images}/fake_cmyk.jpg", reason=ESCAPES),
    Row("i-symlink-out", LAMP, "10", "link_out.jpg", reason=ESCAPES),
    Row("i-symlink-in", LAMP, "10", "link_in.jpg", fake_photo=True),
    Row("i-missing", LAMP, "10", "missing.jpg", reason="file not found"),
    Row("i-directory", LAMP, "10", "subdir", reason="not a file"),
]
BOMBS = [r for r in ROWS if r.listing_id.startswith("i-bomb")]
#: rows whose outcome depends on how a file format carries text and numbers
READER_ROWS = [i for i, r in enumerate(ROWS) if not r.image and r.title != HUGE_TITLE]
PHOTO_ROWS = [i for i, r in enumerate(ROWS) if r.image]


def table(rows: list[Row], world: Path) -> pl.DataFrame:
    where = {"outside": str(world / "outside"), "images": str(world / "images")}
    return pl.DataFrame(
        {
            "listing_id": [r.listing_id for r in rows],
            "title": [r.title for r in rows],
            "price": [r.price for r in rows],
            "image": [r.image.format(**where) for r in rows],
        },
        schema=dict.fromkeys(["listing_id", "title", "price", "image"], pl.String),
    )


def broken_rules(error: str | None) -> set[str]:
    """Names of the rules an ``error`` lists (a row_parsed message has "; " parts of its own)."""
    named = {part.split(":", 1)[0] for part in (error or "").split("; ")}
    return named & set(RULE_NAMES)


# ---------------------------------------------------------------- files that are not what they say

NDJSON_LINES: list[bytes] = [
    b'{"listing_id": "n1", "title": "lamp", "price": 5}',
    b"{broken",
    b"[1, 2]",
    b'"just a string"',
    b"",  # a blank line is no record
    b"\xff\xfe not utf-8",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"listing_id": "n2", "title": "lamp \\ud800", "price": "5"}',
    b'{"listing_id": "n3", "title": {"nested": true}, "price": 5}',
    b'{"listing_id": "n4", "title": "lamp", "price": "5", "__parse_error": "x", "__row": 7}',
    b'{"listing_id": "n5", "title": "lamp", "price": true}',
]

#: file -> (content, [(listing_id, rules broken, text in error)]): one row per record, in order
MALFORMED: dict[str, tuple[bytes, list[tuple[str | None, set[str], str]]]] = {
    "bad_bytes.csv": (
        b"listing_id,title,price\n1,Rolex watch,40\n2,bad \xff\xfe bytes,5\n3,lamp,7.5\n",
        [("1", set(), ""), ("2", {"row_parsed"}, "line 3: invalid UTF-8"), ("3", set(), "")],
    ),
    "unterminated_quote.csv": (
        b'listing_id,title,price,description\n1,lamp,5,fine\n2,lamp,5,"never closed\n'
        b"3,lamp,6,fine\n4,lamp,7,fine\n",
        [
            ("1", set(), ""),
            ("2", {"row_parsed"}, "line 3: a quoted field is never closed"),
            ("3", set(), ""),
            ("4", set(), ""),
        ],
    ),
    "ragged.csv": (
        b"listing_id,title,price\n1,short row\n2,lamp,6,extra,fields\n3,lamp,7\n",
        [
            ("1", {"price_positive"}, "price (missing)"),
            ("2", {"row_parsed"}, "line 3: expected 3 fields, got 5"),
            ("3", set(), ""),
        ],
    ),
    "crlf_nul.csv": (
        b"listing_id,title,price\r\n1,lamp\x00x,5\r\n2,lamp,6\r\n",
        [("1", set(), ""), ("2", set(), "")],
    ),
    "duplicate_header.csv": (
        b"listing_id,title,price,price\n1,lamp \xff,5,6\n2,lamp,5,6\n",
        [("1", {"row_parsed"}, "invalid UTF-8"), ("2", set(), "")],
    ),
    "reserved_names.csv": (
        b"listing_id,title,price,__row,__parse_error,__seen_earlier,reasons,status,risk\n"
        b"1,lamp,5,9,injected,true,r,quarantined,0.9\n2,lamp,6,9,x,true,r,ok,x\n",
        [("1", set(), ""), ("2", set(), "")],
    ),
    "malformed.ndjson": (
        b"\n".join(NDJSON_LINES) + b"\n",
        [
            ("n1", set(), ""),
            (None, {"row_parsed", "id_present", "title_present", "price_positive"}, "line 2"),
            (None, {"row_parsed", "id_present", "title_present", "price_positive"}, "line 3"),
            (None, {"row_parsed", "id_present", "title_present", "price_positive"}, "line 4"),
            (None, {"row_parsed", "id_present", "title_present", "price_positive"}, "line 6"),
            (None, {"row_parsed", "id_present", "title_present", "price_positive"}, "line 7"),
            ("n2", set(), ""),
            ("n3", set(), ""),
            ("n4", set(), ""),
            ("n5", {"price_positive"}, "price true"),
        ],
    ),
    "empty.ndjson": (b"", []),
}


def wrong_types_parquet(path: Path) -> list[tuple[str | None, set[str], str]]:
    pq.write_table(
        pa.table(
            {
                "listing_id": pa.array([1, 2, 3], pa.int64()),
                "title": pa.array([b"lamp", b"\xff\xfe", b"lamp"], pa.binary()),
                "price": pa.array([True, False, None], pa.bool_()),
                "category": pa.array([["a"], None, ["b"]], pa.list_(pa.string())),
                "label": pa.array(["1", "yes", None]),
            }
        ),
        path,
    )
    price = "price: expected a number, got Boolean"
    category = "category: expected text, got List(String)"
    return [
        ("1", {"row_parsed", "price_positive"}, f"{price}; {category}"),
        ("2", {"row_parsed", "price_positive"}, "title: not valid UTF-8"),
        ("3", {"row_parsed", "price_positive"}, category),
    ]


def dates_as_prices_parquet(path: Path) -> list[tuple[str | None, set[str], str]]:
    pq.write_table(
        pa.table(
            {
                "listing_id": ["d1", "d2"],
                "title": pa.array(["lamp", "lamp"], pa.large_string()),
                "price": pa.array([1, 2], pa.timestamp("s")),
                "currency": pa.array(["USD", "EUR"]).dictionary_encode(),
            }
        ),
        path,
    )
    why = "price: expected a number, got Datetime"
    return [
        ("d1", {"row_parsed", "price_positive"}, why),
        ("d2", {"row_parsed", "price_positive"}, why),
    ]


#: files that cannot be read at all: one line naming the file, exit code 2, no output
FATAL: dict[str, tuple[bytes | None, str]] = {
    "zero_bytes.parquet": (b"", "zero_bytes.parquet"),
    "truncated.parquet": (None, "truncated.parquet"),
    "csv_inside.parquet": (b"listing_id,title,price\n1,a,5\n", "csv_inside.parquet"),
    "header_never_closed.csv": (b'listing_id,"title,price\n1,a,5\n', "line 1"),
    "no_price.csv": (b"listing_id,title\n1,a\n", "missing required column(s) price"),
    "zero_bytes.csv": (b"", "missing required column(s)"),
    # UTF-16 with a byte-order mark is read (tests/test_exports.py); without one it is refused
    "utf16_no_mark.csv": (
        "listing_id,title,price\n1,a,5\n".encode("utf-16-le"),
        "UTF-16 or UTF-32 text without a byte-order mark",
    ),
    "listings.xlsx": (b"PK\x03\x04", "unknown format .xlsx"),
    "missing.csv": (None, "no such file"),
}


# ---------------------------------------------------------------- registries and models

BRANDS = "brand,category,reference_price,aliases\n"
#: registry directory -> (files, text the one error line must hold)
REGISTRIES: dict[str, tuple[dict[str, bytes], str]] = {
    "bad_utf8": (
        {"brands.csv": (BRANDS + "Rolex,watches,9500,\n").encode() + b"Gu\xffcci,bags,1800,\n"},
        "brands.csv line 3: not valid UTF-8",
    ),
    "quote_never_closed": (
        {
            "brands.csv": (
                BRANDS + 'Rolex,watches,9500,\n"Gucci,bags,1800,\nNike,shoes,120,\n'
            ).encode()
        },
        "brands.csv line 3: a quoted field is never closed",
    ),
    "ragged": (
        {"brands.csv": (BRANDS + "Rolex,watches,9500,\nGucci,bags\n").encode()},
        "brands.csv line 3: expected 4 fields, got 2",
    ),
    "bidi_brand": (
        {"brands.csv": (BRANDS + "\u202eRolex,watches,9500,\n").encode()},
        "brands.csv line 2: '\\u202eRolex' contains the control character U+202E",
    ),
    "bad_price": (
        {"brands.csv": (BRANDS + "Rolex,watches,9500,\nGucci,bags,abc,\n").encode()},
        "brands.csv line 3: reference_price 'abc' is not a positive number",
    ),
    "image_escapes": (
        {
            "brands.csv": (BRANDS + "Rolex,watches,9500,\n").encode(),
            "official_images.csv": b"image,brand\n../../../etc/passwd,Rolex\n",
        },
        "official_images.csv line 2: image '../../../etc/passwd' is outside the registry",
    ),
    "bad_toml": (
        {
            "brands.csv": (BRANDS + "Rolex,watches,9500,\n").encode(),
            "lexicon.toml": b"[counterfeit.strong]\nen = ['fake'\n",
        },
        "lexicon.toml line 2: invalid TOML (Unclosed array",
    ),
    "unknown_kind": (
        {
            "brands.csv": (BRANDS + "Rolex,watches,9500,\n").encode(),
            "lexicon.toml": b'[legitimate.acessory]\nen = ["strap"]\n',
        },
        "lexicon.toml: unknown kind [legitimate.acessory], expected one of accessory_prefix,",
    ),
    "bad_share": (
        {
            "brands.csv": (BRANDS + "Rolex,watches,9500,\n").encode(),
            "lexicon.toml": b'[small_goods."cheap"]\nen = ["strap"]\n',
        },
        'lexicon.toml: [small_goods."cheap"] must be named by a share of the reference price',
    ),
}


def write_card(model: Path, fingerprint: str) -> None:
    """A card that vouches for ``model`` as it is now (the attacker ships both files)."""
    card = {
        "format": "fakestop-fusion",
        "format_version": FORMAT_VERSION,
        "features": list(FEATURES),
        "registry_fingerprint": fingerprint,
        "thresholds": {"block": 0.9, "review": 0.5},
        "model_sha256": __import__("hashlib").sha256(model.read_bytes()).hexdigest(),
    }
    card_path(model).write_text(json.dumps(card))


def inflating_archive(path: Path, mib: int) -> None:
    """A zip of a few MB whose schema.json inflates to ``mib`` MiB."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("schema.json", "w", force_zip64=True) as member,
    ):
        block = b" " * 2**20
        for _ in range(mib):
            member.write(block)


def hostile_models(root: Path, fingerprint: str) -> dict[str, str]:
    """Model files, each with the text its one error line must hold."""
    root.mkdir()
    cases: dict[str, str] = {}
    m = root / "no_card.skops"
    m.write_bytes(b"PK\x03\x04 anything")
    cases[m.name] = "not a fakestop model"
    m = root / "foreign_types.skops"
    sio.dump(Payload(str(root / "EXECUTED")), m)
    write_card(m, fingerprint)
    cases[m.name] = "contains types a fusion model never has"
    m = root / "tampered.skops"
    sio.dump(Payload(str(root / "EXECUTED")), m)
    write_card(m, fingerprint)
    data = bytearray(m.read_bytes())
    data[len(data) // 2] ^= 0xFF
    m.write_bytes(bytes(data))
    cases[m.name] = "content does not match its model card (sha256)"
    m = root / "inflates.skops"
    inflating_archive(m, 512)
    write_card(m, fingerprint)
    cases[m.name] = "unpacks to 536,870,912 bytes"
    m = root / "not_zip.skops"
    m.write_bytes(os.urandom(4096))
    write_card(m, fingerprint)
    cases[m.name] = "not a skops model file"
    m = root / "deep_card.skops"
    m.write_bytes(b"PK")
    card_path(m).write_text("[" * 100_000)
    cases[m.name] = "unreadable model card"
    return cases


# ---------------------------------------------------------------- running the CLI in children


def _drive(jobs_file: str, results_file: str) -> None:
    """Child process: run each job (CLI argv, or an API call), record what it gave and the
    process's peak memory so far (jobs run in order, the cheapest and most telling first)."""
    import resource

    from pipelines.cli import main

    results = []
    for kind, payload in json.loads(Path(jobs_file).read_text()):
        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            value = main(payload) if kind == "cli" else globals()[payload[0]](*payload[1:])
        results.append(
            {
                "value": value,
                "stdout": out.getvalue(),
                "stderr": err.getvalue(),
                "seconds": time.perf_counter() - started,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    Path(results_file).write_text(json.dumps(results))


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FAKESTOP_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    out: Any
    err: Any
    killer: threading.Timer


def start_child(argv: list[str], *, timeout: float = 180) -> Child:
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish_child
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish_child
    proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=REPO, env=_child_env())
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    return Child(proc, out, err, killer)


def finish_child(child: Child) -> tuple[int, str, str, float]:
    """Wait for ``child``: exit code, stdout, stderr and its own peak memory (MiB)."""
    try:
        _, status, usage = os.wait4(child.proc.pid, 0)
    finally:
        child.killer.cancel()
    child.proc.returncode = os.waitstatus_to_exitcode(status)
    texts = []
    for fh in (child.out, child.err):
        fh.seek(0)
        texts.append(fh.read().decode("utf-8", "replace"))
        fh.close()
    return child.proc.returncode, texts[0], texts[1], usage.ru_maxrss / 1024


def _api_rows(registry: str, images: str, paths_file: str, photos_file: str) -> dict[str, Any]:
    """Child-side API job: ``Scorer.score_batch`` in quarantine mode over the hostile table
    (image paths), and over the image rows with each photo's bytes instead of its path."""
    scorer = Scorer.from_registry(registry, images=images, on_error="quarantine")
    out: dict[str, Any] = {}
    for how, rows_file in (("paths", paths_file), ("bytes", photos_file)):
        records = pl.read_parquet(rows_file).to_dicts()
        if how == "bytes":
            for rec in records:
                path = Path(images) / rec["image"]
                # photos inside the images directory; refused paths stay paths
                if "/" not in rec["image"] and path.is_file() and not path.is_symlink():
                    rec["image"] = path.read_bytes()
        out[how] = [
            {
                "status": r.status,
                "error": r.error,
                "reasons": list(r.reasons),
                "brand": r.matched_brand,
                "image_score": r.image_score,
                "risk": r.risk,
            }
            for r in scorer.score_batch(records)
        ]
    return out


@dataclass
class World:
    root: Path
    registry: Path
    images: Path
    results: dict[str, dict[str, Any]]
    expected: dict[str, list[tuple[str | None, set[str], str]]]
    models: dict[str, str]
    csv_run: tuple[int, str, str, float]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("hostile")
    reg = root / "registry"
    (reg / "official").mkdir(parents=True)
    (reg / "fakes").mkdir()
    (reg / "brands.csv").write_text(
        BRANDS + "Rolex,watches,9500,\nGucci,bags,1800,GG\nNike,shoes,120,\n", encoding="utf-8"
    )
    (reg / "official" / "gucci_1.jpg").write_bytes(jpeg(product_photo(101)))
    fake = product_photo(202)
    (reg / "fakes" / "gucci_fake.jpg").write_bytes(jpeg(fake))
    (reg / "official_images.csv").write_text("image,brand\nofficial/gucci_1.jpg,Gucci\n")
    (reg / "known_fakes.csv").write_text("image,brand\nfakes/gucci_fake.jpg,Gucci\n")

    images = root / "images"
    (images / "subdir").mkdir(parents=True)
    for name, data in listing_photos(fake).items():
        (images / name).write_bytes(data)
    (root / "outside").mkdir()
    (root / "outside" / "secret.jpg").write_bytes(jpeg(fake))
    (images / "link_out.jpg").symlink_to(root / "outside" / "secret.jpg")
    (images / "link_in.jpg").symlink_to(images / "fake_cmyk.jpg")

    inputs = root / "inputs"
    inputs.mkdir()
    hostile = table(ROWS, root)
    hostile.write_csv(inputs / "hostile.csv")
    hostile.write_parquet(inputs / "hostile.parquet")
    readers = table([ROWS[i] for i in READER_ROWS], root)
    readers.write_ndjson(inputs / "readers.ndjson")
    readers.write_parquet(inputs / "readers.parquet")
    table([ROWS[i] for i in PHOTO_ROWS], root).write_parquet(inputs / "photos.parquet")
    table(BOMBS, root).write_csv(inputs / "bombs.csv")
    expected: dict[str, list[tuple[str | None, set[str], str]]] = {}
    for name, (content, rows) in MALFORMED.items():
        (inputs / name).write_bytes(content)
        expected[name] = rows
    expected["wrong_types.parquet"] = wrong_types_parquet(inputs / "wrong_types.parquet")
    expected["dates.parquet"] = dates_as_prices_parquet(inputs / "dates.parquet")
    good = io.BytesIO()
    hostile.write_parquet(good)
    for name, (fatal, _) in FATAL.items():
        if name == "truncated.parquet":
            fatal = good.getvalue()[: len(good.getvalue()) // 2]
        if fatal is not None:
            (inputs / name).write_bytes(fatal)
    for name, (files, _) in REGISTRIES.items():
        (root / "registries" / name).mkdir(parents=True)
        for fname, data in files.items():
            (root / "registries" / name / fname).write_bytes(data)
    models = hostile_models(root / "models", load_registry(reg).fingerprint)

    def score(src: str, out: str, *extra: str) -> list[str]:
        return [
            "score", src, "--registry", str(reg), "--images", str(images),
            "--out", f"{root}/out/{out}", "--quiet", *extra,
        ]  # fmt: skip

    jobs: dict[str, tuple[str, Any]] = {
        "bombs": ("cli", score(str(inputs / "bombs.csv"), "bombs.parquet")),
        "readers.ndjson": ("cli", score(str(inputs / "readers.ndjson"), "ndjson.parquet")),
        "readers.parquet": (
            "cli",
            score(str(inputs / "readers.parquet"), "pq/", "--batch-size", "5"),
        ),
    }
    for name in [*MALFORMED, "wrong_types.parquet", "dates.parquet"]:
        jobs[name] = ("cli", score(str(inputs / name), f"{name}.parquet"))
    for name in FATAL:
        jobs[name] = ("cli", score(str(inputs / name), f"{name}.parquet"))
    for name in REGISTRIES:
        argv = score(str(inputs / "bombs.csv"), f"reg_{name}.parquet")
        argv[argv.index("--registry") + 1] = str(root / "registries" / name)
        jobs[f"registry:{name}"] = ("cli", argv)
    for name in models:
        model = str(root / "models" / name)
        jobs[f"model:{name}"] = (
            "cli",
            score(str(inputs / "bombs.csv"), f"m_{name}", "--model", model),
        )
    jobs["api"] = (
        "call",
        ["_api_rows", str(reg), str(images), str(inputs / "hostile.parquet"),
         str(inputs / "photos.parquet")],
    )  # fmt: skip
    jobs_file, results_file = root / "jobs.json", root / "results.json"
    jobs_file.write_text(json.dumps(list(jobs.values())))
    # the whole table as CSV through the command line, as a cron job would run it, next to a
    # child that runs the other cases one after another
    csv = start_child(
        [sys.executable, "-m", "pipelines.cli", *score(str(inputs / "hostile.csv"), "csv.parquet")]
    )
    driver = start_child(
        [sys.executable, "-c", "import sys; from tests.test_hostile_inputs import _drive; "
         "_drive(sys.argv[1], sys.argv[2])", str(jobs_file), str(results_file)],
    )  # fmt: skip
    code, _, err, _ = finish_child(driver)
    csv_run = finish_child(csv)
    assert code == 0, err[-3000:]
    results = dict(zip(jobs, json.loads(results_file.read_text()), strict=True))
    return World(root, reg, images, results, expected, models, csv_run)


def read_out(world: World, name: str) -> pl.DataFrame:
    return pl.read_parquet(world.root / "out" / name)


def check_one_line(code: int, err: str, *wanted: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for text in wanted:
        assert text in lines[0]


# ---------------------------------------------------------------- the hostile table


def check_rows(out: pl.DataFrame, rows: list[Row], *, exact_text: bool) -> None:
    """Every row of the table came out, in order, and says what happened to it."""
    assert out.height == len(rows)
    ids = [r.listing_id if r.listing_id.strip() else None for r in rows]
    assert [i if i is not None and i.strip() else None for i in out["listing_id"]] == ids
    for row, got in zip(rows, out.iter_rows(named=True), strict=True):
        what = f"{row.listing_id!r}: {got['error']} {got['reasons']}"
        assert broken_rules(got["error"]) == set(row.rules), what
        if row.rules:
            assert got["status"] == "quarantined" and got["decision"] is None, what
            if exact_text and "price_positive" in row.rules:
                shown = row.price  # as written; a quoted empty field is "" not missing
                assert f"price_positive: price {shown} is not a finite number > 0" in got["error"]
            continue
        assert got["status"] == "ok" and got["decision"] in {"allow", "review", "block"}, what
        assert 0.0 <= got["risk"] <= 1.0, what
        if row.reason is not None:
            assert any(row.reason in r for r in got["reasons"]), what
        if row.brand is not None:
            assert got["matched_brand"] == row.brand, what
        if row.fake_photo:
            assert got["image_score"] >= 0.9, what
            assert any("known fake fakes/gucci_fake.jpg" in r for r in got["reasons"]), what
        elif row.image:
            assert got["image_score"] is None, what


def test_cli_process_scores_every_hostile_row(world: World) -> None:
    code, _, err, peak = world.csv_run
    assert code == 0, err
    assert "Traceback" not in err
    check_rows(read_out(world, "csv.parquet"), ROWS, exact_text=True)
    assert peak < MEMORY_BOUND_MIB


@pytest.mark.parametrize(
    ("job", "out"), [("readers.ndjson", "ndjson.parquet"), ("readers.parquet", "pq/*.parquet")]
)
def test_ndjson_and_parquet_inputs_give_the_same_verdicts(world: World, job: str, out: str) -> None:
    result = world.results[job]
    assert result["value"] == 0, result["stderr"]
    got = read_out(world, out)
    check_rows(got, [ROWS[i] for i in READER_ROWS], exact_text=False)
    csv = read_out(world, "csv.parquet")[READER_ROWS]
    assert got.select("status", "matched_brand").equals(csv.select("status", "matched_brand"))
    assert [broken_rules(e) for e in got["error"]] == [broken_rules(e) for e in csv["error"]]
    assert result["peak_mib"] < MEMORY_BOUND_MIB


def test_decompression_bombs_are_refused_cheaply(world: World) -> None:
    # first job of the child: its peak is this run's own (decoding one bomb needs GBs)
    result = world.results["bombs"]
    assert result["value"] == 0, result["stderr"]
    out = read_out(world, "bombs.parquet")
    assert out.height == len(BOMBS) and (out["status"] == "ok").all()
    for row, reasons in zip(BOMBS, out["reasons"], strict=True):
        assert any(f"image not usable: {row.reason}" in r for r in reasons)
    assert result["seconds"] < 20
    assert result["peak_mib"] < MEMORY_BOUND_MIB


@pytest.mark.parametrize("name", [*MALFORMED, "wrong_types.parquet", "dates.parquet"])
def test_malformed_files_keep_every_record(world: World, name: str) -> None:
    result = world.results[name]
    assert result["value"] == 0, result["stderr"]
    assert "Traceback" not in result["stderr"]
    out = read_out(world, f"{name}.parquet")
    expected = world.expected[name]
    assert out.height == len(expected)
    assert not [c for c in out.columns if c.startswith("__")]
    for (want_id, rules, text), got in zip(expected, out.iter_rows(named=True), strict=True):
        assert got["listing_id"] == want_id
        assert broken_rules(got["error"]) == rules, got["error"]
        assert got["status"] == ("quarantined" if rules else "ok")
        assert text in (got["error"] or ""), got["error"]
    # the manifest counts rules, not the field names inside a row_parsed message
    manifest = json.loads((world.root / "out" / f"{name}.parquet.manifest.json").read_text())
    counts = Counter(rule for _, rules, _ in expected for rule in rules)
    assert manifest["quarantined_by_rule"] == dict(sorted(counts.items()))
    assert result["peak_mib"] < MEMORY_BOUND_MIB


def test_input_columns_named_like_fakestop_columns_do_not_leak(world: World) -> None:
    out = read_out(world, "reserved_names.csv.parquet")
    assert out["status"].to_list() == ["ok", "ok"]  # not quarantined by an injected column
    assert out["reasons"].dtype == pl.List(pl.String)


@pytest.mark.parametrize("name", list(FATAL))
def test_unreadable_files_are_one_clear_line(world: World, name: str) -> None:
    result = world.results[name]
    check_one_line(result["value"], result["stderr"], name, FATAL[name][1])
    assert not (world.root / "out" / f"{name}.parquet").exists()
    assert result["peak_mib"] < MEMORY_BOUND_MIB


@pytest.mark.parametrize("name", list(REGISTRIES))
def test_malformed_registry_names_file_and_line(world: World, name: str) -> None:
    result = world.results[f"registry:{name}"]
    check_one_line(result["value"], result["stderr"], f"registries/{name}/", REGISTRIES[name][1])


MODEL_FILES = ["no_card", "foreign_types", "tampered", "inflates", "not_zip", "deep_card"]


@pytest.mark.parametrize("name", [f"{m}.skops" for m in MODEL_FILES])
def test_hostile_model_is_refused_before_anything_runs(world: World, name: str) -> None:
    result = world.results[f"model:{name}"]
    check_one_line(result["value"], result["stderr"], name, world.models[name])
    assert not (world.root / "models" / "EXECUTED").exists(), "the model's payload ran"
    assert result["peak_mib"] < MEMORY_BOUND_MIB
    assert not (world.root / "out" / f"m_{name}").exists()


# ---------------------------------------------------------------- the Python API


@pytest.mark.parametrize("how", ["paths", "bytes"])
def test_api_gives_the_cli_verdicts(world: World, how: str) -> None:
    result = world.results["api"]
    rows = ROWS if how == "paths" else [ROWS[i] for i in PHOTO_ROWS]
    cli = read_out(world, "csv.parquet")
    if how == "bytes":
        cli = cli[PHOTO_ROWS]
    assert len(result["value"][how]) == cli.height
    for row, api, batch in zip(rows, result["value"][how], cli.iter_rows(named=True), strict=True):
        what = f"{row.listing_id!r}: {api}"
        assert api["status"] == batch["status"], what
        assert broken_rules(api["error"]) == broken_rules(batch["error"]), what
        assert api["brand"] == batch["matched_brand"], what
        if how == "paths":
            assert api["reasons"] == (batch["reasons"] or []), what
            assert api["risk"] == batch["risk"], what
        if row.fake_photo:
            assert api["image_score"] >= 0.9, what
        elif row.reason and row.image:
            # the photo's own bytes give the same verdict as reading it from disk
            assert any(row.reason in r for r in api["reasons"]), what
    assert result["peak_mib"] < MEMORY_BOUND_MIB


@pytest.fixture(scope="module")
def strict_scorer(world: World) -> Scorer:
    return Scorer.from_registry(world.registry, images=world.images)


@pytest.mark.parametrize(
    ("listing", "field", "rule"),
    [
        ({"listing_id": "x", "title": "lamp", "price": math.nan}, "price", "price_positive"),
        ({"listing_id": "x", "title": "lamp", "price": -math.inf}, "price", "price_positive"),
        ({"listing_id": "x", "title": "lamp", "price": "1e999"}, "price", "price_positive"),
        ({"listing_id": "x", "title": "lamp", "price": True}, "price", "price_positive"),
        ({"listing_id": "x", "title": "lamp", "price": [12]}, "price", "price_positive"),
        ({"listing_id": "x", "title": "\u3000 \t", "price": 3}, "title", "title_present"),
        ({"listing_id": "x", "title": None, "price": 3}, "title", "title_present"),
        ({"listing_id": " ", "title": "lamp", "price": 3}, "listing_id", "id_present"),
        ({"title": "lamp", "price": 3}, "listing_id", "id_present"),
    ],
)
def test_api_raises_validation_error_naming_the_field(
    strict_scorer: Scorer, listing: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        strict_scorer.score_one(listing)
    assert info.value.field == field and rule in info.value.rules


def test_api_scores_odd_python_values_without_crashing(strict_scorer: Scorer) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    result = strict_scorer.score_one(
        {"listing_id": 7, "title": "Rolex Submariner AAA", "price": 40, "shop": Opaque()}
    )
    assert result.status == "ok" and result.listing_id == "7"
    assert result.matched_brand == "Rolex"


def test_validation_error_lists_only_rules(strict_scorer: Scorer) -> None:
    with pytest.raises(ValidationError) as info:
        strict_scorer.score_one({"listing_id": "x", "title": ["lamp"], "price": True})
    assert info.value.rules == ("row_parsed", "title_present", "price_positive")


def test_api_quarantines_an_integer_price_too_large_for_a_float(world: World) -> None:
    scorer = Scorer.from_registry(world.registry, on_error="quarantine")
    result = scorer.score_one({"listing_id": "x", "title": "lamp", "price": 10**400})
    assert result.status == "quarantined" and "price_positive" in (result.error or "")


# ---------------------------------------------------------------- bugs in the filters


@pytest.mark.parametrize(
    ("word", "tail", "brand"),
    [
        ("gucc1", "", "Gucci"),
        # plain mentions in a title with a fullwidth letter: each is tested for hiding
        ("gucci", " Ａ", "Gucci"),
        # an ambiguous word without a category: each mention is tested for a capital
        ("Omega", "", "Omega"),
    ],
)
def test_a_title_repeating_a_brand_is_scored_in_linear_time(
    word: str, tail: str, brand: str
) -> None:
    from filters.text import TextFilter

    # the seed registry: "omega" is an ambiguous word there
    f = TextFilter().fit(load_registry(default_registry_dir()))

    def cpu_seconds(mentions: int) -> float:
        title = " ".join([word] * mentions) + tail
        frame = pl.DataFrame({"listing_id": ["x"], "title": [title]})
        started = time.process_time()  # CPU time: other work on the machine does not count
        out = f.score(frame).collect()
        assert out["text_brand"].item() == brand
        return time.process_time() - started

    cpu_seconds(100)  # warm-up
    # 10x the mentions: ~10x the work when linear, ~100x when quadratic
    small, large = cpu_seconds(4_000), cpu_seconds(40_000)
    assert large < 30 * max(small, 0.01), (small, large)


def test_an_image_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    from filters.image import ImageRejected, open_image

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def attempt() -> None:
        try:
            open_image("photo.jpg", root=tmp_path)
        except ImageRejected as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(1.0)
    hung = worker.is_alive()
    if hung:
        # a writer that opens and closes the FIFO releases the blocked reader
        with open(fifo, "wb"):
            pass
        worker.join(5)
    assert not hung, "open_image blocked on a FIFO"
    assert outcome and "not a file" in outcome[0]
