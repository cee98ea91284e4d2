"""Start-up: wall time of `concurview --help`, next to a bare interpreter start."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks import Result, concurview_command, interleave, median, publish

NAME = "startup"
TITLE = "`concurview --help` wall time (median of interleaved runs)"


def missing() -> str | None:
    return None


def _time(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"wall_s": time.perf_counter() - t0}


def run(quick: bool = False) -> list[Result]:
    reps = 5 if quick else 15
    exe = concurview_command()
    samples = interleave({
        "help": lambda: _time([*exe, "--help"]),
        "python": lambda: _time([sys.executable, "-c", "pass"]),
    }, reps)
    t = {k: median([s["wall_s"] for s in v]) for k, v in samples.items()}
    ms = t["help"] * 1e3
    details = {"median_ms": {k: v * 1e3 for k, v in t.items()}, "command": exe + ["--help"], "reps": reps}
    if ms > 150:
        details["importtime_top"] = importtime_top(exe)
    results = [Result(NAME, "concurview --help", ms, " ms", "<= 150 ms", ms <= 150, details)]
    publish(NAME, results, {k: [s["wall_s"] for s in v] for k, v in samples.items()})
    print(f"#   bare `python -c pass`: {t['python'] * 1e3:.0f} ms")
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
