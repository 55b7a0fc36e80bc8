"""Where the shipped data lives."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_registry_dir() -> Path:
    """The registry shipped in ``seeds/registry``."""
    return Path(str(resources.files("seeds") / "registry"))
