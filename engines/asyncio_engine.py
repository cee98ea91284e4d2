"""asyncio engine: every task's coroutine is wrapped so each step (send/throw) is a run and each await a wait."""

from __future__ import annotations

import asyncio
import collections.abc
import selectors
from asyncio import base_events, selector_events
from types import CodeType

from concurview.engines.events import CLOSE, ERROR, RUN, WAIT
from concurview.engines.recorder import Recorder, _get_ident
from concurview.engines.where import Where

_AWAIT_NAMES = {"__sleep0": "sleep(0)"}
_TASKS_FILE = asyncio.tasks.__file__


class TracedCoro:
    """Stands in for a task's coroutine: the C Task drives it, we see every step."""

    __slots__ = ("_coro", "_lane", "_rec", "_where", "_engine", "__weakref__")

    def __init__(self, coro, lane: int, rec: Recorder, engine: AsyncioEngine) -> None:
        self._coro = coro
        self._lane = lane
        self._rec = rec
        self._engine = engine
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        self._where = engine.where.of_code(code) if code is not None else None

    def send(self, value):
        rec, lane = self._rec, self._lane
        prev = rec.set_current(lane)
        rec.record(lane, RUN, None, self._where, prev)
        try:
            yielded = self._coro.send(value)
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            rec._tls.lane = prev
        self._suspend(yielded)
        return yielded

    def throw(self, *args):
        rec, lane = self._rec, self._lane
        prev = rec.set_current(lane)
        exc_arg = args[0] if args else None
        name = getattr(exc_arg, "__name__", None) or type(exc_arg).__name__
        rec.record(lane, RUN, "throw " + name, self._where, prev)
        try:
            yielded = self._coro.throw(*args)
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            rec._tls.lane = prev
        self._suspend(yielded)
        return yielded

    def close(self):
        return self._coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    def __getattr__(self, name):
        # cr_frame, cr_await, cr_code, cr_running, __name__, __qualname__, ...
        return getattr(self._coro, name)

    def __repr__(self) -> str:
        return repr(self._coro)

    def _suspend(self, yielded) -> None:
        reason, where = self._engine.wait_reason(self._coro, yielded)
        self._where = where
        self._rec.record(self._lane, WAIT, reason, where)

    def _finish(self, exc: BaseException) -> None:
        rec, lane = self._rec, self._lane
        if isinstance(exc, StopIteration):
            rec.record(lane, CLOSE, "returned", self._where)
        elif isinstance(exc, asyncio.CancelledError):
            rec.record(lane, CLOSE, "cancelled", self._where)
        else:
            where = self._engine.where.of_traceback(exc.__traceback__) or self._where
            rec.record(lane, ERROR, type(exc).__name__, where, None, f"{type(exc).__name__}: {exc}")
            rec.record(lane, CLOSE, "raised " + type(exc).__name__, where)


collections.abc.Coroutine.register(TracedCoro)


class TracedSelector:
    """Wraps an event loop's selector so its blocking waits show as the loop thread waiting."""

    def __init__(self, inner: selectors.BaseSelector, engine: AsyncioEngine) -> None:
        self._inner = inner
        self._engine = engine
        self._name = type(inner).__name__.replace("Selector", "").lower() or "select"

    def select(self, timeout=None):
        if timeout is not None and timeout <= 0:
            return self._inner.select(timeout)
        rec = self._engine.rec
        lane = rec.current_lane()
        wait = "forever" if timeout is None else f"≤ {timeout:.3f}s"
        rec.record(lane, WAIT, f"event loop idle: {self._name} {wait}", self._engine.where.caller(2))
        ready = []
        try:
            ready = self._inner.select(timeout)
        finally:
            rec.record(lane, RUN, f"{self._name} returned {len(ready)} ready" if ready else f"{self._name} timed out")
        return ready

    def __getattr__(self, name):
        return getattr(self._inner, name)


class AsyncioEngine:
    """Arms every event loop created from now on: task factory + traced selector."""

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self._names: collections.Counter[str] = collections.Counter()
        self._reasons: dict[CodeType, str] = {}

    def install(self) -> None:
        engine = self
        orig_init = base_events.BaseEventLoop.__init__
        orig_set_factory = base_events.BaseEventLoop.set_task_factory

        orig_sel_init = selector_events.BaseSelectorEventLoop.__init__

        def __init__(loop, *args, **kwargs):
            orig_init(loop, *args, **kwargs)
            loop._concurview_user_factory = None
            orig_set_factory(loop, engine._factory)

        def selector_init(loop, *args, **kwargs):
            orig_sel_init(loop, *args, **kwargs)
            if not isinstance(loop._selector, TracedSelector):
                loop._selector = TracedSelector(loop._selector, engine)

        def set_task_factory(loop, factory):
            # The program's own factory (e.g. eager_task_factory) keeps working beneath ours.
            loop._concurview_user_factory = factory

        def get_task_factory(loop):
            return loop._concurview_user_factory

        base_events.BaseEventLoop.__init__ = __init__
        selector_events.BaseSelectorEventLoop.__init__ = selector_init
        base_events.BaseEventLoop.set_task_factory = set_task_factory
        base_events.BaseEventLoop.get_task_factory = get_task_factory

    def _factory(self, loop, coro, **kwargs):
        rec = self.rec
        name = kwargs.get("name")
        if name is None:
            base = getattr(coro, "__qualname__", None) or type(coro).__name__
            n = self._names[base] = self._names[base] + 1
            name = base if n == 1 else f"{base}-{n}"
        parent = rec.current_lane()
        lane = rec.new_lane("task", name, parent=parent, tid=_get_ident(), cause=parent,
                            where=self.where.caller())
        wrapped = TracedCoro(coro, lane, rec, self)
        user = loop._concurview_user_factory
        if user is not None:
            return user(loop, wrapped, **kwargs)
        return asyncio.Task(wrapped, loop=loop, **kwargs)

    def wait_reason(self, coro, yielded) -> tuple[str, str | None]:
        """Why the task stopped: the innermost awaited coroutine, and the user line that awaited it."""
        is_user = self.where.is_user
        inner, code = coro, None
        user_frame = getattr(coro, "cr_frame", None)
        while True:
            nxt = getattr(inner, "cr_await", None)
            if nxt is None:
                nxt = getattr(inner, "gi_yieldfrom", None)
            if nxt is None:
                break
            nxt_code = getattr(nxt, "cr_code", None) or getattr(nxt, "gi_code", None)
            if nxt_code is None:  # a Future or other awaitable: the end of the chain
                break
            inner, code = nxt, nxt_code
            frame = getattr(inner, "cr_frame", None) or getattr(inner, "gi_frame", None)
            if frame is not None and is_user(nxt_code):
                user_frame = frame
        if code is None:
            reason = "await " + ("sleep(0)" if yielded is None else type(yielded).__name__)
        elif code.co_name == "sleep" and code.co_filename == _TASKS_FILE:
            reason = "await sleep(%g)" % inner.cr_frame.f_locals.get("delay", 0)
        else:
            reason = self._reasons.get(code)
            if reason is None:
                reason = "await " + _AWAIT_NAMES.get(code.co_name, code.co_qualname)
                self._reasons[code] = reason
        where = self.where.of_frame(user_frame) if user_frame is not None else None
        return reason, where


def install(rec: Recorder, where: Where) -> AsyncioEngine:
    engine = AsyncioEngine(rec, where)
    engine.install()
    return engine
