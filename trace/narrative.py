"""The step narrative: what the screen and `summary` say about a trace, as pure functions of the store.

Every sentence a user reads about a step is made here, from the `Timeline`'s queries alone: one
switch (`explain`), any event (`describe_event`), the selected lane at the cursor (`selected_line`),
and the pieces they share (a block, the call that blocked, a time), and where each lane is in the
program at the cursor (`place_at`, the source pane's arrows). Nothing here draws or styles: the app
and the CLI escape and place the text (`trace/text.py clean`).

One model for all of them: the lanes' states just after the cursor's event, in time order (the
store's tracks: `state_after`, `change_before`, `last_turn_before`), never the order events arrived in.
- `a -> b` only for a real hand-off: on one thread shared by cooperative lanes, a's stop is the
  thread's last turn before b runs; between threads, a woke b and then waited or exited; in both, a
  is not running when b starts. A loop that dispatches a task and goes on running underneath
  `hands the thread to` it; anything else is `b resumes after ...` or just `b runs`.
- `finished` only for a close that is the lane's last change.
- The kernel and the peer (PSEUDO_KINDS) are told as what they are (`the peer: sends 64 B`),
  never as threads that wait, run or hand over; they get no arrow in the source.
- A running lane is at the line its run names, or where it stopped just before; never at an older
  run's line (a Timer's start names the function it may never call).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .events import COOPERATIVE_KINDS
from .states import BLOCKING, DONE, NONE, READY_S, RUNNING, STATE_NAMES

if TYPE_CHECKING:
    import numpy as np

    from .store import Timeline


def format_time(ns: int) -> str:
    """The one duration and time format (steps, panes, rulers' neighbours, summary, lints): the unit
    its size picks, seconds with 3 decimals (`2.003 s`), `41.2 ms`, `850 µs`, `120 ns`. The unit is
    picked after rounding: 999.96 ms is `1.000 s`, never `1000.0 ms`, and 999.7 µs is `1.0 ms`."""
    if ns == 0:
        return "0"
    a = abs(ns)
    if a < 1_000:
        return f"{ns} ns"
    if round(a / 1e3) < 1000:
        return f"{ns / 1e3:.0f} µs"
    if round(a / 1e6, 1) < 1000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.3f} s"


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
    same = tl.same_thread(lane)  # from the lane columns: no pass over every lane
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


# Lanes that are no Python code of the program: the IO scenarios' kernel buffer, the peer process and
# socket-echo's clients (trace/events.py LANE_KINDS `kernel`, `peer`). They are drawn to show where the
# data is; they take no turns with the program's threads, so no step says they wait, run or hand over.
PSEUDO_KINDS = frozenset({"kernel", "peer"})
_STOPS = ("wait", "close", "block")


def pseudo_label(tl: Timeline, lane: int) -> str:
    """`the kernel (kernel buffer)`, `the peer`, `client 1 (the peer)`: a pseudo-lane as what it is."""
    info = tl.lanes[lane]
    if info.kind == "kernel":
        return "the kernel" if info.name == "kernel" else f"the kernel ({info.name})"
    return "the peer" if info.name == "peer" else f"{info.name} (the peer)"


def _pseudo_text(tl: Timeline, lane: int, kind: str, reason: str | None, where: str | None) -> str:
    verb = {"run": "active", "wait": "idle", "ready": "has data", "close": "done", "open": "appears"}.get(kind, kind)
    return f"{pseudo_label(tl, lane)}: {reason or verb}" + (f" at {where}" if where else "")


def _own_stop(tl: Timeline, lane: int, p: int) -> int | None:
    """The wait or block `lane` was in before event p (passing over the `ready` and sampled changes
    after it), in time order; None when its last change before p was a run, an open or none."""
    ev = tl.change_before(lane, p)
    for _ in range(8):
        if ev is None:
            return None
        kind = tl.event_kind(ev)
        if kind in ("wait", "block"):
            return ev
        if kind not in ("ready", "sample"):
            return None
        ev = tl.change_before(lane, ev)
    return None


def _timer_function(reason: str | None) -> str | None:
    """`task` from a Timer's wait reason (`Timer: wait 0.3s, then call task`)."""
    m = re.match(r"Timer: .*then call (.+)\Z", reason or "")
    return m.group(1) if m else None


def _ran(tl: Timeline, s, stop: int | None) -> str:
    """`b runs (why) at where`, told as what a timer thread really does."""
    name = tl.lanes[s.lane].name
    if tl.lanes[s.lane].kind == "timer":
        if s.reason == "thread starts":
            # Its `where` is the function it will call; the thread runs threading's Timer.run, which waits first.
            return f"{name} starts (Timer.run: it waits before it calls the function)"
        fn = _timer_function(tl.event(stop).reason) if stop is not None else None
        if fn and s.reason != "timed out":
            return f"{name} wakes before its time is up (cancel()): it returns without calling {fn}"
    return f"{name} runs" + (f" ({s.reason})" if s.reason else "") + (f" at {s.where}" if s.where else "")


def _stop_text(tl: Timeline, ev: int) -> str:
    """What a stop event of a lane says: `a waits (why at where)`, `a finished (...)`, a block."""
    e = tl.event(ev)
    who = tl.lanes[e.lane].name
    at = f" at {e.where}" if e.where else ""
    if e.kind == "block":
        return block_text(tl, e.lane, e.reason, e.where, e.t, e.t)
    if e.kind == "close":
        # "finished" only for a close that is the lane's last change: nothing of it comes later.
        verb = "finished" if tl.last_change(e.lane) == ev else "stops"
        return f"{who} {verb}" + (f" ({e.reason}{at})" if e.reason else at)
    return f"{who} waits ({e.reason or 'wait'}{at})"


def _turn(tl: Timeline, lane: int, p: int, cause: int | None, stop: int | None) -> str:
    """What gave `lane` its turn at its run event p, from the lanes' states in time order:
    `a -> b: a waits (...); ` for a real hand-off, `b resumes after 2 s: ...; `, or ''."""
    name = tl.lanes[lane].name
    t = tl.event_time(p)
    me_coop = tl.lanes[lane].kind in COOPERATIVE_KINDS
    pseudo, coop = tl.kind_mask(PSEUDO_KINDS), tl.kind_mask(COOPERATIVE_KINDS)
    same = tl.lanes.same_place(lane) & ~pseudo
    if me_coop or bool((same & coop).any()):
        # One OS thread shared by cooperative lanes: whoever stopped last on it, in time order, handed it over.
        hit = tl.last_turn_before(p, same, lane)
        if hit is not None:
            a = tl.event_lane(hit)
            if a != lane and (me_coop or tl.lanes[a].kind in COOPERATIVE_KINDS):
                who = tl.lanes[a].name
                state, _ = tl.state_after(a, p)
                if tl.event_kind(hit) == "run":
                    # The thread's loop or driver dispatching `lane`: it stays underneath, running.
                    return f"{who} hands the thread to {name}; "
                if state != RUNNING:
                    return f"{who} -> {name}: {_stop_text(tl, hit)}; "
    elif cause is not None and cause != lane and 0 <= cause < len(tl.lanes) and not pseudo[cause] \
            and tl.lanes.same_pid(lane)[cause]:
        # Threads run side by side: a hand-off is the waker's own wait or exit right after waking this one.
        state, ev = tl.state_after(cause, p)
        mine = tl.change_before(lane, p)
        if state not in (RUNNING, NONE) and ev is not None and tl.event_kind(ev) in _STOPS \
                and (mine is None or tl.event_time(ev) >= tl.event_time(mine)):
            return f"{tl.lanes[cause].name} -> {name}: {_stop_text(tl, ev)}; "
    joining = stop is not None and "join" in (tl.event(stop).reason or "")
    meanwhile = _exited_meanwhile(tl, lane, p, pseudo) if joining and not me_coop else ""
    if stop is not None:
        e = tl.event(stop)
        waited = format_time(t - e.t)
        if e.kind == "block":
            return f"{name} resumes after {waited}: " + block_text(tl, lane, e.reason, e.where, e.t, t) + "; "
        at = f" at {e.where}" if e.where else ""
        return f"{name} resumes after {waited}: it waited ({e.reason or 'wait'}{at}); " + meanwhile
    return meanwhile


def _exited_meanwhile(tl: Timeline, lane: int, p: int, pseudo: np.ndarray) -> str:
    """`meanwhile x finished (returned); `, for a lane back from a join: the last stop among the other
    threads of the process, in time order, when it is an exit that came after this lane stopped. Not
    a hand-off: nothing recorded says that exit woke this lane."""
    mask = tl.lanes.same_pid(lane) & ~pseudo
    mask[lane] = False
    hit = tl.last_turn_before(p, mask)
    mine = tl.change_before(lane, p)
    if hit is None or tl.event_kind(hit) != "close" or tl.last_change(tl.event_lane(hit)) != hit \
            or (mine is not None and tl.event_time(hit) < tl.event_time(mine)):
        return ""
    return f"meanwhile {_stop_text(tl, hit)}; "


def _waker(tl: Timeline, lane: int, p: int, cause: int | None) -> int | None:
    """Who woke or started `lane` for its run at p: the run's cause, else its `ready` event's."""
    if cause is not None:
        return cause
    ev = tl.change_before(lane, p)
    if ev is not None and tl.event_kind(ev) in ("ready", "open"):
        return tl.event(ev).cause
    return None


def explain(tl: Timeline, k: int) -> str:
    """One line for switch k: `#14/63  2.003 s  a -> b: a waits (why at where); b runs (at where)`.

    Told from the lanes' states in time order (the store's tracks), never from the order the events
    arrived in: `a -> b` only for a real hand-off (a is not running when b starts), `finished` only
    for a lane that has nothing after, and the kernel or the peer as what they are.
    """
    s = tl.switch(k)
    head = f"#{k + 1}/{s.count}  {format_time(s.t)}  "
    if tl.lanes[s.lane].kind in PSEUDO_KINDS:
        return head + _pseudo_text(tl, s.lane, "run", s.reason, s.where)
    stop = _own_stop(tl, s.lane, s.event)
    return head + _turn(tl, s.lane, s.event, _waker(tl, s.lane, s.event, s.cause), stop) + _ran(tl, s, stop)


def describe_event(tl: Timeline, i: int) -> str:
    """One line for any event: `event 15/26  398.8 ms  task2 is ready (woken by MainThread)`."""
    e = tl.event(i)
    name = tl.lanes[e.lane].name
    at = f" at {e.where}" if e.where else ""
    head = f"event {tl.event_rank(i) + 1}/{tl.n_events}  {format_time(e.t)}  "
    if tl.lanes[e.lane].kind in PSEUDO_KINDS and e.kind in ("open", "run", "wait", "ready", "close"):
        return head + _pseudo_text(tl, e.lane, e.kind, e.reason, e.where)
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
        "close": f"{name} {'finished' if tl.last_change(e.lane) == i else 'stops'}"
                 + (f" ({e.reason}{at})" if e.reason else at),
        "phase": f"{name}: {e.reason or text}{at}",
        "mark": f"{name}: {e.reason or text}",
        "sample": f"{name} {e.reason}{at}" + ("" if tl.lanes[e.lane].kind in COOPERATIVE_KINDS else " (sampled)"),
    }.get(e.kind, f"{name}: {e.kind}")
    return head + what


