"""The step narrative: what the screen and `summary` say about a trace, as pure functions of the store.

Every sentence a user reads about a step is made here, from the `Timeline`'s queries alone: one
switch (`explain`), any event (`describe_event`), the selected lane at the cursor (`selected_line`),
and the pieces they share (a block, the call that blocked, a time). Nothing here draws or styles:
the app and the CLI escape and place the text (`trace/text.py clean`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .events import COOPERATIVE_KINDS
from .states import BLOCKING, DONE, NONE, READY_S, STATE_NAMES

if TYPE_CHECKING:
    from .store import Timeline


def format_time(ns: int) -> str:
    """3 significant decimals: `2.003 s`, `41.2 ms`, `850 µs`."""
    a = abs(ns)
    if a == 0:
        return "0"
    if a >= 1_000_000_000:
        return f"{ns / 1e9:.3f} s"
    if a >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    if a >= 1_000:
        return f"{ns / 1e3:.0f} µs"
    return f"{ns} ns"


def names(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def blocking_call(reason: str | None) -> str:
    """The call a `block` event's reason names, as the program wrote it: `sleep 1.0s` -> `time.sleep(1.0)`."""
    if not reason:
        return "a blocking call"
    m = re.match(r"sleep (.+)s\Z", reason)
    if m:
        return f"time.sleep({m.group(1)})"
    return reason


def blocked_what(tl: Timeline, lane: int) -> str:
    """What a block of `lane` holds: `the event loop` (a task), `the gevent hub` (a greenlet
    next to a hub), else its thread, by name."""
    me = tl.lanes[lane]
    if me.kind == "task":
        return "the event loop"
    same = [o for o in tl.lanes if o.pid == me.pid and o.tid == me.tid]
    if any(o.kind == "hub" for o in same):
        return "the gevent hub"
    thread = next((o.name for o in same if o.kind in ("main", "thread")), None)
    return f"its thread ({thread})" if thread else "its thread"


def block_text(tl: Timeline, lane: int, reason: str | None, where: str | None, t0: int | None, t1: int) -> str:
    """`time.sleep(1) at x.py:9 blocked the event loop (good was ready)`: a block, for the step it ends."""
    at = f" at {where}" if where else ""
    ready = [tl.lanes[s].name for s in tl.starved(lane, t0 if t0 is not None else t1, t1)]
    tail = f" ({names(ready)} {'was' if len(ready) == 1 else 'were'} ready)" if ready else ""
    return f"{blocking_call(reason)}{at} blocked {blocked_what(tl, lane)}{tail}"


def explain(tl: Timeline, k: int) -> str:
    """One line for switch k: `#14/63  2.003 s  a -> b: a waits (why at where); b runs (at where)`."""
    s = tl.switch(k)
    name = tl.lanes[s.lane].name
    head = f"#{k + 1}/{s.count}  {format_time(s.t)}  "
    ran = f"{name} runs" + (f" ({s.reason})" if s.reason else "") + (f" at {s.where}" if s.where else "")
    if s.stopped is None:
        return head + ran
    who = tl.lanes[s.stopped].name
    why = s.stopped_reason or s.stopped_kind
    at = f" at {s.stopped_where}" if s.stopped_where else ""
    if s.stopped == s.lane:
        waited = format_time(s.t - (s.stopped_t or s.t))
        if s.stopped_kind == "block":
            return head + f"{name} resumes after {waited}: " + block_text(
                tl, s.stopped, s.stopped_reason, s.stopped_where, s.stopped_t, s.t) + "; " + ran
        return head + f"{name} resumes after {waited}: it waited ({why}{at}); " + ran
    if s.stopped_kind == "block":
        return head + f"{who} -> {name}: " + block_text(
            tl, s.stopped, s.stopped_reason, s.stopped_where, s.stopped_t, s.t) + "; " + ran
    if s.stopped_kind == "run":
        return head + f"{who} -> {name}: {who} hands the thread to {name}; " + ran
    verb = "waits" if s.stopped_kind == "wait" else "finished"
    return head + f"{who} -> {name}: {who} {verb} ({why}{at}); " + ran


def describe_event(tl: Timeline, i: int) -> str:
    """One line for any event: `event 15/26  398.8 ms  task2 is ready (woken by MainThread)`."""
    e = tl.event(i)
    name = tl.lanes[e.lane].name
    at = f" at {e.where}" if e.where else ""
    by = f" by {tl.lanes[e.cause].name}" if e.cause is not None and e.cause != e.lane else ""
    first = (e.text or "").strip().splitlines()
    text = first[-1] if e.kind == "error" and first else (first[0] if first else "")
    what = {
        "open": f"{name} is created{by}{at}",
        "run": f"{name} runs" + (f" ({e.reason})" if e.reason else "") + at,
        "wait": f"{name} waits" + (f" ({e.reason}{at})" if e.reason else at),
        "block": f"{name}: {blocking_call(e.reason)}{at} blocks {blocked_what(tl, e.lane)}",
        "ready": f"{name} is ready" + (f" (woken{by})" if by else ""),
        "log": f"{name} prints: {text}",
        "error": f"{name} raised: {text}",
        "close": f"{name} finished" + (f" ({e.reason}{at})" if e.reason else at),
        "phase": f"{name}: {e.reason or text}{at}",
        "mark": f"{name}: {e.reason or text}",
        "sample": f"{name} {e.reason}{at}" + ("" if tl.lanes[e.lane].kind in COOPERATIVE_KINDS else " (sampled)"),
    }.get(e.kind, f"{name}: {e.kind}")
    return f"event {tl.event_rank(i) + 1}/{tl.n_events}  {format_time(e.t)}  {what}"


def selected_line(tl: Timeline, lane: int, t: int) -> str:
    """`selected: worker (thread) · waiting: Lock at x.py:9 · since 1.2 s`: the selected lane at time t."""
    state, ev = tl.state_at(lane, t)
    info = tl.lanes[lane]
    words = [f"{info.name} ({info.kind})", STATE_NAMES[state]]
    blocker = tl.blocker_at(lane, t) if tl.block_spans() or state == READY_S else None
    if ev is not None and state == BLOCKING:
        e = tl.event(ev)
        words[-1] = f"blocking: {blocking_call(e.reason)}" + (f" at {e.where}" if e.where else "")
        words[-1] += f" blocks {blocked_what(tl, lane)}"
        words.append(f"since {format_time(e.t)}")
    elif ev is not None and state not in (NONE, DONE):
        e = tl.event(ev)
        if blocker is not None and state == READY_S:
            words[-1] = f"ready, but {blocked_what(tl, blocker)} is blocked by {tl.lanes[blocker].name}"
        elif e.reason:
            words[-1] += f": {e.reason}"
        if e.where:
            words[-1] += f" at {e.where}"
        if blocker is not None and state != READY_S:
            words[-1] += f" (its thread is blocked by {tl.lanes[blocker].name})"
        words.append(f"since {format_time(e.t)}")
    return "selected: " + " · ".join(words)
