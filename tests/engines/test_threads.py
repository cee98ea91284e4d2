"""threads engine on real traced runs: the thread pool's shutdown facts, Timer, and what a lock wait looks like."""

from __future__ import annotations

import re

import pytest

from concurview.engines.threads import ENV_HOOKS
from concurview.trace.store import Timeline
from recording import events, record_program

SLEEP = 0.1
TASK = re.compile(r"task\('屌丝(\d+)'\)")


def logs(tl: Timeline) -> list[tuple[str, str, int]]:
    """(lane name, text, t) of every printed line, in time order."""
    return sorted(((tl.lanes[e.lane].name, e.text, e.t) for e in events(tl, "log")), key=lambda x: x[2])


def wheres(tl: Timeline) -> set[str]:
    """The files every `where` of the trace points into."""
    return {e.where.rsplit(":", 1)[0] for e in (tl.event(i) for i in range(tl.n_events)) if e.where}


def log_time(tl: Timeline, text: str) -> int:
    (t,) = [t for _, line, t in logs(tl) if line == text]
    return t


@pytest.mark.parametrize("hooks", ["c", "python"])
def test_pool_of_three_runs_twenty_tasks_and_shutdown_waits(record, hooks, monkeypatch):
    """On the C hooks and on their pure-Python fallback (CONCURVIEW_THREADS_HOOKS=python) alike."""
    if hooks == "python":
        monkeypatch.setenv(ENV_HOOKS, "python")
    tl = record("threadpool-shutdown", sleep=SLEEP)
    assert tl.complete and tl.footer.exit_code == 0
    main = tl.lanes[0]
    workers = [lane for lane in tl.lanes if lane.kind == "thread"]
    assert sorted(w.name for w in workers) == [f"ThreadPoolExecutor-0_{i}" for i in range(3)]
    assert all(w.parent == main.id and w.pid == main.pid and w.tid != main.tid for w in workers)
    assert tl.max_running(["thread"]).get("thread", 0) <= 3

    # Exactly one run per task, on a worker, named after the call, at task's def line.
    runs = [e for e in events(tl, "run") if e.reason and TASK.fullmatch(e.reason)]
    assert sorted(int(TASK.fullmatch(e.reason).group(1)) for e in runs) == list(range(20))
    assert {tl.lanes[e.lane].kind for e in runs} == {"thread"}
    assert all(e.where.startswith("threadpool_shutdown.py:") for e in runs)
    sleeps = [e for e in events(tl, "wait") if e.reason == f"sleep {SLEEP}s"]
    assert len(sleeps) == 20 and {e.lane for e in sleeps} <= {w.id for w in workers}

    # Never more than three tasks between their 开始 and 结束, and three at once happens.
    starts = {line.split()[0]: t for _, line, t in logs(tl) if line.endswith(" 开始")}
    ends = {line.split()[0]: t for _, line, t in logs(tl) if line.endswith(" 结束")}
    assert len(starts) == len(ends) == 20
    edges = sorted([(t, 1) for t in starts.values()] + [(t, -1) for t in ends.values()])
    busy = peak = 0
    for _, d in edges:
        busy += d
        peak = max(peak, busy)
    assert peak == 3

    # About ceil(20 / 3) = 7 rounds of sleeping, not 20.
    total = max(ends.values()) - min(starts.values())
    assert 6.5 * SLEEP * 1e9 <= total < 12 * SLEEP * 1e9
    assert wheres(tl) == {"threadpool_shutdown.py"}, "every where points into the scenario"

    # shutdown(wait=True): MainThread waits joining the workers; '主' only after the last 结束.
    joins = [e for e in events(tl, "wait") if e.lane == main.id and "join ThreadPoolExecutor-0_" in (e.reason or "")]
    assert joins and joins[0].reason.startswith("shutdown(wait=True): join")
    assert joins[0].where.startswith("threadpool_shutdown.py:")
    assert log_time(tl, "主") > max(ends.values())
    names = [(name, line) for name, line, _ in logs(tl)]
    assert names[-2:] == [("MainThread", "RuntimeError: cannot schedule new futures after shutdown"),
                          ("MainThread", "主")]
    assert all(any(e.lane == w.id for e in events(tl, "close")) for w in workers)