def place_at(tl: Timeline, lane: int, p: int) -> tuple[int, str | None]:
    """(state, `file:line`) of `lane` just after event p, for the source pane's arrows.

    A suspended lane is where it stopped; a running one at the line its run names, else where it
    stopped just before (a thread resumes where it waited), never at an older run's line; a sampled
    fact's own line wins. No arrow for a pseudo-lane (the kernel, the peer: no line of the program is
    theirs), for a thread lane while a task or greenlet runs on it (that lane's arrow says where), or
    for a timer thread's start (its `where` names the function it will call later, if ever).
    """
    state, ev = tl.state_after(lane, p)
    if ev is None or state in (NONE, DONE) or tl.kind_mask(PSEUDO_KINDS)[lane]:
        return state, None
    if state == RUNNING and _guest(tl, lane, tl.event_time(p), p) is not None:
        return state, None
    kind, where = tl.event_kind(ev), tl.event_where(ev)
    if where and kind in ("run", "wait", "block", "sample"):
        if kind == "run" and tl.kind_mask(("timer",))[lane] and tl.event(ev).reason == "thread starts":
            return state, None
        return state, where
    # Back over the changes that move no code (woken, sampled without a line) to the stop it resumed from.
    i, sampled = ev, False
    for _ in range(8):
        if kind in ("wait", "block") or (sampled and kind == "run"):
            # (a thread the sampler saw waiting for the GIL or in the kernel is still in the run it was in)
            return state, where
        if kind not in ("ready", "sample") and i != ev:
            return state, None
        sampled = sampled or kind == "sample"
        i = tl.change_before(lane, i)
        if i is None:
            break
        kind, where = tl.event_kind(i), tl.event_where(i)
        if where and kind == "sample":
            return state, where
    return state, None


