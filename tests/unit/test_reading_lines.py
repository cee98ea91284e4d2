"""Every trace line is JSON whatever its spacing and key order: reformatted traces read the same; damage is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceFormatError, TraceReader
from concurview.trace.store import load

TRACES = Path(__file__).parent.parent / "traces"
SAMPLES = ["asyncio-tasks.jsonl", "threadpool-shutdown.jsonl", "greenlet-eat-play.jsonl", "io-models.jsonl"]


def facts(tl):
    """What a load yields: lanes, every event, the footer."""
    return ([(lane.id, lane.kind, lane.name, lane.parent, lane.pid, lane.tid) for lane in tl.lanes],
            [tl.event(i) for i in range(tl.n_events)], tl.footer, tl.complete, tl.truncated)


def reformat(src: Path, dst: Path, **dumps) -> Path:
    lines = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    order = dumps.pop("reverse", False)
    out = []
    for obj in lines:
        if order:
            obj = dict(reversed(list(obj.items())))
        out.append(json.dumps(obj, **dumps))
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("style", [
    {"separators": (", ", ": ")},  # json.dumps' own spacing
    {"separators": (" , ", " : "), "reverse": True},  # keys in another order, `"type"` last
    {"ensure_ascii": True, "reverse": True},  # \u escapes
])
def test_a_reformatted_trace_opens_with_the_same_lanes_and_events(tmp_path, name, style):
    original = load(TRACES / name)
    assert original.lanes and original.n_events
    again = load(reformat(TRACES / name, tmp_path / name, **dict(style)))
    assert facts(again) == facts(original)


def test_a_lane_line_the_c_parser_leaves_before_its_type_is_still_a_lane(tmp_path):
    """The C parser stops at an escaped string before it sees `type`: msgspec must still read a lane."""
    p = tmp_path / "t.jsonl"
    p.write_text('{"format":"concurview-trace","version":1}\n'
                 '{"id":0,"kind":"main","name":"say \\"hi\\"","type":"lane"}\n'
                 '{"seq":0,"t":5,"lane":0,"kind":"run"}\n'
                 '{"complete":true,"events":1,"lanes":1,"type":"footer"}\n')
    tl = load(p)
    assert [lane.name for lane in tl.lanes] == ['say "hi"'] and tl.n_events == 1 and tl.complete


def test_lines_of_an_unknown_type_are_skipped_but_must_be_json(tmp_path):
    head = '{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n'
    p = tmp_path / "t.jsonl"
    p.write_text(head + '{"type": "sample", "stack": [1, 2, {"x": null}]}\n{"seq":0,"t":5,"lane":0,"kind":"run"}\n')
    tl = load(p)
    assert tl.n_events == 1 and not tl.truncated, "a record type from the future is skipped"

    p.write_text(head + '{"type":"sample" this is not json}\n{"seq":0,"t":5,"lane":0,"kind":"run"}\n')
    with pytest.raises(TraceFormatError) as e:
        load(p)
    assert str(e.value).startswith(f"{p}: line 3: JSON is malformed") and "\n" not in str(e.value)

    p.write_text(head + '{"seq":0,"t":5,"lane":0,"kind":"run"}\n{"type":"sample","stack":[1,')
    tl = load(p)
    assert tl.truncated and tl.n_events == 1, "a torn last line is a truncated file, whatever its type"


def test_a_line_that_is_not_json_is_damage_named_by_its_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n'
                 '{"seq":0,"t":5,"lane":0,"kind":"run"}\nhello there\n{"seq":1,"t":6,"lane":0,"kind":"wait"}\n')
    with pytest.raises(TraceFormatError, match=r"t\.jsonl: line 4: JSON is malformed"):
        load(p)


def test_the_reader_reads_spaced_lines_in_any_chunking(tmp_path):
    src = reformat(TRACES / "asyncio-tasks.jsonl", tmp_path / "s.jsonl", separators=(", ", ": "), reverse=True)
    reference = TraceReader(TRACES / "asyncio-tasks.jsonl")
    want = [(ls, es) for ls, es in reference.batches()]
    for chunk in (1, 3, 64, 1000):
        r = TraceReader(src)
        got = [(ls, es) for ls, es in r.batches(chunk_bytes=chunk)]
        assert [lane for ls, _ in got for lane in ls] == [lane for ls, _ in want for lane in ls], chunk
        assert [e for _, es in got for e in es] == [e for _, es in want for e in es], chunk
        assert r.footer == reference.footer and r.complete, chunk
