"""A registry file with a bad header is refused with the file, the line and the header
expected, whichever of the registry's CSV files it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.errors import RegistryError
from pipelines.registry import default_registry_dir, load_registry


def _copy_with(tmp_path: Path, name: str, text: str) -> Path:
    root = tmp_path / "registry"
    shutil.copytree(default_registry_dir(), root)
    (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("brands.csv", "", r"brands\.csv: empty file, expected header brand,category,"),
        (
            "brands.csv",
            "brand,category,aliases\nRolex,watches,\n",
            r"brands\.csv line 1: missing column\(s\) reference_price; expected header brand,",
        ),
        ("categories.csv", "", r"categories\.csv: empty file, expected header category,parent"),
        (
            "categories.csv",
            "category,synonyms\nbags,Sacks\n",
            r"categories\.csv line 1: missing column\(s\) parent; expected header category,",
        ),
    ],
)
def test_a_bad_header_names_the_file_and_the_header_expected(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        load_registry(_copy_with(tmp_path, name, text))


def test_header_names_are_read_stripped(tmp_path: Path) -> None:
    original = (default_registry_dir() / "categories.csv").read_text(encoding="utf-8")
    header, rest = original.split("\n", 1)
    spaced = ", ".join(f" {h}" for h in header.split(",")) + "\n" + rest
    assert (
        load_registry(_copy_with(tmp_path, "categories.csv", spaced))
        .taxonomy.resolve("Handbags")
        .categories
        == load_registry(default_registry_dir()).taxonomy.resolve("Handbags").categories
    )
