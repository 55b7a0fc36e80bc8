"""Files written whole or not at all, and their digests."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "fakestop",
    "polars",
    "pyarrow",
    "rapidfuzz",
    "imagehash",
    "Pillow",
    "scikit-learn",
    "numpy",
    "skops",
)


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def temporary_beside(path: Path) -> tuple[int, str]:
    """Create an empty temporary file next to ``path``: (open descriptor, its name).

    Unlike :func:`tempfile.mkstemp` (always mode 0600) the file gets the permissions any new
    file gets (0666 less the umask), so the output renamed from it is readable as usual.
    """
    while True:
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it over ``path``:
    readers see the old content or the new one, never a partial file."""
    try:
        fd, tmp = temporary_beside(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        # name the file the caller asked for, not the temporary one (or none at all)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    write_bytes_atomic(path, text.encode("utf-8"))


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out
