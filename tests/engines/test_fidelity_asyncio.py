"""asyncio under the tool as under python (task.get_coro(), the loop's selector), and the waits of tasks
a framework creates explained at the program's own line (issue 19, items 7 and 8)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from recording import events
from concurview.engines.runner import Run, Target
from concurview.trace.store import Timeline


def test_get_coro_and_the_loops_selector_are_the_programs(tmp_path):
    """task.get_coro() is the program's coroutine (inspect.iscoroutine, getcoroutinestate, identity) and
    loop._selector the selector object the program gave the loop, as under python."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        import asyncio, inspect, json, selectors, sys

        async def child():
            await asyncio.sleep(0.01)

        async def main():
            coro = child()
            t = asyncio.create_task(coro)
            c = t.get_coro()
            first = [c is coro, inspect.iscoroutine(c), inspect.getcoroutinestate(c)]
            await t
            loop = asyncio.get_running_loop()
            return first + [inspect.getcoroutinestate(c), type(loop._selector).__name__,
                            type(t).__name__, isinstance(t, asyncio.Task)]

        sel = selectors.SelectSelector()
        loop = asyncio.SelectorEventLoop(sel)
        report = loop.run_until_complete(main()) + [loop._selector is sel]
        loop.close()
        json.dump(report, open(sys.argv[1], "w"))
    """))
    out = {}
    for mode in ("plain", "traced"):
        report = tmp_path / f"{mode}.json"
        prefix = [sys.executable] if mode == "plain" else \
            [sys.executable, "-m", "concurview", "run", "--record", str(tmp_path / "t.jsonl")]
        done = subprocess.run([*prefix, "prog.py", str(report)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert report.exists(), done.stderr
        out[mode] = json.loads(report.read_text())
    assert out["traced"] == out["plain"] == [True, True, "CORO_CREATED", "CORO_CLOSED", "SelectSelector", "Task",
                                             True, True]
    # The loop's waits still show, through the selector's class.
    trace = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert any(str(e.get("reason", "")).startswith("event loop idle: select") for e in trace)


FRAMEWORK = '''
import asyncio


class RequestHandler:
    async def _handle_request(self, handler, i):
        return await self._call(handler, i)

    async def _call(self, handler, i):
        return await handler(i)


async def serve(handler, n):
    h = RequestHandler()
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(h._handle_request(handler, i)) for i in range(n)])
    await asyncio.gather(*[loop.create_task(asyncio.sleep(0.02)) for i in range(2)])
'''


def test_a_framework_tasks_wait_is_named_at_the_programs_innermost_line(tmp_path):
    """Tasks made by a library (an aiohttp-like server: its handler task's outermost coroutine is the
    library's) wait in `await sleep(...)` at the program's handler line, not `await
    RequestHandler._handle_request` with no line; a library task with none of the program's code
    is named after its innermost coroutine."""
    lib = tmp_path / "lib" / "site-packages"  # a library directory, outside the program's folder
    lib.mkdir(parents=True)
    (lib / "framework.py").write_text(FRAMEWORK)
    app = tmp_path / "app"
    app.mkdir()
    (app / "prog.py").write_text(textwrap.dedent("""
        import asyncio
        import framework

        async def handler(i):
            await asyncio.sleep(0.05)
            return i

        asyncio.run(framework.serve(handler, 3))
    """))
    import os

    env = {"PYTHONPATH": str(lib)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        run = Run(Target(str(app / "prog.py")), timeout=60)
        tl = Timeline(run.header)
        for batch in run:
            tl.add(batch.lanes, batch.events)
        tl.finish(run.footer())
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    handlers = [lane.id for lane in tl.lanes if lane.kind == "task" and "_handle_request" in lane.name]
    assert len(handlers) == 3
    waits = [e for e in events(tl, "wait") if e.lane in handlers]
    assert waits and {(e.reason, e.where) for e in waits} == {("await sleep(0.05)", "prog.py:6")}
    sleepers = [lane.id for lane in tl.lanes if lane.kind == "task" and lane.name.startswith("sleep")]
    assert len(sleepers) == 2
    assert {(e.reason, e.where) for e in events(tl, "wait") if e.lane in sleepers} == {("await sleep(0.02)", None)}