def test_shutdown_without_wait_prints_main_first_but_every_task_still_runs(record):
    tl = record("threadpool-shutdown-nowait", sleep=0.05, n_tasks=9)
    assert tl.complete and tl.footer.exit_code == 0
    ends = [t for _, line, t in logs(tl) if line.endswith(" 结束")]
    assert len(ends) == 9, "the queued tasks run after shutdown(wait=False) returned"
    assert log_time(tl, "主") < max(ends)
    assert any(line == "RuntimeError: cannot schedule new futures after shutdown" for _, line, _ in logs(tl))


def test_timer_fires_after_its_interval_on_its_own_lane(record):
    interval = 0.3
    tl = record("timer", interval=interval)
    assert tl.complete and tl.footer.exit_code == 0
    (timer,) = [lane for lane in tl.lanes if lane.kind == "timer"]
    assert timer.name != "MainThread" and timer.parent == 0 and timer.tid != tl.lanes[0].tid
    (line,) = [e for e in events(tl, "log") if e.text == "我是大帅逼———lqz"]
    assert line.lane == timer.id
    (opened,) = [e for e in events(tl, "open") if e.lane == timer.id]
    assert line.t - opened.t >= (interval - 0.005) * 1e9, "not before the interval"
    waits = [e for e in events(tl, "wait") if e.lane == timer.id]
    assert waits[0].reason == f"Timer: wait {interval}s, then call task"
    assert any(e.lane == timer.id and e.reason == "task(name='lqz')" for e in events(tl, "run"))
    assert wheres(tl) == {"timer.py"}


def test_cancelled_timer_never_runs_its_task(record):
    tl = record("timer-cancel", interval=1.0)  # cancelled after 0.5 s: room for a loaded machine
    assert tl.complete and tl.footer.exit_code == 0
    (timer,) = [lane for lane in tl.lanes if lane.kind == "timer"]
    assert not [e for e in events(tl, "log") if "我是大帅逼" in e.text]
    assert ("MainThread", "取消了") in [(name, line) for name, line, _ in logs(tl)]
    # MainThread's cancel() wakes the waiting timer early; it ends without calling task.
    (woken,) = [e for e in events(tl, "ready") if e.lane == timer.id]
    assert woken.cause == 0
    (closed,) = [e for e in events(tl, "close") if e.lane == timer.id]
    (opened,) = [e for e in events(tl, "open") if e.lane == timer.id]
    assert closed.t - opened.t < 1.0e9
    assert not [e for e in events(tl, "run") if e.lane == timer.id and (e.reason or "").startswith("task(")]


def test_an_idle_worker_waits_for_work_and_the_submit_wakes_it(tmp_path):
    tl = record_program(tmp_path, """\
        import time
        from concurrent.futures import ThreadPoolExecutor

        def job(n):
            return n * 2

        with ThreadPoolExecutor(1) as pool:
            pool.submit(job, 1).result()
            time.sleep(0.1)
            pool.submit(job, 2).result()
    """)
    assert tl.complete and tl.footer.exit_code == 0
    (worker,) = [lane for lane in tl.lanes if lane.kind == "thread"]
    mine = [e for e in events(tl, "wait", "ready", "run") if e.lane == worker.id]
    i = next(i for i, e in enumerate(mine) if e.kind == "wait" and e.reason == "waiting for work")
    ready, run = mine[i + 1], mine[i + 2]
    assert (ready.kind, ready.cause) == ("ready", 0), "MainThread's submit() woke it"
    assert (run.kind, run.reason, run.cause) == ("run", "job(2)", 0)
    # MainThread's waits are named after what it called: result() on a future not done yet, the
    # sleep, the `with` block's shutdown(wait=True) joining the worker.
    waits = {(e.reason, e.where) for e in events(tl, "wait") if e.lane == 0}
    assert ("sleep 0.1s", "prog.py:9") in waits
    assert waits <= {("Thread.start", "prog.py:8"), ("Future.result", "prog.py:8"), ("Future.result", "prog.py:10"),
                     ("sleep 0.1s", "prog.py:9"), ("shutdown(wait=True): join ThreadPoolExecutor-0_0", "prog.py:7")}


