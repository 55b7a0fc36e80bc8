"""The command line as a new user meets it: --version, help that says everything and matches the
README, one summary line, a resume hint on Ctrl-C, and Spark problems in one clear line."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.cli import build_parser, main
from pipelines.run import OutputLayout
from tests.conftest import listings
from tests.test_faults import (  # noqa: F401 - the job fixture
    BATCH,
    BATCHES,
    Job,
    check_finished,
    committed,
    job,
    start,
    wait_for_commit,
)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def commands(parser: argparse.ArgumentParser, prefix: str = "fakestop") -> dict[str, Any]:
    """Every command's parser, by its full name (``fakestop strikes remove``)."""
    found = {prefix: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(commands(child, f"{prefix} {name}"))
    return found


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        o
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction)
        for o in a.option_strings
        if o.startswith("--")
    }


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"fakestop {metadata.version('fakestop')}\n"


def test_every_option_and_argument_has_help() -> None:
    for name, parser in commands(build_parser()).items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_score_help_says_what_it_reads_and_writes() -> None:
    text = commands(build_parser())["fakestop score"].format_help()
    flat = " ".join(text.split())
    assert "Parquet, CSV or NDJSON/JSONL file, a directory of Parquet parts, or a glob" in flat
    assert "OUT.parquet, OUT.csv, OUT.ndjson or OUT.jsonl, or OUT_DIR/" in flat
    assert "glob of Parquet" not in flat


def readme_synopsis() -> dict[str, set[str]]:
    """The README's command line synopsis: each command's options (continuation lines are
    the command above's). Commands with sub-commands of their own appear by their full name."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Command line\n\n```\n(.*?)```", text, re.S)
    assert block is not None
    found: dict[str, set[str]] = {}
    current = ""
    for line in block.group(1).splitlines():
        line = line.split("  #", 1)[0]
        if line.startswith("fakestop "):
            words = []
            for w in line.split()[1:]:
                if not re.fullmatch(r"[a-z]+", w):
                    break
                words.append(w)
            current = " ".join(["fakestop", *words])
            found.setdefault(current, set())
        found[current] |= set(re.findall(r"--[a-z][a-z-]*", line))
    return found


def test_readme_synopsis_lists_every_command_and_option() -> None:
    synopsis = readme_synopsis()
    parsers = commands(build_parser())
    runnable = {
        name: p
        for name, p in parsers.items()
        if not any(isinstance(a, argparse._SubParsersAction) and a.required for a in p._actions)
        or name == "fakestop"  # fakestop --version
    }
    assert set(synopsis) == set(runnable)
    for name, parser in runnable.items():
        assert synopsis[name] == options(parser), name


def test_the_summary_is_printed_once_when_output_is_not_a_terminal(
    tmp_path: Path, tiny_registry_dir: Path
) -> None:
    src = tmp_path / "in.parquet"
    listings(listing_id=[f"i{i}" for i in range(30)]).write_parquet(src)
    out = tmp_path / "o.parquet"
    done = cli("score", str(src), "--registry", str(tiny_registry_dir), "--out", str(out),
               "--batch-size", "10")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = [line for line in (done.stdout + done.stderr).splitlines() if " listings in " in line]
    assert len(summary) == 1 and summary[0] in done.stdout
    assert done.stderr.count("rows scored") == 3  # one line per batch off a terminal
    quiet = cli("score", str(src), "--registry", str(tiny_registry_dir), "--out", str(out),
                "--quiet")  # fmt: skip
    assert quiet.returncode == 0 and quiet.stdout == quiet.stderr == ""


def test_train_accepts_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipelines.learn

    card = {
        "metrics": {"pr_auc": 0.9},
        "thresholds": {"block": 0.8, "review": 0.5},
        "oof_flag_rates": {"as_given": {"block": 0.3, "review": 0.02}},
    }
    monkeypatch.setattr(pipelines.learn, "train_model", lambda *a, **k: card)
    argv = ["train", "l.parquet", "--registry", "r", "--out", str(tmp_path / "m.skops")]
    assert main(argv) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_after_a_committed_batch_and_says_how_to_resume(
    job: Job,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.parquet"
    layout = OutputLayout.of(out)
    proc = start(job, out)
    wait_for_commit(proc, layout)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err
    assert "stopped by SIGINT" in err and "rerun the same command to resume" in err
    assert 1 <= committed(layout) < BATCHES and not out.exists()
    assert main(job.argv(out)) == 0
    check_finished(job, out)


def test_a_second_ctrl_c_stops_at_once_and_still_says_how_to_resume(
    job: Job,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.parquet"
    layout = OutputLayout.of(out)
    proc = start(job, out)
    wait_for_commit(proc, layout)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("fakestop: ")
    assert "rerun the same command to resume" in err.strip().splitlines()[-1]
    assert main(job.argv(out)) == 0
    check_finished(job, out)


# ---------------------------------------------------------------- Spark, before the JVM


def spark_argv(src: Path, registry: Path, out: Path, *extra: str) -> list[str]:
    return ["score", str(src), "--registry", str(registry), "--out", f"{out}/", "--engine",
            "spark", "--quiet", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "extra", "env", "message"),
    [
        ("csv", [], {}, "--engine spark reads Parquet only and this is CSV"),
        ("ndjson", [], {}, "--engine spark reads Parquet only and this is NDJSON"),
        ("parquet", ["--master", "lcoal[2]"], {}, "--master 'lcoal[2]' is not a Spark master URL"),
        ("parquet", ["--master", "spark://host"], {}, "is not a Spark master URL"),
        ("parquet", [], {"JAVA_HOME": "/nonexistent/jdk"}, "needs Java 17 or later: JAVA_HOME"),
    ],
)
def test_spark_problems_are_one_clear_line(
    tmp_path: Path,
    tiny_registry_dir: Path,
    setup: str,
    extra: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    frame = listings(listing_id=["a", "b"])
    src = tmp_path / f"in.{setup}"
    if setup == "csv":
        frame.write_csv(src)
    elif setup == "ndjson":
        frame.write_ndjson(src)
    else:
        frame.write_parquet(src)
    done = cli(*spark_argv(src, tiny_registry_dir, tmp_path / "out", *extra), env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "at org.apache" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_spark_refuses_an_output_inside_its_input(tmp_path: Path, tiny_registry_dir: Path) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    data = tmp_path / "data"
    data.mkdir()
    listings(listing_id=["a"]).write_parquet(data / "p.parquet")
    done = cli(*spark_argv(data, tiny_registry_dir, data / "scores"))
    assert done.returncode == 2 and "inside the input directory" in done.stderr
    assert pl.read_parquet(data / "p.parquet").height == 1
