"""The trace loader under hostile input: only TraceFormatError (one line) or a loaded prefix, never a crash or hang."""

from __future__ import annotations

import json
import random
import re

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concurview.trace.events import EVENT_KINDS, KIND_CODE, Event, Footer, Header, Lane
from concurview.trace.tracefile import TraceFormatError, TraceWriter
from concurview.trace.store import load
from concurview.trace.narrative import explain

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def real_trace(path):
    w = TraceWriter(path, Header(scenario="fuzz", params={"n": 1}))
    w.lanes([Lane(0, "main", "MainThread", pid=1, tid=1), Lane(1, "task", "t", parent=0, pid=1, tid=1)])
    w.events([Event(0, 0, 0, "open"), Event(1, 1, 0, "run", "go", "x.py:1"), Event(2, 5, 1, "open", cause=0),
              Event(3, 9, 1, "run", cause=0), Event(4, 12, 1, "log", "stdout", text="héllo"),
              Event(5, 20, 1, "wait", "await sleep(1)", "x.py:4"), Event(6, 30, 1, "close")])
    return w.close(Footer(events=7, lanes=2))


def check(path) -> None:
    """Loading either works or fails with a one-line TraceFormatError."""
    try:
        tl = load(path)
    except TraceFormatError as e:
        assert str(e) and "\n" not in str(e)
        return
    tl.summary()
    if tl.n_switches:
        explain(tl, tl.n_switches - 1)
    tl.lane_states(range(len(tl.lanes)), 0, max(tl.t_end, 1), 40)


def test_truncation_at_every_byte_loads_a_prefix(tmp_path):
    data = real_trace(tmp_path / "t.jsonl").read_bytes()
    cut = tmp_path / "cut.jsonl"
    header_end = data.index(b"\n") + 1
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        if n < header_end - 1:
            try:
                load(cut)
            except TraceFormatError:
                continue
            raise AssertionError(f"a cut header must not load ({n} bytes)")
        tl = load(cut)
        assert n >= len(data) - 1 or not tl.complete, n  # only the last newline may go
        assert tl.n_events <= 7


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(tmp_path, blob):
    p = tmp_path / "r.jsonl"
    p.write_bytes(blob)
    check(p)


@FUZZ
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_bytes_spliced_into_a_real_trace(tmp_path, at, junk):
    data = real_trace(tmp_path / "t.jsonl").read_bytes()
    at = at % len(data)
    p = tmp_path / "s.jsonl"
    p.write_bytes(data[:at] + junk + data[at:])
    check(p)


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                        st.text(max_size=8))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=10)


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(["seq", "t", "lane", "kind", "reason", "where", "cause", "text",
                                                 "type", "id", "name", "parent", "extra"]),
                                json_value, max_size=8), max_size=6))
def test_wrong_types_huge_numbers_and_unknown_fields(tmp_path, records):
    lines = [json.dumps({"format": "concurview-trace", "version": 1})]
    lines.append('{"type":"lane","id":0,"kind":"main","name":"m"}')
    lines += [json.dumps(r) for r in records]
    p = tmp_path / "w.jsonl"
    p.write_text("\n".join(lines) + "\n")
    check(p)


def refused(path, capsys) -> str:
    """The one line `concurview summary` says about a file it refuses (exit status 2, no traceback)."""
    from concurview.cli import main

    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("concurview: error: ") and err.count("\n") == 1
    return err[len("concurview: error: "):-1]


DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_refused_cleanly(tmp_path, capsys):
    p = tmp_path / "deep.jsonl"
    p.write_text('{"format":"concurview-trace","version":1}\n' + '{"seq":0,"t":0,"lane":0,"kind":"run","text":'
                 + DEEP + "}\n")
    assert refused(p, capsys) == f"{p}: line 2: JSON nested too deeply"


@pytest.mark.parametrize("lines, line", [
    (['{"seq":0,"t":0,"lane":0,"kind":"run","future":' + DEEP + "}"], 3),  # a field the reader skips
    (['{"type":"sample","stack":' + DEEP + "}"], 3),  # a line type the reader skips
    (['{"seq":0,"t":0,"lane":0,"kind":"run"}', '{"type":"lane","id":1,"kind":"task","name":"t","x":' + DEEP + "}"], 4),
])
def test_deep_nesting_anywhere_is_one_line(tmp_path, capsys, lines, line):
    p = tmp_path / "deep.jsonl"
    p.write_text('{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n'
                 + "\n".join(lines) + "\n")
    assert refused(p, capsys) == f"{p}: line {line}: JSON nested too deeply"


