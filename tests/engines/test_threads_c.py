"""The threads engine's C hooks on real runs: the same trace as the Python wrappers, common calls answered in C, failures counted."""

from __future__ import annotations

import pytest
from recording import events, record_program

from concurview.engines import speedups
from concurview.engines.threads import ENV_HOOKS

pytestmark = pytest.mark.skipif(speedups.native is None, reason="tests the C speedups (not built, or CONCURVIEW_PURE=1)")

# Every wrapper the C hooks stand for, in a program whose order of events is fixed by its
# sleeps (GAP is far longer than any step): sleeps (the program's and a library's), a pool's
# runs (positional, keyword, partial, long arguments) and its idle worker, Future.result,
# contended Lock and RLock, Condition.wait/notify/notify_all, a timed Event.wait, Queue.get,
# Timers, wait(0).
MIXED = """
    import functools
    import queue
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    GAP = 0.05
    lock = threading.Lock()
    rlock = threading.RLock()
    cond = threading.Condition()
    ready = threading.Event()


    def task(name, n=1):
        time.sleep(GAP)
        with lock:
            pass
        return name * n


    def long_args(*args):
        time.sleep(GAP)


    def holds_lock():
        with lock:
            ready.set()
            time.sleep(GAP)


    def rholds():
        with rlock:
            with rlock:
                ready.set()
                time.sleep(GAP)


    def notifier():
        time.sleep(GAP)
        with cond:
            cond.notify()
        time.sleep(GAP)
        with cond:
            cond.notify_all()


    with ThreadPoolExecutor(1) as pool:
        for call in (lambda: pool.submit(task, "a"), lambda: pool.submit(task, "b", n=2),
                     lambda: pool.submit(functools.partial(task, "c")), lambda: pool.submit(long_args, "x" * 120, 7),
                     lambda: pool.submit(task, "屌丝4"), lambda: pool.submit(long_args),
                     lambda: pool.submit(long_args, "é", 2.5, None, "丝"), lambda: pool.submit(long_args, *range(9))):
            call().result()
            time.sleep(GAP)

    t = threading.Thread(target=holds_lock)
    t.start()
    ready.wait()
    with lock:  # contended
        pass
    t.join()
    ready.clear()
    t = threading.Thread(target=rholds)
    t.start()
    ready.wait()
    with rlock:
        pass
    t.join()

    t = threading.Thread(target=notifier)
    t.start()
    with cond:
        cond.wait()
    with cond:
        cond.wait()
    t.join()
    ready.clear()
    print("timed out", ready.wait(0.001))
    q = queue.Queue()
    threading.Timer(GAP, q.put, args=(1,)).start()
    print("got", q.get())
    timer = threading.Timer(GAP, print, args=("timer fired",))
    timer.start()
    timer.join()
    print("event", threading.Event().wait(0))
    time.sleep(0)
    print("hooks", type(time.sleep).__name__, type(threading.Condition.wait).__name__)
"""


def _per_lane(tl) -> dict[str, list[tuple]]:
    """Each lane's events without times or lane ids (threads interleave by the OS's choice; a lane's own order is fixed)."""
    name = {lane.id: lane.name for lane in tl.lanes}
    out: dict[str, list[tuple]] = {}
    for e in events(tl, "open", "run", "wait", "ready", "close", "log", "error"):
        out.setdefault(name[e.lane], []).append((e.kind, e.reason, e.where, name.get(e.cause), e.text))
    return out


