"""greenlet: 200k switches between two greenlets, untraced and traced: the added cost per switch."""

from __future__ import annotations

from benchmarks import Result, engine_present, interleave, median, publish, run_plain, run_traced

NAME = "greenlet-pingpong"
TITLE = "greenlet ping-pong, 200k switches: added ns per switch"
ROUNDS = 100_000  # two switches each


def missing() -> str | None:
    return None if engine_present("greenlet_engine") else "engines/greenlet_engine.py not written yet"


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 7
    samples = interleave({
        "untraced": lambda: run_plain("greenlet_pingpong.py", ROUNDS),
        "concurview": lambda: run_traced("greenlet_pingpong.py", ROUNDS),
    }, reps)
    t = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
    switches = samples["untraced"][0]["switches"]
    added = (t["concurview"] - t["untraced"]) / switches * 1e9
    results = [Result(NAME, "added per switch", added, " ns", "<= +250 ns", added <= 250, {
        "switches": switches, "median_cpu_s": t, "untraced_ns_per_switch": t["untraced"] / switches * 1e9,
        "ratio": t["concurview"] / t["untraced"],
        "wire_bytes_per_switch": median([s["wire_bytes"] for s in samples["concurview"]]) / switches,
    })]
    publish(NAME, results, {k: [s["cpu_s"] for s in v] for k, v in samples.items()})
    return results
