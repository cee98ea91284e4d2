"""`python -m benchmarks [NAME ...] [--quick]`: run the benchmarks (all by default), one line per target."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

import benchmarks
from benchmarks import MODULES, machine

# The UI benchmark (bench_ui.py), registered here: the MODULES list belongs to the engines' benchmarks.
if "bench_ui" not in MODULES:
    MODULES = (*MODULES, "bench_ui")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"modules to run (default: all of {', '.join(MODULES)})")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions: a smoke test, not a measurement")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)

    unknown = [n for n in args.names if n not in MODULES]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(MODULES)})", file=sys.stderr)
        return 2
    modules = [importlib.import_module(f"benchmarks.{m}") for m in (args.names or MODULES)]
    if args.list:
        for mod in modules:
            why = mod.missing()
            print(f"{mod.__name__.split('.')[-1]:18s} {mod.TITLE}" + (f"  [skipped: {why}]" if why else ""))
        return 0

    benchmarks.QUICK = args.quick
    m = machine()
    print(f"# Python {m['python']} on {m['cpu']} ({m['cores']} cores), load {m['load_at_start']}", flush=True)
    start = time.perf_counter()
    verdicts: list[bool | None] = []
    crashed = []
    for mod in modules:
        name = mod.__name__.split(".")[-1]
        why = mod.missing()
        if why:
            print(f"{mod.NAME}: skipped ({why})", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            results = mod.run(quick=args.quick)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            crashed.append(name)
            print(f"{mod.NAME}: ERROR", file=sys.stderr)
            traceback.print_exc()
            continue
        verdicts += [r.passed for r in results]
        print(f"#   ({time.perf_counter() - t0:.0f} s)", flush=True)
    passed = sum(v is True for v in verdicts)
    missed = sum(v is False for v in verdicts)
    print(f"# {passed} pass, {missed} miss, {len(crashed)} errors in {time.perf_counter() - start:.0f} s; "
          f"results in benchmarks/results/", flush=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
