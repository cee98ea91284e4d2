"""Trace files and the wire codec: round trips, forward compatibility, damage reported in one line."""

from __future__ import annotations

import gzip

import msgspec
import pytest

from concurview.engines.speedups import EventBuffer
from concurview.trace.columns import Merger, Stream
from concurview.trace.events import (
    RUN, WAIT, WIRE_LANE_SHIFT, Event, Footer, Frame, Header, Lane, WireLane,
)
from concurview.trace.tracefile import TraceFormatError, TraceReader, TraceWriter

LANES = [Lane(0, "main", "MainThread", pid=10, tid=1), Lane(1, "task", "task", parent=0, pid=10, tid=1)]
EVENTS = [
    Event(0, 100, 0, "open"),
    Event(1, 200, 0, "run", reason="program starts", where="x.py:1"),
    Event(2, 300, 1, "open", cause=0),
    Event(3, 400, 1, "run", cause=0),
    Event(4, 500, 1, "log", reason="stdout", text="开始了"),
    Event(5, 600, 1, "wait", reason="await sleep(3)", where="x.py:12"),
]


def write(path, footer=Footer(events=6, lanes=2)):
    w = TraceWriter(path, Header(scenario="demo", params={"n": 3}))
    w.lanes(LANES[:1])
    w.events(EVENTS[:2])
    w.lanes(LANES[1:])
    w.events(EVENTS[2:])
    return w.close(footer)


def read_all(path):
    r = TraceReader(path)
    lanes, events = [], []
    for ls, es in r.batches(chunk_bytes=64):
        lanes += ls
        events += es
    return r, lanes, events


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_round_trip(tmp_path, name):
    path = write(tmp_path / name)
    assert not (tmp_path / (name + ".partial")).exists(), "the temp file is renamed into place"
    r, lanes, events = read_all(path)
    assert r.header.scenario == "demo" and r.header.params == {"n": 3}
    assert lanes == LANES and events == EVENTS
    assert r.footer == Footer(events=6, lanes=2) and r.complete


def test_every_chunk_size_reads_the_same_trace(tmp_path):
    """Chunk boundaries fall anywhere: inside lines, inside tags, on line ends."""
    path = write(tmp_path / "t.jsonl")
    for chunk in range(1, 300):
        r = TraceReader(path)
        got = [(ls, es) for ls, es in r.batches(chunk_bytes=chunk)]
        assert [l for ls, _ in got for l in ls] == LANES, chunk
        assert [e for _, es in got for e in es] == EVENTS, chunk
        assert r.complete, chunk


def test_gzip_is_detected_by_content_not_name(tmp_path):
    plain = write(tmp_path / "t.jsonl")
    disguised = tmp_path / "t.trace"
    disguised.write_bytes(gzip.compress(plain.read_bytes()))
    _, lanes, events = read_all(disguised)
    assert lanes == LANES and events == EVENTS


