"""SVG snapshots of the IO models' phases: io-models at a phase-2 step, and an IO scenario's source pane on the model's own call.

Recorded fixtures (tests/traces/io-*.jsonl) at a fixed terminal size, as in
test_snapshots.py; update with `pytest tests/snapshots/test_io_snapshots.py
--snapshot-update` from one Python version, then look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from concurview.tui.app import make_app

TRACES = Path(__file__).resolve().parent.parent / "traces"
SIZE = (120, 34)


@pytest.fixture(autouse=True)
def _no_color_from_the_outside(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)


def at_phase_two(lane: str):
    """run_before: time axis, fit, the cursor on the switch where `lane` starts phase 2 (it runs)."""

    async def run_before(pilot) -> None:
        await pilot.pause()
        app = pilot.app
        tl = app.timeline
        app.axis = "time"
        k = next(k for k in range(tl.n_switches) if tl.lanes[tl.switch(k).lane].name == lane)
        app.goto_switch(k)
        await pilot.pause()

    return run_before


def test_io_models_at_blocking_phase_two(snap_compare):
    """io-models at blocking's phase-2 step (#2), time axis, the whole run in view. You should see
    the MainThread row (label "wait") ─ under blocking's ░ phase-1 band and █ under non-blocking's,
    signal-driven's and async's; five "kernel buffer · <model>" rows, one under another, each a run
    of ░ (phase 1: waiting for data) then one ▓ column (phase 2: the copy, microseconds, magnified),
    the cursor ▼ on blocking's ▓ (label "run"); the explanation "#2/.. MainThread -> kernel buffer ·
    blocking: MainThread waits (recv(): blocked while the kernel copies 64 B into the user buffer
    (phase 2) ...); kernel buffer · blocking runs (phase 2: copying 64 B into the user buffer for the
    program's recv() (... µs, magnified))"; the source pane on `sock.recv_into(buf, 0,
    socket.MSG_WAITALL)` in blocking(); the output pane's marks as messages ("model 1: blocking", ...)
    and the results table below, dim after the cursor."""
    app = make_app(trace=str(TRACES / "io-models.jsonl"))
    assert snap_compare(app, terminal_size=SIZE, run_before=at_phase_two("kernel buffer · blocking"))


def test_io_models_at_async_phase_two(snap_compare):
    """io-models at async's phase-2 step (the last switch): the kernel buffer · async lane runs
    (▓ under the cursor) while the MainThread row stays █ - the kernel copies, the program keeps
    working; the explanation says "phase 2: the kernel copies 64 B into the user buffer (at most ...,
    magnified)"; the source pane on `read.completed(...)` in asynchronous()."""
    app = make_app(trace=str(TRACES / "io-models.jsonl"))
    assert snap_compare(app, terminal_size=SIZE, run_before=at_phase_two("kernel buffer · async"))


def test_io_blocking_source_pane_on_the_recv_call(snap_compare):
    """io-blocking at its phase-2 step: the source pane shows the model's own code - `peer = Peer(...)`,
    `sock = peer.sock`, `buf = bytearray(...)`, `read.phase1(blocked="recv()")` and ▶ on
    `n = sock.recv_into(buf, 0, socket.MSG_WAITALL)  # phase 1 and phase 2, both inside this call`,
    then `read.phase2("recv()")`; no sys.audit or probe(...) calls in sight. The kernel buffer row shows
    ░ then ▓ under the cursor; the output pane ends with "recv() waited ... for data (phase 1), then ...
    to wake up and copy 64 B (phase 2): blocked ... in all"."""
    app = make_app(trace=str(TRACES / "io-blocking.jsonl"))
    assert snap_compare(app, terminal_size=SIZE, run_before=at_phase_two("kernel buffer"))
