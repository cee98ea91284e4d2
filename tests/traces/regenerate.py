"""Re-record the trace fixtures the UI tests draw: `python tests/traces/regenerate.py [NAME ...]`.

Each lesson scenario is recorded with small parameters (fast runs, few
switches, readable diagrams), plus the error cases: a program that raises, a
run killed by its timeout, an empty trace and a file that is not a trace.
Scenarios not in the catalogue yet are skipped with a note; run this again when
they land, then `pytest tests/snapshots --snapshot-update` and look at the SVGs.

Paths in the headers are cut to file names, so nothing on screen depends on the
machine that recorded them; the app finds a scenario's source through the
catalogue and any other program beside the trace.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec

from concurview.trace.events import Footer, Header
from concurview.engines.runner import Run, Target
from concurview.trace.tracefile import TraceWriter
from concurview.scenarios import catalogue

HERE = Path(__file__).resolve().parent

# fixture name -> (scenario, parameters). The lesson's topics, in the lesson's order.
LESSONS: dict[str, tuple[str, dict[str, object]]] = {
    "threadpool-shutdown": ("threadpool-shutdown", {"n_tasks": 7, "sleep": 0.2}),
    "threadpool-shutdown-nowait": ("threadpool-shutdown-nowait", {"n_tasks": 7, "sleep": 0.2}),
    "processpool-shutdown": ("processpool-shutdown", {"n_tasks": 4, "sleep": 0.2}),
    "timer": ("timer", {"interval": 0.3}),
    "timer-cancel": ("timer-cancel", {"interval": 0.3}),
    "generator-pingpong": ("generator-pingpong", {"n": 3}),
    "yield-from-loop": ("yield-from-loop", {"task_sleep": 0.2, "task2_sleep": 0.3}),
    "greenlet-eat-play": ("greenlet-eat-play", {"sleep": 0.2}),
    "greenlet-eat-play-switches": ("greenlet-eat-play", {"sleep": 0.2, "switches": True}),
    "gevent-eat-play": ("gevent-eat-play", {"eat_sleep": 0.2, "play_sleep": 0.3}),
    "gevent-eat-play-unpatched": ("gevent-eat-play", {"eat_sleep": 0.2, "play_sleep": 0.3, "patch": False}),
    "socket-echo": ("socket-echo", {"clients": 10, "requests": 3, "sample": 3}),
    "socket-echo-gevent": ("socket-echo-gevent", {"clients": 10, "requests": 3, "sample": 3}),
    "socket-echo-asyncio": ("socket-echo-asyncio", {"clients": 10, "requests": 3, "sample": 3}),
    "socket-echo-threads": ("socket-echo-threads", {"clients": 10, "requests": 3, "sample": 3}),
    "asyncio-tasks": ("asyncio-tasks", {"task_sleep": 0.3, "task2_sleep": 0.2}),
    "asyncio-gather": ("asyncio-gather", {"n_tasks": 5, "limit": 2, "task_sleep": 0.1}),
    "io-blocking": ("io-blocking", {"delay": 0.2}),
    "io-nonblocking": ("io-nonblocking", {"delay": 0.2, "poll_sleep": 0.01, "report_every": 0.05}),
    "io-select": ("io-select", {"delay": 0.2, "idle_fds": 10}),
    "io-poll": ("io-poll", {"delay": 0.2, "idle_fds": 10}),
    "io-epoll": ("io-epoll", {"delay": 0.2, "idle_fds": 10}),
    "io-signal": ("io-signal", {"delay": 0.2}),
    "io-async": ("io-async", {"delay": 0.2, "work": 0.1}),
    "io-models": ("io-models", {"delay": 0.1, "repeat": 30}),
}

RAISES = '''\
"""Prints a line, then raises: the error screen's fixture."""


def parse(text):
    return int(text)


print("about to fail")
parse("not a number")
'''


def _portable(header: Header) -> Header:
    """The header with machine paths cut to file names."""
    return msgspec.structs.replace(
        header,
        source=Path(header.source).name if header.source else None,
        program=Path(header.program).name if header.program else None,
    )


def _portable_where(events: list) -> list:
    """Events with library locations cut below site-packages (`gevent/baseserver.py:32`), not machine paths;
    tracebacks name the fixtures' own files by name (a snapshot must not show where the checkout was)."""
    out = []
    for e in events:
        if e.text and str(HERE) in e.text:
            e = msgspec.structs.replace(e, text=e.text.replace(str(HERE) + os.sep, ""))
        if e.where and os.path.isabs(e.where):
            i = e.where.rfind("site-packages" + os.sep)
            short = e.where[i + len("site-packages") + 1:] if i >= 0 else Path(e.where).name
            e = msgspec.structs.replace(e, where=short)
        out.append(e)
    return out


def record(target: Target, out: Path, timeout: float | None = 60.0) -> Footer:
    run = Run(target, timeout=timeout)
    writer = TraceWriter(out, _portable(run.header))
    for batch in run:
        writer.lanes(batch.lanes)
        writer.events(_portable_where(batch.events))
    footer = run.footer()
    writer.close(footer)
    return footer


def record_lesson(name: str) -> str:
    scenario_name, params = LESSONS[name]
    scenario = catalogue().get(scenario_name)
    if scenario is None:
        return f"{name}: skipped (no scenario {scenario_name!r} yet)"
    typed = scenario.coerce({k: str(v) for k, v in params.items()})
    footer = record(Target(str(scenario.path), scenario.name, typed), HERE / f"{name}.jsonl")
    return f"{name}: {footer.events} events, {footer.lanes} lanes" + ("" if footer.complete else " INCOMPLETE")


def record_errors() -> list[str]:
    program = HERE / "raises.py"
    program.write_text(RAISES, encoding="utf-8")
    footer = record(Target(str(program)), HERE / "error-raises.jsonl")
    out = [f"error-raises: exit code {footer.exit_code}"]
    scenario = catalogue()["asyncio-tasks"]
    footer = record(Target(str(scenario.path), scenario.name, scenario.params), HERE / "error-timeout.jsonl",
                    timeout=1.0)
    out.append(f"error-timeout: {footer.reason}")
    writer = TraceWriter(HERE / "error-empty.jsonl", Header(scenario="asyncio-tasks", python="3.11",
                                                          source="asyncio_tasks.py"))
    writer.close(Footer(complete=True, exit_code=0))
    out.append("error-empty: written")
    (HERE / "error-unreadable.jsonl").write_text("this is not a trace\n", encoding="utf-8")
    out.append("error-unreadable: written")
    return out


def main(argv: list[str]) -> int:
    names = argv or [*LESSONS, "errors"]
    unknown = [n for n in names if n not in LESSONS and n != "errors"]
    if unknown:
        print(f"unknown fixture {', '.join(unknown)}; choose from {', '.join(LESSONS)}, errors", file=sys.stderr)
        return 2
    for name in names:
        lines = record_errors() if name == "errors" else [record_lesson(name)]
        for line in lines:
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
