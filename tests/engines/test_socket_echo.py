"""socket-echo on real traced runs: one OS thread serves every client (but thread-per-client), nothing lost, lanes bounded."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/status and loopback load are Linux here")

N = 30
SAMPLE = 3
WORKER_KINDS = ("thread", "greenlet", "task", "timer")


def result_row(tl, style):
    """The result table's row for `style`, as a dict of its columns (from the log)."""
    lines = [e.text for e in tl.logs() if e.kind == "log"]
    head = next(i for i, line in enumerate(lines) if line.split()[:3] == ["style", "clients", "ok"])
    cols = lines[head].replace("p50 ms", "p50").replace("p99 ms", "p99").replace("serving thr", "serving") \
        .replace("OS thr", "os").replace("RSS MiB", "rss").split()
    row = next(line.split() for line in lines[head + 1:] if line.split()[:1] == [style])
    return dict(zip(cols, row))


def by_kind(tl, *kinds):
    return [lane for lane in tl.lanes if lane.kind in kinds]


@pytest.mark.parametrize("style", ["selectors", "gevent", "asyncio", "threads"])
def test_every_client_is_served_and_lanes_stay_bounded(record, style):
    tl = record("socket-echo", style=style, clients=N, requests=3, sample=SAMPLE, timeout=20.0)
    assert tl.complete and tl.footer.exit_code == 0
    row = result_row(tl, style)
    assert int(row["clients"]) == N
    assert int(row["ok"]) == N and int(row["lost"]) == 0, "every client got all its echoes"
    assert float(row["req/s"].replace(",", "")) > 0
    assert 0 < float(row["p50"]) <= float(row["p99"])
    if style == "threads":
        assert int(row["serving"]) == N, "a thread per client"
        assert int(row["os"]) >= N, "N handler threads were alive at once"
    else:
        assert int(row["serving"]) == 1, "one OS thread served every connection"
    served = next(e.text for e in tl.logs() if e.kind == "log" and e.text.startswith("served "))
    assert served.startswith(f"served {N} connections, {N} closed cleanly, {N * 4 * 64} B echoed")

    # The table is printed once (a log), the mark is its one-line summary; the trace stays small:
    # sampled clients, capped workers.
    marks = [tl.event(int(i)) for i in tl.events_of_kind("mark")]
    (summary,) = [m for m in marks if m.reason.startswith(f"{style}: ")]
    assert "req/s" in summary.reason and not summary.text, "the table is not repeated in the mark"
    assert sum(1 for e in tl.logs() if e.kind == "log" and e.text.lstrip().startswith("style")) == 1
    assert len(by_kind(tl, "peer")) == SAMPLE
    workers = by_kind(tl, *WORKER_KINDS)
    # Per family (handle, handle-2, ...) at most SAMPLE lanes; a style has at most three families.
    assert len(workers) <= 3 * SAMPLE + 3
    assert len(tl.lanes) <= 4 * SAMPLE + 6
    if style != "selectors":
        assert any("lanes not recorded" in m.reason for m in marks), "the lanes past the cap are counted"

    main = next(lane for lane in tl.lanes if lane.kind == "main")
    server = by_kind(tl, "greenlet", "task", "hub")
    if style in ("gevent", "asyncio"):
        assert server and all(lane.tid == main.tid for lane in server), "every greenlet/task on the main thread"
    if style == "gevent":
        assert by_kind(tl, "hub"), "gevent's hub has a lane"
    if style == "threads":
        conns = [lane for lane in by_kind(tl, "thread") if lane.name.startswith("conn-")]
        assert len(conns) == SAMPLE and len({lane.tid for lane in conns}) == SAMPLE


def test_a_thousand_clients_on_one_thread(record):
    tl = record("socket-echo", style="selectors", clients=1000, requests=2, sample=SAMPLE, timeout=30.0)
    assert tl.complete and tl.footer.exit_code == 0
    row = result_row(tl, "selectors")
    assert int(row["ok"]) == 1000 and int(row["lost"]) == 0 and int(row["serving"]) == 1
    assert len(tl.lanes) <= 2 * SAMPLE + 3


def test_compare_runs_every_style_and_prints_one_table(record):
    tl = record("socket-echo-compare", clients=10, requests=2, timeout=20.0)
    assert tl.complete and tl.footer.exit_code == 0
    rows = {style: result_row(tl, style) for style in ("selectors", "gevent", "asyncio", "threads")}
    for style, row in rows.items():
        assert int(row["ok"]) == 10 and int(row["lost"]) == 0, style
        assert int(row["serving"]) == (10 if style == "threads" else 1), style
    marks = [tl.event(int(i)) for i in tl.events_of_kind("mark")]
    assert any(m.reason.startswith("10 clients: selectors ") for m in marks)
    assert {lane.name for lane in by_kind(tl, "process")} == {f"{s} server" for s in rows}


def test_the_lane_cap_drops_a_family_past_n_and_counts_it(monkeypatch):
    """CONCURVIEW_MAX_LANES in the recorder itself: lanes past the cap get UNTRACED and send nothing."""
    import os

    from wire import decode

    from concurview.trace.events import LOG, MARK, RUN
    from concurview.engines.recorder import ENV_MAX_LANES, UNTRACED, Recorder

    r, w = os.pipe()
    try:
        rec = Recorder(w, 0)
        rec.main_lane = rec.new_lane("main", "MainThread")
        monkeypatch.setenv(ENV_MAX_LANES, "2")
        lanes = [rec.new_lane("greenlet", "handle" if i == 0 else f"handle-{i + 1}") for i in range(5)]
        other = rec.new_lane("task", "main")  # another family: its own count
        assert lanes[2:] == [UNTRACED] * 3 and UNTRACED not in lanes[:2] and other != UNTRACED
        rec.record(UNTRACED, RUN)
        rec.record(lanes[0], RUN, None, None, UNTRACED)  # woken by an untraced lane: no cause
        rec.record(UNTRACED, LOG, "stdout", None, None, "printed by an untraced lane")
        rec.close()
        data = os.read(r, 1 << 20)
    finally:
        os.close(r)
        os.close(w)
    (frame,) = decode(data)
    assert [lane.name for lane in frame.lanes] == ["MainThread", "handle", "handle-2", "main"]
    events = frame.events
    assert all(e.lane != UNTRACED and e.cause != UNTRACED for e in events)
    assert [e.cause for e in events if e.kind == RUN] == [None]
    assert any(e.kind == LOG and e.lane == rec.main_lane and e.text == "printed by an untraced lane" for e in events)
    marks = [e for e in events if e.kind == MARK]
    assert marks[0].reason.startswith("lane cap: greenlet lanes like 'handle-3' past the first 2")
    assert marks[-1].reason == "3 lanes not recorded (lane cap)" and "3 × greenlet handle" in marks[-1].text
