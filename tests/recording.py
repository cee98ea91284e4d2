"""Record a scenario or a small program in a real child process and get its Timeline (on pytest's pythonpath)."""

from __future__ import annotations

import textwrap

from concurview.engines.runner import Run, Target
from concurview.scenarios import get
from concurview.trace.store import Timeline


def _timeline(run: Run) -> Timeline:
    tl = Timeline(run.header)
    for batch in run:
        tl.add(batch.lanes, batch.events)
    tl.finish(run.footer())
    return tl


def record_timeline(name: str, timeout: float = 60.0, **params: object) -> Timeline:
    """Run scenario `name` traced, with parameters overridden, and return the finished Timeline."""
    scenario = get(name)
    typed = scenario.coerce({k: str(v) for k, v in params.items()})
    return _timeline(Run(Target(str(scenario.path), scenario.name, typed), timeout=timeout))


def record_program(tmp_path, source: str, timeout: float = 60.0) -> Timeline:
    """Trace a small program (not a scenario), written to tmp_path/prog.py, in a real child process."""
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(source))
    return _timeline(Run(Target(str(path)), timeout=timeout))


def events(tl: Timeline, *kinds: str) -> list:
    """The timeline's events of the given kinds, in order."""
    return [tl.event(int(i)) for i in tl.events_of_kind(*kinds)]
