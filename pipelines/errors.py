"""The error hierarchy, defined in :mod:`filters.core.errors` (the filters raise them too)."""

from __future__ import annotations

from filters.core.errors import (
    DegenerateModelError,
    FakestopError,
    FakestopWarning,
    MissingInputWarning,
    ModelError,
    NotFittedError,
    RegistryError,
    SchemaError,
    ValidationError,
)

__all__ = [
    "DegenerateModelError",
    "FakestopError",
    "FakestopWarning",
    "MissingInputWarning",
    "ModelError",
    "NotFittedError",
    "RegistryError",
    "SchemaError",
    "ValidationError",
]
