"""greenlet: 200k switches between two greenlets, untraced and traced: the added cost per switch.

A third variant runs untraced but with a no-op C tracer (`operator.is_`): what greenlet spends
calling any tracer at all, the floor under every greenlet.settrace tracer (it moves with the host
as much as the rest), so the lines say how much of the cost is ours.
"""

from __future__ import annotations

from benchmarks import Result, engine_present, interleave, median, publish, run_plain, run_traced

NAME = "greenlet-pingpong"
TITLE = "greenlet ping-pong, 200k switches: added ns per switch"
ROUNDS = 100_000  # two switches each


def missing() -> str | None:
    return None if engine_present("greenlet_engine") else "engines/greenlet_engine.py not written yet"


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 9
    samples = interleave({
        "untraced": lambda: run_plain("greenlet_pingpong.py", ROUNDS),
        "any-tracer": lambda: run_plain("greenlet_pingpong.py", ROUNDS, "any-tracer"),
        "concurview": lambda: run_traced("greenlet_pingpong.py", ROUNDS),
    }, reps)
    t = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
    switches = samples["untraced"][0]["switches"]
    per_switch = {k: v / switches * 1e9 for k, v in t.items()}
    added = per_switch["concurview"] - per_switch["untraced"]
    floor = per_switch["any-tracer"] - per_switch["untraced"]
    results = [
        Result(NAME, "added per switch", added, " ns", "<= +250 ns", added <= 250, {
            "switches": switches, "median_cpu_s": t, "ns_per_switch": per_switch,
            "ratio": t["concurview"] / t["untraced"],
            "wire_bytes_per_switch": median([s["wire_bytes"] for s in samples["concurview"]]) / switches,
        }),
        Result(NAME, "of which greenlet calling a no-op tracer", floor, " ns", "", None),
        Result(NAME, "concurview's tracer beyond that", added - floor, " ns", "", None),
    ]
    publish(NAME, results, {k: [s["cpu_s"] for s in v] for k, v in samples.items()})
    return results
