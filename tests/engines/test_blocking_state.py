"""Blocking the thread: a task, greenlet or generator in a call that holds its OS thread is drawn as such,
the lanes it starves are ready, lints say so; and an eager task's creator does not run during its first step."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from recording import events, record_program

from concurview.engines.threads import ENV_HOOKS
from concurview.trace.lints import lints
from concurview.trace.store import BLOCKING, READY_S, RUNNING, WAITING, Timeline
from concurview.trace.narrative import explain

BAD_GOOD = """\
    import asyncio, time

    async def good():
        for _ in range(4):
            await asyncio.sleep(0.02)

    async def bad():
        await asyncio.sleep(0.005)
        time.sleep(0.3)   # blocks the event loop: good cannot run

    async def main():
        await asyncio.gather(good(), bad())

    asyncio.run(main())
"""


def lane(tl: Timeline, name: str) -> int:
    (found,) = [x.id for x in tl.lanes if x.name == name]
    return found


def state_during(tl: Timeline, lane_id: int, t0: int, t1: int, n: int = 50) -> np.ndarray:
    """The lane's state at n moments inside (t0, t1)."""
    return tl.states_at(lane_id, np.linspace(t0, t1, n + 2)[1:-1].astype(np.int64))


@pytest.mark.parametrize("hooks", ["c", "python"])
def test_asyncio_time_sleep_blocks_the_loop_and_its_sibling_is_ready_meanwhile(tmp_path, hooks, monkeypatch):
    """On the threads engine's C hooks and its Python wrappers alike."""
    if hooks == "python":
        monkeypatch.setenv(ENV_HOOKS, "python")
    tl = record_program(tmp_path, BAD_GOOD)
    assert tl.complete and tl.footer.exit_code == 0
    bad, good = lane(tl, "bad"), lane(tl, "good")
    (block,) = events(tl, "block")
    assert block.lane == bad and block.reason == "sleep 0.3s" and block.where == "prog.py:9"
    assert not [e for e in events(tl, "wait") if e.reason == "sleep 0.3s"], "a block, not an ordinary wait"
    ((who, _ev, t0, t1),) = tl.block_spans()
    assert who == bad and t1 - t0 >= 0.3e9
    assert set(state_during(tl, bad, t0, t1).tolist()) == {BLOCKING}
    # good's 20 ms sleep ended early in the block: ready from its deadline until the loop runs again.
    good_states = state_during(tl, good, t0, t1).tolist()
    assert good_states[-1] == READY_S and good_states.count(READY_S) > len(good_states) * 0.8
    assert tl.starved(bad, t0, t1) == [good]
    # The loop's own lane is busy with bad's step all along: never idle in its selector during the block.
    # Where the GIL view runs, its thread is seen blocked in the kernel (bad's sleep): a sampled fact.
    main = tl.lanes[0].id
    for t in np.linspace(t0, t1, 20, endpoint=False).astype(np.int64).tolist():
        state, ev = tl.state_at(main, t)
        e = tl.event(ev)
        assert state == RUNNING or (state == WAITING and e.kind == "sample"
                                    and e.reason.startswith("blocked in the kernel")), (t, state, e)
    assert tl.summary()["lane_totals"][bad]["blocking_s"] >= 0.3
    assert "blocked the event loop" in explain(tl, tl.switch_index_at(t1))
    (lint,) = lints(tl)
    assert lint.rule == "blocking-call" and lint.lane == bad
    assert lint.text.startswith("bad blocked the event loop for ") and "while good was ready" in lint.text
    assert "time.sleep(0.3) at prog.py:9" in lint.text


def test_summary_json_has_the_lint_and_jobs_in_flight(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(BAD_GOOD))
    trace = tmp_path / "t.jsonl"
    exe = [sys.executable, "-m", "concurview"]
    out = subprocess.run([*exe, "run", "--record", str(trace), str(prog)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*exe, "summary", str(trace), "--json"], capture_output=True, text=True, timeout=60)
    s = json.loads(out.stdout)
    (w,) = s["warnings"]
    assert w["rule"] == "blocking-call" and "bad blocked the event loop" in w["text"]
    # main, good and bad are all in the middle of their jobs at once; never two of them running.
    assert s["max_in_flight"]["task"] == 3 and s["max_running"]["task"] == 1
    (b,) = s["blocks"]
    assert b["name"] == "bad" and b["starved"] == ["good"] and b["duration_s"] >= 0.3
    text = subprocess.run([*exe, "summary", str(trace)], capture_output=True, text=True, timeout=60).stdout
    assert "jobs in flight at once: main 1, task 3" in text
    assert "1 warning:" in text and "bad blocked the event loop" in text


