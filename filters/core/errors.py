"""The error hierarchy: every fatal problem is one of these, naming what was wrong."""

from __future__ import annotations


class FakestopError(Exception):
    """Base class of every error fakestop raises on purpose."""


class SchemaError(FakestopError):
    """Input listings cannot be used (missing file, missing required column, unreadable format)."""


class ValidationError(FakestopError):
    """A single listing broke one or more row rules (raised by the API when asked to)."""

    def __init__(self, message: str, *, field: str | None = None, rules: tuple[str, ...] = ()):
        super().__init__(message)
        self.field = field
        self.rules = rules


class RegistryError(FakestopError):
    """The brand registry directory is missing, malformed or inconsistent."""


class ModelError(FakestopError):
    """A model file is missing, foreign, tampered with or incompatible."""


class DegenerateModelError(ModelError):
    """Training produced a model that would not work (one that never flags, too few examples
    of a class, a calibration collapsed to a step); ``--allow-degenerate`` keeps it anyway."""


class MissingInputWarning(UserWarning):
    """Listings lack an input column the trained model was trained with (its evidence is
    missing for them)."""


class NotFittedError(FakestopError, ValueError, AttributeError):
    """A filter or model was used before ``fit``."""


class FakestopWarning(UserWarning):
    """Something a run should say but that does not stop it: a signal that cannot work with
    the registry given, reference data that contradicts itself. The command line prints these
    as ``fakestop: warning: ...``."""