def selected_line(tl: Timeline, lane: int, t: int, event: int | None = None) -> str:
    """`selected: worker (thread) · waiting: Lock at x.py:9 · since 1.2 s`: the selected lane at time t
    (just after `event`, in time order, when the cursor is on one: equal times are not all alike)."""
    state, ev = tl.state_at(lane, t) if event is None else tl.state_after(lane, event)
    info = tl.lanes[lane]
    words = [f"{info.name} ({info.kind})", STATE_NAMES[state]]
    blocker = tl.blocker_at(lane, t) if tl.block_spans() or state == READY_S else None
    if ev is not None and state == BLOCKING:
        e = tl.event(ev)
        words[-1] = f"blocking: {blocking_call(e.reason)}" + (f" at {e.where}" if e.where else "")
        words[-1] += f" blocks {blocked_what(tl, lane)}"
        words.append(f"since {format_time(e.t)}")
    elif ev is not None and state == RUNNING and (guest := _guest(tl, lane, t, event)) is not None:
        # A thread whose loop, hub or driver has handed it to a task, greenlet or generator: it runs that one's code.
        g, gev = guest
        ge = tl.event(gev)
        words[-1] = f"running {tl.lanes[g].name} (a {tl.lanes[g].kind} on this thread)" + (f" at {ge.where}" if ge.where else "")
        words.append(f"since {format_time(ge.t)}")
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


def _guest(tl: Timeline, lane: int, t: int, event: int | None) -> tuple[int, int] | None:
    """(lane, its run event) of the cooperative lane running on `lane`'s thread at the cursor, when
    `lane` is that thread's own lane (the loop's, the driver's): None when there is none. Found from
    the thread's last turn in time order, not by asking each of its (maybe a million) lanes."""
    coop = tl.kind_mask(COOPERATIVE_KINDS)
    if coop[lane] or not coop.any():
        return None
    mask = tl.lanes.same_place(lane) & coop
    if not mask.any():
        return None
    if event is None:
        event = tl.event_at(t)
        if event is None:
            return None
    hit = event if tl.event_kind(event) in ("run", "wait", "close", "block") and mask[tl.event_lane(event)] \
        else tl.last_turn_before(event, mask, lane)
    if hit is None or tl.event_kind(hit) != "run":
        return None
    g = tl.event_lane(hit)
    state, ev = tl.state_after(g, event)
    return (g, ev) if state == RUNNING and ev is not None else None
