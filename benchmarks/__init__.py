"""Benchmarks of fakestop (see README.md here for the figures and the commands)."""

from __future__ import annotations

import compileall
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: where each script writes its results (``<script>.json``)
RESULTS = Path(__file__).resolve().parent / "results"

#: the product's packages, whose code a benchmark measures
PRODUCT = ("filters", "models", "pipelines", "seeds")
#: what a benchmark's figures depend on: the product and the benchmark scripts (not their results)
MEASURED = (*PRODUCT, "pyproject.toml", "benchmarks", ":(exclude)benchmarks/results")

# the load and the clock when the benchmark started: ``python -m benchmarks.<script>`` imports
# this package first
_STARTED = time.time()
_LOAD_AT_START = os.getloadavg()


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return proc.stdout.strip()


def run_record(script: str, argv: list[str] | None = None) -> dict[str, Any]:
    """How, where and on what code a benchmark ran: the command, the git commit, the last
    commit that changed the product's packages, whether the code differed from the commit,
    the date (UTC), the load average (1, 5 and 15 minutes) at the start and at the end, the
    cores and the Python version."""
    args = sys.argv[1:] if argv is None else argv
    changed = _git("status", "--porcelain", "--", *MEASURED)
    return {
        "command": " ".join(["python -m", f"benchmarks.{script}", *map(shlex.quote, args)]),
        "arguments": args,
        "commit": _git("rev-parse", "--short=12", "HEAD"),
        "product_commit": _git("log", "-1", "--format=%h", "--abbrev=12", "--", *PRODUCT),
        "uncommitted_changes": None if changed is None else bool(changed),
        "started": datetime.fromtimestamp(_STARTED, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - _STARTED, 1),
        "load_average_start": [round(x, 2) for x in _LOAD_AT_START],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def write_results(script: str, results: dict[str, Any], *, sections: bool = False) -> Path:
    """Write ``results`` to ``benchmarks/results/<script>.json`` with the run's record
    (``run_record``) under ``"run"``. With ``sections``, each top-level key of ``results`` is a
    section that replaces the one stored, with its own ``"run"``; the sections not run stay."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{script}.json"
    run = run_record(script)
    if sections:
        record: dict[str, Any] = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )
        record.pop("run", None)
        for name, section in results.items():
            record[name] = {**section, "run": run}
    else:
        record = {**results, "run": run}
    path.write_text(
        json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path


# runs argv[2:] and writes its exit code and peak RSS (KiB) to the file argv[1]
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def timed_child(cmd: list[str], *, cwd: str | Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the command ``cmd`` in a child process; a failure
    exits with the command.

    The child is started by a small Python launcher, not by this process: a child's peak RSS
    counts the memory of the process it was forked from until it runs the command, so a child
    of a benchmark holding a million listings would report the benchmark's memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", _LAUNCHER, str(out), *cmd], cwd=cwd, check=True)
        wall = time.perf_counter() - t0
        code, peak_kib = (int(x) for x in out.read_text().split())
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {code})")
    return wall, peak_kib / 1024


def compile_package() -> bool:
    """Byte-compile fakestop's packages, as installing a wheel does, so that a timed
    ``fakestop`` subprocess starts as an installed copy does. A checkout writes this cache on
    its first import unless ``PYTHONDONTWRITEBYTECODE`` is set; without it every start
    compiles the sources again (about 70 ms). False if the cache could not be written."""
    ok = True
    for name in ("filters", "models", "pipelines"):
        source = importlib.import_module(name).__file__
        if source is None:
            return False
        ok &= bool(compileall.compile_dir(Path(source).parent, quiet=1))
    return ok