def test_uncontended_locks_record_nothing_and_contention_is_a_named_wait(tmp_path):
    tl = record_program(tmp_path, """\
        import queue
        import threading
        import time

        lock, rlock, ev = threading.Lock(), threading.RLock(), threading.Event()
        cond = threading.Condition()
        for _ in range(1000):
            with lock:
                pass
            with rlock:
                with rlock:
                    pass
            lock.acquire(); lock.release()
        ev.set(); ev.wait()
        print("uncontended done")

        q = queue.Queue()
        ev2 = threading.Event()

        def holder():
            with lock:
                ev2.set()
                time.sleep(0.1)
            q.put("hi")
            raise ValueError("boom")

        t = threading.Thread(target=holder, name="holder")
        t.start()
        ev2.wait()
        lock.acquire()
        lock.release()
        q.get()
        t.join()
    """)
    assert tl.complete and tl.footer.exit_code == 0
    done = log_time(tl, "uncontended done")
    assert not [e for e in events(tl, "wait") if e.t < done], "the fast path records nothing"

    holder = next(lane for lane in tl.lanes if lane.name == "holder")
    main_waits = [e for e in events(tl, "wait") if e.lane == 0 and e.t > done]
    (acq,) = [e for e in main_waits if e.reason == "Lock.acquire"]
    assert acq.where == "prog.py:30"
    after = [e for e in events(tl, "ready", "run") if e.lane == 0 and e.t > acq.t]
    assert (after[0].kind, after[0].cause) == ("ready", holder.id), "the holder's release woke MainThread"
    assert (after[1].kind, after[1].cause) == ("run", holder.id)
    reasons = {e.reason for e in main_waits}
    assert reasons <= {"Event.wait", "Lock.acquire", "Queue.get", "join holder", "Thread.start"}

    # An exception escaping a thread: an error on its lane, and the lane ends with it.
    (err,) = [e for e in events(tl, "error") if e.lane == holder.id]
    assert err.reason == "ValueError" and err.where == "prog.py:25"
    (closed,) = [e for e in events(tl, "close") if e.lane == holder.id]
    assert closed.reason == "raised ValueError"
    assert any("ValueError: boom" in (e.text or "") for e in events(tl, "log") if e.lane == holder.id)


def test_gevent_patched_sleeps_are_the_greenlet_engines_alone(record):
    # Scenario patched by the child before anything: one wait per sleep (the hub's), none from the threads engine.
    tl = record("gevent-eat-play", eat_sleep=0.05, play_sleep=0.1)
    assert tl.complete and tl.footer.exit_code == 0
    sleeps = [e for e in events(tl, "wait") if (e.reason or "").startswith("sleep ")]
    assert sorted(e.reason for e in sleeps) == ["sleep 0.05s", "sleep 0.1s"]
    assert {tl.lanes[e.lane].kind for e in sleeps} == {"greenlet"}
    assert not [lane for lane in tl.lanes if lane.kind in ("thread", "timer")]

    # Unpatched: the real time.sleep blocks the thread, and the threads engine shows it, once per call
    # (a `block`: the greenlet holds the thread the hub runs on).
    tl = record("gevent-eat-play", patch=False, eat_sleep=0.05, play_sleep=0.1)
    assert tl.complete and tl.footer.exit_code == 0
    sleeps = [e for e in events(tl, "block") if (e.reason or "").startswith("sleep ")]
    assert sorted(e.reason for e in sleeps) == ["sleep 0.05s", "sleep 0.1s"]


