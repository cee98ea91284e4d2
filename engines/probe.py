"""Probe engine: a program describes what no hook can see (kernel buffers, a peer's send) via sys.audit.

A scenario stays a plain program: it calls

    sys.audit("concurview.event", lane, lane_kind, kind, t_ns, reason, text)

which does nothing unless an audit hook listens. Here one does, and records
`kind` ("wait", "ready", "run", "phase", "mark", ...) on the lane named `lane`
(created on first use with `lane_kind`: "kernel", "peer", ..., or "" for the
lane now running) at `t_ns` on the monotonic clock (0 = now). The line
recorded is the first caller that is the program's own code and neither a
function named `probe` nor code of a helper module that sets
`PROBE_HELPER = True` (the scenarios' _iomodels.py): a program's scaffolding
stays out of its source pane. An optional seventh argument `(filename, line)`
names the line outright (a helper that reports, after the fact, the call
that did the work).
"""

from __future__ import annotations

import os
import re
import sys

from ..trace.events import KIND_CODE
from .recorder import Recorder, _monotonic_ns
from .where import Where

EVENT = "concurview.event"
ENV_PROBE = "CONCURVIEW_PROBE"  # "1" arms the probe engine for any program, "0" never
_IMPORT = re.compile(rb"^[ \t]*(?:from|import)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.M)


def wanted(path: str | None) -> bool:
    """Whether the program can report probes: its file, or a module beside it that it imports,
    mentions the event name. An audit hook is called for every audited operation in the
    process (`sys._getframe`, `open`, socket calls...), which costs greenlet and gevent
    programs a quarter to a third of their speed, so it is installed only when it is used.
    """
    forced = os.environ.get(ENV_PROBE)
    if forced in ("0", "1"):
        return forced == "1"
    if not path:
        return False
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError:
        return False
    if EVENT.encode() in source:
        return True
    here = os.path.dirname(path)
    for name in dict.fromkeys(m.decode() for m in _IMPORT.findall(source)):
        try:
            with open(os.path.join(here, name + ".py"), "rb") as f:
                if EVENT.encode() in f.read():
                    return True
        except OSError:
            continue
    return False


def install(rec: Recorder, where: Where) -> None:
    lanes: dict[str, int] = {}

    def hook(event: str, args: tuple) -> None:
        if event != EVENT:
            return
        try:
            lane_name, lane_kind, kind, t_ns, reason, text, *at = args
            code = KIND_CODE[kind]
            t = (t_ns or _monotonic_ns()) - rec.t0
            if not lane_name:
                lane = rec.current_lane()
            else:
                lane = lanes.get(lane_name)
                if lane is None:  # opened when its first event happened, not when it was reported
                    lane = lanes[lane_name] = rec.new_lane(lane_kind or "thread", lane_name,
                                                           parent=rec.current_lane(), t=t)
            if at and at[0]:
                filename, line = at[0]
                at = f"{where.file(filename)}:{int(line)}"
            else:
                # The line that reported it: past sys.audit, a helper named `probe` and helper modules.
                frame = sys._getframe(1)
                while frame is not None and (frame.f_code.co_name == "probe" or not where.is_user(frame.f_code)
                                             or frame.f_globals.get("PROBE_HELPER") is True):
                    frame = frame.f_back
                at = None if frame is None else where.of_frame(frame)
            rec.record_at(t, lane, code, reason or None, at, None, text or None)
        except Exception:  # noqa: BLE001 - a malformed probe is ignored, never the program's problem
            rec.dropped += 1

    sys.addaudithook(hook)
