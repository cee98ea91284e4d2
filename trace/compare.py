"""`concurview compare`'s data: one workload's runs on several models, stacked on one time axis, and their totals.

Running the models is the engines' part (engines/compare.py); this is what is made of the runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import Event, Footer, Header, Lane

if TYPE_CHECKING:
    from .store import Timeline

SCENARIO = "compare-models"
MODELS = ("sequential", "threads", "processes", "gevent", "asyncio")
ALL = "compare"  # the picker's entry that runs every model and stacks them
TOTAL = re.compile(r"^(\w+): \d+ jobs in ([0-9.]+) s")  # the line each model prints


@dataclass
class ModelRun:
    """One model's run: its lanes and events (times from the run's own start) and what it measured."""

    model: str
    lanes: list[Lane]
    events: list[Event]
    footer: Footer
    total: float | None  # seconds, as the program measured it around the jobs
    ideal: float


def merge(runs: list[ModelRun], params: dict) -> Timeline:
    """One timeline: every run's lanes, named `model · lane`, each run starting at t = 0."""
    lanes: list[Lane] = []
    tagged: list[tuple[int, int, Event]] = []
    for r in runs:
        base = len(lanes)
        for lane in r.lanes:
            lanes.append(Lane(base + lane.id, lane.kind, f"{r.model} · {lane.name}",
                              None if lane.parent is None else base + lane.parent, lane.pid, lane.tid))
        t0 = min((e.t for e in r.events), default=0)
        for e in r.events:
            tagged.append((e.t - t0, base + e.lane, e))
        # A lane still open when its run ended (gevent's Hub waits in its loop until the interpreter goes;
        # a kernel lane) ends with the run: on the stacked axis it would go on waiting until the longest
        # run's end, and `summary` would count that time (a 1 s run's Hub "waiting 4.4 s").
        end = max((e.t for e in r.events), default=t0) - t0
        closed = {e.lane for e in r.events if e.kind == "close"}
        seen = {e.lane for e in r.events}
        for lane in r.lanes:
            if lane.id in seen and lane.id not in closed:
                tagged.append((end, base + lane.id, Event(0, end, lane.id, "close", "its run ended")))
    tagged.sort(key=lambda x: x[0])
    events = [Event(seq, t, lane, e.kind, e.reason, e.where,
                    None if e.cause is None else e.cause + (lane - e.lane), e.text)
              for seq, (t, lane, e) in enumerate(tagged)]
    from .store import Timeline

    tl = Timeline(Header(scenario=SCENARIO, params=params))
    tl.add(lanes, events)
    complete = all(r.footer.complete for r in runs)
    tl.finish(Footer(complete=complete, events=len(events), lanes=len(lanes), duration=tl.t_end,
                     reason=None if complete else "a model's run did not finish"))
    return tl


def table(runs: list[ModelRun]) -> list[dict]:
    from .store import Timeline

    rows = []
    for r in runs:
        tl = Timeline()
        tl.add(r.lanes, r.events)
        # With the GIL view's samples in the trace, thread lanes count while they hold the GIL (or run
        # C code without it): on a GIL build the threads model shows 1, not its pool size.
        running = tl.max_running()
        workers = {k: v for k, v in running.items() if k not in ("main", "hub", "loop")}
        # Jobs in flight: what "concurrency" means for IO-bound work (a sleeping worker, a task waiting on IO count).
        flight = tl.max_in_flight()
        flying = {k: v for k, v in flight.items() if k not in ("main", "hub", "loop")}
        rows.append({
            "model": r.model, "total_s": r.total, "ideal_s": r.ideal, "switches": tl.n_switches,
            "lanes": len(r.lanes), "max_running_workers": max(workers.values(), default=running.get("main", 0)),
            "max_in_flight_workers": max(flying.values(), default=flight.get("main", 0)),
            "complete": r.footer.complete, "exit_code": r.footer.exit_code,
            "max_running_counts": "GIL holders (sampled)" if tl.has_samples else "lanes running (hooks)",
        })
    return rows
