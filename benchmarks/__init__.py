"""Benchmarks of fakestop (see README.md here for the figures and the commands)."""

from __future__ import annotations

import compileall
import importlib
from pathlib import Path


def compile_package() -> bool:
    """Byte-compile fakestop's packages, as installing a wheel does, so that a timed
    ``fakestop`` subprocess starts as an installed copy does. A checkout writes this cache on
    its first import unless ``PYTHONDONTWRITEBYTECODE`` is set; without it every start
    compiles the sources again (about 70 ms). False if the cache could not be written."""
    ok = True
    for name in ("filters", "models", "pipelines"):
        source = importlib.import_module(name).__file__
        if source is None:
            return False
        ok &= bool(compileall.compile_dir(Path(source).parent, quiet=1))
    return ok
