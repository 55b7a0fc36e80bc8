"""benchmarks/README.md is what the stored results give, and reads as a reference."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from benchmarks import RESULTS, run_record, timed_child, write_results
from benchmarks.render import README, SECTIONS, read_results, render

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_the_readme_is_rendered_from_the_stored_results() -> None:
    assert README.read_text(encoding="utf-8") == render(read_results()), (
        "benchmarks/README.md differs from the results: run python -m benchmarks.render"
    )


def test_every_benchmark_script_has_a_section() -> None:
    scripts = {p.stem for p in BENCHMARKS.glob("bench_*.py")}
    stored = {p.stem for p in RESULTS.glob("*.json")}
    rendered = {script for _, script, _, _ in SECTIONS}
    assert scripts == rendered, "scripts without a README section, or sections without a script"
    assert stored <= scripts, "results of no script"


def test_run_records_name_the_command_the_commit_and_the_load() -> None:
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        runs = [data["run"]] if "run" in data else []
        runs += [v["run"] for v in data.values() if isinstance(v, dict) and "run" in v]
        for run in runs:
            assert run["command"].startswith(f"python -m benchmarks.{path.stem}"), path.name
            assert re.fullmatch(r"[0-9a-f]{12}", run["commit"]), path.name
            assert len(run["load_average_start"]) == 3 and run["cores"] >= 1, path.name


#: words of a work diary, not of a reference: sessions, issue numbers, before/after, days
DIARY = re.compile(
    r"\bsessions?\b|\bissue\s*#?\d+|\bbefore/after\b|\b(today|yesterday|this morning)\b",
    re.IGNORECASE,
)


def test_the_readme_has_no_diary() -> None:
    text = README.read_text(encoding="utf-8")
    found = sorted({m.group(0) for m in DIARY.finditer(text)})
    assert found == [], f"benchmarks/README.md reads as a diary: {found}"


@pytest.mark.parametrize(
    "line",
    [
        "Re-run in the seventh session after the fix.",
        "Figures of this session.",
        "The floor set by issue 6 is met.",
        "Before/after tables.",
    ],
)
def test_the_diary_check_finds_diary_lines(line: str) -> None:
    assert DIARY.search(line)


def test_results_record_the_command_the_commit_and_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("benchmarks.RESULTS", tmp_path)
    monkeypatch.setattr("sys.argv", ["bench_x.py", "--n", "10"])
    write_results("bench_x", {"whole": {"seconds": 1.5}, "other": {"seconds": 2}}, sections=True)
    write_results("bench_x", {"whole": {"seconds": 3.0}}, sections=True)
    data = json.loads((tmp_path / "bench_x.json").read_text(encoding="utf-8"))
    assert data["whole"]["seconds"] == 3.0 and data["other"]["seconds"] == 2
    run = data["whole"]["run"]
    assert run["command"] == "python -m benchmarks.bench_x --n 10"
    assert run["arguments"] == ["--n", "10"]
    assert run == {**run_record("bench_x"), "seconds": run["seconds"], "load_average_end":
                   run["load_average_end"]}  # fmt: skip


def test_a_child_peak_memory_is_its_own_not_the_benchmarks() -> None:
    held = b"x" * (256 << 20)  # the benchmark's own data, resident
    _, small = timed_child([sys.executable, "-c", "pass"])
    _, large = timed_child([sys.executable, "-c", "b = b'x' * (128 << 20)"])
    assert len(held) and small < 100 < 128 < large < 250, (small, large)


def test_a_failing_child_names_its_command() -> None:
    with pytest.raises(SystemExit, match="exit 3"):
        timed_child([sys.executable, "-c", "raise SystemExit(3)"])
