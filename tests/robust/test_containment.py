"""A run's processes end with it however they re-fork, and a kill that does not work cannot hang the runner."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from robust_kit import PROGRAMS, cv, footer, wait_for_markers

from concurview.engines import runner
from concurview.engines.cgroup import RunCgroup
from concurview.engines.runner import Run, Target

REFORKER = str(PROGRAMS / "reforker.py")
HANG = str(PROGRAMS / "hang.py")


def _cgroups() -> bool:
    """Whether this machine gives us a cgroup v2 of our own that takes a process."""
    cg = RunCgroup.create()
    if cg is None:
        return False
    probe = subprocess.Popen(["sleep", "10"])
    try:
        return cg.add(probe.pid)
    finally:
        probe.kill()
        probe.wait()
        cg.remove()


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            out.append(pid)
    return out


def _chain_after_run(tmp_path: Path, *extra: str) -> tuple[list[int], int]:
    """Record the re-forking daemon; the pids its chain wrote, and how many more appeared after the run."""
    pids = tmp_path / "pids"
    pids.mkdir()
    trace = tmp_path / "t.jsonl"
    out = cv("run", "--record", str(trace), REFORKER, str(pids), *extra, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "daemon started" in out.stdout
    seen = len(os.listdir(pids))
    time.sleep(0.5)
    links = [int(p) for p in os.listdir(pids)]
    try:
        return _alive(links), len(links) - seen
    finally:
        for pid in links:  # whatever survived, so the machine is left clean
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_daemon_that_keeps_re_forking_ends_with_the_run(tmp_path):
    """fork, setsid, the parent exits, again and again: each link is a new session and process group,
    so only the cgroup (or the environment, chased until a pass finds nothing) catches them all."""
    alive, grew = _chain_after_run(tmp_path)
    assert alive == [] and grew == 0, f"{len(alive)} links alive, {grew} new ones after the run ended"


@pytest.mark.skipif(not _cgroups(), reason="this machine gives no cgroup v2 of our own")
def test_a_re_forking_daemon_that_drops_our_environment_ends_with_the_run(tmp_path):
    """Without our environment a process is found only by its cgroup: it cannot leave that by forking."""
    alive, grew = _chain_after_run(tmp_path, "noenv")
    assert alive == [] and grew == 0, f"{len(alive)} links alive, {grew} new ones after the run ended"


def test_every_run_removes_its_cgroup(tmp_path):
    made: list[RunCgroup] = []
    create = RunCgroup.create

    def spy() -> RunCgroup | None:
        cg = create()
        if cg is not None:
            made.append(cg)
        return cg

    RunCgroup.create = staticmethod(spy)  # type: ignore[method-assign]
    try:
        for _ in Run(Target(str(PROGRAMS / "ends.py"), args=["ok"]), timeout=30):
            pass
    finally:
        RunCgroup.create = create  # type: ignore[method-assign]
    if not made:
        pytest.skip("this machine gives no cgroup v2 of our own")
    assert not os.path.exists(made[0].path)


def test_a_kill_that_does_not_work_ends_the_run_in_bounded_time_and_says_so(tmp_path, monkeypatch):
    """If killing the program fails (here: the kill is switched off), the runner does not wait on it
    forever: stopping the run ends it within a few seconds, and the footer says the program was still there."""
    monkeypatch.setattr(runner, "_KILL_WAIT", 0.3)
    monkeypatch.setattr(Run, "_kill_group", lambda self: None)
    ready = tmp_path / "ready"
    ready.mkdir()
    run = Run(Target(HANG, args=["main", str(ready)]), timeout=60)
    threading.Thread(target=lambda: (wait_for_markers(ready, 1, 50), run.stop("stopped")), daemon=True).start()
    started = time.monotonic()
    try:
        for _ in run:
            pass
        took = time.monotonic() - started
        f = run.footer()
    finally:
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=10)
        if run._cgroup is not None:
            run._cgroup.remove()
    assert took < 15, f"the run took {took:.1f} s to give up on a program it could not kill"
    assert not f.complete
    assert f.reason == f"stopped; the program (pid {run.proc.pid}) was still there 0.3 s after SIGKILL"


def test_the_trace_of_a_re_forking_daemon_is_complete(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    trace = tmp_path / "t.jsonl"
    try:
        out = cv("run", "--record", str(trace), REFORKER, str(pids), timeout=60)
    finally:
        for p in os.listdir(pids):
            try:
                os.kill(int(p), signal.SIGKILL)
            except ProcessLookupError:
                pass
    reader, lanes = footer(trace)
    assert out.returncode == 0 and reader.footer.complete, (out.stderr, reader.footer)
    assert lanes[0].kind == "main"
