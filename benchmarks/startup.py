"""Start-up: `concurview --help`, and `concurview run --record` of an empty program next to `python empty.py` (paired)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks import Drain, Result, concurview_command, has_viztracer, interleave, median, publish
from concurview.engines.recorder import ENV_CHANNEL, ENV_T0
from concurview.engines.runner import BOOT_SCRIPT, boot_dir

NAME = "startup"
TITLE = "`concurview --help` and `run --record` of an empty program, wall time (median of interleaved runs)"
# As a user's shell has it: PYTHONUNBUFFERED (set by some test runners) changes nothing we time, but keep
# the environment the same for every variant; PYTHONDONTWRITEBYTECODE (set by some sandboxes and CI) would
# have every run compile concurview's modules from source (~80 ms here), which an installed concurview
# never does (pip writes the .pyc files; an editable install writes them at the first run: the warm-up).
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
RECORD_TARGET_S = 0.15  # design.md: `run --record` of an empty program <= python + 0.15 s


def missing() -> str | None:
    return None


def _time(cmd: list[str], env: dict | None = None) -> dict:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or ENV)
    return {"wall_s": time.perf_counter() - t0}


def run(quick: bool = False) -> list[Result]:
    reps = 5 if quick else 15
    exe = concurview_command()
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        empty = os.path.join(tmp, "empty.py")
        with open(empty, "w") as f:
            f.write("")
        trace = os.path.join(tmp, "t.jsonl")
        drain = Drain()
        boot = boot_dir(tmp)
        child_env = dict(ENV, **{ENV_CHANNEL: drain.address, ENV_T0: str(time.monotonic_ns())})
        child = [sys.executable, os.path.join(boot, BOOT_SCRIPT), "--", empty]
        for cmd in ([*exe, "run", "--record", trace, empty], child):  # warm-up: .pyc files written
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env)
        variants = {
            "help": lambda: _time([*exe, "--help"]),
            # The traced child alone (no CLI, no runner: its channel drained here): the child's share.
            "child_empty": lambda: _time(child, child_env),
            "python": lambda: _time([sys.executable, "-c", "pass"]),
            "python_empty": lambda: _time([sys.executable, empty]),
            "record_empty": lambda: _time([*exe, "run", "--record", trace, empty]),
        }
        if has_viztracer():
            variants["viztracer_empty"] = lambda: _time([sys.executable, "-m", "viztracer", "--quiet", "-o",
                                                         os.path.join(tmp, "viz.json"), empty])
        try:
            samples = interleave(variants, reps)
        finally:
            drain.close()
    t = {k: median([s["wall_s"] for s in v]) for k, v in samples.items()}
    # Paired: each round's concurview run minus the python run of the same round (drift hits both alike).
    diffs = [r["wall_s"] - p["wall_s"] for r, p in zip(samples["record_empty"], samples["python_empty"])]
    added = median(diffs)
    ms = t["help"] * 1e3
    details = {"median_ms": {k: v * 1e3 for k, v in t.items()}, "command": exe + ["--help"], "reps": reps,
               "record_minus_python_ms": [d * 1e3 for d in diffs]}
    if ms > 150:
        details["importtime_top"] = importtime_top(exe)
    results = [
        Result(NAME, "concurview --help", ms, " ms", "<= 150 ms", ms <= 150, details),
        Result(NAME, "run --record empty.py minus python empty.py (paired)", added * 1e3, " ms",
               f"<= {RECORD_TARGET_S * 1e3:.0f} ms", added <= RECORD_TARGET_S,
               {"python_empty_ms": t["python_empty"] * 1e3, "record_empty_ms": t["record_empty"] * 1e3}),
    ]
    publish(NAME, results, {k: [s["wall_s"] for s in v] for k, v in samples.items()})
    child_diffs = [c["wall_s"] - p["wall_s"] for c, p in zip(samples["child_empty"], samples["python_empty"])]
    details["child_minus_python_ms"] = [d * 1e3 for d in child_diffs]
    print(f"#   bare `python -c pass`: {t['python'] * 1e3:.0f} ms (the floor)")
    print(f"#   the traced child alone (boot script, no CLI): {t['child_empty'] * 1e3:.0f} ms, "
          f"python empty.py + {median(child_diffs) * 1e3:.0f} ms paired; the CLI and runner: the rest")
    print(f"#   python empty.py {t['python_empty'] * 1e3:.0f} ms  |  concurview run --record {t['record_empty'] * 1e3:.0f} ms"
          + (f"  |  viztracer {t['viztracer_empty'] * 1e3:.0f} ms" if "viztracer_empty" in t else ""))
    for row in details.get("importtime_top", [])[:6]:
        print(f"#   import {row['module']}: {row['cumulative_ms']:.1f} ms cumulative")
    return results


def importtime_top(exe: list[str]) -> list[dict]:
    """The slowest imports of `concurview --help` (python -X importtime), for a miss."""
    cmd = [sys.executable, "-X", "importtime", "-c",
           "import sys; sys.argv = ['concurview', '--help']; from concurview.__main__ import main; main()"]
    err = subprocess.run(cmd, capture_output=True, text=True).stderr
    top = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cum_us, name = line.split(":", 1)[1].split("|")
        if not name.startswith("  "):  # one space: imported at top level, not by another module
            top.append({"module": name.strip(), "cumulative_ms": int(cum_us) / 1e3})
    top.sort(key=lambda r: -r["cumulative_ms"])
    return top[:10]