def test_c_and_python_hooks_record_the_same_trace(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_HOOKS, "python")
    python = record_program(tmp_path, MIXED)
    monkeypatch.delenv(ENV_HOOKS)
    c = record_program(tmp_path, MIXED)
    for tl in (python, c):
        assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in python.logs()][-1] == "hooks function function"
    assert [e.text for e in c.logs()][-1] == "hooks ThreadHook ThreadMethod"
    ours, reference = _per_lane(c), _per_lane(python)
    ours["MainThread"].pop(-2)  # the `hooks ...` line, compared above
    reference["MainThread"].pop(-2)
    assert sorted(ours) == sorted(reference)
    for lane in reference:
        assert ours[lane] == reference[lane], lane
    reasons = {e[1] for lane in ours.values() for e in lane}
    assert {"task('a')", "task('b', n=2)", "task('c')", "task('屌丝4')", "sleep 0.05s", "sleep 0s", "Future.result",
            "waiting for work", "Lock.acquire", "RLock.acquire", "Condition.wait", "Queue.get", "timed out",
            "Event.wait (timeout 0.001s)", "no more work: shutting down"} <= reasons
    assert {"long_args()", "long_args('é', 2.5, None, '丝')", "long_args(0, 1, 2, 3, 4, 5, 6, 7, 8)"} <= reasons
    assert "long_args('" + "x" * 38 + "…, 7)" in reasons, "a call past 100 characters: each argument cut"
    main = {e[:2] for e in ours["MainThread"]}
    assert ("wait", "Condition.wait") in main and ("ready", None) in main


def test_common_calls_are_answered_in_c(tmp_path):
    # slow_calls counts the hooks' calls into the engine's Python side: after the first sight of
    # each line and function, a pool of sleepy tasks needs none.
    tl = record_program(tmp_path, """
        import threading
        import time
        from concurrent.futures import ThreadPoolExecutor

        from concurview.engines import threads

        lock = threading.Lock()

        def sleepy(i):
            time.sleep(0.001)
            with lock:
                pass

        with ThreadPoolExecutor(3) as pool:
            pool.submit(sleepy, -1).result()
            hooks = threads._engine.hooks
            before = {k: h.slow_calls for k, h in hooks.items()}
            for f in [pool.submit(sleepy, i) for i in range(300)]:
                f.result()
            print(" ".join(f"{k}={h.slow_calls - before[k]}" for k, h in sorted(hooks.items())))
        print("errors", threads._engine.errors)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    line, errors = [e.text for e in tl.logs()]
    counts = {k: int(v) for k, v in (kv.split("=") for kv in line.split())}
    assert {"sleep", "wait", "notify", "run", "rlock", "TracedLock.__enter__", "TracedLock.__exit__",
            "TracedSimpleQueue.get", "TracedSimpleQueue.put"} <= set(counts)
    # 301 tasks: each sleeps, runs, makes a Future (an RLock), waits for its result and notifies.
    # (A put or a get meeting a waiting worker, a contended lock, are real waits the Python
    # methods record, as many as the OS's scheduling makes: not counted here.)
    # A few first sights (a code object, a line: label_of, site, describe_call) are allowed, not one a call.
    for kind in ("sleep", "run", "rlock", "notify", "wait"):
        assert counts[kind] <= 10, (kind, line)
    assert errors == "errors 0"
    runs = [e for e in events(tl, "run") if e.reason and e.reason.startswith("sleepy(")]
    assert len(runs) == 301 and {e.where for e in runs} == {"prog.py:10"}  # the def line
    sleeps = [e for e in events(tl, "wait") if e.reason == "sleep 0.001s"]
    assert len(sleeps) == 301 and {e.where for e in sleeps} == {"prog.py:11"}
    results = [e for e in events(tl, "wait") if e.reason == "Future.result"]
    assert "prog.py:20" in {e.where for e in results} <= {"prog.py:16", "prog.py:20"}


def test_a_failing_explanation_is_counted_and_the_call_goes_on(tmp_path, monkeypatch):
    # An argument whose repr() raises: the run cannot be named, the task still runs, the engine
    # counts it - the same in both implementations.
    program = """
        from concurrent.futures import ThreadPoolExecutor

        from concurview.engines import threads

        class Odd:
            def __repr__(self):
                raise ValueError("no repr")

        def task(x):
            return 42

        with ThreadPoolExecutor(1) as pool:
            print("result", pool.submit(task, Odd()).result(), pool.submit(task, 1).result())
        print("errors", threads._engine.errors)
    """
    for mode in ("python", "c"):
        monkeypatch.setenv(ENV_HOOKS, mode)
        tl = record_program(tmp_path, program)
        assert tl.complete and tl.footer.exit_code == 0
        assert [e.text for e in tl.logs()] == ["result 42 42", "errors 1"], mode
        assert [e.reason for e in events(tl, "run") if e.reason and e.reason.startswith("task(")] == ["task(1)"]
