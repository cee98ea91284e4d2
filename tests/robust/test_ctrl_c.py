"""Ctrl+C under the tool: the program's whole process group gets it; one that will not end is killed after a grace period, and the footer says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from robust_kit import EXE, leftovers

from concurview.engines.runner import Run, Target

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def test_a_program_that_ignores_sigint_is_killed_after_the_grace_period(tmp_path):
    program = tmp_path / "stubborn.py"
    program.write_text(textwrap.dedent("""
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("ignoring Ctrl+C")
        sys.stdout.flush()
        time.sleep(120)
    """))
    run = Run(Target(str(program)), timeout=60)
    got: list[float] = []

    def interrupt() -> None:
        while not run.n_events >= 3:  # its lane and the printed line have arrived
            time.sleep(0.02)
        got.append(time.monotonic())
        run.forward(signal.SIGINT, grace=0.5)

    threading.Thread(target=interrupt, daemon=True).start()
    for _ in run:
        pass
    took = time.monotonic() - got[0]
    f = run.footer()
    assert not f.complete and f.reason == "SIGINT: the program had not ended 0.5 s after it; killed"
    assert 0.5 <= took < 10, took
    assert not leftovers(run.proc.pid)


def test_ctrl_c_reaches_every_process_of_the_programs_group(tmp_path):
    """Pool workers get SIGINT too, as in a terminal's foreground job: each handles its KeyboardInterrupt."""
    program = tmp_path / "workers.py"
    program.write_text(textwrap.dedent("""
        import multiprocessing as mp, os, sys, time

        def worker(ready):
            try:
                ready.send(os.getpid())  # a Pipe, not a Queue: no feeder thread that could take the signal
                # Short sleeps: a signal that lands between the last check for one and the sleep's system
                # call is only seen when that call ends (CPython's own race, wider under the threads hook).
                while True:
                    time.sleep(0.05)
            except KeyboardInterrupt:
                print(f"worker interrupted", flush=True)

        if __name__ == "__main__":
            ctx = mp.get_context("fork")
            pipes = [ctx.Pipe(duplex=False) for _ in range(2)]
            procs = [ctx.Process(target=worker, args=(w,)) for _, w in pipes]
            for p in procs:
                p.start()
            for r, _ in pipes:
                r.recv()
            try:
                print("ready", flush=True)
                for p in procs:
                    p.join()
            except KeyboardInterrupt:
                for p in procs:
                    p.join()
                print("main interrupted, workers joined", flush=True)
    """))
    proc = subprocess.Popen([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(program)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["worker interrupted"] * 2 + ["main interrupted, workers joined"]
    assert "after SIGINT" not in err  # complete, exit code 0: concurview's line is the plain one
