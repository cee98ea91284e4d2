"""Lints: what a learner should notice in a trace, each rule a pure function of the Timeline (no Textual)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from .narrative import blocked_what, blocking_call, format_time
from .store import Timeline

# A block shorter than this, summed over a lane, is not worth a warning (a contended lock for a
# few microseconds inside a task). asyncio's own debug mode warns from 100 ms a step
# (loop.slow_callback_duration); the trace sees every block, so it can say more, and earlier.
MIN_BLOCK_NS = 10_000_000
SLOW_CALLBACK_NS = 100_000_000  # asyncio's default loop.slow_callback_duration (0.1 s)


@dataclass(frozen=True)
class Lint:
    """One warning: which rule, about which lane, from when (to jump to), and what to say."""

    rule: str
    text: str
    lane: int | None = None
    t: int | None = None  # ns: where the first instance starts
    event: int | None = None  # the event to put the cursor on

    def as_json(self) -> dict:
        return asdict(self)


Rule = Callable[[Timeline], list[Lint]]

# gevent patches these modules; a block in one of them, next to a hub, means it was not patched.
_UNPATCHED = (
    ("sleep ", "time.sleep"),
    ("recv", "socket"), ("accept", "socket"), ("select", "select"), ("epoll", "selectors"),
    ("Lock", "threading"), ("RLock", "threading"), ("Condition", "threading"), ("Event", "threading"),
    ("Queue", "queue"), ("join", "threading"), ("waitpid", "os"),
)


def _unpatched(reason: str | None) -> str | None:
    r = reason or ""
    for prefix, module in _UNPATCHED:
        if r.startswith(prefix) or (prefix[0].isupper() and prefix in r):
            return module
    return None


def blocked_loop(tl: Timeline) -> list[Lint]:
    """A task, greenlet or generator that blocked its thread (`block` events), one lint a lane:
    `bad blocked the event loop for 1.00 s while good was ready`."""
    by_lane: dict[int, list[tuple[int, int, int]]] = {}
    for lane, ev, t0, t1 in tl.block_spans():
        by_lane.setdefault(lane, []).append((ev, t0, t1))
    out = []
    for lane, spans in by_lane.items():
        total = sum(t1 - t0 for _ev, t0, t1 in spans)
        if total < MIN_BLOCK_NS:
            continue
        name = tl.lanes[lane].name
        what = blocked_what(tl, lane)
        starved: list[str] = []
        for _ev, t0, t1 in spans:
            for s in tl.starved(lane, t0, t1):
                if tl.lanes[s].name not in starved:
                    starved.append(tl.lanes[s].name)
        ev, t0, t1 = max(spans, key=lambda s: s[2] - s[1])
        first = tl.event(ev)
        call = blocking_call(first.reason) + (f" at {first.where}" if first.where else "")
        times = f" ({len(spans)} calls)" if len(spans) > 1 else ""
        text = f"{name} blocked {what} for {format_time(total)}{times}"
        if starved:
            text += f" while {_join(starved)} {'was' if len(starved) == 1 else 'were'} ready"
        text += f": {call}"
        kind = tl.lanes[lane].kind
        if what == "the gevent hub":
            module = _unpatched(first.reason)
            if module:
                text += f"; {module} is not patched (monkey.patch_all() not called)"
        elif kind == "task" and t1 - t0 >= SLOW_CALLBACK_NS:
            text += " (asyncio's debug mode warns too: a step over 0.1 s)"
        out.append(Lint("blocking-call", text, lane, spans[0][1], spans[0][0]))
    return out


# A thread that waited for the GIL this share of the time it was runnable shared it with others.
GIL_SHARED = 0.2
MIN_GIL_WAIT_NS = 10_000_000


def shared_gil(tl: Timeline) -> list[Lint]:
    """Threads that took turns for the GIL (the GIL view's samples): `spin-1 and spin-2 are CPU-bound:
    they shared the GIL (each held it about 50% of the time it wanted to run)`. One lint a process."""
    if not tl.has_samples:
        return []
    by_pid: dict[object, list[tuple[int, dict]]] = {}
    for i in tl.drawn_lanes():
        lane = tl.lanes[i]
        gil = tl.gil_totals(i) if lane.kind in ("main", "thread", "timer") else None
        if gil is None:
            continue
        wait = gil["gil_wait_s"]
        wanted = gil["gil_s"] + wait
        if wait * 1e9 >= MIN_GIL_WAIT_NS and wanted and wait / wanted >= GIL_SHARED:
            by_pid.setdefault(lane.pid, []).append((i, gil))
    out = []
    for lanes in by_pid.values():
        if len(lanes) < 2:
            continue
        names = [tl.lanes[i].name for i, _ in lanes]
        held = [g["gil_s"] / (g["gil_s"] + g["gil_wait_s"]) for _, g in lanes]
        share = f"each held it about {sum(held) / len(held):.0%} of the time it wanted to run"
        text = (f"{_join(names)} are CPU-bound: they shared the GIL ({share}); threads run Python code "
                "one at a time, so more threads did not make this faster")
        out.append(Lint("shared-gil", text, lanes[0][0]))
    return out


def never_switched_to(tl: Timeline) -> list[Lint]:
    """A greenlet created and never switched to (the lesson's `p = greenlet(play)` with the switches
    commented out): `play was never switched to: created at x.py:58, it never ran`. Only once the run
    has ended: while it streams in, a switch may still come."""
    if tl.footer is None:
        return []
    import numpy as np

    codes, kinds = tl.lanes.kind_codes()
    if "greenlet" not in kinds:
        return []
    greenlets = np.flatnonzero(codes == kinds.index("greenlet")).tolist()

    ran = set(np.unique(tl.switch_lanes()).tolist())
    opens = {}
    for i in tl.events_of_kind("open").tolist():
        opens.setdefault(tl.event_lane(i), i)
    out = []
    for lane in greenlets:
        if lane in ran or lane not in opens:
            continue
        e = tl.event(opens[lane])
        name = tl.lanes[lane].name
        at = f"created at {e.where}" if e.where else "created"
        text = f"{name} was never switched to: {at}, it never ran (a greenlet runs only when something calls its switch())"
        out.append(Lint("never-switched-to", text, lane, e.t, opens[lane]))
    return out


# The rules, in the order their lints are listed. Adding one is adding a function here.
RULES: list[Rule] = [blocked_loop, shared_gil, never_switched_to]


def lints(tl: Timeline) -> list[Lint]:
    """Every rule's lints for this timeline, cached until it grows. While a run streams in (no footer
    yet) the status line asks at every batch: the GIL rule's sums are then redone only once the
    trace has grown by a twentieth (or a block has ended), not at every frame."""
    version = (tl.n_events, len(tl.block_spans()), tl.footer is not None)
    cache = getattr(tl, "_lints", None)
    if cache is not None and cache[0][1:] == version[1:] and (
            cache[0][0] == version[0] or (tl.footer is None and version[0] < cache[0][0] * 1.05 + 1000)):
        return cache[1]
    found = [lint for rule in RULES for lint in rule(tl)]
    tl._lints = (version, found)  # type: ignore[attr-defined]
    return found


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