def test_unpatched_gevent_blocks_the_hub_patched_does_not(record):
    tl = record("gevent-eat-play", patch=False, eat_sleep=0.1, play_sleep=0.2)
    assert tl.complete and tl.footer.exit_code == 0
    spans = {tl.lanes[who].name: (t0, t1) for who, _ev, t0, t1 in tl.block_spans()}
    assert set(spans) == {"eat", "play"}
    hub = lane(tl, "Hub")
    for name, (t0, t1) in spans.items():
        assert set(state_during(tl, lane(tl, name), t0, t1).tolist()) == {BLOCKING}
        assert set(state_during(tl, hub, t0, t1).tolist()) == {READY_S}, "the hub could have run"
    texts = [x.text for x in lints(tl)]
    assert len(texts) == 2 and all("blocked the gevent hub" in t for t in texts)
    assert all("time.sleep is not patched (monkey.patch_all() not called)" in t for t in texts)

    tl = record("gevent-eat-play", patch=True, eat_sleep=0.1, play_sleep=0.2)
    assert tl.complete and tl.footer.exit_code == 0
    assert not events(tl, "block") and not tl.block_spans() and not lints(tl)
    sleeps = [e for e in events(tl, "wait") if e.reason in ("sleep 0.1s", "sleep 0.2s")]
    assert len(sleeps) == 2, "gevent's sleep hands the thread to the hub: an ordinary wait"
    for x in tl.lanes:
        starts, _ends, states, _ev = tl.lane_intervals(x.id)
        assert BLOCKING not in states.tolist()


def test_the_lessons_greenlet_code_blocks_its_thread(record):
    tl = record("greenlet-eat-play", sleep=0.1)
    assert tl.complete and tl.footer.exit_code == 0
    ((who, _ev, t0, t1),) = tl.block_spans()
    assert tl.lanes[who].name == "eat" and t1 - t0 >= 0.1e9
    assert set(state_during(tl, who, t0, t1).tolist()) == {BLOCKING}
    (lint,) = [lint for lint in lints(tl) if lint.rule == "blocking-call"]
    assert lint.text.startswith("eat blocked its thread (MainThread) for ")


def test_a_generator_that_sleeps_blocks_its_driver(tmp_path):
    tl = record_program(tmp_path, """\
        import time

        def gen():
            while True:
                time.sleep(0.02)
                yield 1

        g = gen()
        next(g)
        next(g)
    """)
    assert tl.complete
    blocks = events(tl, "block")
    assert len(blocks) == 2 and {tl.lanes[b.lane].kind for b in blocks} == {"generator"}


EAGER = """\
    import asyncio

    async def child():
        await asyncio.sleep(0.01)

    async def parent():
        t = asyncio.create_task(child())
        await t

    async def main():
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
        await asyncio.create_task(parent())

    asyncio.run(main())
"""


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are new in 3.12")
@pytest.mark.parametrize("step", ["c", "python"])
def test_an_eager_tasks_creator_is_not_running_during_its_first_step(tmp_path, step, monkeypatch):
    if step == "python":
        monkeypatch.setenv("CONCURVIEW_ASYNCIO_STEP", "python")
    tl = record_program(tmp_path, EAGER)
    assert tl.complete and tl.footer.exit_code == 0
    parent, child = lane(tl, "parent"), lane(tl, "child")
    assert tl.max_running(["task"]) == {"task": 1}
    child_runs = [e for e in events(tl, "run") if e.lane == child]
    child_wait = next(e for e in events(tl, "wait") if e.lane == child)
    assert tl.state_at(parent, child_runs[0].t)[0] == WAITING
    assert tl.state_at(parent, (child_runs[0].t + child_wait.t) // 2)[0] == WAITING
    wait = next(e for e in events(tl, "wait") if e.lane == parent)
    assert wait.reason == "eager start of child"
    back = next(e for e in events(tl, "run") if e.lane == parent and e.t >= child_wait.t)
    assert back.cause == child and tl.state_at(parent, back.t)[0] == RUNNING
