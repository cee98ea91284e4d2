"""What the IO-model tests read from a trace: a read's lane and its two phases, and the program's state meanwhile."""

from __future__ import annotations

from dataclasses import dataclass

from concurview.trace.store import RUNNING, WAITING


def lane_id(tl, name: str) -> int:
    return next(lane.id for lane in tl.lanes if lane.name == name)


def lane_events(tl, name: str) -> list:
    lane = lane_id(tl, name)
    return sorted((tl.event(i) for i in range(tl.n_events) if tl.event(i).lane == lane), key=lambda e: e.t)


@dataclass
class Phases:
    """One read as its kernel buffer lane tells it."""

    phase1: object  # the "phase 1: ..." event: the program asked for the data
    arrived: object  # the kernel's arrival stamp (the lane turns ready): phase 1 is over
    phase2: object  # the "phase 2: ..." event: the copy into the user buffer starts
    done: object  # the "done: ..." event: the data is in the user buffer
    run: object  # the lane's run event at phase 2 (a step of its own)

    @property
    def program_copies(self) -> bool:
        return self.phase2.text.startswith("done by the program (synchronous)")

    @property
    def kernel_copies(self) -> bool:
        return self.phase2.text.startswith(("done by the kernel (asynchronous)", "done by glibc's helper thread"))


def phases(tl, lane: str) -> Phases:
    evs = lane_events(tl, lane)
    marks = [e for e in evs if e.kind == "phase"]
    assert [m.reason.split(":")[0] for m in marks] == ["phase 1", "phase 2", "done"], [m.reason for m in marks]
    (arrived,) = [e for e in evs if e.kind == "ready"]
    (run,) = [e for e in evs if e.kind == "run"]
    return Phases(marks[0], arrived, marks[1], marks[2], run)


def states(tl, lane: int, t0: int, t1: int, n: int = 25) -> set[int]:
    """The lane's states at n points strictly inside (t0, t1)."""
    return {tl.state_at(lane, t0 + (t1 - t0) * (k + 1) // (n + 1))[0] for k in range(n)}


__all__ = ["RUNNING", "WAITING", "Phases", "lane_events", "lane_id", "phases", "source_line", "states"]


def source_line(where: str) -> str:
    """The scenario line a `where` (file:line) points at."""
    from pathlib import Path

    file, line = where.rsplit(":", 1)
    return (Path(__file__).parents[2] / "scenarios" / file).read_text().splitlines()[int(line) - 1]
