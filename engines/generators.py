"""generators engine: each user generator driven by send()/next() gets a lane; every resume and every yield is a switch.

The builtin generator type cannot be patched, so the engine watches generator
frames of the user's code: with sys.monitoring (PY_START, PY_RESUME, PY_YIELD,
PY_RETURN, PY_THROW, PY_UNWIND) on Python 3.12+, and with sys.settrace on 3.11,
where the global trace function hands a local one (no line events) only to
user generator frames.

It arms only for programs that use generators as coroutines: the program's
main module defines a generator function and drives one with send(), next(),
`yield from`, or uses a yield's value (`x = yield`). Anything else is
decided at its first line and costs nothing afterwards (the 3.11 trace
function is removed, the monitoring tool freed). Generator expressions,
library generators, and generators delegated to by `yield from` (they run on
their delegating generator's lane) get no lane.
"""

from __future__ import annotations

import dis
import linecache
import sys
import threading
from collections import Counter
from types import CodeType, FrameType

from ..trace.events import CLOSE, ERROR, RUN, WAIT
from .recorder import Recorder, _get_ident
from .where import Where

CO_GENERATOR = 0x20
_SHORT_TYPES = (int, float, str, bytes, bool, type(None))
_MAX_VALUE = 40
_MAX_LOCALS = 5  # a suspended generator's saved locals shown with its yield: the first five
_MAX_INT_BITS = 128  # a bigger int is shown by its size: its repr costs (and 3.11 refuses past 4300 digits)

# Per generator: lane, name, the lane that drives it now, where the driver is suspended,
# and the driver's last wait reason ("send → consumer"), kept to build it once.
LANE, NAME, DRIVER, DRIVER_WHERE, DRIVER_REASON = range(5)


def _short(value) -> str:
    """A value, briefly (at most _MAX_VALUE characters); only the builtins' own reprs: exactly int, float,
    str, bytes, bool, None, and small tuples and lists of those. Anything else (a subclass too) is
    `<TypeName>`: its repr() could run the program's own code inside the tracer, raise, or take long."""
    text = _repr(value, True)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 1] + "…"


def _repr(value, nest: bool) -> str:
    t = type(value)
    if t is str or t is bytes:
        return repr(value[:_MAX_VALUE]) + ("…" if len(value) > _MAX_VALUE else "")
    if t is int:
        return repr(value) if value.bit_length() <= _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
    if t is float or t is bool or value is None:
        return repr(value)
    if nest and (t is tuple or t is list) and len(value) <= 4:
        inner = ", ".join(_repr(v, False) for v in value)
        if t is list:
            return "[" + inner + "]"
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    return "<" + t.__name__ + ">"


def saved_locals(frame: FrameType) -> str:
    """What a suspended generator keeps (the "save state" of save state + switch): its first locals,
    `r='200 OK', n=1`, each value as _short shows it; "" when it has none."""
    parts = []
    for name, value in frame.f_locals.items():
        if name[:1] == ".":
            continue  # an implicit local (a comprehension's iterator)
        if len(parts) == _MAX_LOCALS:
            parts.append("…")
            break
        parts.append(f"{name}={_short(value)}")
    return ", ".join(parts)


def uses_generator_coroutines(code: CodeType) -> bool:
    """Does this module (any code object in it) drive generators as coroutines?"""
    defines = drives = False
    stack = [code]
    while stack:
        c = stack.pop()
        stack.extend(k for k in c.co_consts if isinstance(k, CodeType))
        if "send" in c.co_names or "next" in c.co_names:
            drives = True
        if c.co_flags & CO_GENERATOR and c.co_name != "<genexpr>":
            defines = True
            ops = [i for i in dis.get_instructions(c) if i.opname not in ("CACHE", "RESUME", "NOP")]
            for i, ins in enumerate(ops):
                if ins.opname == "SEND":  # yield from
                    drives = True
                elif ins.opname == "YIELD_VALUE" and i + 1 < len(ops) and ops[i + 1].opname != "POP_TOP":
                    drives = True  # x = yield: the generator takes values
        if defines and drives:
            return True
    return False


