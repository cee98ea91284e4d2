"""The asyncio engine on real traced runs: the lesson's facts, wake-ups and their causes, failures, every kind of loop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from concurview.engines.runner import Run, Target
from concurview.trace.store import Timeline
from concurview.trace.narrative import explain

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def trace(program: str) -> Timeline:
    """Run tests/programs/<program> traced and return its finished Timeline."""
    run = Run(Target(str(PROGRAMS / program)), timeout=60)
    tl = Timeline(run.header)
    for batch in run:
        tl.add(batch.lanes, batch.events)
    tl.finish(run.footer())
    return tl


def events(tl: Timeline, lane: int | None = None, kind: str | None = None) -> list:
    out = [tl.event(i) for i in range(tl.n_events)]
    return [e for e in out if (lane is None or e.lane == lane) and (kind is None or e.kind == kind)]


def lane_named(tl: Timeline, name: str):
    (lane,) = [lane for lane in tl.lanes if lane.name == name]
    return lane


def texts(tl: Timeline, lane: int | None = None) -> list[str]:
    return [e.text for e in events(tl, lane, "log")]


def assert_clean_end(tl: Timeline) -> None:
    assert tl.complete and tl.footer is not None and tl.footer.exit_code == 0, tl.footer
    assert tl.dropped == 0


def assert_steps_well_formed(tl: Timeline, lane: int) -> None:
    """open, run, then (wait, [ready], run)*, then close: each await is a wait followed later by a run."""
    kinds = [e.kind for e in events(tl, lane) if e.kind in ("open", "run", "wait", "ready", "close")]
    assert kinds[0] == "open" and kinds[1] == "run" and kinds[-1] == "close", kinds
    body = "".join({"run": "r", "wait": "w", "ready": "y"}[k] for k in kinds[1:-1])
    assert body.replace("wyr", "").replace("wr", "") == "r", kinds


# -- the lesson: two tasks, one thread -----------------------------------------------------------


@pytest.fixture(scope="module")
def tasks_run() -> Timeline:
    from recording import record_timeline

    return record_timeline("asyncio-tasks", task_sleep=0.3, task2_sleep=0.2)


def test_two_task_lanes_and_the_main_thread(tasks_run):
    tl = tasks_run
    assert_clean_end(tl)
    assert [(lane.kind, lane.name) for lane in tl.lanes] == [("main", "MainThread"), ("task", "task"),
                                                             ("task", "task2")]
    main = tl.lanes[0]
    assert all(lane.parent == main.id for lane in tl.lanes[1:])


def test_both_tasks_print_main_thread_and_share_its_os_thread(tasks_run):
    tl = tasks_run
    main, t1, t2 = tl.lanes
    assert texts(tl, t1.id) == ["开始了", "MainThread", "结束了"]
    assert texts(tl, t2.id) == ["开始了", "MainThread", "结束了"]
    assert t1.tid == t2.tid == main.tid and t1.pid == main.pid


def test_each_await_is_a_wait_then_later_a_run(tasks_run):
    tl = tasks_run
    main = tl.lanes[0]
    for lane, secs in ((tl.lanes[1], "0.3"), (tl.lanes[2], "0.2")):
        assert_steps_well_formed(tl, lane.id)
        (wait,) = events(tl, lane.id, "wait")
        assert wait.reason == f"await sleep({secs})" and wait.where.startswith("asyncio_tasks.py:")
        (ready,) = events(tl, lane.id, "ready")
        assert ready.cause == main.id, "a timer fired in the loop thread woke it"
        runs = events(tl, lane.id, "run")
        assert all(r.cause == main.id for r in runs), "the loop thread hands each step to the task"
        assert runs[1].where == wait.where, "the task resumes on the line it waited at"
        assert wait.t < ready.t <= runs[1].t
        assert runs[1].t - wait.t >= float(secs) * 1e9 * 0.95


def test_the_loop_thread_waits_in_the_selector_while_tasks_sleep(tasks_run):
    tl = tasks_run
    idle = [e for e in events(tl, 0, "wait") if e.reason.startswith("event loop idle")]
    assert len(idle) >= 2
    assert tl.max_running() == {"main": 1, "task": 1}
    # Each of the loop's waits is recorded once, by the asyncio engine: the threads engine's
    # selectors hook is not also recording it underneath ("epoll (1 fd)").
    assert [e.reason for e in events(tl, 0, "wait")] == [e.reason for e in idle]


def test_total_is_about_the_longest_sleep_not_the_sum(tasks_run):
    tl = tasks_run
    elapsed = float(texts(tl, 0)[-1])
    assert 0.3 <= elapsed < 0.5  # max(0.3, 0.2), not 0.3 + 0.2
    close = {e.lane: e.t for e in events(tl, kind="close")}
    assert close[2] < close[1], "task2 sleeps less and finishes first"


def test_switch_explanations_name_the_task_that_stopped(tasks_run):
    tl = tasks_run
    lines = [explain(tl, k) for k in range(tl.n_switches)]
    assert any("task -> task2: task waits (await sleep(0.3) at asyncio_tasks.py:" in s for s in lines), lines


# -- gather + Semaphore ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gather_run() -> Timeline:
    from recording import record_timeline

    return record_timeline("asyncio-gather", n_tasks=5, limit=2, task_sleep=0.1)


def test_gather_runs_every_task_on_the_main_thread(gather_run):
    tl = gather_run
    assert_clean_end(tl)
    tasks = [lane for lane in tl.lanes if lane.kind == "task"]
    assert [lane.name for lane in tasks] == ["main"] + [f"任务{i}" for i in range(5)]
    assert {lane.tid for lane in tasks} == {tl.lanes[0].tid}
    for lane in tasks:
        assert_steps_well_formed(tl, lane.id)
    assert texts(tl, 1)[-1] == str([f"任务{i}" for i in range(5)]), "results in the order given"


def test_the_semaphore_never_lets_more_than_limit_in(gather_run):
    tl = gather_run
    inside, most = set(), 0
    for e in events(tl, kind="log"):
        if e.text.endswith("拿到信号量"):
            inside.add(e.lane)
        elif e.text.endswith("结束了"):
            inside.discard(e.lane)
        most = max(most, len(inside))
    assert most == 2
    # The same from the waits alone: lanes sleeping inside the section at once.
    sleeping, most = set(), 0
    for e in events(tl):
        if e.kind == "wait" and e.reason == "await sleep(0.1)":
            sleeping.add(e.lane)
        elif e.kind == "run":
            sleeping.discard(e.lane)
        most = max(most, len(sleeping))
    assert most == 2


def test_waiters_are_woken_by_the_task_that_released(gather_run):
    tl = gather_run
    blocked = [e for e in events(tl, kind="wait") if e.reason == "await Semaphore.acquire"]
    assert len(blocked) == 3 and all(e.where.startswith("asyncio_gather.py:") for e in blocked)
    for w in blocked:
        ready = next(e for e in events(tl, w.lane, "ready") if e.t > w.t)
        assert tl.lanes[ready.cause].name.startswith("任务") and ready.cause != w.lane
    main_task = lane_named(tl, "main")
    (gather_wait,) = [e for e in events(tl, main_task.id, "wait")]
    assert gather_wait.reason == "await gather"
    (ready,) = events(tl, main_task.id, "ready")
    closes = events(tl, kind="close")
    last_task = max((e for e in closes if e.lane != main_task.id and tl.lanes[e.lane].kind == "task"),
                    key=lambda e: e.t)
    assert ready.cause == last_task.lane, "the last task to finish completes the gather"


def test_gather_total_is_rounds_times_sleep(gather_run):
    elapsed = float(texts(gather_run, 0)[-1])
    assert 0.3 <= elapsed < 0.5  # ceil(5 / 2) rounds of 0.1 s; all five in a row would be 0.5 s


# -- wake-ups, names --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wakeups() -> Timeline:
    return trace("asyncio_wakeups.py")


def test_explicit_names_win_and_default_names_follow_the_coroutine(wakeups):
    tl = wakeups
    assert_clean_end(tl)
    names = [lane.name for lane in tl.lanes if lane.kind == "task"]
    assert names == ["main", "the-waiter", "setter", "producer", "consumer", "worker", "worker-2"]
    logs = texts(tl)
    assert "named the-waiter" in logs, "current_task() and the task's own name are untouched"
    (default,) = [s for s in logs if s.startswith("default")]
    assert all(n.startswith("Task-") for n in default.split()[1:]), default


def test_ready_names_who_completed_the_future(wakeups):
    tl = wakeups
    ids = {lane.name: lane.id for lane in tl.lanes}
    cause = {}
    for e in events(tl, kind="ready"):
        cause.setdefault(e.lane, []).append(tl.lanes[e.cause].name)
    assert cause[ids["the-waiter"]] == ["setter"], "Event.set() by setter"
    assert set(cause[ids["consumer"]]) <= {"producer"}, "Queue.put() by producer"
    assert cause[ids["main"]][0] == "the-waiter", "awaiting a task: the task that finished"
    assert cause[ids["setter"]] == ["MainThread"], "a timer: the loop's thread"
    assert cause[ids["worker"]] == ["worker"], "sleep(0): ready again at once"
    waits = {e.reason for e in events(tl, kind="wait")}
    assert {"await Event.wait", "await Queue.get", "await the-waiter", "await gather", "await sleep(0)"} <= waits


# -- cancellation, timeouts, errors -----------------------------------------------------------------


@pytest.fixture(scope="module")
def failures() -> Timeline:
    return trace("asyncio_failures.py")


def test_a_cancelled_task_is_thrown_cancelled_error_and_closes(failures):
    tl = failures
    assert_clean_end(tl)
    victim, main = lane_named(tl, "victim"), lane_named(tl, "main")
    ready = events(tl, victim.id, "ready")[-1]
    assert ready.reason == "cancelled" and ready.cause == main.id, "main called cancel()"
    kinds = [(e.kind, e.reason) for e in events(tl, victim.id)][-2:]
    assert kinds == [("run", "throw CancelledError"), ("close", "cancelled")]
    assert "cancelled ok" in texts(tl, main.id)


def test_asyncio_timeout_cancels_from_the_loop(failures):
    tl = failures
    main = lane_named(tl, "main")
    evs = events(tl, main.id)
    i = next(i for i, e in enumerate(evs) if e.kind == "wait" and e.reason == "await sleep(10)")
    ready, run = evs[i + 1], evs[i + 2]
    assert (ready.kind, ready.reason, ready.cause) == ("ready", "cancelled", tl.lanes[0].id)
    assert (run.kind, run.reason) == ("run", "throw CancelledError")
    assert "timeout ok" in texts(tl, main.id)


def test_a_task_that_raises_records_the_error_and_closes(failures):
    tl = failures
    for name in ("boomer", "unwatched"):
        lane = lane_named(tl, name)
        (err,) = events(tl, lane.id, "error")
        assert err.reason == "ValueError" and err.text == "ValueError: boom"
        assert err.where.startswith("asyncio_failures.py:")
        assert events(tl, lane.id)[-1].reason == "raised ValueError"
    sibling = lane_named(tl, "sibling")
    ready = [e for e in events(tl, sibling.id, "ready") if e.reason == "cancelled"]
    assert [tl.lanes[e.cause].name for e in ready] == ["boomer"], "the TaskGroup cancels siblings of a failure"
    assert events(tl, sibling.id)[-1].reason == "cancelled"
    logs = texts(tl)
    assert "taskgroup ok ValueError('boom')" in logs and "unwatched done True" in logs
    assert logs[-1] == "exit cleanly"


# -- every kind of loop ------------------------------------------------------------------------------


def test_run_runner_manual_thread_and_eager_loops_are_traced():
    tl = trace("asyncio_loops.py")
    assert_clean_end(tl)
    jobs = [lane for lane in tl.lanes if lane.name.startswith("job")]
    assert len(jobs) == 4 + (sys.version_info >= (3, 12))
    assert texts(tl)[:4] == ["run", "runner", "manual", "thread"]
    main_tid = tl.lanes[0].tid
    threaded = [lane for lane in jobs if lane.tid != main_tid]
    assert len(threaded) == 1
    (loop_thread,) = [lane for lane in tl.lanes if lane.name == "loop-thread"]
    assert loop_thread.kind == "thread" and loop_thread.tid == threaded[0].tid
    assert any(e.reason.startswith("event loop idle") for e in events(tl, loop_thread.id, "wait"))
    assert {e.cause for e in events(tl, threaded[0].id, "run")} == {loop_thread.id}
    for lane in jobs:
        assert_steps_well_formed(tl, lane.id)
    if sys.version_info >= (3, 12):
        quick = lane_named(tl, "eager-quick")
        first_run = events(tl, quick.id, "run")[0]
        assert tl.lanes[first_run.cause].name == "eager_main", "an eager task's first step runs inside create_task"
        assert "eager done at once True" in texts(tl)
    hidden = [lane.name for lane in tl.lanes if "shutdown" in lane.name]
    assert not hidden, "asyncio.run's own clean-up tasks are not lanes"


def test_uvloop_tasks_are_traced_like_asyncio_s(tmp_path):
    """uvloop's loop is libuv in C, not a BaseEventLoop: its tasks still get lanes, steps and waits,
    a task factory of the program's own still works beneath ours, and uvloop.run's clean-up tasks are hidden."""
    pytest.importorskip("uvloop")
    from recording import record_program

    tl = record_program(tmp_path, """
        import asyncio, uvloop

        async def worker(n):
            await asyncio.sleep(0.02 * n)
            print("worker", n, "done")
            return n

        def factory(loop, coro, **kwargs):
            print("own factory")
            return asyncio.Task(coro, loop=loop, **kwargs)

        async def main():
            asyncio.get_running_loop().set_task_factory(factory)
            print(type(asyncio.get_running_loop()).__module__)
            print(sum(await asyncio.gather(*(worker(i) for i in range(1, 4)))))

        uvloop.run(main())
    """)
    assert_clean_end(tl)
    logs = texts(tl)
    plain = subprocess.run([sys.executable, str(tmp_path / "prog.py")], capture_output=True, text=True, check=True)
    assert logs == plain.stdout.splitlines(), "the program sees what it sees under python"
    assert logs[0] == "uvloop" and logs.count("own factory") >= 3 and "6" in logs
    workers = [lane for lane in tl.lanes if lane.name.startswith("worker")]
    assert len(workers) == 3 and all(lane.kind == "task" for lane in workers)
    for lane in workers:
        assert_steps_well_formed(tl, lane.id)
        assert any("sleep" in (e.reason or "") for e in events(tl, lane.id, "wait"))
    assert not [lane.name for lane in tl.lanes if "shutdown" in lane.name]


def test_nested_tasks_have_the_task_that_created_them_as_parent(tmp_path):
    """outer creates child, child creates grandchild: the lane tree is main -> outer -> child -> grandchild,
    and each task's open names its creator as the cause."""
    from recording import record_program

    tl = record_program(tmp_path, """
        import asyncio

        async def grandchild():
            await asyncio.sleep(0.01)

        async def child():
            await asyncio.create_task(grandchild(), name="grandchild")

        async def outer():
            await asyncio.create_task(child(), name="child")

        async def main():
            await asyncio.create_task(outer(), name="outer")

        asyncio.run(main())
    """)
    assert_clean_end(tl)
    main_task, outer, child, grandchild = (lane_named(tl, n) for n in ("main", "outer", "child", "grandchild"))
    assert main_task.parent == tl.lanes[0].id
    assert (outer.parent, child.parent, grandchild.parent) == (main_task.id, outer.id, child.id)
    for lane in (outer, child, grandchild):
        (opened,) = events(tl, lane.id, "open")
        assert opened.cause == lane.parent
