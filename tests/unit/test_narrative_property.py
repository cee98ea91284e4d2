"""The step narrative never contradicts the lanes' states: checked at every switch and every event of every recorded trace.

The traces: the UI's fixtures (tests/traces/*.jsonl) and every scenario of the catalogue recorded
small (tests/traces/catalogue/, made with `concurview record NAME -o T --set ...`, see
test_the_catalogue_is_covered; the stacked compare with `concurview compare --jobs 4 --job-sleep 0.05
--workers 2 -o compare.jsonl`). At each step, by the store's own state of each lane just after the
cursor's event (time order):

- a lane the text says runs, resumes, starts or wakes is running then;
- a lane the text says finished has closed by then and does nothing after that close (a recorder's
  `mark` about it, such as the lane cap's note, may come later);
- `A -> B` names as B the lane of the switch, and A is not running at B's run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from concurview.scenarios import catalogue
from concurview.trace.narrative import describe_event, explain, place_at, selected_line
from concurview.trace.states import RUNNING
from concurview.trace.store import load

TRACES = Path(__file__).resolve().parents[1] / "traces"
FILES = sorted(p for p in [*TRACES.glob("*.jsonl"), *(TRACES / "catalogue").glob("*.jsonl")]
               if not p.name.startswith("error-unreadable"))
ARROW = re.compile(r"^(?:#\d+/\d+|event \d+/\d+)  \S+(?: \S+)?  (.+?) -> (.+?): ")


def _names(tl) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for lane in tl.lanes:
        out.setdefault(lane.name, []).append(lane.id)
    return out


def _said(text: str, name: str, verbs: str) -> bool:
    return re.search(rf"(?:^|[\s:;(]){re.escape(name)} (?:{verbs})\b", text) is not None


class Facts:
    """Per lane, in time order: the rank of its last event, and of its closes."""

    def __init__(self, tl) -> None:
        n = tl.n_events
        self.rank = np.array([tl.event_rank(i) for i in range(n)])
        lanes = np.array([tl.event_lane(i) for i in range(n)])
        kinds = [tl.event_kind(i) for i in range(n)]
        self.last = {}
        self.closes: dict[int, list[int]] = {}
        for i in range(n):
            lane = int(lanes[i])
            if kinds[i] not in ("mark", "sample"):  # annotations about the lane, not its own doing
                self.last[lane] = max(self.last.get(lane, -1), int(self.rank[i]))
            if kinds[i] == "close":
                self.closes.setdefault(lane, []).append(int(self.rank[i]))


def check(tl, facts: Facts, names: dict[str, list[int]], text: str, p: int, switch_lane: int | None) -> None:
    at = int(facts.rank[p])
    where = f"{text!r}"
    for name, ids in names.items():
        if _said(text, name, "runs|resumes|starts|wakes"):
            assert any(tl.state_after(i, p)[0] == RUNNING for i in ids), f"{name} is not running: {where}"
        if _said(text, name, "finished"):
            assert any(any(c <= at for c in facts.closes.get(i, ())) and facts.last[i] in facts.closes.get(i, ())
                       for i in ids), f"{name} has not finished, or has events after its close: {where}"
    m = ARROW.match(text)
    if m:
        a, b = m.group(1), m.group(2)
        assert switch_lane is not None and tl.lanes[switch_lane].name == b, where
        assert a in names and all(tl.state_after(i, p)[0] != RUNNING for i in names[a]), \
            f"{a} is running at {b}'s run: {where}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(TRACES).as_posix())
def test_the_narrative_agrees_with_the_lane_states(path: Path) -> None:
    tl = load(path)
    facts, names = Facts(tl), _names(tl)
    for k in range(tl.n_switches):
        p = tl.switch_event(k)
        check(tl, facts, names, explain(tl, k), p, tl.event_lane(p))
    for i in range(tl.n_events):
        check(tl, facts, names, describe_event(tl, i), i, tl.event_lane(i) if tl.is_switch(i) else None)
        for lane in range(min(len(tl.lanes), 64)):
            state, place = place_at(tl, lane, i)
            if place is not None and state == RUNNING:
                # A running lane's arrow is at the line its current run names, nothing older.
                assert tl.state_after(lane, i)[0] == RUNNING
    for lane in range(min(len(tl.lanes), 8)):
        for k in range(tl.n_switches):
            p = tl.switch_event(k)
            text = selected_line(tl, lane, tl.event_time(p), p)
            if " · running" in text and "running " not in text.split(" · ", 1)[1][:8]:
                assert tl.state_after(lane, p)[0] == RUNNING, text


def test_the_catalogue_is_covered() -> None:
    """Every scenario of the catalogue has a recorded trace here (record new ones small)."""
    have = {p.stem for p in FILES}
    missing = [name for name in catalogue() if name not in have and not any(h.startswith(name) for h in have)]
    assert not missing, f"record these into tests/traces/catalogue/: {missing}"


def test_the_reach() -> None:
    """The property runs over enough to mean something (kept as a number the report can quote)."""
    switches = events = 0
    for path in FILES:
        tl = load(path)
        switches += tl.n_switches
        events += tl.n_events
    assert len(FILES) >= 50 and switches >= 500 and events >= 2000, (len(FILES), switches, events)
