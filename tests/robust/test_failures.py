"""Programs that raise, exit hard, crash or hang: the trace says what happened and nothing of the run survives it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from robust_kit import EXE, PROGRAMS, cv, footer, leftovers, markers, wait_for_markers

from concurview.engines.runner import Run, Target
from concurview.trace.store import Timeline

HANG = str(PROGRAMS / "hang.py")

ENDS = [
    # how, CLI exit status, footer: complete, exit code, reason
    ("raise", 1, True, 1, "uncaught RuntimeError"),
    ("exit7", 7, True, 7, "exit code 7"),
    ("segv", 128 + signal.SIGSEGV, False, -signal.SIGSEGV, "killed by SIGSEGV"),
]


@pytest.mark.parametrize("how, status, complete, code, reason", ENDS, ids=[e[0] for e in ENDS])
def test_a_program_that_ends_badly_is_recorded_with_how_it_ended(tmp_path, how, status, complete, code, reason):
    trace = tmp_path / "t.jsonl"
    out = cv("run", "--record", str(trace), str(PROGRAMS / "ends.py"), how)
    assert out.returncode == status, out.stderr
    assert "Traceback" not in out.stderr.replace("Traceback (most recent call last):\n  File \"" + str(PROGRAMS), "")
    reader, lanes = footer(trace)
    f = reader.footer
    assert f is not None and (f.complete, f.exit_code, f.reason) == (complete, code, reason)
    assert not Path(str(trace) + ".partial").exists()
    if not complete:
        assert f"incomplete: {reason}" in out.stderr
    # What the program printed (and flushed) before it died is in the trace, even after a SIGSEGV.
    from concurview.trace.store import load

    tl = load(trace)
    assert "started" in [e.text for e in tl.logs() if e.kind == "log"]
    assert tl.complete is complete
    assert not leftovers(lanes[0].pid)


# mode, processes that hang (the program, pool workers, grandchildren, escapees)
HANGS = [("main", 1), ("threadpool", 1), ("processpool", 3), ("grandchild", 3), ("setsid", 2)]


@pytest.mark.parametrize("mode, n", HANGS, ids=[h[0] for h in HANGS])
def test_stop_kills_every_process_of_a_hanging_run(tmp_path, mode, n):
    """Run.stop() (the UI's stop key) ends the run: partial trace kept, incomplete, no process left.

    "setsid" is a daemon's double fork: it leaves the session and process group, and is
    still found (and killed) by the run's CONCURVIEW_CHANNEL in its environment.
    """
    ready = tmp_path / "ready"
    ready.mkdir()
    run = Run(Target(HANG, args=[mode, str(ready)]), timeout=60)

    def stop_once_hanging() -> None:
        wait_for_markers(ready, n, timeout=50)
        run.stop("stopped")

    stopper = threading.Thread(target=stop_once_hanging, daemon=True)
    stopper.start()
    tl = Timeline(run.header)
    for batch in run:
        tl.add(batch.lanes, batch.events)
    f = run.footer()
    tl.finish(f)
    stopper.join(5)
    pids = markers(ready)
    assert len(pids) >= n
    assert (f.complete, f.reason, f.exit_code) == (False, "stopped", -signal.SIGKILL)
    assert tl.n_events > 0 and not tl.complete
    left = leftovers(run.proc.pid, pids)
    assert not left, f"left behind (state, ppid, pgid, sid): {left}"


@pytest.mark.slow
def test_timeout_kills_a_process_pool_and_keeps_the_partial_trace(tmp_path):
    ready = tmp_path / "ready"
    ready.mkdir()
    trace = tmp_path / "t.jsonl"
    out = cv("run", "--record", str(trace), "--timeout", "6", HANG, "processpool", str(ready))
    assert out.returncode == 124, out.stderr
    assert "incomplete: timeout after 6 s" in out.stderr
    reader, lanes = footer(trace)
    assert reader.footer is not None and not reader.footer.complete
    assert reader.footer.reason == "timeout after 6 s"
    processes = {lane.pid for lane in lanes if lane.kind == "process" or lane.kind == "main"}
    assert len(processes) >= 2, "the pool's workers were recorded before the kill"
    assert not Path(str(trace) + ".partial").exists()
    pids = markers(ready)
    assert not leftovers(lanes[0].pid, pids)


def test_an_escapee_without_our_environment_does_not_hang_the_run(tmp_path):
    """The documented limit: a process that leaves the session AND drops the environment is not found.

    It survives the run (the test kills it), but it holds the program's stdout open and
    the run still ends, a grace period after the kill, instead of waiting on it forever.
    """
    ready = tmp_path / "ready"
    ready.mkdir()
    run = Run(Target(HANG, args=["setsid-noenv", str(ready)]), timeout=60)
    threading.Thread(target=lambda: (wait_for_markers(ready, 2, 50), run.stop("stopped")), daemon=True).start()
    try:
        for _ in run:
            pass
        assert run.footer().reason == "stopped"
    finally:
        for pid in markers(ready):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not leftovers(run.proc.pid)


@pytest.mark.parametrize("sig, status, reason", [(signal.SIGINT, -signal.SIGINT, "uncaught KeyboardInterrupt"),
                                                 (signal.SIGTERM, 143, "killed by SIGTERM")])
def test_a_signal_to_the_cli_during_a_flood_leaves_a_readable_partial_trace(tmp_path, sig, status, reason):
    trace = tmp_path / "t.jsonl"
    partial = Path(str(trace) + ".partial")
    proc = subprocess.Popen([*EXE, "run", "--record", str(trace), str(PROGRAMS / "flood.py"), "greenlet", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (partial.exists() and partial.stat().st_size > 2_000_000):
            assert time.monotonic() < deadline and proc.poll() is None, "the flood never got going"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    # The signal reaches the program (as from a terminal): Ctrl+C is its KeyboardInterrupt, SIGTERM kills it.
    reader, lanes = footer(trace)
    assert reader.footer is not None and not reader.truncated
    # Ctrl+C: the program's own KeyboardInterrupt (python's report, from the program's line), never the kill after
    # the grace -- also when it arrives while the greenlet tracer runs (it waits until the tracer has returned),
    # on the C and the pure-Python tracer alike; and the trace says it ended the program.
    assert proc.returncode == status, err
    assert reason in err and "/engines/" not in err, "the program's own report, no frame of concurview's"
    if sig == signal.SIGINT:
        assert "Traceback (most recent call last):" in err and "KeyboardInterrupt" in err
        assert 'flood.py", line' in err.split("Traceback (most recent call last):")[-1], err
    if sig == signal.SIGINT and reader.footer.reason == "killed by SIGINT":
        # Known gap (#19): now and then, under load, the child's last `error` event (the uncaught
        # KeyboardInterrupt) does not reach the runner before the child's end; the trace then names the
        # signal. The program still got its KeyboardInterrupt (its traceback, its status: above).
        assert not reader.footer.complete
    else:
        assert reader.footer.reason == reason and reader.footer.complete == (sig == signal.SIGINT)
    assert reader.n_read == reader.footer.events > 20_000, "every event counted is in the file"
    assert not partial.exists()
    assert not leftovers(lanes[0].pid)
