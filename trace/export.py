"""Exports of a timeline without the app: Chrome Trace Event Format (Perfetto), plain text and SVG."""

from __future__ import annotations

import json
from pathlib import Path

from rich.cells import set_cell_size

from .store import BLOCKING, DONE, NONE, READY_S, RUNNING, STATE_NAMES, WAITING, Timeline
from .narrative import format_time
from .text import shorten

GLYPHS = {NONE: " ", RUNNING: "█", READY_S: "▒", WAITING: "─", DONE: " ", BLOCKING: "━"}
FORMATS = ("chrome", "txt", "svg")
SUFFIXES = {"chrome": ".chrome.json", "txt": ".txt", "svg": ".svg"}


def _us(ns: int) -> float:
    return round(ns / 1000, 3)


def to_chrome(tl: Timeline) -> dict:
    """The trace as Chrome Trace Event Format JSON: open it in ui.perfetto.dev or chrome://tracing.

    Processes are pids, lanes are tids (named `kind: name`); every stretch a
    lane spent running, ready or waiting is a complete ("X") event, its reason
    and source line in `args`; printed lines, errors and marks are instant
    events; a switch's cause is a flow arrow from the lane that caused it.
    """
    out: list[dict] = []
    pids = {}
    for lane in tl.lanes:
        pid = lane.pid if lane.pid is not None else 0
        if pid not in pids:
            pids[pid] = len(pids)
            name = tl.header.scenario or Path(tl.header.program or "program").name
            out.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                        "args": {"name": f"{name} (pid {pid})"}})
        out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": lane.id,
                    "args": {"name": f"{lane.kind}: {lane.name}"}})
        out.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": lane.id,
                    "args": {"sort_index": lane.id}})
    pid_of = [lane.pid if lane.pid is not None else 0 for lane in tl.lanes]
    for lane in tl.lanes:
        starts, ends, states, evs = tl.lane_intervals(lane.id)
        for start, end, state, ev in zip(starts.tolist(), ends.tolist(), states.tolist(), evs.tolist()):
            e = tl.event(ev)
            name = {RUNNING: "run", READY_S: "ready", WAITING: "wait"}.get(state, STATE_NAMES[state])
            if state == WAITING and e.reason:
                name = f"wait: {e.reason}"
            elif state == BLOCKING:
                name = f"blocks the thread: {e.reason}" if e.reason else "blocks the thread"
            elif state == RUNNING and e.reason:
                name = e.reason
            args = {k: v for k, v in (("reason", e.reason), ("where", e.where)) if v}
            out.append({"ph": "X", "name": name, "cat": STATE_NAMES[state], "pid": pid_of[lane.id],
                        "tid": lane.id, "ts": _us(start), "dur": _us(end - start), "args": args})
    flow = 0
    for i in tl.events_of_kind("run", "ready").tolist():
        e = tl.event(i)
        if e.cause is None or e.cause == e.lane:
            continue
        flow += 1
        common = {"name": "switch" if e.kind == "run" else "wake", "cat": "cause", "id": flow, "ts": _us(e.t)}
        out.append({"ph": "s", "pid": pid_of[e.cause], "tid": e.cause, **common})
        out.append({"ph": "f", "bp": "e", "pid": pid_of[e.lane], "tid": e.lane, **common})
    for i in tl.events_of_kind("log", "error", "mark", "phase").tolist():
        e = tl.event(i)
        text = e.text or e.reason or e.kind
        out.append({"ph": "i", "s": "t", "name": text.splitlines()[0][:80] if text else e.kind, "cat": e.kind,
                    "pid": pid_of[e.lane], "tid": e.lane, "ts": _us(e.t),
                    "args": {k: v for k, v in (("text", e.text), ("reason", e.reason), ("where", e.where)) if v}})
    return {
        "traceEvents": out,
        "displayTimeUnit": "ns",
        "otherData": {"source": "concurview", "scenario": tl.header.scenario, "program": tl.header.program,
                      "params": tl.header.params, "complete": tl.complete},
    }


def diagram_rows(tl: Timeline, width: int = 100, label_width: int = 24) -> list[tuple[str, str, list[int]]]:
    """(label, state word at the end, cell states) per lane, fitted to `width` columns."""
    cells = max(width - label_width - 1, 10)
    end = max(tl.t_end, 1)
    states = tl.lane_states(range(len(tl.lanes)), 0, end, cells)
    rows = []
    for lane in tl.lanes:
        depth, parent = 0, lane.parent
        while parent is not None and depth < 4:
            depth, parent = depth + 1, tl.lanes[parent].parent
        indent = "  " * depth
        label = set_cell_size(indent + shorten(lane.name, max(label_width - len(indent), 0)), label_width)
        rows.append((label, lane.kind, states[lane.id].tolist()))
    return rows


def ruler(tl: Timeline, cells: int) -> str:
    end = max(tl.t_end, 1)
    chars = [" "] * cells
    for col in range(0, cells, 20):
        label = "|" + format_time(end * col // cells).replace(" ", "")
        chars[col:col + len(label)] = label[: cells - col]
    return "".join(chars[:cells])


def to_text(tl: Timeline, width: int = 100) -> str:
    """The lane diagram as plain text, for docs, bug reports and slides."""
    label_width = 24
    rows = diagram_rows(tl, width, label_width)
    cells = max(width - label_width - 1, 10)
    title = tl.header.scenario or tl.header.program or "trace"
    state = "complete" if tl.complete else "incomplete"
    lines = [f"{title} · {state} · {tl.n_events} events · {len(tl.lanes)} lanes · {tl.n_switches} switches · "
             f"{format_time(tl.t_end)}", " " * label_width + " " + ruler(tl, cells)]
    for label, _kind, states in rows:
        lines.append(label + " " + "".join(GLYPHS[s] for s in states).rstrip())
    lines.append("")
    lines.append("█ running   ▒ ready   ─ waiting   (blank) not started or done")
    return "\n".join(lines) + "\n"


def to_svg(tl: Timeline, width: int = 100) -> str:
    """The lane diagram as an SVG picture (coloured like the app's default theme)."""
    from rich.console import Console
    from rich.text import Text

    colours = {RUNNING: "green", READY_S: "yellow", WAITING: "grey50", BLOCKING: "red"}
    console = Console(record=True, width=width, file=open("/dev/null", "w"), color_system="truecolor")
    text = to_text(tl, width).splitlines()
    console.print(Text(text[0], style="bold"))
    console.print(Text(text[1], style="dim"))
    for label, _kind, states in diagram_rows(tl, width):
        line = Text(label + " ")
        for s in states:
            line.append(GLYPHS[s], style=colours.get(s, ""))
        console.print(line)
    console.print(Text(text[-1], style="dim"))
    return console.export_svg(title=f"concurview · {tl.header.scenario or tl.header.program or 'trace'}")


def export(tl: Timeline, fmt: str, width: int = 100) -> str:
    if fmt == "chrome":
        return json.dumps(to_chrome(tl), ensure_ascii=False)
    if fmt == "txt":
        return to_text(tl, width)
    if fmt == "svg":
        return to_svg(tl, width)
    raise ValueError(f"unknown export format {fmt!r} (one of: {', '.join(FORMATS)})")