def test_file_is_human_readable_json_lines(tmp_path):
    lines = write(tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('{"format":"concurview-trace","version":1')
    assert lines[1] == '{"type":"lane","id":0,"kind":"main","name":"MainThread","pid":10,"tid":1}'
    assert '"text":"开始了"' in lines[7], "non-ASCII text stays readable"
    assert lines[-1].startswith('{"type":"footer"')


def test_unknown_fields_and_kinds_are_ignored(tmp_path):
    path = write(tmp_path / "t.jsonl")
    lines = path.read_text().splitlines()
    lines.insert(3, '{"seq":99,"t":250,"lane":0,"kind":"teleport","future_field":[1,2]}')
    lines[1] = lines[1][:-1] + ',"colour":"red"}'
    path.write_text("\n".join(lines) + "\n")
    r, lanes, events = read_all(path)
    assert lanes == LANES
    # Kept by the reader as "unknown" (the store skips it); the known events are read as written.
    assert [e.kind for e in events] == ["open", "unknown", "run", "open", "run", "log", "wait"]
    assert [(e.t, e.lane, e.kind, e.reason, e.where, e.cause, e.text) for e in events if e.kind != "unknown"] == \
        [(e.t, e.lane, e.kind, e.reason, e.where, e.cause, e.text) for e in EVENTS]


def test_the_parser_and_msgspec_read_every_event_line_alike(tmp_path):
    """Event lines the C parser takes and lines it leaves to msgspec (escapes, spaces, a field
    from the future, keys in another order) read back the same."""
    rows = [
        '{"seq":0,"t":1,"lane":0,"kind":"open"}',
        '{"seq":1,"t":2,"lane":0,"kind":"run","reason":"say \\"hi\\" \\u00e9\\ud83d\\ude00","where":"x.py:1"}',
        '{ "kind" : "wait" , "t" : 3 , "lane" : 0 , "seq" : 2 , "reason" : "sleep 1.0s" }',
        '{"seq":3,"t":4,"lane":0,"kind":"log","reason":"stdout","text":"开始了 tab\\there","new":{"x":1}}',
        '{"seq":4,"t":5,"lane":0,"kind":"ready","cause":0,"flag":true,"n":1.5}',
        '',
        '{"seq":5,"t":6,"lane":0,"kind":"run","cause":null,"where":null}',
    ]
    path = tmp_path / "t.jsonl"
    path.write_text('{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n'
                    + "\n".join(rows) + "\n")
    _, _, events = read_all(path)
    expected = [msgspec.json.decode(row.encode(), type=Event) for row in rows if row]
    assert [(e.t, e.lane, e.kind, e.reason, e.where, e.cause, e.text) for e in events] == \
        [(e.t, e.lane, e.kind, e.reason, e.where, e.cause, e.text) for e in expected]
    assert events[1].reason == 'say "hi" é😀' and events[3].text == "开始了 tab\there"


def test_missing_footer_means_incomplete(tmp_path):
    path = write(tmp_path / "t.jsonl", footer=None)
    r, _, events = read_all(path)
    assert events == EVENTS and r.footer is None and not r.complete and not r.truncated


@pytest.mark.parametrize("cut", [1, 7, 40])
def test_truncated_file_loads_its_intact_prefix(tmp_path, cut):
    data = write(tmp_path / "t.jsonl").read_bytes()
    torn = tmp_path / "torn.jsonl"
    body = data[: data.rindex(b"\n", 0, len(data) - 1)]  # drop the footer
    torn.write_bytes(body[:-cut])
    r, lanes, events = read_all(torn)
    assert r.truncated and not r.complete
    assert events == EVENTS[: len(events)] and len(events) >= len(EVENTS) - 2


def test_truncated_gzip_loads_its_prefix(tmp_path):
    data = write(tmp_path / "t.jsonl.gz").read_bytes()
    torn = tmp_path / "torn.jsonl.gz"
    torn.write_bytes(data[: len(data) * 2 // 3])
    r, lanes, events = read_all(torn)
    assert not r.complete
    assert events == EVENTS[: len(events)]


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\x00\x01binary", "not a concurview trace"),
    (b'{"format":"something-else","version":1}\n', "format 'something-else'"),
    (b'{"scenario":"x"}\n', "not a concurview trace"),
    (b'{"format":"concurview-trace","version":99}\n', "newer than this concurview"),
    (b'[1,2,3]\n', "not a concurview trace"),
])
def test_not_a_trace(tmp_path, content, message):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(TraceFormatError, match=message) as e:
        read_all(p)
    assert "\n" not in str(e.value)


def test_damaged_middle_line_names_the_line(tmp_path):
    path = write(tmp_path / "t.jsonl")
    lines = path.read_text().splitlines()
    lines[4] = '{"seq":"three","t":1,"lane":0,"kind":"run"}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError, match=r"line 5: Expected `int`"):
        read_all(path)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_damage_is_named_by_its_line_whatever_the_chunk_size(tmp_path, chunk):
    path = write(tmp_path / "t.jsonl")
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"t":', b'"t":"x",' b'"u":')
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(TraceFormatError, match=r"line 6: "):
        list(TraceReader(path).batches(chunk_bytes=chunk))


def test_gzip_members_are_read_one_after_another(tmp_path):
    """`cat a.gz b.gz` is a valid gzip file: a trace appended to in two sessions reads whole."""
    plain = write(tmp_path / "t.jsonl").read_bytes()
    half = plain.index(b"\n", len(plain) // 2) + 1
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(plain[:half]) + gzip.compress(plain[half:]))
    for chunk in (1, 5, 64, 1 << 20):
        r = TraceReader(path)
        got = [(ls, es) for ls, es in r.batches(chunk_bytes=chunk)]
        assert [l for ls, _ in got for l in ls] == LANES and [e for _, es in got for e in es] == EVENTS
        assert r.complete


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TraceFormatError, match="no such file"):
        TraceReader(tmp_path / "nope.jsonl")
    with pytest.raises(TraceFormatError, match="is a directory"):
        TraceReader(tmp_path)


def test_wire_frames_carry_events_in_columns_and_each_string_once():
    """A frame is a msgpack array: lanes as arrays, then each event field as one column (a base and
    a binary of narrow offsets); the runner's merger turns it back into the events, with dense lane ids."""
    main, task = 7 << WIRE_LANE_SHIFT, 7 << WIRE_LANE_SHIFT | 1
    buf = EventBuffer(0)
    buf.append((123, task, RUN, "await sleep(1)", "x.py:3", main))
    buf.append((124, task, WAIT, "await sleep(1)", "x.py:4"))
    lanes = [WireLane(main, "main", "m", None, 7, 1), WireLane(task, "task", "t", main, 7, 1)]
    data = msgspec.msgpack.encode(Frame(7, lanes, 0, *buf.take(0)))
    raw = msgspec.msgpack.decode(data)
    assert raw[:4] == [7, [[main, "main", "m", None, 7, 1], [task, "task", "t", main, 7, 1]], 0, 2]
    # t, lane, kind, cause, reason, where, text: [base, offsets], each offset a byte here or none at all
    # (the child's bases: the first time, else the smallest value, rounded down when it fits the width)
    assert raw[4:11] == [[123, b"\x00\x01"], [task, b""], [0, bytes([RUN, WAIT])], [main - 1, b"\x01\x00"],
                         [1, b""], [0, b"\x02\x03"], [0, b""]]
    assert raw[11] == ["await sleep(1)", "x.py:3", "x.py:4"]

    stream, merger, declared = Stream(), Merger(), []
    stream.buf += len(data).to_bytes(4, "little") + data
    (group,) = stream.groups()
    cols = merger.merge(stream, group, 10, declared)
    assert [(lane.id, lane.name, lane.parent) for lane in declared] == [(0, "m", None), (1, "t", 0)]
    assert [(e.t, e.lane, e.kind, e.reason, e.where, e.cause) for e in cols.events()] == [
        (123, 1, "run", "await sleep(1)", "x.py:3", 0), (124, 1, "wait", "await sleep(1)", "x.py:4", None)]
    assert not stream.buf, "whole frames are taken off the stream"