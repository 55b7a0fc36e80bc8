"""House rules the code keeps: importing fakestop changes nothing in the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = """
import importlib, json, os, pkgutil
before = dict(os.environ)
# libraries set their own variables when imported (polars its allocator's, scikit-learn
# OpenMP's): imported first and their settings undone, so that only fakestop's own modules
# are measured (a module's setdefault of a library's variable is caught too)
for library in ("polars", "numpy", "sklearn", "scipy", "pyarrow", "PIL", "rapidfuzz", "skops",
                "matplotlib", "regex", "phonenumbers", "datasketches", "pyspark", "scrapy"):
    try:
        importlib.import_module(library)
    except ImportError:
        pass
os.environ.clear()
os.environ.update(before)
import filters, models, pipelines
names = []
for package in (filters, models, pipelines):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        names.append(module.name)
after = dict(os.environ)
print(json.dumps({"modules": names, "changed": sorted(
    k for k in set(before) | set(after) if before.get(k) != after.get(k))}))
"""


def test_importing_any_module_leaves_the_environment_alone() -> None:
    """Settings a command needs are made when it runs, not when a module is imported (an
    embedding crawler's environment is its own)."""
    # a bare environment: the test process's own imports have set library variables in it
    env = {k: os.environ[k] for k in ("PATH", "HOME", "PYTHONPATH") if k in os.environ}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert "pipelines.cli" in got["modules"] and "filters.text" in got["modules"]
    assert got["changed"] == []
