"""The store's dense layout: chunked passes agree with whole-trace ones, narrow columns hold their boundary values."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from concurview.trace import store
from concurview.trace.store import _CHANGES, load

TRACES = sorted(p for p in (Path(__file__).parents[1] / "traces").glob("*.jsonl")
                if not p.name.startswith("error-unreadable"))


def _plain_index(tl):
    """The change index as one stable argsort of every change by lane (the way it was built before)."""
    n = tl.n_events
    at = np.flatnonzero(_CHANGES[tl._kind.a[:n]])
    lanes = tl._lane.a[:n][at]
    order = np.argsort(lanes, kind="stable")
    start = np.zeros(len(tl.lanes) + 1, dtype=np.int64)
    np.cumsum(np.bincount(lanes, minlength=len(tl.lanes)), out=start[1:])
    return at[order], start


def _summary(tl):
    s = tl.summary()
    s["lane_totals"] = list(s["lane_totals"])
    return s, tl.max_running(), tl.max_in_flight()


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_chunked_index_and_summary_match_one_pass(path, monkeypatch):
    first = load(path)
    whole = _summary(first)
    changes = [a.tolist() for a in first.state_changes()]
    for chunk in (1, 3, 17):
        monkeypatch.setattr(store, "_CHUNK_EVENTS", chunk)
        tl = load(path)
        got = _summary(tl)
        assert got == whole, chunk
        ev, start = _plain_index(tl)
        assert tl._index_ev.tolist() == ev.tolist()
        assert tl._index_start.tolist() == start.tolist()
        assert [a.tolist() for a in tl.state_changes()] == changes


def _lanes():
    from concurview.trace.events import Lane

    return [Lane(0, "main", "MainThread", pid=100, tid=1),
            Lane(1, "thread", "wörker ✓", parent=0, pid=100, tid=2**63 - 1),
            Lane(2, "task", "", parent=1, pid=None, tid=None),
            Lane(3, "greenlet", "lone \udc80 surrogate", parent=2**31 - 2, pid=2**40, tid=-5),  # parent names no lane
            Lane(4, "kind-from-the-future", "x" * 5000, parent=-1),
            Lane(5, "task", "t5", parent=2**31 + 7)]


def test_lane_table_gives_back_every_lane_as_added():
    from concurview.trace.store import LaneTable

    lanes = _lanes()
    table = LaneTable()
    table.extend(lanes[:2])
    table.extend(lanes[2:])
    assert len(table) == len(lanes)
    assert list(table) == lanes and table == lanes
    assert [table[i] for i in range(-len(lanes), 0)] == lanes
    assert table[1:3] == lanes[1:3]
    assert table.parents() == [lane.parent for lane in lanes]
    codes, kinds = table.kind_codes()
    assert [kinds[c] for c in codes.tolist()] == [lane.kind for lane in lanes]
    assert table.same_place(0).tolist() == [True, False, False, False, False, False]
    assert table.same_pid(2).tolist() == [False, False, True, False, True, True]  # pid None
    with pytest.raises(IndexError):
        table[len(lanes)]


def test_lanes_in_columns_through_the_timeline_and_a_file(tmp_path):
    from concurview.trace.events import Event, Footer, Header
    from concurview.trace.tracefile import TraceWriter
    from concurview.trace.store import Timeline

    lanes = _lanes()
    tl = Timeline()
    tl.add(lanes, [Event(0, 0, 1, "run"), Event(1, 5, 3, "open", cause=0)])
    assert list(tl.lanes) == lanes
    assert [n for n, _d in tl.lane_tree()] and sorted(n for n, _d in tl.lane_tree()) == list(range(len(lanes)))
    # (TraceWriter cannot write a lone surrogate: msgspec's encoder refuses it)
    # (nor a parent of -1: a file's lane ids are >= 0)
    lanes = [lane if lane.id != 3 else msgspec.structs.replace(lane, name="no surrogate") for lane in lanes[:4]]
    lanes.append(msgspec.structs.replace(_lanes()[5], id=4, parent=2**31 - 1))  # the largest a file allows
    path = tmp_path / "t.jsonl"
    w = TraceWriter(path, Header())
    w.lanes(lanes)
    w.events([Event(0, 0, 1, "run")])
    w.close(Footer(complete=True, events=1))
    assert list(load(path).lanes) == lanes


def test_text_blob_round_trip():
    from concurview.trace.store import TextBlob

    texts = ["", "plain", "ünïcödé ✓ 中文 🙂", "lone \ud800 and \udfff surrogates", "line\nbreaks\x00nul", "y" * (1 << 20)]
    blob = TextBlob()
    blob.extend(texts[:3])
    blob.extend(texts[3:])
    assert len(blob) == len(texts)
    assert [blob[k] for k in range(len(texts))] == texts


def test_loaded_texts_leave_the_string_table_and_read_back(tmp_path):
    from concurview.trace.events import Event, Footer, Header, Lane
    from concurview.trace.tracefile import TraceWriter

    path = tmp_path / "t.jsonl"
    w = TraceWriter(path, Header())
    w.lanes([Lane(0, "main", "MainThread", pid=1, tid=1)])
    cut = "z" * (64 << 10) + "… [truncated 936 KiB]"  # a line the recorder cut, with its marker
    texts = [f"line {i} ✓" for i in range(300)] + ["again"] * 5 + ["Lock.acquire", cut, "中文 🙂", cut]
    events = [Event(i, 10 * i, 0, "log", text=text) for i, text in enumerate(texts)]
    # the same string as a text and as a reason: both read back
    events.append(Event(len(events), 10 * len(events), 0, "wait", reason="Lock.acquire"))
    w.events(events)
    w.close(Footer(complete=True, events=len(events)))
    tl = load(path)
    assert [tl.event(i).text for i in range(len(texts))] == texts
    assert tl.event(len(texts)).reason == "Lock.acquire"
    assert list(tl.events_with_reason("lock.acq")) == [len(texts)]
    assert "line 7 ✓" not in tl.strings._ids and len(tl._texts) == 300 + 4  # each distinct text once
    assert [e.text for e in tl.logs()] == texts


def test_times_spanning_more_than_32_bits(tmp_path):
    from concurview.trace.events import Event, Footer, Header, Lane
    from concurview.trace.tracefile import TraceWriter

    path = tmp_path / "t.jsonl"
    w = TraceWriter(path, Header())
    w.lanes([Lane(0, "main", "MainThread", pid=1, tid=1), Lane(1, "thread", "w", parent=0, pid=1, tid=2)])
    big = 2**32 + 12345
    w.events([Event(0, 0, 0, "run"), Event(1, 7, 1, "run"), Event(2, big, 1, "wait", reason="sleep"),
              Event(3, 2**62, 0, "close")])
    w.close(Footer(complete=True, events=4))
    tl = load(path)
    assert [tl.event_time(i) for i in range(4)] == [0, 7, big, 2**62]
    rows = list(tl.summary()["lane_totals"])
    assert rows[1]["running_s"] == (big - 7) / 1e9 and rows[1]["waiting_s"] == (2**62 - big) / 1e9


def test_many_lanes_past_16_bits():
    from concurview.trace.events import Event, Lane
    from concurview.trace.store import Timeline

    n = 70_000
    tl = Timeline()
    tl.add([Lane(i, "task", f"t{i}", parent=0 if i else None, pid=1, tid=1) for i in range(n)],
           [Event(0, 0, 0, "run"), Event(1, 5, n - 1, "open"), Event(2, 9, n - 1, "run", cause=n - 2)])
    assert tl._lane.a.dtype == np.int32 and tl.event_lane(2) == n - 1 and tl.event(2).cause == n - 2
    assert tl.lanes[n - 1].name == f"t{n - 1}" and tl.max_running() == {"task": 2}  # lanes 0 and n - 1


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_most_at_once_by_event_order_matches_by_time(path, monkeypatch):
    tl = load(path)
    by_events = tl.max_running(), tl.max_in_flight()
    monkeypatch.setattr(store.Timeline, "_in_time_order", lambda self: False)
    assert (tl.max_running(), tl.max_in_flight()) == by_events


def test_most_at_once_ties_and_time_order():
    from concurview.trace.events import Event, Lane
    from concurview.trace.store import Timeline

    tl = Timeline()
    tl.add([Lane(i, "task", f"t{i}", pid=1, tid=1) for i in range(3)],
           [Event(0, 0, 0, "run"), Event(1, 10, 0, "wait"), Event(2, 10, 1, "run"),  # a stop and a start at 10
            Event(3, 10, 2, "run"), Event(4, 20, 1, "wait"), Event(5, 20, 2, "wait")])
    assert tl._in_time_order() and tl.max_running() == {"task": 2}
    tl.add([], [Event(6, 15, 0, "run")])  # back in time: by times again
    assert not tl._in_time_order() and tl.max_running() == {"task": 3}
