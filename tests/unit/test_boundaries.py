"""Boundaries a one-character change would move: the newest format version read, a state's first nanosecond."""

from __future__ import annotations

import pytest
from samples import LOOP, LOOP_ROWS, build

from concurview.trace.events import FORMAT_VERSION
from concurview.trace.tracefile import TraceFormatError
from concurview.trace.store import NONE, RUNNING, WAITING, load


def _trace(tmp_path, version: int):
    path = tmp_path / f"v{version}.jsonl"
    path.write_text(
        f'{{"format":"concurview-trace","version":{version}}}\n'
        '{"type":"lane","id":0,"kind":"main","name":"m"}\n'
        '{"seq":0,"t":0,"lane":0,"kind":"run"}\n'
        '{"type":"footer","complete":true,"events":1,"lanes":1}\n')
    return path


def test_this_version_is_read_and_the_next_one_is_refused(tmp_path):
    assert load(_trace(tmp_path, FORMAT_VERSION)).n_events == 1
    assert load(_trace(tmp_path, FORMAT_VERSION - 1)).n_events == 1
    with pytest.raises(TraceFormatError, match=f"version {FORMAT_VERSION + 1} is newer than this concurview reads"):
        load(_trace(tmp_path, FORMAT_VERSION + 1))


def test_a_state_starts_at_the_exact_time_of_its_event():
    """At t of an event the lane is already in that event's state; one ns before, still in the previous one."""
    tl = build(LOOP, LOOP_ROWS)
    # task: open at 10, run at 20, wait at 30 (LOOP_ROWS).
    run_state, run_ev = tl.state_at(1, 20)
    assert run_state == RUNNING and tl.event(run_ev).t == 20 and tl.event(run_ev).kind == "run"
    assert tl.state_at(1, 19)[0] != RUNNING
    wait_state, wait_ev = tl.state_at(1, 30)
    assert wait_state == WAITING and tl.event(wait_ev).reason == "await sleep(3)"
    assert tl.state_at(1, 29) == (RUNNING, run_ev)
    assert tl.state_at(1, 9) == (NONE, None)