class GeneratorEngine:
    """Watches user generator frames; one state list per live generator, keyed by its frame."""

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0
        self.armed = False
        self.decided = False
        self.mechanism: str | None = None
        self._gens: dict[int, list] = {}  # id(frame) -> state (a generator's frame lives as long as it)
        self._traced: dict[int, tuple] = {}  # id(code) -> (code, is a traced generator code)
        self._sites: dict[tuple[int, int], tuple] = {}  # (id(code), f_lasti) -> (code, where, verb, op)
        self._ops: dict[int, tuple] = {}  # id(code) -> (code, {offset: opname})
        self._wheres: dict[tuple[int, int], tuple] = {}  # (id(code), f_lasti) -> (code, "file:line")
        self._names: Counter[str] = Counter()
        self._tool: int | None = None

    # -- deciding ------------------------------------------------------------------

    def _decide(self, code: CodeType) -> bool:
        """At the program's first line (its `__main__` module starts): arm for real, or get out of the way."""
        self.decided = True
        try:
            self.armed = uses_generator_coroutines(code)
        except Exception:  # noqa: BLE001
            self.armed = False
        return self.armed

    def is_traced(self, code: CodeType) -> bool:
        v = self._traced.get(id(code))
        if v is None or v[0] is not code:
            traced = bool(code.co_flags & CO_GENERATOR) and code.co_name != "<genexpr>" and self.where.is_user(code)
            v = self._traced[id(code)] = (code, traced)
        return v[1]

    # -- what happened -------------------------------------------------------------------

    def _op_at(self, code: CodeType, lasti: int) -> str | None:
        """The instruction at f_lasti (a specialised instruction's cache entries count as it)."""
        v = self._ops.get(id(code))
        if v is None or v[0] is not code:
            table: dict[int, str] = {}
            ins = list(dis.get_instructions(code))
            for a, b in zip(ins, ins[1:] + [None]):
                end = b.offset if b is not None else a.offset + 2
                for off in range(a.offset, end, 2):
                    table[off] = a.opname
            v = self._ops[id(code)] = (code, table)
        return v[1].get(lasti)

    def _where(self, frame: FrameType) -> str:
        """`file:line` of a generator's frame, cached by instruction (no code-object hashing)."""
        code = frame.f_code
        key = (id(code), frame.f_lasti)
        v = self._wheres.get(key)
        if v is None:
            v = self._wheres[key] = (code, self.where.of_frame(frame))
        return v[1]

    def _site(self, frame: FrameType) -> tuple:
        """(code, where, verb, op) of the frame that drives a generator."""
        code = frame.f_code
        key = (id(code), frame.f_lasti)
        site = self._sites.get(key)
        if site is None:
            op = self._op_at(code, frame.f_lasti)
            uf = self.where.user_frame(frame)
            where = None if uf is None else self.where.of_frame(uf)
            verb = "next"
            if uf is not None:
                line = linecache.getline(uf.f_code.co_filename, uf.f_lineno)
                for word in ("send", "throw", "close"):
                    if f".{word}(" in line:
                        verb = word
                        break
            site = self._sites[key] = (code, where, verb, op)
        return site

    def resume(self, frame: FrameType, start: bool, throw: str | None = None) -> None:
        """The generator at `frame` runs: its driver (whoever runs on this thread now) waits for it.

        `throw` names the exception thrown in, if it was resumed by throw() or close().
        """
        caller = frame.f_back
        if caller is not None and self.is_traced(caller.f_code):
            site = self._site(caller)
            if site[3] == "SEND":
                # `yield from`: the delegating generator's lane shows it (it yields the same values).
                self._gens.pop(id(frame), None)
                return
        else:
            site = self._site(caller) if caller is not None else (None, None, "next", None)
        rec = self.rec
        driver = rec.current_lane()
        state = None if start else self._gens.get(id(frame))
        if state is None:
            code = frame.f_code
            base = code.co_name
            n = self._names[base] = self._names[base] + 1
            name = base if n == 1 else f"{base}-{n}"
            lane = rec.new_lane("generator", name, parent=driver, tid=_get_ident(), cause=driver, where=site[1])
            state = self._gens[id(frame)] = [lane, name, driver, site[1], ""]
        else:
            state[DRIVER] = driver
            state[DRIVER_WHERE] = site[1]
        lane = state[LANE]
        verb = site[2]
        if throw == "GeneratorExit":
            verb = "close"
        elif throw is not None and verb == "next":
            verb = "throw"
        reason = state[DRIVER_REASON]
        if not reason.startswith(verb + " "):
            reason = state[DRIVER_REASON] = f"{verb} → {state[NAME]}"
        rec.record(driver, WAIT, reason, site[1])
        reason = None if throw is None else "throw " + throw if throw else "throw"
        rec.record(lane, RUN, reason, self._where(frame), driver)
        rec.set_lane(lane)

    def suspend(self, frame: FrameType, value) -> None:
        state = self._gens.get(id(frame))
        if state is None:
            return
        rec = self.rec
        lane, driver = state[LANE], state[DRIVER]
        reason = "yield " + _short(value)
        saved = saved_locals(frame)
        if saved:
            reason += " · saved " + saved  # the state it resumes with (trace-format.md, "wait")
        rec.record(lane, WAIT, reason, self._where(frame))
        rec.record(driver, RUN, None, state[DRIVER_WHERE], lane)
        rec.set_lane(driver)

    def finish(self, frame: FrameType, exc: BaseException | None, value=None) -> None:
        state = self._gens.pop(id(frame), None)
        if state is None:
            return
        rec = self.rec
        lane, driver = state[LANE], state[DRIVER]
        where = self._where(frame)
        if exc is None:
            rec.record(lane, CLOSE, "returned" if value is None else "returned " + _short(value), where)
        elif isinstance(exc, GeneratorExit):
            rec.record(lane, CLOSE, "closed", where)
        else:
            name = type(exc).__name__
            rec.record(lane, ERROR, name, where, None, f"{name}: {exc}")
            rec.record(lane, CLOSE, "raised " + name, where)
        rec.record(driver, RUN, None, state[DRIVER_WHERE], lane)
        rec.set_lane(driver)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.rec.engine_failed("generators engine", exc, first=self.errors == 1)

    # -- Python 3.12+: sys.monitoring -------------------------------------------------------

    def install_monitoring(self) -> bool:
        mon = sys.monitoring  # type: ignore[attr-defined]
        for tool in (4, 3, 5, 2):
            if mon.get_tool(tool) is None:
                break
        else:
            return False
        mon.use_tool_id(tool, "concurview-generators")
        self._tool = tool
        self.mechanism = "sys.monitoring"
        E = mon.events
        DISABLE = mon.DISABLE
        getframe = sys._getframe
        engine = self

        def start(code, offset):
            try:
                if not engine.decided:
                    if code.co_name != "<module>" or getframe(1).f_globals.get("__name__") != "__main__":
                        return DISABLE
                    if not engine._decide(code):
                        mon.set_events(tool, 0)
                        mon.free_tool_id(tool)
                        return None
                    mon.set_events(tool, E.PY_START | E.PY_RESUME | E.PY_YIELD | E.PY_RETURN
                                   | E.PY_THROW | E.PY_UNWIND)
                    return DISABLE
                if not engine.is_traced(code):
                    return DISABLE
                engine.resume(getframe(1), True)
            except Exception as exc:  # noqa: BLE001 - never break the program
                engine._failed(exc)
            return None

        def resumed(code, offset):
            try:
                if not engine.is_traced(code):
                    return DISABLE
                engine.resume(getframe(1), False)
            except Exception as exc:  # noqa: BLE001
                engine._failed(exc)
            return None

        def thrown(code, offset, exc):
            try:
                if engine.is_traced(code):
                    engine.resume(getframe(1), False, type(exc).__name__)
            except Exception as e:  # noqa: BLE001
                engine._failed(e)

        def yielded(code, offset, value):
            try:
                if not engine.is_traced(code):
                    return DISABLE
                engine.suspend(getframe(1), value)
            except Exception as exc:  # noqa: BLE001
                engine._failed(exc)
            return None

        def returned(code, offset, value):
            try:
                if not engine.is_traced(code):
                    return DISABLE
                engine.finish(getframe(1), None, value)
            except Exception as exc:  # noqa: BLE001
                engine._failed(exc)
            return None

        def unwound(code, offset, exc):
            try:
                if engine.is_traced(code):
                    engine.finish(getframe(1), exc)
            except Exception as e:  # noqa: BLE001
                engine._failed(e)

        for event, cb in ((E.PY_START, start), (E.PY_RESUME, resumed), (E.PY_THROW, thrown),
                          (E.PY_YIELD, yielded), (E.PY_RETURN, returned), (E.PY_UNWIND, unwound)):
            mon.register_callback(tool, event, cb)
        mon.set_events(tool, E.PY_START)
        return True

    # -- Python 3.11: sys.settrace ------------------------------------------------------------

    def install_settrace(self) -> bool:
        if sys.gettrace() is not None:
            return False  # a debugger or coverage owns the trace function: leave it alone
        self.mechanism = "sys.settrace"
        engine = self
        pending: dict[int, tuple] = {}  # id(frame) -> (exception, f_lasti) raised in a traced generator

        def local(frame, event, arg):
            try:
                if event == "return":
                    op = engine._op_at(frame.f_code, frame.f_lasti)
                    exc = pending.pop(id(frame), None)
                    if op == "RETURN_VALUE" or op == "RETURN_CONST":
                        engine.finish(frame, None, arg)
                    elif op == "YIELD_VALUE" and (exc is None or exc[1] != frame.f_lasti):
                        engine.suspend(frame, arg)
                    else:
                        engine.finish(frame, exc[0] if exc is not None else RuntimeError("unwound"))
                elif event == "exception":
                    pending[id(frame)] = (arg[1], frame.f_lasti)
            except Exception as exc:  # noqa: BLE001
                engine._failed(exc)
            return local

        def call(frame, event, arg):
            if event != "call":
                return None
            try:
                code = frame.f_code
                if not engine.decided:
                    if code.co_name != "<module>" or frame.f_globals.get("__name__") != "__main__":
                        return None
                    if not engine._decide(code):
                        sys.settrace(None)
                        return None
                    threading.settrace(call)
                    return None
                if not engine.is_traced(code):
                    return None
                lasti = frame.f_lasti
                op = engine._op_at(code, lasti)
                if op == "RESUME":
                    start = code.co_code[lasti + 1] == 0  # RESUME 0: the first entry
                    engine.resume(frame, start)
                else:
                    # Re-entered at its yield: a throw() or close(). 3.11's 'call' does not say
                    # which exception; the 'exception' event that follows does.
                    site = engine._site(frame.f_back) if frame.f_back is not None else None
                    engine.resume(frame, False, "GeneratorExit" if site and site[2] == "close" else "")
                if id(frame) not in engine._gens:
                    return None  # delegated (yield from): its delegating generator's lane shows it
                frame.f_trace_lines = False
                return local
            except Exception as exc:  # noqa: BLE001
                engine._failed(exc)
                return None

        sys.settrace(call)
        return True


def install(rec: Recorder, where: Where) -> GeneratorEngine | None:
    engine = GeneratorEngine(rec, where)
    if sys.version_info >= (3, 12):
        ok = engine.install_monitoring()
    else:
        ok = engine.install_settrace()
    return engine if ok else None
