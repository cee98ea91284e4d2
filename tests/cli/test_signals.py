"""Signals sent to `concurview run --record` reach the program as they would from a terminal: same output, same status as python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceReader

EXE = [sys.executable, "-m", "concurview"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

# SLEEP: the programs sleep in short steps. A signal that lands between python's last check for one and the
# sleep's system call is only acted on when that call returns (CPython's own race; the threads engine's sleep
# hook widens the window a little): with one long sleep, a test would then wait for all of it.
CTRL_C = textwrap.dedent("""
    import atexit, sys, time
    atexit.register(lambda: print("atexit ran"))
    try:
        try:
            print("ready", flush=True)
            for _ in range(1200):  # short sleeps: see SLEEP above
                time.sleep(0.05)
        finally:
            print("finally ran")
    except KeyboardInterrupt:
        if sys.argv[1] == "raise":
            raise
        print("caught KeyboardInterrupt")
        sys.exit(7)
""")

TERM = textwrap.dedent("""
    import signal, sys, time
    def graceful(signum, frame):
        print(f"graceful shutdown on {signal.Signals(signum).name}")
        sys.exit(0)
    signal.signal(signal.SIGTERM, graceful)
    print("ready", flush=True)
    for _ in range(1200):
        time.sleep(0.05)
""")


def signalled(cmd: list[str], sig: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Start cmd, send it `sig` once the program said "ready", and collect how it ended."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd)
    try:
        first = proc.stdout.readline()
        assert first == "ready\n", (first, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(cmd, proc.returncode, first + out, err)


def both(tmp_path: Path, program: str, sig: int, *args: str):
    path = tmp_path / "prog.py"
    path.write_text(program)
    plain = signalled([sys.executable, str(path), *args], sig, tmp_path)
    traced = signalled([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(path), *args], sig, tmp_path)
    return plain, traced, TraceReader(tmp_path / "t.jsonl")


def footer(reader: TraceReader):
    for _ in reader.batches():
        pass
    return reader.footer


def test_ctrl_c_runs_the_programs_handler_finally_and_atexit_and_its_exit_status_is_kept(tmp_path):
    plain, traced, reader = both(tmp_path, CTRL_C, signal.SIGINT, "catch")
    assert plain.stdout == "ready\nfinally ran\ncaught KeyboardInterrupt\natexit ran\n" and plain.returncode == 7
    assert (traced.stdout, traced.returncode) == (plain.stdout, 7), traced.stderr
    f = footer(reader)
    assert f.complete and f.exit_code == 7 and f.reason == "exit code 7 after SIGINT"


def test_an_uncaught_keyboard_interrupt_ends_program_and_concurview_by_sigint_as_python(tmp_path):
    plain, traced, reader = both(tmp_path, CTRL_C, signal.SIGINT, "raise")
    assert plain.returncode == -signal.SIGINT and plain.stdout == "ready\nfinally ran\natexit ran\n"
    assert (traced.stdout, traced.returncode) == (plain.stdout, plain.returncode), traced.stderr
    # python's report (the line it names is where the signal landed: the print or the sleep, either run)
    for run in (plain, traced):
        report = run.stderr.split("KeyboardInterrupt\n")[0]
        assert report.startswith(f'Traceback (most recent call last):\n  File "{tmp_path / "prog.py"}", line ')
        assert report.count("File ") == 1, "no frame of concurview's"
    f = footer(reader)
    assert f.complete and f.exit_code == -signal.SIGINT and f.reason == "uncaught KeyboardInterrupt"
    assert "atexit ran" in [e.text for _, events in TraceReader(tmp_path / "t.jsonl").batches() for e in events]


def test_sigterm_reaches_the_programs_handler_for_a_graceful_shutdown(tmp_path):
    plain, traced, reader = both(tmp_path, TERM, signal.SIGTERM)
    assert plain.stdout == "ready\ngraceful shutdown on SIGTERM\n" and plain.returncode == 0
    assert (traced.stdout, traced.returncode) == (plain.stdout, 0), traced.stderr
    assert footer(reader).complete


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_program_without_handlers_dies_of_the_signal_as_under_python(tmp_path, sig):
    program = "import time\nprint('ready', flush=True)\nfor _ in range(1200):\n    time.sleep(0.05)\n"
    plain, traced, reader = both(tmp_path, program, sig)
    expected = -sig if sig == signal.SIGINT else 128 + sig  # we end by SIGINT only (python's own convention)
    assert plain.returncode == -sig and traced.returncode == expected, traced.stderr
    assert footer(reader).exit_code == -sig


def test_the_programs_signal_handlers_read_back_as_its_own(tmp_path):
    """concurview holds the program's handlers while it writes a frame (wrapped), invisibly: getsignal and
    signal.signal give back what the program set, as under python."""
    program = textwrap.dedent("""
        import signal
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        def h(signum, frame):
            pass
        print(signal.signal(signal.SIGINT, h) is signal.default_int_handler, signal.getsignal(signal.SIGINT) is h)
        print(signal.signal(signal.SIGTERM, signal.SIG_IGN) == signal.SIG_DFL,
              signal.getsignal(signal.SIGTERM) == signal.SIG_IGN)
    """)
    path = tmp_path / "prog.py"
    path.write_text(program)
    plain = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=ENV, timeout=30)
    traced = subprocess.run([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(path)], capture_output=True,
                            text=True, env=ENV, timeout=30)
    assert plain.stdout == "True\nTrue True\nTrue True\n"
    assert (traced.returncode, traced.stdout) == (0, plain.stdout), traced.stderr