def test_deep_nesting_in_the_header_is_one_line(tmp_path, capsys):
    p = tmp_path / "deep.jsonl"
    p.write_text('{"format":"concurview-trace","version":1,"params":{"x":' + DEEP + "}}\n")
    assert refused(p, capsys) == f"{p}: line 1: JSON nested too deeply"


def test_huge_times_and_lane_ids(tmp_path, capsys):
    p = tmp_path / "huge.jsonl"
    head = '{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n'
    p.write_text(head + '{"seq":0,"t":99999999999999999999999,"lane":0,"kind":"run"}\n'
                 '{"seq":1,"t":1,"lane":4294967296,"kind":"run"}\n{"seq":2,"t":-5,"lane":0,"kind":"run"}\n')
    assert refused(p, capsys) == f"{p}: line 3: Expected `int` <= 9223372036854775807 - at `$.t`"
    p.write_text(head + '{"seq":1,"t":1,"lane":4294967296,"kind":"run"}\n')
    assert refused(p, capsys) == f"{p}: line 3: Expected `int` <= 2147483647 - at `$.lane`"
    p.write_text(head + '{"seq":2,"t":-5,"lane":0,"kind":"run"}\n')
    assert refused(p, capsys) == f"{p}: line 3: Expected `int` >= 0 - at `$.t`"
    p.write_text(head + '{"seq":2,"t":1e308,"lane":0,"kind":"run"}\n')
    assert refused(p, capsys) == f"{p}: line 3: Expected `int`, got `float` - at `$.t`"


# -- the C event parser against msgspec, the reference for what a valid event line is ---------

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
field_value = st.one_of(json_scalar, _text, st.sampled_from(["run", "wait", "open", "log", "teleport"]),
                        st.integers(0, 2**63 + 10), st.lists(st.integers(), max_size=2))
# Mostly valid events (so the parser takes many), now and then a field of another kind or shape.
def _mostly(valid, weird=field_value):
    return st.integers(0, 9).flatmap(lambda k: weird if k == 0 else valid)


_valid = st.fixed_dictionaries({
    "seq": _mostly(st.integers(0, 10)), "t": _mostly(st.integers(0, 2**63 - 1)),
    "lane": _mostly(st.integers(0, 2**31 - 1)), "kind": _mostly(st.sampled_from(EVENT_KINDS)),
}, optional={
    "reason": _mostly(st.none() | _text), "where": _mostly(st.none() | _text),
    "cause": _mostly(st.none() | st.integers(0, 2**31 - 1)), "text": _mostly(st.none() | _text),
    "extra": field_value,
})
event_like = st.builds(lambda fields, drop: {k: v for k, v in fields.items() if k != drop},
                       _valid, st.sampled_from(["", "", "", "seq", "t", "lane", "kind"]))

def _spaced(record: dict, spaces: bool) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(", ", " : ") if spaces else (",", ":")).encode()


def _parsed(line: bytes):
    """(t, lane, kind, reason, where, cause, text) if the C parser took the line, else None."""
    from concurview.trace.columns import KIND_NAMES, StringTable
    from concurview.engines._speedups import EventParser

    strings = StringTable()
    parser = EventParser(strings._ids, strings.strings)
    stop, _pos, _lines = parser.parse(line + b"\n", 0)
    if stop != 0:
        return None
    n, t, lane, kind, reason, where, text, cause = parser.take()
    assert n == 1
    s = strings.strings
    num = lambda b: int.from_bytes(b, "little", signed=True)  # noqa: E731
    return (num(t), num(lane), KIND_NAMES[kind[0]], s[num(reason)], s[num(where)],
            None if num(cause) < 0 else num(cause), s[num(text)])


def _reference(line: bytes):
    try:
        e = msgspec.json.decode(line, type=Event)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    return (e.t, e.lane, e.kind if e.kind in KIND_CODE else "unknown", e.reason, e.where, e.cause, e.text)


@settings(max_examples=600, deadline=None)
@given(event_like, st.booleans())
def test_the_parser_takes_only_what_msgspec_reads_and_reads_it_alike(record, spaces):
    line = _spaced(record, spaces)
    parsed, reference = _parsed(line), _reference(line)
    if parsed is not None:
        assert reference is not None, f"msgspec refuses what the parser took: {line!r}"
        assert parsed == reference, line


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**63 - 1), st.integers(0, 2**31 - 1), st.sampled_from(EVENT_KINDS),
       st.none() | _text, st.none() | _text, st.none() | st.integers(0, 2**31 - 1), st.none() | _text)
def test_lines_our_writer_makes_take_the_fast_path(t, lane, kind, reason, where, cause, text):
    line = msgspec.json.encode(Event(0, t, lane, kind, reason, where, cause, text))
    assert _parsed(line) == (t, lane, kind, reason, where, cause, text)


