"""Everything that moves data: readers, validation, registry, stages, runners, API and CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import (
    DegenerateModelError,
    FakestopError,
    MissingInputWarning,
    ModelError,
    NotFittedError,
    RegistryError,
    SchemaError,
    ValidationError,
)

if TYPE_CHECKING:
    from pipelines.api import Scorer

__all__ = [
    "DegenerateModelError",
    "FakestopError",
    "MissingInputWarning",
    "ModelError",
    "NotFittedError",
    "RegistryError",
    "SchemaError",
    "Scorer",
    "ValidationError",
]


def __getattr__(name: str) -> Any:
    # the API pulls in the readers, stages and models: imported when first asked for
    if name == "Scorer":
        from pipelines.api import Scorer

        return Scorer
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
