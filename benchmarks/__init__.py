"""Benchmarks of fakestop (see README.md here for the figures and the commands)."""

from __future__ import annotations

import compileall
import importlib
import json
import os
import platform
from pathlib import Path
from typing import Any

#: where each script writes its results (``<script>.json``)
RESULTS = Path(__file__).resolve().parent / "results"


def write_results(script: str, results: dict[str, Any]) -> Path:
    """Write ``results`` to ``benchmarks/results/<script>.json``, with the machine's cores."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{script}.json"
    record = {"cores": os.cpu_count(), "python": platform.python_version(), **results}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


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
