"""What every layer builds on: the error hierarchy, the brand registry and its category
taxonomy, the pricing defaults and the atomic-file helpers. Nothing here imports a filter,
:mod:`models` or :mod:`pipelines`; :mod:`pipelines` re-exports these names where they were
defined before (``pipelines.registry``, ``pipelines.errors``, ...)."""
