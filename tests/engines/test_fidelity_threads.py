"""A traced program's threads and locks behave as under python: lanes for every OS thread, python's lock
checks and names, sys.argv, and no memory kept per thread ever started (issue 19, items 4-7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from recording import events, record_program


def run_both(tmp_path, source: str, *args: str, timeout: float = 120) -> tuple[dict, dict]:
    """Run the program under python and under `concurview run --record`; each writes a JSON report to
    the file named by its first argument. Returns (plain, traced)."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(source))
    out = {}
    for mode in ("plain", "traced"):
        report = tmp_path / f"{mode}.json"
        if mode == "plain":
            cmd = [sys.executable, "prog.py", str(report), *args]
        else:
            cmd = [sys.executable, "-m", "concurview", "run", "--record", str(tmp_path / "t.jsonl"), "prog.py",
                   str(report), *args]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
        assert report.exists(), f"{mode}: no report\n{done.stdout}\n{done.stderr}"
        out[mode] = json.loads(report.read_text())
    return out["plain"], out["traced"]


# -- item 4: every OS thread gets a lane -----------------------------------------------------------

def test_a_thread_started_through_thread_start_new_thread_has_its_own_lane(tmp_path):
    """_thread.start_new_thread's thread gets a lane (its sleep and print land on it, not on MainThread);
    a threading.Thread gets exactly one lane; the raw thread is not made a _DummyThread by the tool."""
    tl = record_program(tmp_path, """
        import _thread, threading, time

        done = _thread.allocate_lock()
        done.acquire()
        seen = []

        def worker(n):
            time.sleep(0.05)
            print("worker", n)
            seen.append(len(threading._active))
            done.release()

        _thread.start_new_thread(worker, (7,))
        done.acquire()
        t = threading.Thread(target=time.sleep, args=(0.01,), name="plain")
        t.start(); t.join()
        print("dummies", seen[0])
    """)
    raw = [lane for lane in tl.lanes if lane.kind == "thread" and lane.name == "worker"]
    assert len(raw) == 1
    assert raw[0].tid != tl.lanes[0].tid and raw[0].parent == 0
    assert [lane.name for lane in tl.lanes if lane.kind == "thread"].count("plain") == 1
    logs = {e.text.strip(): tl.lanes[e.lane].name for e in events(tl, "log")}
    assert logs["worker 7"] == "worker"
    assert logs["dummies 1"] == "MainThread"  # threading._active holds MainThread alone: no _DummyThread made
    sleeps = [e for e in events(tl, "wait") if e.reason == "sleep 0.05s"]
    assert [tl.lanes[e.lane].name for e in sleeps] == ["worker"]
    assert [e.reason for e in events(tl, "close") if e.lane == raw[0].id] == ["returned"]


def test_start_new_thread_errors_and_unraisable_report_are_pythons(tmp_path):
    """Bad arguments raise what python raises; an exception in the thread reaches sys.unraisablehook with
    python's message, object and a traceback that starts at the thread's function; SystemExit is quiet."""
    plain, traced = run_both(tmp_path, """
        import _thread, json, sys, time

        report = {}
        for label, args in (("not callable", (1, ())), ("not a tuple", (print, [])), ("bad kwargs", (print, (), []))):
            try:
                _thread.start_new_thread(*args)
            except Exception as e:
                report[label] = f"{type(e).__name__}: {e}"
        got = []
        sys.unraisablehook = got.append
        done = _thread.allocate_lock()
        done.acquire()

        def task():
            try:
                raise ValueError("task failed")
            finally:
                done.release()

        def quits():
            done.release()
            raise SystemExit(3)

        _thread.start_new_thread(task, ())
        done.acquire()
        time.sleep(0.2)
        _thread.start_new_thread(quits, ())
        done.acquire()
        time.sleep(0.2)
        u = got[0]
        report["unraisable"] = [str(u.exc_value), u.err_msg.replace(repr(task), "<task>"),
                                u.object is task, u.object is None, u.exc_traceback.tb_frame.f_code.co_name]
        report["n"] = len(got)
        json.dump(report, open(sys.argv[1], "w"))
    """)
    assert traced == plain
    assert plain["unraisable"][4] == "task" and plain["n"] == 1


# -- item 5: locks ---------------------------------------------------------------------------------

