"""Strict configuration: every mistake is an error naming the key and the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.config import DEFAULT_RATES, Settings, load_settings
from pipelines.errors import FakestopError

README = Path(__file__).parent.parent / "README.md"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "fakestop.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[decisions]\nblock = 0.9\n",
            r"unknown section \[decisions\] \(did you mean \[decision\]",
        ),
        ("[rate]\nEUR = 1.1\n", r"unknown section \[rate\] \(did you mean \[rates\]"),
        ("[decision]\nblok = 0.9\n", r"unknown key decision\.blok \(did you mean decision\.block"),
        ("[input]\nseparator = ';'\n", r"unknown key input\.separator"),
        ("block = 0.9\n", r"unknown section \[block\]"),
        ("rates = 5\n", r"\[rates\] must be a table, got 5"),
        ("[decision]\nblock = 'high'\n", r"decision\.block must be a finite number, got 'high'"),
        ("[decision]\nblock = true\n", r"decision\.block must be a finite number, got True"),
        ("[decision]\nblock = 1.5\n", r"decision\.block must be in \[0, 1\], got 1\.5"),
        ("[decision]\nblock = 0.4\nreview = 0.6\n", r"decision\.review \(0\.6\) must be <="),
        ("[conditions]\nused = -1\n", r"conditions\.used must be in \(0, 1\], got -1"),
        ("[conditions]\nused = 0\n", r"conditions\.used must be in \(0, 1\], got 0"),
        ("[conditions]\nused = '0.5'\n", r"conditions\.used must be a finite number"),
        ("[conditions]\nparts = 0.2\n", r"conditions\.parts cannot be priced"),
        ("[rates]\nEUR = 0\n", r"rates\.EUR must be > 0, got 0"),
        ("[rates]\nEUR = nan\n", r"rates\.EUR must be a finite number, got nan"),
        ("[rates]\neuro = 1.1\n", r"rates\.euro is not a currency code"),
        ("[volumes]\nperfume = -100\n", r"volumes\.perfume must be > 0, got -100"),
        ("[condition_synonyms]\n'like new' = 'mint'\n", r"condition_synonyms\.like new must name"),
        ("[condition_synonyms]\n'like new' = 3\n", r"condition_synonyms\.like new must be text"),
        ("[input]\nencoding = 'klingon'\n", r"input\.encoding 'klingon' is not a known text enc"),
        ("[input]\ncsv_separator = ';;'\n", r"input\.csv_separator must be \"auto\", \"tab\" or"),
        ("[input]\ncsv_separator = '\"'\n", r"input\.csv_separator must be"),
        ("[input]\nprice_locale = 'de'\n", r"input\.price_locale must be one of auto, point, com"),
        ("[columns]\ntitel = 'Name'\n", r"columns\.titel is not a listing column"),
        ("[columns]\ntitle = ''\n", r"columns\.title must name a column"),
        ("[columns]\ntitle = 'Name'\nbrand = 'Name'\n", r"columns\.brand and columns\.title both"),
        # the example an earlier README gave, as a user would copy it
        ("[decision] block = 0.8, review = 0.5\n", r"invalid TOML"),
    ],
)
def test_every_mistake_is_an_error_naming_the_key_and_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FakestopError, match=message) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_the_command_line_reports_a_bad_configuration_in_one_line(
    tmp_path: Path, tiny_registry_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[conditions]\nused = -1\n")
    src = tmp_path / "l.csv"
    src.write_text("listing_id,title,price\n1,a,2\n")
    argv = ["score", str(src), "--registry", str(tiny_registry_dir), "--config", str(path)]
    assert main([*argv, "--out", str(tmp_path / "o.parquet"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"fakestop: error: {path}: conditions.used must be in (0, 1], got -1\n"
    assert not (tmp_path / "o.parquet").exists()


def test_values_are_read_as_given(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[rates]\nchf = 1.2\n[conditions]\n'Like New' = 0.8\n"
        "[decision]\nblock = 1\nreview = 0\n[input]\ncsv_separator = 'tab'\n"
        "encoding = 'Latin-1'\nprice_locale = 'COMMA'\n",
    )
    s = load_settings(path)
    assert s.rates["CHF"] == 1.2 and s.rates["EUR"] == DEFAULT_RATES["EUR"]
    assert s.condition_factors["like new"] == 0.8
    assert (s.block_threshold, s.review_threshold) == (1.0, 0.0)
    assert (s.csv_separator, s.encoding, s.price_locale) == ("\t", "iso8859-1", "comma")
    assert load_settings(write(tmp_path, "")) == Settings()


def test_readme_configuration_example_is_valid_and_means_what_it_says(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration") :]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found is not None
    s = load_settings(write(tmp_path, found.group(1)))
    assert s.rates["EUR"] == 1.08 and s.rates["GBP"] == 1.27
    assert s.condition_factors == {"new": 1.0, "used": 0.5, "refurbished": 0.7, "like new": 0.8}
    assert s.condition_synonyms["gently loved"] == "like new"
    assert s.condition_synonyms["b ware"] == "refurbished"
    assert s.standard_volumes == {"perfume": 100.0}
    assert (s.block_threshold, s.review_threshold) == (0.8, 0.5)
    assert (s.csv_separator, s.encoding, s.price_locale) == (None, None, "auto")
    assert s.columns == {"title": "Name", "price": "Price"}
    # and every section the loader knows is in it
    for name in ("rates", "conditions", "condition_synonyms", "volumes", "decision", "input"):
        assert f"[{name}]" in found.group(1)


def test_readme_shows_no_other_configuration_that_is_not_valid(tmp_path: Path) -> None:
    # every inline `[section] key = value` the README mentions loads as a file of its own
    text = README.read_text(encoding="utf-8")
    snippets = re.findall(r"`(\[[a-z_]+\] [^`=]+ = [^`]+)`", text)
    assert snippets
    for snippet in snippets:
        section, rest = snippet.split("] ", 1)
        load_settings(write(tmp_path, f"{section}]\n{rest}\n"))
