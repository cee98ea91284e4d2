"""processes engine on real traced runs: a lane per forked process with its own pid, pool tasks as runs on them."""

from __future__ import annotations

import os
import re

import pytest

from recording import events, record_program

TASK = re.compile(r"task\('屌丝(\d+)'\)")


def tl_events(tl, lane: int) -> list:
    return [tl.event(i) for i in range(tl.n_events) if tl.event_lane(i) == lane]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_pool_workers_are_processes_with_their_own_pids_and_tasks_run_on_them(record):
    n = 6
    tl = record("processpool-shutdown", sleep=0.1, n_tasks=n)
    assert tl.complete and tl.footer.exit_code == 0
    main = tl.lanes[0]
    workers = [lane for lane in tl.lanes if lane.kind == "process"]
    assert len(workers) == 3
    pids = {w.pid for w in workers}
    assert len(pids) == 3 and main.pid not in pids
    assert all(re.fullmatch(rf"\w*Process-\d \(pid {w.pid}\)", w.name) for w in workers), [w.name for w in workers]
    assert all(tl.lanes[w.parent].pid == main.pid for w in workers), "forked by a lane of the parent"

    # Every task is a run on a worker's lane, and prints that worker's pid.
    runs = [e for e in events(tl, "run") if e.reason and TASK.fullmatch(e.reason)]
    assert sorted(int(TASK.fullmatch(e.reason).group(1)) for e in runs) == list(range(n))
    assert {tl.lanes[e.lane].kind for e in runs} == {"process"}
    assert all(e.where.startswith("processpool_shutdown.py:") for e in runs)
    # A worker waiting for its next item is one wait (the engine's), not a second one from the
    # queue's pipe below it.
    for w in workers:
        waits = [e.reason for e in tl_events(tl, w.id) if e.kind == "wait"]
        assert "multiprocessing Queue.get" not in waits and "Connection.recv_bytes" not in waits, waits
    started = [e for e in events(tl, "log") if "开始 (pid" in e.text]
    assert len(started) == n
    assert all(e.text.endswith(f"(pid {tl.lanes[e.lane].pid})") for e in started)

    # Same shutdown semantics as the thread pool; every worker ends and none is left behind.
    lines = [(tl.lanes[e.lane].name, e.text, e.t) for e in events(tl, "log")]
    last_end = max(t for _, text, t in lines if text.endswith(" 结束"))
    (main_line,) = [t for name, text, t in lines if text == "主"]
    assert main_line > last_end
    assert ("MainThread", "RuntimeError: cannot schedule new futures after shutdown") in [x[:2] for x in lines]
    closed = {e.lane: e.reason for e in events(tl, "close")}
    assert all(closed.get(w.id) == "exit code 0" for w in workers)
    assert all(gone(pid) for pid in pids)
    assert {e.where.rsplit(":", 1)[0] for e in (tl.event(i) for i in range(tl.n_events)) if e.where} == \
        {"processpool_shutdown.py"}, "every where points into the scenario"


