"""CPython's own thread and asyncio suites run under python and under `concurview run --record`: same results?

    python tests/cpython_suites.py [--module] [SUITE ...]

Each suite runs twice, `python -m test SUITE` and `concurview run --record T -m test SUITE` (with --module:
`-m test.SUITE`, the suite module's own unittest.main, which needs nothing of regrtest's), one after the
other; the script prints each one's result line plain and traced and the wall-time ratio, and exits 1 when
any suite's results differ. `make test-cpython` runs it for every suite below.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

SUITES = ("test_thread", "test_threading", "test_queue", "test_asyncio.test_tasks", "test_asyncio.test_locks",
          "test_asyncio.test_queues", "test_asyncio.test_subprocess")

# regrtest: "Total tests: run=24 failures=1 skipped=2" and "Result: SUCCESS"; unittest: "Ran 24 tests in 1.0s"
# then "OK (skipped=1)" or "FAILED (failures=2)".
_RESULT = re.compile(r"^(Total tests: .*|Result: .*|Ran \d+ tests?|OK.*|FAILED.*)$")
_TIME = re.compile(r" in [\d.]+s$")


def result(output: str) -> str:
    """The lines that say what a run's tests did (counts and verdict), without their times."""
    lines = []
    for line in output.splitlines():
        line = _TIME.sub("", line.strip())
        if _RESULT.match(line):
            lines.append(line)
    return " | ".join(lines) or "(no result line)"


def run_suite(suite: str, traced: bool, module: bool = False, timeout: float = 900,
              tests: tuple[str, ...] = ()) -> tuple[str, float, str]:
    """(result, wall seconds, output) of one run of `suite` (with module, only its test cases `tests`, if any)."""
    target = ["-m", f"test.{suite}", *tests] if module else ["-m", "test", suite]
    with tempfile.TemporaryDirectory(prefix="concurview-cpython-") as tmp:
        if traced:
            cmd = [sys.executable, "-m", "concurview", "run", "--record", os.path.join(tmp, "t.jsonl"), *target]
        else:
            cmd = [sys.executable, *target]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
    output = done.stdout + done.stderr
    return result(output) + f" | exit {done.returncode}", wall, output


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", action="store_true", help="run each suite's module (-m test.SUITE), not regrtest")
    ap.add_argument("suites", nargs="*", default=list(SUITES))
    args = ap.parse_args(argv)
    differ = 0
    print(f"Python {sys.version.split()[0]}; {'-m test.SUITE' if args.module else '-m test SUITE'}")
    for suite in args.suites:
        plain, t_plain, _ = run_suite(suite, False, args.module)
        traced, t_traced, out = run_suite(suite, True, args.module)
        same = plain == traced
        differ += not same
        print(f"{suite}: {'same' if same else 'DIFFERENT'}, wall {t_plain:.1f}s plain, {t_traced:.1f}s traced "
              f"({t_traced / t_plain:.2f}x)\n  plain:  {plain}\n  traced: {traced}", flush=True)
        if not same:
            print("  traced output (end):\n    " + "\n    ".join(out.splitlines()[-25:]), flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
