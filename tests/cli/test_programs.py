"""Real programs from tests/programs/ through `concurview run PROG --record`: lanes, kinds, switches, exit codes, where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from concurview.trace.store import Timeline, load
from recording import events

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
EXE = [sys.executable, "-m", "concurview"]


def trace(tmp_path, program: str, *args: str, stdin: str = "") -> tuple[subprocess.CompletedProcess[str], Timeline]:
    out = tmp_path / "trace.jsonl"
    proc = subprocess.run([*EXE, "run", "--record", str(out), program, *args], input=stdin, capture_output=True,
                          text=True, cwd=PROGRAMS, timeout=90)
    tl = load(out)
    assert tl.complete, (proc.stderr, tl.footer)
    assert tl.footer.exit_code == proc.returncode
    # Every `where` points into the program's own file: never concurview's or a library's frames.
    wheres = {tl.event(i).where for i in range(tl.n_events)} - {None}
    assert wheres and {w.rsplit(":", 1)[0] for w in wheres} == {program}, wheres
    return proc, tl


def lanes(tl: Timeline, kind: str) -> list:
    return [lane for lane in tl.lanes if lane.kind == kind]


def test_threads_with_a_queue(tmp_path):
    n = 9
    proc, tl = trace(tmp_path, "threads_queue.py", str(n), "0.02")
    assert proc.returncode == 0 and proc.stdout == "done True\n"
    main = tl.lanes[0]
    consumers = lanes(tl, "thread")
    assert main.kind == "main" and sorted(c.name for c in consumers) == ["consumer-0", "consumer-1", "consumer-2"]
    assert all(c.parent == main.id and c.pid == main.pid and c.tid != main.tid for c in consumers)
    ids = {c.id for c in consumers}
    waits = events(tl, "wait")
    sleeps = [e for e in waits if e.reason == "sleep 0.02s"]
    assert len(sleeps) == n and {e.lane for e in sleeps} <= ids and {e.where for e in sleeps} == {"threads_queue.py:20"}
    gets = [e for e in waits if e.reason == "Queue.get"]
    assert gets and {e.lane for e in gets} <= ids and {e.where for e in gets} == {"threads_queue.py:17"}
    joins = [e for e in waits if e.lane == main.id and (e.reason or "").startswith("join consumer-")]
    assert joins and {e.where for e in joins} == {"threads_queue.py:34"}
    # Every consumer's wait ends in a run; the switches stay within what the program does.
    assert 2 * n <= tl.n_switches <= 6 * n + 20
    assert {e.lane: e.reason for e in events(tl, "close")} == {**{i: "returned" for i in ids}, main.id: "exit code 0"}


def test_asyncio_semaphore_and_taskgroup(tmp_path):
    n = 6
    proc, tl = trace(tmp_path, "asyncio_semaphore.py", str(n), "0.02")
    assert proc.returncode == 0 and proc.stdout == f"results {list(range(n))} peak 2\n"
    main = tl.lanes[0]
    tasks = lanes(tl, "task")
    assert {t.name for t in tasks} == {"main", *(f"fetch-{i}" for i in range(n))}
    assert all(t.tid == main.tid for t in tasks), "every task runs on the loop's thread"
    fetches = {t.id for t in tasks if t.name.startswith("fetch-")}
    waits = events(tl, "wait")
    sleeps = [e for e in waits if e.reason == "await sleep(0.02)"]
    assert len(sleeps) == n and {e.lane for e in sleeps} == fetches
    assert {e.where for e in sleeps} == {"asyncio_semaphore.py:16"}
    # Semaphore(2): the other n - 2 wait for it at `async with sem`, each woken by a fetch leaving.
    acquires = [e for e in waits if e.reason == "await Semaphore.acquire"]
    assert len(acquires) >= n - 2 and {e.where for e in acquires} == {"asyncio_semaphore.py:13"}
    # Never more than two fetches between their sleep's start and its end.
    inside = sorted([(e.t, 1) for e in sleeps]
                    + [(next(r.t for r in events(tl, "run") if r.lane == e.lane and r.t > e.t), -1) for e in sleeps])
    busy = peak = 0
    for _, d in inside:
        busy += d
        peak = max(peak, busy)
    assert peak == 2
    assert any(e.reason == "await TaskGroup.__aexit__" for e in waits)
    assert 2 * n <= tl.n_switches <= 8 * n + 10


def test_gevent_pool(tmp_path):
    n, delay = 6, 0.1
    proc, tl = trace(tmp_path, "gevent_pool.py", str(n), str(delay))
    assert proc.returncode == 0 and proc.stdout.startswith(f"results {[i * i for i in range(n)]}")
    main = tl.lanes[0]
    assert len(lanes(tl, "hub")) == 1 and not lanes(tl, "thread")
    jobs = [g for g in lanes(tl, "greenlet") if g.name.startswith("job")]
    assert len(jobs) == n and all(g.tid == main.tid for g in jobs)
    sleeps = [e for e in events(tl, "wait") if e.reason == f"sleep {delay}s"]
    assert len(sleeps) == n and {e.lane for e in sleeps} == {g.id for g in jobs}
    assert {e.where for e in sleeps} == {"gevent_pool.py:16"}
    # Pool(3): two rounds of overlapping sleeps, not six in a row.
    t0 = min(e.t for e in sleeps)
    t1 = max(e.t for e in events(tl, "close") if e.lane in {g.id for g in jobs})
    assert 2 * delay * 1e9 <= t1 - t0 < 5 * delay * 1e9
    assert 3 * n <= tl.n_switches <= 10 * n + 10


def test_greenlet_ping_pong(tmp_path):
    n = 5
    proc, tl = trace(tmp_path, "greenlet_pingpong.py", str(n))
    assert proc.returncode == 0 and proc.stdout == f"ping 0 pong 0 ping 1 pong 1 ... {2 * n}\n"
    by_name = {g.name: g for g in lanes(tl, "greenlet")}
    assert set(by_name) == {"ping", "pong"}
    ping, pong = by_name["ping"].id, by_name["pong"].id
    waits = events(tl, "wait")
    assert [e.where for e in waits if e.lane == ping] == ["greenlet_pingpong.py:13"] * n
    assert [e.where for e in waits if e.lane == pong] == ["greenlet_pingpong.py:19"] * n
    # Control strictly alternates between the two greenlets.
    order = [e.lane for e in events(tl, "run") if e.lane in (ping, pong)]
    assert order[:2 * n] == [ping, pong] * n
    assert 2 * n <= tl.n_switches <= 2 * n + 4


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_process_pool(tmp_path, method):
    proc, tl = trace(tmp_path, "process_pool.py", method)
    assert proc.returncode == 0
    squares, pids = proc.stdout.splitlines()
    assert squares == "squares [0, 1, 4, 9] parent not among them: True"
    main = tl.lanes[0]
    workers = lanes(tl, "process")
    assert len(workers) == 2 and len({w.pid for w in workers} | {main.pid}) == 3
    assert {int(p) for p in pids.split()[2:]} <= {w.pid for w in workers}, "the tasks ran in the traced workers"
    assert all(w.parent == main.id and w.name.endswith(f"(pid {w.pid})") for w in workers)
    runs = [e for e in events(tl, "run") if (e.reason or "").startswith("square(")]
    assert sorted(e.reason for e in runs) == [f"square({n})" for n in range(4)]
    assert {tl.lanes[e.lane].kind for e in runs} == {"process"} and {e.where for e in runs} == {"process_pool.py:9"}
    sleeps = [e for e in events(tl, "wait") if e.reason == "sleep 0.02s"]
    assert len(sleeps) == 4 and {tl.lanes[e.lane].kind for e in sleeps} == {"process"}
    assert {e.lane: e.reason for e in events(tl, "close") if e.lane in {w.id for w in workers}} == \
        {w.id: "exit code 0" for w in workers}


def test_a_program_that_raises(tmp_path):
    proc, tl = trace(tmp_path, "raises.py")
    assert proc.returncode == 1 and "ValueError: invalid literal" in proc.stderr
    (err,) = events(tl, "error")
    assert (err.lane, err.reason, err.where) == (0, "ValueError", "raises.py:5")
    assert len(tl.lanes) == 1 and tl.n_switches == 1


def test_a_program_that_reads_stdin(tmp_path):
    proc, tl = trace(tmp_path, "echo_stdin.py", "a", "b", stdin="alice\n")
    assert proc.returncode == 3 and proc.stdout == "hello alice ['a', 'b'] __main__ programs\n"
    assert [e.text for e in events(tl, "log")] == ["hello alice ['a', 'b'] __main__ programs"]
    assert len(tl.lanes) == 1


def test_sys_exit_3_waits_for_its_threads(tmp_path):
    proc, tl = trace(tmp_path, "exits.py")
    assert proc.returncode == 3 and proc.stdout == "exiting with 3\nworker finished\n"
    main, (worker,) = tl.lanes[0], lanes(tl, "thread")
    closes = {e.lane: e for e in events(tl, "close")}
    assert closes[main.id].reason == "exit code 3" and closes[worker.id].reason == "returned"
    assert closes[worker.id].t <= closes[main.id].t
    (line,) = [e for e in events(tl, "log") if e.text == "worker finished"]
    assert line.lane == worker.id
    assert any(e.lane == main.id and e.reason == "interpreter exit: joining non-daemon threads"
               for e in events(tl, "wait"))