def test_a_bare_fork_and_a_multiprocessing_process_get_lanes(tmp_path):
    tl = record_program(tmp_path, """\
        import multiprocessing
        import os, time

        def child(word):
            print(word, os.getpid()); time.sleep(0.3)  # still running when the parent joins it

        pid = os.fork()
        if pid == 0:
            print("in the fork", os.getpid())
            os._exit(3)
        os.waitpid(pid, 0)

        p = multiprocessing.Process(target=child, args=("hello",))
        p.start()
        p.join()
        print("parent done")
    """)
    assert tl.complete and tl.footer.exit_code == 0
    main = tl.lanes[0]
    procs = {lane.name.split(" ")[0]: lane for lane in tl.lanes if lane.kind == "process"}
    assert set(procs) == {"fork", "Process-1"}
    for lane in procs.values():
        assert lane.parent == main.id and lane.pid != main.pid and lane.name.endswith(f"(pid {lane.pid})")
    by_lane = {(tl.lanes[e.lane].name.split(" ")[0], e.text) for e in events(tl, "log")}
    assert ("fork", f"in the fork {procs['fork'].pid}") in by_lane
    assert ("Process-1", f"hello {procs['Process-1'].pid}") in by_lane
    closed = {e.lane: e.reason for e in events(tl, "close")}
    assert closed[procs["fork"].id] == "exit code 3" and closed[procs["Process-1"].id] == "exit code 0"
    opened = {e.lane: e for e in events(tl, "open")}
    assert opened[procs["fork"].id].where == "prog.py:7" and opened[procs["fork"].id].cause == main.id

    # The parent's join() is a wait that the child's exit ends.
    (join,) = [e for e in events(tl, "wait") if e.lane == main.id and e.reason == "join Process-1"]
    assert join.where == "prog.py:15"
    resumed = next(e for e in events(tl, "run") if e.lane == main.id and e.t > join.t)
    assert resumed.cause == procs["Process-1"].id


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_every_start_method_gives_each_worker_a_lane_and_its_tasks(tmp_path, method):
    tl = record_program(tmp_path, f"""\
        import multiprocessing as mp
        import os
        import time
        from concurrent.futures import ProcessPoolExecutor

        def task(n):
            time.sleep(0.02)
            print("task", n, os.getpid())
            return n * n

        if __name__ == "__main__":
            ctx = mp.get_context({method!r})
            with ProcessPoolExecutor(2, mp_context=ctx) as pool:
                print(sum(pool.map(task, range(4))))
            p = ctx.Process(target=task, args=(99,), name="solo")
            p.start()
            p.join()
            print("done", p.exitcode)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    main = tl.lanes[0]
    procs = [lane for lane in tl.lanes if lane.kind == "process"]
    server = [lane for lane in procs if lane.name.startswith("forkserver")]
    assert len(server) == (method == "forkserver")
    workers = [lane for lane in procs if lane not in server]
    assert len(workers) >= 2 and len({w.pid for w in workers}) == len(workers) and main.pid not in {w.pid for w in workers}
    assert all(w.name.endswith(f"(pid {w.pid})") for w in workers)
    # A worker's parent is the lane that started it (or, under forkserver, the server's lane).
    assert {w.parent for w in workers} == {server[0].id if server else main.id}

    # Every task is a run named after the call on a worker lane, where = task's def; its print is on that lane.
    runs = [e for e in events(tl, "run") if e.reason and re.fullmatch(r"task\(\d+\)", e.reason)]
    assert sorted(e.reason for e in runs) == ["task(0)", "task(1)", "task(2)", "task(3)", "task(99)"]
    assert all(tl.lanes[e.lane] in workers and e.where == "prog.py:6" for e in runs)
    prints = [e for e in events(tl, "log") if (e.text or "").startswith("task ")]
    assert len(prints) == 5 and all(e.text.endswith(f" {tl.lanes[e.lane].pid}") for e in prints)
    assert all(tl.lanes[e.lane] in workers for e in prints)
    sleeps = [e for e in events(tl, "wait") if e.reason == "sleep 0.02s"]
    assert len(sleeps) == 5 and all(e.where == "prog.py:7" for e in sleeps), "the threads engine is armed in workers"
    (solo,) = [w for w in workers if w.name.startswith("solo ")]
    closed = {e.lane: e.reason for e in events(tl, "close")}
    assert all(closed.get(w.id) == "exit code 0" for w in workers)
    (join,) = [e for e in events(tl, "wait") if e.lane == main.id and e.reason == "join solo"]
    assert join.where == "prog.py:17"
    assert ("MainThread", "done 0") in [(tl.lanes[e.lane].name, e.text) for e in events(tl, "log")]
    assert all(gone(w.pid) for w in procs)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_process_whose_target_raises_shows_the_error_on_its_lane(tmp_path, method):
    tl = record_program(tmp_path, f"""\
        import multiprocessing as mp

        def fail(word):
            raise ValueError(word)

        if __name__ == "__main__":
            p = mp.get_context({method!r}).Process(target=fail, args=("bad",), name="failing")
            p.start()
            p.join()
            print("exitcode", p.exitcode)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    (child,) = [lane for lane in tl.lanes if lane.kind == "process"]
    (err,) = events(tl, "error")
    assert (err.lane, err.reason, err.where) == (child.id, "ValueError", "prog.py:4")
    assert "ValueError: bad" in err.text
    assert [e.reason for e in events(tl, "close") if e.lane == child.id] == ["exit code 1"]
    assert "exitcode 1" in [e.text for e in events(tl, "log")]


def test_a_multiprocessing_pool_s_threads_wait_while_its_workers_sleep(tmp_path):
    """Pool's result thread blocks in a pipe's recv(), its worker thread in connection.wait(): both
    waits, not runs (the result thread binds recv before any thread starts, and pool.py takes
    `wait` by name as it is imported), and a worker waiting for its next task says so."""
    tl = record_program(tmp_path, """\
        import multiprocessing as mp
        import time

        def work(x):
            time.sleep(0.15)
            return x * x

        if __name__ == "__main__":
            with mp.get_context("fork").Pool(2) as pool:
                print(pool.map(work, range(4), chunksize=1))
                time.sleep(0.1)  # the workers wait for work
                print(pool.apply(work, (5,)))
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in events(tl, "log")] == ["[0, 1, 4, 9]", "25"]
    totals = {lane["name"]: lane for lane in tl.summary()["lane_totals"]}
    results = next(v for k, v in totals.items() if k.endswith("(_handle_results)"))
    handler = next(v for k, v in totals.items() if k.endswith("(_handle_workers)"))
    for lane in (results, handler):
        # Two rounds of 0.15 s sleeps: the threads wait through most of them (they ran it all before).
        assert lane["waiting_s"] > 0.2 and lane["running_s"] < lane["waiting_s"] / 2, lane
    reasons = {(tl.lanes[e.lane].name, e.reason) for e in events(tl, "wait")}
    assert any(name.endswith("(_handle_results)") and reason == "pool: waiting for results"
               for name, reason in reasons)
    assert any(name.endswith("(_handle_workers)") and reason == "pool: watching its workers"
               for name, reason in reasons)
    # Each task a run on its worker named after the call (map hands the worker mapstar((work, chunk))),
    # each worker's wait for its next task one wait, not one for the queue and another for its pipe.
    workers = {lane.id for lane in tl.lanes if lane.kind == "process"}
    assert len(workers) == 2
    runs = sorted(e.reason for e in events(tl, "run") if e.lane in workers and (e.reason or "").startswith("work("))
    assert runs == ["work(0)", "work(1)", "work(2)", "work(3)", "work(5)"]
    waits = [e for e in events(tl, "wait") if e.lane in workers]
    # (Two workers sending results at once may also wait for the result queue's lock: a real wait.)
    assert {e.reason for e in waits} <= {"waiting for work", "sleep 0.15s", "multiprocessing SimpleQueue.put"}
    for lane in workers:
        kinds = [e.kind for e in tl_events(tl, lane) if e.kind in ("run", "wait")]
        assert all(not (a == b == "wait") for a, b in zip(kinds, kinds[1:])), kinds
    # GIL or not, the main thread's threads are never shown running three at once while they sleep.
    assert tl.max_running(["thread"])["thread"] <= 2


def test_a_multiprocessing_lock_held_by_another_process_is_a_wait(tmp_path):
    """multiprocessing's locks block in sem_wait(): the waiter's lane waits, named after the lock,
    at its `with` line, from when it asks until the holder lets go (after its 0.3 s sleep)."""
    tl = record_program(tmp_path, """\
        import multiprocessing as mp
        import time

        def holder(lock, ev):
            with lock:
                ev.set()
                time.sleep(0.3)

        def waiter(lock):
            with lock:
                print("got it")

        if __name__ == "__main__":
            ctx = mp.get_context("fork")
            lock, ev = ctx.Lock(), ctx.Event()
            a = ctx.Process(target=holder, args=(lock, ev))
            a.start()
            ev.wait()
            b = ctx.Process(target=waiter, args=(lock,))
            b.start()
            a.join()
            b.join()
    """)
    assert tl.complete and tl.footer.exit_code == 0
    lanes = {lane.name.split(" ")[0]: lane for lane in tl.lanes if lane.kind == "process"}
    waiter = next(lane.id for name, lane in lanes.items() if name.endswith("Process-2"))
    (wait,) = [e for e in events(tl, "wait") if e.lane == waiter]
    assert (wait.reason, wait.where) == ("multiprocessing Lock.acquire", "prog.py:10")
    resumed = next(e for e in events(tl, "run") if e.lane == waiter and e.t > wait.t)
    slept = next(e for e in events(tl, "wait") if e.reason == "sleep 0.3s")
    assert resumed.t - slept.t >= 0.25e9, "it waits until the holder is done"
    assert [e.text for e in events(tl, "log") if e.lane == waiter] == ["got it"]
    assert not [e for e in events(tl, "wait") if e.reason == "multiprocessing Semaphore.acquire"], \
        "Event.set waiting for the woken is named after Event.set"


def test_pool_map_chunks_and_starmap_name_their_runs_after_the_calls(tmp_path):
    tl = record_program(tmp_path, """\
        import multiprocessing as mp

        def square(x):
            return x * x

        def add(a, b):
            return a + b

        if __name__ == "__main__":
            with mp.get_context("fork").Pool(1) as pool:
                print(pool.map(square, [3, 4, 5], chunksize=3))
                print(pool.starmap(add, [(1, 2)]))
                print(pool.apply(add, (5,), {"b": 6}))
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in events(tl, "log")] == ["[9, 16, 25]", "[3]", "11"]
    (worker,) = [lane.id for lane in tl.lanes if lane.kind == "process"]
    runs = [e.reason for e in events(tl, "run") if e.lane == worker and e.reason and "(" in e.reason]
    assert runs == ["square(3) and 2 more", "add(1, 2)", "add(5, b=6)"], runs