def test_bytes_that_are_not_utf8_are_left_to_msgspec():
    for line in (b'{"seq":0,"t":1,"lane":0,"kind":"run","reason":"\xff"}',
                 b'{"seq":0,"t":1,"lane":0,"kind":"r\xffn"}',
                 b'{"seq":0,"t":1,"lane":0,"kind":"run","reason":"\\ud800"}'):
        assert _parsed(line) is None and _reference(line) is None, line
    # msgspec skips an unknown field's string unread; the parser leaves such a line to it.
    assert _parsed(b'{"seq":0,"t":1,"lane":0,"kind":"run","x":"\xc3"}') is None


# -- the Chrome importer under hostile input ----------------------------------------------------

CHROME = {"traceEvents": [
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "MainThread"}},
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "task: worker"}},
    {"ph": "X", "name": "main (prog.py:3)", "cat": "fn", "pid": 1, "tid": 1, "ts": 10.5, "dur": 100.0},
    {"ph": "X", "name": "inner", "pid": 1, "tid": 1, "ts": 20, "dur": 5},
    {"ph": "X", "name": "w", "cat": "waiting", "pid": 1, "tid": 2, "ts": 30, "dur": 10,
     "args": {"reason": "sleep", "where": "x.py:1"}},
    {"ph": "X", "name": "r", "cat": "running", "pid": 1, "tid": 2, "ts": 40, "dur": 10},
    {"ph": "B", "name": "b", "pid": 2, "tid": 7, "ts": 5},
    {"ph": "E", "pid": 2, "tid": 7, "ts": 50},
    {"ph": "i", "name": "tick", "pid": 1, "tid": 1, "ts": 60, "s": "t"},
]}
# Values of the wrong kind or size for a field, and raw tokens JSON encoders would not write.
ODD_VALUES = [1e308, -1e308, -1, 0, "12", None, [], {}, [[[]]], {"a": {"b": 1}}, 2**64 - 1, 2**70, -2**63, 1.5,
              True, "", "x" * 300, {"name": 5, "reason": [], "where": {}}]
ODD_TOKENS = [b"1e400", b"-1e400", b"NaN", b"Infinity", b"-0", b'"\xff\xfe"', b"[" * 5000 + b"]" * 5000, b"1e-400",
              b"18446744073709551616", b'"\\ud800"']


def chrome_mutant(rng: random.Random) -> bytes:
    """A real-looking Chrome trace (object or bare array) with one kind of damage."""
    doc = json.loads(json.dumps(CHROME))
    events = doc["traceEvents"]
    top = doc if rng.random() < 0.6 else events
    how = rng.random()
    if how < 0.45:  # a field of an event: missing, or a value of another type or size
        e = rng.choice(events)
        key = rng.choice(["ph", "name", "cat", "pid", "tid", "ts", "dur", "args", "extra"])
        if rng.random() < 0.25:
            e.pop(key, None)
        else:
            e[key] = rng.choice(ODD_VALUES)
        return json.dumps(top).encode()
    data = json.dumps(top).encode()
    if how < 0.75:  # a number replaced by a raw token (huge, not finite, invalid UTF-8, deep)
        spans = [m.span() for m in re.finditer(rb"-?\d+(\.\d+)?", data)]
        a, b = rng.choice(spans)
        return data[:a] + rng.choice(ODD_TOKENS) + data[b:]
    out = bytearray(data)  # bytes flipped, cut or inserted
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        op = rng.random()
        if op < 0.4:
            out[i] = rng.randrange(256)
        elif op < 0.7:
            del out[i:i + rng.randint(1, 8)]
        else:
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(out)


def test_chrome_importer_mutations_load_or_fail_in_one_line(tmp_path):
    """Seeded mutations of a Chrome trace: each loads (and summarises and exports) or is refused in one
    line. (Before: invalid UTF-8, deep nesting and times of 1e308 raised tracebacks, 47 in 600.)"""
    from concurview.trace.export import export

    rng = random.Random(17)
    p = tmp_path / "c.json"
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(400):
        data = chrome_mutant(rng)
        p.write_bytes(data)
        try:
            tl = load(p)
        except TraceFormatError as e:
            assert str(e) and "\n" not in str(e), data
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        s = tl.summary()
        assert all(lane[k] >= 0 for lane in s["lane_totals"] for k in ("running_s", "waiting_s", "ready_s")), data
        assert 0 <= tl.t_end < 2**63
        export(tl, "chrome", 60)
        export(tl, "txt", 60)
    assert outcomes["loaded"] > 100 and outcomes["refused"] > 20, outcomes