def test_a_program_that_patches_with_gevent_itself_gets_no_thread_waits(tmp_path):
    tl = record_program(tmp_path, """\
        from gevent import monkey
        monkey.patch_all()
        import queue
        import threading
        import time

        import gevent
        from gevent.pool import Pool

        lock = threading.Lock()
        ev = threading.Event()
        q = queue.Queue()

        def eat(n):
            time.sleep(0.05)
            with lock:
                time.sleep(0.01)
            q.put(n)
            ev.wait()

        def play():
            time.sleep(0.1)
            ev.set()

        pool = Pool(4)
        for i in range(3):
            pool.spawn(eat, i)
        pool.spawn(play)
        pool.join()
        print(sorted(q.get() for _ in range(3)))
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in events(tl, "log")] == ["[0, 1, 2]"]
    assert any(lane.kind == "hub" for lane in tl.lanes)
    assert not [lane for lane in tl.lanes if lane.kind in ("thread", "timer")]
    waits = events(tl, "wait")
    sleeps = [e for e in waits if (e.reason or "").startswith("sleep ")]
    # Exactly one wait per time.sleep call (3 eats x 2 + play), each on a greenlet, at the program's line.
    assert len(sleeps) == 7 and {tl.lanes[e.lane].kind for e in sleeps} == {"greenlet"}
    assert {e.where for e in sleeps} == {"prog.py:15", "prog.py:17", "prog.py:22"}
    threads_vocabulary = {"Lock.acquire", "RLock.acquire", "Event.wait", "Queue.get", "Condition.wait"}
    assert not [e for e in waits if e.reason in threads_vocabulary]


def test_wait_reasons_name_the_call(tmp_path):
    tl = record_program(tmp_path, """\
        import queue
        import select
        import socket
        import threading
        import time

        cond = threading.Condition()
        sem = threading.Semaphore(0)
        ev = threading.Event()
        q = queue.Queue()
        a, b = socket.socketpair()
        r, w = socket.socketpair()
        barrier = threading.Barrier(2)

        def helper():
            time.sleep(0.03)
            with cond:
                cond.notify()
            time.sleep(0.03)
            sem.release()
            time.sleep(0.03)
            ev.set()
            time.sleep(0.03)
            q.put(1)
            time.sleep(0.03)
            b.send(b"x")
            time.sleep(0.03)
            w.send(b"y")
            time.sleep(0.03)
            barrier.wait()

        t = threading.Thread(target=helper, name="helper")
        t.start()
        with cond:
            cond.wait()
        sem.acquire()
        ev.wait()
        q.get()
        a.recv(1)
        select.select([r], [], [])
        barrier.wait()
        t.join()
        print("ok", a.fileno())
    """)
    assert tl.complete and tl.footer.exit_code == 0
    main_waits = [(e.reason, e.where) for e in events(tl, "wait") if e.lane == 0]
    for reason, line in [("Condition.wait", 35), ("Semaphore.acquire", 36), ("Event.wait", 37), ("Queue.get", 38),
                         ("Barrier.wait", 41)]:
        assert (reason, f"prog.py:{line}") in main_waits, (reason, main_waits)
    helper = next(lane for lane in tl.lanes if lane.name == "helper")
    assert [e.reason for e in events(tl, "wait") if e.lane == helper.id].count("sleep 0.03s") == 7
    # Socket and select waits are named after the call, at the program's line.
    reasons = {where: reason for reason, where in main_waits}
    (ok,) = [e.text for e in events(tl, "log") if e.text.startswith("ok ")]
    a_fd = int(ok.split()[1])
    assert reasons.get("prog.py:39") == f"recv fd={a_fd}", main_waits
    assert reasons.get("prog.py:40") == "select (1 fd)", main_waits


def test_a_child_process_waited_for_is_a_wait_named_after_the_call(tmp_path):
    """os.waitpid and the selectors below subprocess.run block in the kernel: waits, not runs, named
    after what the program called, at its line; a child that has exited already costs no wait."""
    tl = record_program(tmp_path, """\
        import subprocess
        import sys
        import threading

        def worker():
            subprocess.run(["sleep", "0.3"])

        t = threading.Thread(target=worker)
        t.start()
        out = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.2); print('hi')"],
                             capture_output=True, text=True).stdout
        p = subprocess.Popen(["sleep", "0.1"])
        p.wait()
        t.join()
        done = subprocess.Popen(["true"])
        while done.poll() is None:
            pass
        done.wait()
        print(out.strip())
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in events(tl, "log")] == ["hi"]
    waits = [(tl.lanes[e.lane].name, e.reason, e.where) for e in events(tl, "wait")]
    assert ("Thread-1 (worker)", "subprocess.run", "prog.py:6") in waits
    assert ("MainThread", "subprocess.run: poll (2 fds)", "prog.py:10") in waits
    assert ("MainThread", "Popen.wait", "prog.py:13") in waits
    assert not [w for w in waits if w[2] == "prog.py:18"], "an exited child is no wait"
    totals = {lane["name"]: lane for lane in tl.summary()["lane_totals"]}
    worker = totals["Thread-1 (worker)"]
    assert worker["waiting_s"] > 0.25 and worker["running_s"] < 0.1, worker


def test_a_default_selector_that_waits_is_a_wait_at_the_program_s_line(tmp_path):
    """selectors.DefaultSelector (epoll here, a select() of its own): waiting for a socket is a wait."""
    tl = record_program(tmp_path, """\
        import selectors
        import socket
        import threading
        import time

        a, b = socket.socketpair()
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ)
        threading.Thread(target=lambda: (time.sleep(0.2), b.send(b"x"))).start()
        ready = sel.select()
        print(len(ready), a.recv(1))
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in events(tl, "log")] == ["1 b'x'"]
    kind = __import__("selectors").DefaultSelector.__name__.replace("Selector", "").lower()
    waits = [(e.reason, e.where) for e in events(tl, "wait") if e.lane == tl.lanes[0].id]
    assert (f"{kind} (1 fd)", "prog.py:10") in waits, waits
