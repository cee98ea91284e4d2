"""Traces written by other tools (Chrome Trace Event Format: VizTracer, Perfetto JSON) read into a Timeline."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import msgspec

from .events import LANE_KINDS, Event, Footer, Header, Lane
from .tracefile import TraceFormatError
from .store import Timeline

_TASK_NAME = re.compile(r"Task-\d+$")
# What concurview's own export writes (trace/export.py): lanes named `kind: name`, and the
# category of each slice its state. Read back, its waits and readiness stay what they were.
_STATES = {"running": "run", "waiting": "wait", "ready": "ready"}
_FUNC_WHERE = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]+):(?P<line>\d+)\)$")
_OURS = re.compile(rb'"format"\s*:\s*"concurview-trace"')
# Microseconds a time or a duration may be (~127 years): their sum in ns stays within int64.
_MAX_US = 4e15


def looks_like_chrome(data: bytes) -> bool:
    """A JSON array of events, or an object with `traceEvents`, rather than a concurview trace."""
    head = data[:4096].lstrip()
    return head.startswith(b"[") or (head.startswith(b"{") and b'"traceEvents"' in head
                                     and not _OURS.search(head))


class _Ev(msgspec.Struct, gc=False):
    ph: str = ""
    name: str = ""
    cat: str = ""
    pid: int | str = 0
    tid: int | str = 0
    ts: float = -1.0
    dur: float = 0.0
    args: dict = {}


class _Doc(msgspec.Struct):
    traceEvents: list[msgspec.Raw] = []


_ev_dec = msgspec.json.Decoder(_Ev)


def _events(data: bytes, path: Path) -> list[_Ev]:
    try:
        raw = (msgspec.json.decode(data, type=list[msgspec.Raw]) if data.lstrip().startswith(b"[")
               else msgspec.json.decode(data, type=_Doc).traceEvents)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as e:
        raise TraceFormatError(f"{path}: not a readable Chrome trace: {str(e).splitlines()[0][:160]}") from None
    except RecursionError:
        raise TraceFormatError(f"{path}: not a readable Chrome trace: JSON nested too deeply") from None
    out = []
    for r in raw:
        try:
            e = _ev_dec.decode(r)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            continue  # one odd event (another tool's extension, a damaged one) does not spoil the trace
        # Times that are no times (1e308, inf, negative) would overflow ns or mean nothing: the
        # event is skipped, as one of a wrong shape is (a metadata event needs none).
        if e.ph == "M" or (0 <= e.ts <= _MAX_US and e.dur <= _MAX_US):  # NaN compares False: skipped
            out.append(e)
    return out


def load_chrome(path: str | Path, data: bytes) -> Timeline:
    """Each (pid, tid) becomes a lane; its top-level slices become running intervals, names kept
    (concurview's own exports: each slice the state its category names)."""
    path = Path(path)
    names: dict[tuple, str] = {}
    slices: dict[tuple, list[tuple[int, int, str, _Ev | None]]] = defaultdict(list)
    opened: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    instants: list[tuple[int, tuple, str]] = []
    for e in _events(data, path):
        key = (e.pid, e.tid)
        if e.ph == "M" and e.name == "thread_name" and isinstance(e.args.get("name"), str):
            names[key] = e.args["name"]
        elif e.ts < 0:
            continue
        # Times in integer ns from here: microseconds as floats do not add up exactly (0.07 + 0.02 >
        # 0.09), and contiguous slices would overlap or leave gaps.
        elif e.ph == "X":
            start = round(e.ts * 1000)
            slices[key].append((start, start + round(max(e.dur, 0.0) * 1000), e.name,
                                e if e.cat in _STATES else None))
        elif e.ph == "B":
            opened[key].append((round(e.ts * 1000), e.name))
        elif e.ph == "E" and opened[key]:
            start, name = opened[key].pop()
            if not opened[key]:  # only top-level begin/end pairs
                slices[key].append((start, round(e.ts * 1000), name, None))
        elif e.ph in ("i", "I"):
            instants.append((round(e.ts * 1000), key, e.name))
    tracks = sorted(set(slices) | {k for _, k, _ in instants}, key=lambda k: (str(k[0]), k[0] != k[1], str(k[1])))
    if not tracks:
        raise TraceFormatError(f"{path}: a Chrome trace with no slices or instants to show")
    t0 = min([s[0] for spans in slices.values() for s in spans] + [i[0] for i in instants])
    lanes, rows = [], []
    for lane_id, key in enumerate(tracks):
        pid, tid = key
        name = names.get(key) or f"tid {tid}"
        kind = "main" if pid == tid else "task" if _TASK_NAME.match(name) else "thread"
        prefix, sep, rest = name.partition(": ")
        if sep and prefix in LANE_KINDS and rest:
            kind, name = prefix, rest
        lanes.append(Lane(lane_id, kind, name, None, pid if isinstance(pid, int) else None,
                          tid if isinstance(tid, int) else None))
        top: list[tuple[int, int, str, _Ev | None]] = []
        for start, end, label, ev in sorted(slices.get(key, ()), key=lambda s: (s[0], -s[1])):
            if top and start < top[-1][1]:
                continue  # nested inside a top-level slice
            top.append((start, end, label, ev))
        for i, (start, end, label, ev) in enumerate(top):
            if ev is not None:  # a state slice: its state, reason and line as exported
                state = _STATES[ev.cat]
                reason, where = ev.args.get("reason"), ev.args.get("where")
                reason = reason if isinstance(reason, str) else None
                where = where if isinstance(where, str) else None
            else:  # another tool's slice: a stretch of running (`func (file:line)` from VizTracer)
                state = "run"
                m = _FUNC_WHERE.match(label)
                reason, where = (m["func"], f"{Path(m['file']).name}:{m['line']}") if m else (label, None)
            if i == 0:
                rows.append((start, lane_id, "open", None, None))
            rows.append((start, lane_id, state, reason[:120] if reason else None, where))
            if i == len(top) - 1:
                rows.append((end, lane_id, "close", None, None))
            elif top[i + 1][0] > end or ev is None:
                rows.append((end, lane_id, "wait", None, None))  # a gap between slices: not running
    lane_of = {key: i for i, key in enumerate(tracks)}
    rows += [(ts, lane_of[key], "log", "instant", None, name) for ts, key, name in instants]  # type: ignore[misc]
    rows.sort(key=lambda r: r[0])
    events = [Event(seq, r[0] - t0, r[1], r[2], r[3], r[4], None, r[5] if len(r) > 5 else None)
              for seq, r in enumerate(rows)]
    tl = Timeline(Header(program=f"{path.name} (Chrome trace)", source=None))
    tl.add(lanes, events)
    tl.finish(Footer(events=len(events), lanes=len(lanes), duration=tl.t_end))
    return tl
