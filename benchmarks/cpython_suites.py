"""Real programs under `concurview run`: CPython's own test_asyncio.test_locks and test_queue, plain, traced and under VizTracer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import QUICK, REPO, Result, median, publish

NAME = "cpython-suites"
TITLE = "CPython's test_asyncio.test_locks and test_queue: wall time traced / plain (VizTracer beside it)"

SUITES = ("test_asyncio.test_locks", "test_queue")
TARGET = 1.3  # design.md: real programs under `run` <= 1.3x wall, identical results


def missing() -> str | None:
    try:
        import test.libregrtest  # noqa: F401 - the suites ship with the interpreter (not on every distro)
    except ImportError:
        return "CPython's test package is not installed"
    return None


def _wall(cmd: list[str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="concurview-bench-") as tmp:
        t0 = time.perf_counter()
        done = subprocess.run([c.replace("{tmp}", tmp) for c in cmd], cwd=tmp, capture_output=True, timeout=900,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "0"})
        return time.perf_counter() - t0, done.returncode


def run(quick: bool = False) -> list[Result]:
    rounds = 1 if quick or QUICK else 3
    viz = shutil.which("viztracer") or (shutil.which("viztracer", path=os.path.dirname(sys.executable)))
    results = []
    for suite in SUITES:
        target = ["-m", "test", suite]
        variants = {
            "plain": [sys.executable, *target],
            "concurview": [sys.executable, "-m", "concurview", "run", "--record", "{tmp}/t.jsonl", *target],
        }
        if viz:
            variants["viztracer"] = [viz, "--quiet", "--log_async", "-o", "{tmp}/v.json", "-m", "test", suite]
        walls: dict[str, list[float]] = {k: [] for k in variants}
        codes: dict[str, int] = {}
        for _ in range(rounds):  # interleaved: the machine's noise falls on all of them alike
            for name, cmd in variants.items():
                wall, code = _wall(cmd)
                walls[name].append(wall)
                codes[name] = code
        plain = median(walls["plain"])
        ratio = median(walls["concurview"]) / plain
        details = {k: median(v) for k, v in walls.items()} | {"exit": codes, "rounds": rounds}
        results.append(Result(NAME, f"{suite}: traced / plain wall", ratio, "x", f"<= {TARGET:g}x",
                              ratio <= TARGET and codes["concurview"] == codes["plain"], details))
        if "viztracer" in walls and codes["viztracer"] == codes["plain"]:
            results.append(Result(NAME, f"{suite}: viztracer --log_async / plain wall",
                                  median(walls["viztracer"]) / plain, "x", "", None, {}))
    publish(NAME.replace("-", "_"), results)
    return results
