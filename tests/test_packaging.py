"""The import names are ours: a same-named package elsewhere must not shadow them."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["filters", "models", "pipelines", "seeds"])
def test_top_level_package_resolves_to_this_project(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    location = Path(module.__file__).resolve().parent
    assert location == REPO / name, f"{name} resolves to {location}, not this project"
    assert (location / "py.typed").is_file()


def test_console_script_is_declared() -> None:
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["fakestop"] == "pipelines.cli:main"
    assert meta["project"]["name"] == "fakestop"


def test_importing_the_package_does_not_import_spark() -> None:
    import subprocess
    import sys

    code = (
        "import sys, filters, models, pipelines, pipelines.api, pipelines.cli, pipelines.run;"
        "assert 'pyspark' not in sys.modules, 'pyspark imported';"
        "assert 'scrapy' not in sys.modules, 'scrapy imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
