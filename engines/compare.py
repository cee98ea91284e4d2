"""`concurview compare`'s runs: compare-models on one model, through a runner, collected as a ModelRun."""

from __future__ import annotations

import math
from collections.abc import Callable

from .runner import Run, Target
from ..scenarios import get
from ..trace.compare import SCENARIO, TOTAL, ModelRun
from ..trace.events import Event, Lane


def model_target(model: str, jobs: int, job_sleep: float, workers: int) -> Target:
    scenario = get(SCENARIO)
    params = scenario.coerce({"model": model, "jobs": str(jobs), "job_sleep": str(job_sleep),
                              "workers": str(workers)})
    return Target(str(scenario.path), scenario.name, params)


def run_model(model: str, jobs: int, job_sleep: float, workers: int, timeout: float | None,
              runner: Callable[[Target, float | None], Run] | None = None,
              started: Callable[[Run], None] | None = None) -> ModelRun:
    """Run compare-models on `model` (through `runner`, a real traced child by default) and collect it."""
    target = model_target(model, jobs, job_sleep, workers)
    run = runner(target, timeout) if runner is not None else Run(target, timeout=timeout)
    if started is not None:
        started(run)
    lanes: list[Lane] = []
    events: list[Event] = []
    for batch in run:
        lanes += batch.lanes
        events += batch.events
    total = None
    for e in events:
        m = TOTAL.match(e.text or "") if e.kind == "log" else None
        if m and m.group(1) == model:
            total = float(m.group(2))
    ideal = (jobs if model == "sequential" else math.ceil(jobs / workers)) * job_sleep
    return ModelRun(model, lanes, events, run.footer(), total, ideal)
