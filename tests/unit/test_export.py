"""Exports: Chrome Trace Event Format checked against the format's rules, plain text and SVG."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

from rich.cells import cell_len

from concurview.trace.export import diagram_rows, to_chrome, to_svg, to_text
from samples import LOOP, LOOP_ROWS, Lane, build

LONG_NAMES = ["ThreadPoolExecutor-12_0", "ThreadPoolExecutor-12_1", "任务任务任务任务任务任务任务-1"]


def validate_chrome(doc: dict) -> list[dict]:
    """The rules Perfetto's and chrome://tracing's JSON importers rely on."""
    events = doc["traceEvents"]
    assert isinstance(events, list)
    named = set()
    for e in events:
        assert e["ph"] in {"M", "X", "i", "s", "f"}, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int) and isinstance(e["name"], str), e
        if e["ph"] == "M":
            if e["name"] == "thread_name":
                named.add((e["pid"], e["tid"]))
            continue
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
    slices = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            slices[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for track, spans in slices.items():
        assert track in named, f"track {track} has no thread_name"
        spans.sort()
        for (a0, a1), (b0, _) in zip(spans, spans[1:]):
            assert b0 >= a1 - 1e-3, f"overlapping slices on {track}: {(a0, a1)} and {b0}"
    flows = defaultdict(list)
    for e in events:
        if e["ph"] in "sf":
            flows[e["id"]].append(e)
    for fid, pair in flows.items():
        assert sorted(p["ph"] for p in pair) == ["f", "s"], fid
        start, finish = sorted(pair, key=lambda p: p["ph"] != "s")
        assert finish["bp"] == "e" and start["ts"] == finish["ts"]
    return events


def test_chrome_tracks_intervals_instants_and_flows():
    tl = build(LOOP, LOOP_ROWS)
    events = validate_chrome(json.loads(json.dumps(to_chrome(tl))))
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {"main: MainThread", "task: task", "task: task2"}
    x = [e for e in events if e["ph"] == "X"]
    # task2: ready 10..30, running 30..40, waiting 40..60, running 60..70 (ns -> µs).
    task2 = [(e["cat"], round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000)) for e in x if e["tid"] == 2]
    assert task2 == [("ready", 10, 30), ("running", 30, 40), ("waiting", 40, 60), ("running", 60, 70)]
    wait = next(e for e in x if e["tid"] == 2 and e["cat"] == "waiting")
    assert wait["name"] == "wait: await sleep(2)" and wait["args"] == {"reason": "await sleep(2)",
                                                                      "where": "demo.py:12"}
    assert sum(1 for e in x if e["cat"] == "running") == tl.n_switches
    flows = [e for e in events if e["ph"] == "s"]
    assert len(flows) == 4 and all(f["tid"] == 0 for f in flows), "the loop thread caused every task step"
    (log,) = [e for e in events if e["ph"] == "i"]
    assert log["name"] == "3.0" and log["tid"] == 0


def test_text_diagram():
    tl = build(LOOP, LOOP_ROWS)
    text = to_text(tl, width=60)
    lines = text.splitlines()
    assert lines[0].startswith("hand-built · complete · 18 events · 3 lanes · 7 switches")
    rows = {line[:24].strip(): line[25:] for line in lines[2:5]}
    assert set(rows) == {"MainThread", "task", "task2"}
    assert rows["MainThread"].startswith("█") and "─" in rows["task"]
    assert lines[-1].startswith("█ running")


def test_text_diagram_keeps_long_lane_names_apart():
    """Names longer than the label column lose their middle, not their end (workers _0 and _1 stay
    two), and a wide character counts as the two cells it takes: every diagram starts in one column."""
    lanes = [Lane(0, "main", "MainThread", pid=1, tid=1)] + [
        Lane(i + 1, "thread", name, parent=0, pid=1, tid=i + 2) for i, name in enumerate(LONG_NAMES)]
    rows = [(0, 0, "open", None, None, None, None), (0, 0, "run", None, None, None, None)]
    rows += [(10 * (i + 1), i + 1, "open", None, None, 0, None) for i in range(len(LONG_NAMES))]
    rows += [(10 * (i + 1), i + 1, "run", None, None, 0, None) for i in range(len(LONG_NAMES))]
    tl = build(lanes, rows)
    labels = [label for label, _kind, _states in diagram_rows(tl, width=60)]
    first, second = (label.strip() for label in labels[1:3])
    assert first.startswith("ThreadPool") and "…" in first and first.endswith("-12_0")
    assert second == first[:-1] + "1"
    assert labels[3].rstrip().endswith("务-1") and "…" in labels[3]
    assert {cell_len(label) for label in labels} == {24}
    lines = to_text(tl, width=60).splitlines()[2:6]
    assert [line.startswith(label) for line, label in zip(lines, labels)] == [True] * 4


def test_svg_is_a_picture_of_the_diagram():
    svg = to_svg(build(LOOP, LOOP_ROWS), width=60)
    assert svg.lstrip().startswith("<svg") and "MainThread" in svg and "task2" in svg


def test_cli_export_writes_each_format(tmp_path):
    trace = tmp_path / "run.jsonl"
    subprocess.run([sys.executable, "-m", "concurview", "record", "asyncio-tasks", "-o", str(trace),
                    "--set", "task_sleep=0.05", "--set", "task2_sleep=0.02"], check=True, capture_output=True)
    for fmt, name in [("chrome", "run.chrome.json"), ("txt", "run.txt"), ("svg", "run.svg")]:
        out = subprocess.run([sys.executable, "-m", "concurview", "export", str(trace), "--to", fmt],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / name).stat().st_size > 100
    validate_chrome(json.loads((tmp_path / "run.chrome.json").read_text()))
    out = subprocess.run([sys.executable, "-m", "concurview", "export", str(trace), "--to", "txt", "-o", "-"],
                         capture_output=True, text=True)
    assert "task2" in out.stdout and "█" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "concurview", "export", str(trace), "--to", "pdf"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'pdf'" in bad.stderr and bad.stderr.count("\n") == 1
