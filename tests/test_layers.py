"""No two modules of the package import each other, directly or through others.

``lint-imports`` (configured in pyproject.toml) checks that the layers filters < models <
pipelines are only imported downwards; a layers contract does not see a cycle inside one layer,
which this test does. Every import counts: inside functions and under ``TYPE_CHECKING`` too.
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import grimp
import pytest

PACKAGES = ("filters", "models", "pipelines")


def module_cycle(imports: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``imports`` (module -> modules it imports), or None."""
    try:
        tuple(TopologicalSorter(imports).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return None


def package_imports() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    return {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}


def test_no_module_imports_itself_through_others() -> None:
    cycle = module_cycle(package_imports())
    assert cycle is None, "import cycle: " + " -> ".join(reversed(cycle or []))


def test_a_cycle_is_found() -> None:
    # the check itself: a cycle through three modules, and one inside a package's own modules
    assert module_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert module_cycle({"p.x": {"p.y"}, "p.y": {"p.x"}, "q": {"p.x"}}) is not None
    assert module_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_function_and_type_checking_imports_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the graph the check reads holds imports inside functions and under TYPE_CHECKING
    package = tmp_path / "layered_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from layered_probe.high import High\n"
        "def build():\n"
        "    from layered_probe.mid import Mid\n"
    )
    (package / "mid.py").write_text("class Mid: ...\n")
    (package / "high.py").write_text("from layered_probe.low import build\nclass High: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("layered_probe", cache_dir=None)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert imports["layered_probe.low"] == {"layered_probe.high", "layered_probe.mid"}
    assert module_cycle(imports) is not None
