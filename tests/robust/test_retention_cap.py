"""The parent's retention cap: the oldest events are kept, the newest dropped and counted, the trace stays consistent."""

from __future__ import annotations

import msgspec
import pytest

from wire import frame_bytes, stream

from concurview.trace.events import OPEN, RUN, Footer, WireLane
from concurview.engines.runner import DEFAULT_MAX_EVENTS, ENV_MAX_EVENTS, Run, Target, max_events_from_env

PID = 4242
BASE = PID << 24


def frame(first_lane: int, n_lanes: int, n_events: int, dropped: int = 0) -> bytes:
    lanes = [WireLane(BASE | i, "thread", f"t{i}", None, PID, i) for i in range(first_lane, first_lane + n_lanes)]
    events = [(i, BASE | first_lane, OPEN if i == 0 else RUN) for i in range(n_events)]
    return frame_bytes(PID, lanes, events, dropped)


def test_events_past_the_cap_are_dropped_newest_first_and_counted():
    run = Run(Target("prog.py"), max_events=10)
    parts: list = []
    run._frames(stream(frame(0, 1, 6)), [], parts)
    run._frames(stream(frame(1, 1, 6, dropped=3)), [], parts)  # 4 of these fit
    lanes: list = []
    run._frames(stream(frame(2, 1, 5, dropped=5)), lanes, parts)  # none fit: its lane is not kept either
    kept = run._joined(parts).events()
    assert [e.t for e in kept] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3], "the oldest of each frame, in order"
    assert len(kept) == 10 and run.n_events == 10 and run.capped == 7 and not lanes and run.n_lanes == 2
    assert run.dropped == 5 + 7, "the recorders' drops (latest counter) plus the cap's"
    f = run.footer()
    assert (f.events, f.dropped, f.max_events) == (10, 12, 10)


def test_under_the_cap_nothing_changes_and_the_footer_says_nothing_about_it():
    run = Run(Target("prog.py"), max_events=100)
    run._frames(stream(frame(0, 2, 50)), [], [])
    f = run.footer()
    assert (f.events, f.dropped, f.max_events) == (50, 0, None)
    assert b"max_events" not in msgspec.json.encode(f), "omitted when unused: old readers see the same footer"


def test_old_readers_ignore_the_new_footer_field():
    class OldFooter(msgspec.Struct, tag_field="type", tag="footer"):
        complete: bool = True
        dropped: int = 0

    data = msgspec.json.encode(Footer(dropped=7, max_events=100))
    assert msgspec.json.decode(data, type=OldFooter).dropped == 7


def test_the_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_MAX_EVENTS, raising=False)
    assert max_events_from_env() == DEFAULT_MAX_EVENTS == Run(Target("p.py")).max_events
    monkeypatch.setenv(ENV_MAX_EVENTS, "1_000")
    assert Run(Target("p.py")).max_events == 1000
    assert Run(Target("p.py"), max_events=5).max_events == 5
    for bad in ("lots", "0", "-3", "1.5"):
        monkeypatch.setenv(ENV_MAX_EVENTS, bad)
        with pytest.raises(ValueError, match=ENV_MAX_EVENTS):
            max_events_from_env()
