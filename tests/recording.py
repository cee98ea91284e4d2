"""Record a scenario in a real child process and get its Timeline (on pytest's pythonpath)."""

from __future__ import annotations

from concurview.engines.runner import Run, Target
from concurview.scenarios import get
from concurview.tui.store import Timeline


def record_timeline(name: str, timeout: float = 60.0, **params: object) -> Timeline:
    """Run scenario `name` traced, with parameters overridden, and return the finished Timeline."""
    scenario = get(name)
    typed = scenario.coerce({k: str(v) for k, v in params.items()})
    run = Run(Target(str(scenario.path), scenario.name, typed), timeout=timeout)
    tl = Timeline(run.header)
    for batch in run:
        tl.add(batch.lanes, batch.events)
    tl.finish(run.footer())
    return tl