LOCKS = """
    import json, sys, threading, time

    report = {}

    def check(label, f):
        try:
            report[label] = repr(f())
        except Exception as e:
            report[label] = f"{type(e).__name__}: {e}"

    for make in ("Lock", "RLock"):
        new = getattr(threading, make)
        check(make + " acquire(False, 1)", lambda: new().acquire(False, 1))
        check(make + " acquire(timeout=-5)", lambda: new().acquire(timeout=-5))
        check(make + " acquire(1, 2, 3)", lambda: new().acquire(1, 2, 3))
        check(make + " acquire(foo=1)", lambda: new().acquire(foo=1))
        check(make + " acquire(timeout='x')", lambda: new().acquire(timeout="x"))
        check(make + " acquire(True, 1e300)", lambda: new().acquire(True, 1e300))
        check(make + " acquire(blocking=False)", lambda: new().acquire(blocking=False))
        check(make + " acquire(True, 0.01)", lambda: new().acquire(True, 0.01))
        check(make + " release()", lambda: new().release())
        check(make + " type", lambda: (type(new()).__module__, type(new()).__qualname__))
        check(make + " repr", lambda: repr(new()).split(" at ")[0].split(" owner")[0])
        check(make + " instance of its type", lambda: isinstance(new(), type(new())))
    check("type(Lock())()", lambda: repr(type(threading.Lock())()).split(" at ")[0])
    check("Lock itself", lambda: (threading.Lock.__module__, threading.Lock.__name__,
                                  isinstance(threading.Lock, type)))
    check("isinstance(Lock(), Lock)", lambda: isinstance(threading.Lock(), threading.Lock)
          if isinstance(threading.Lock, type) else "a function")
    check("a library lock is of the type", lambda: isinstance(threading.Event()._cond._lock,
                                                              type(threading.Lock())))
    check("Lock is type(Lock())", lambda: threading.Lock is type(threading.Lock()))
    check("RLock's type is _CRLock", lambda: type(threading.RLock()) is threading._CRLock)

    def subclass():
        class Custom(threading._CRLock):
            def __init__(self, a, *, b):
                super().__init__()
                self.a = a
        lock = Custom(1, b=2)
        with lock:
            return type(lock).__name__, lock.a, isinstance(lock, threading._CRLock)

    check("_CRLock subclassed", subclass)
    check("excepthook", lambda: (threading.excepthook.__module__, threading.excepthook.__name__))
    check("sleep", lambda: (time.sleep.__module__, time.sleep.__name__))
    held = threading.Lock()
    held.acquire()
    check("held acquire(False)", lambda: held.acquire(False))
    check("held acquire(True, 0.01)", lambda: held.acquire(True, 0.01))
    check("held acquire(timeout=0.01)", lambda: held.acquire(timeout=0.01))
    check("held acquire(False, 1)", lambda: held.acquire(False, 1))
    json.dump(report, open(sys.argv[1], "w"), indent=1)
"""


def test_locks_check_arguments_and_look_as_under_python(tmp_path):
    """Every answer and error message of this Python's own locks (Lock and RLock made by the program,
    which the tool traces), and threading.Lock's name, module, type-ness and instantiability."""
    plain, traced = run_both(tmp_path, LOCKS)
    assert traced == plain
    assert plain["Lock acquire(False, 1)"].startswith("ValueError")
    assert plain["RLock acquire(timeout=-5)"].startswith("ValueError")


def test_a_contended_lock_with_a_timeout_is_still_a_recorded_wait(tmp_path):
    """The argument checks did not cost the waits: acquire(timeout=...) on a held lock is a wait that
    times out, on the lane that waited."""
    tl = record_program(tmp_path, """
        import threading
        lock = threading.Lock()
        lock.acquire()
        print(lock.acquire(timeout=0.05))
    """)
    waits = [e for e in events(tl, "wait") if e.reason and e.reason.startswith("Lock.acquire")]
    assert waits and waits[0].where == "prog.py:5"
    assert any(e.reason == "timed out" for e in events(tl, "run"))


# -- item 6: per-thread state ----------------------------------------------------------------------

MEMORY = """
    import gc, json, sys, threading, time

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def gc_time():
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(5):
            gc.collect()
        return (time.perf_counter() - t0) / 5

    def noop():
        pass

    for _ in range(50):
        t = threading.Thread(target=noop); t.start(); t.join()
    before, gc_before, objs_before = rss(), gc_time(), len(gc.get_objects())
    for _ in range(int(sys.argv[2])):
        t = threading.Thread(target=noop); t.start(); t.join()
    after, gc_after, objs_after = rss(), gc_time(), len(gc.get_objects())
    json.dump({"growth": after - before, "gc_before": gc_before, "gc_after": gc_after,
               "objects": objs_after - objs_before}, open(sys.argv[1], "w"))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS read from /proc")
@pytest.mark.slow
def test_5000_short_threads_cost_no_memory_or_gc_time_per_thread(tmp_path):
    """5000 threads started and joined: the traced program's RSS grows and its gc.collect takes within a
    small factor of python's (it was +250 MB and 100x the collect time: a greenlet tracer per thread kept)."""
    plain, traced = run_both(tmp_path, MEMORY, "5000")
    mb = 1024 * 1024
    assert traced["growth"] <= max(3 * plain["growth"], 8 * mb), (plain, traced)
    assert traced["objects"] <= plain["objects"] + 500, (plain, traced)
    # The tool's own modules make every collection cost more from the start: what counts is the growth.
    assert traced["gc_after"] <= 2 * traced["gc_before"] + 0.002, (plain, traced)
    assert traced["gc_after"] <= 10 * plain["gc_after"] + 0.005, (plain, traced)


# -- item 7: sys.argv ------------------------------------------------------------------------------

def test_argv0_is_the_script_path_as_given_and_the_module_file_for_m(tmp_path):
    """`concurview run sub/prog.py` gives the program sys.argv[0] == 'sub/prog.py', as python does; for
    -m, the module file's full path."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "prog.py").write_text("import sys, json\njson.dump(sys.argv, open(sys.argv[1], 'w'))\n")
    runs = {}
    for mode, cwd, target in (("plain", tmp_path, ["sub/prog.py"]), ("traced", tmp_path, ["sub/prog.py"]),
                              ("plain-m", sub, ["-m", "prog"]), ("traced-m", sub, ["-m", "prog"])):
        report = tmp_path / f"{mode}.json"
        prefix = [sys.executable] if mode.startswith("plain") else \
            [sys.executable, "-m", "concurview", "run", "--record", str(tmp_path / "t.jsonl")]
        subprocess.run([*prefix, *target, str(report), "x"], cwd=cwd, capture_output=True, timeout=60)
        runs[mode] = json.loads(report.read_text())
    assert runs["traced"][0] == runs["plain"][0] == "sub/prog.py"
    assert runs["traced-m"][0] == runs["plain-m"][0] == str(sub / "prog.py")
