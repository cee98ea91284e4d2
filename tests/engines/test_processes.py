"""processes engine on real traced runs: a lane per forked process with its own pid, pool tasks as runs on them."""

from __future__ import annotations

import os
import re
import textwrap

from concurview.engines.runner import Run, Target
from concurview.tui.store import Timeline

TASK = re.compile(r"task\('屌丝(\d+)'\)")


def record_program(tmp_path, source: str) -> Timeline:
    """Trace a small program (not a scenario) in a real child process."""
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(source))
    run = Run(Target(str(path)), timeout=60)
    tl = Timeline(run.header)
    for batch in run:
        tl.add(batch.lanes, batch.events)
    tl.finish(run.footer())
    return tl


def events(tl: Timeline, *kinds: str) -> list:
    return [tl.event(int(i)) for i in tl.events_of_kind(*kinds)]


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


def test_a_bare_fork_and_a_multiprocessing_process_get_lanes(tmp_path):
    tl = record_program(tmp_path, """\
        import multiprocessing
        import os

        def child(word):
            print(word, os.getpid())

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
