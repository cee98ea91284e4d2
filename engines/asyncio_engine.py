"""asyncio engine: each task's coroutine is wrapped: every step is a run, every await a wait, every wake-up a ready.

The wrapper is `TracedCoro`, the C type of engines/_speedups_asyncio.c: a step
costs no Python frame. `PyTracedCoro` below is the same thing in Python, the
reference the C type is tested against; CONCURVIEW_ASYNCIO_STEP=python makes a
traced program use it. Both call back into AsyncioEngine for every explanation
(`resolve`, `dynamic_reason`, `finish`, `completer`), so they record the same events.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import functools
import itertools
import os
import selectors
import sys
import threading
import types
from asyncio import base_events, selector_events

from .speedups import native as _speedups  # None: the pure-Python step
from ..trace.events import CLOSE, ERROR, READY, RUN, WAIT
from .recorder import BATCH_EVENTS, UNTRACED, Recorder, _get_ident, _monotonic_ns
from .where import Where

_CoroType = types.CoroutineType
_GenType = types.GeneratorType
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_SLEEP_CODE = asyncio.tasks.sleep.__code__
_LIMIT = BATCH_EVENTS - 3  # room for the run, wait and ready of one step
# What a bare future is called in a wait reason, when the user's own line awaits it directly.
_FUTURE_NAMES = {"_GatheringFuture": "gather", "Future": "Future", "Task": "task"}
# Library coroutines that only pass an await on: the reason names the one they call.
_PLUMBING = ("_ContextManagerMixin.",)
_DEFAULT_NAME = "Task-"
_MAX_CHAIN = 64  # coroutines walked down an await chain  # asyncio's automatic task names: "Task-1", "Task-2", ...


# asyncio's own tasks that the program did not write, by what they do: a learner reads the role,
# not the loop's private method (`BaseSelectorEventLoop._accept_connection2`: start_server's
# per-connection set-up, before it creates the program's handler task).
_ROLES = {
    "BaseSelectorEventLoop._accept_connection2": "accept connection",
    "BaseProactorEventLoop._accept_connection2": "accept connection",
}


class PyTracedCoro:
    """Stands in for a task's coroutine: the C Task drives it, and we see every step.

    It is also the wake-up marker: a step that stops on a future adds the
    TracedCoro itself as the future's first done-callback, and the engine's
    `call_soon` recognises it when the future completes (see `AsyncioEngine`).
    """

    # No __getattr__: it would slow down every attribute access of the hot path (3.11 does
    # not specialise attribute loads on such classes); what asyncio reads is forwarded below.
    __slots__ = ("_coro", "_lane", "_rec", "_engine", "_where", "_events", "_t0", "_done_t",
                 "_sites", "_frame", "__name__", "__qualname__", "__weakref__")

    def __init__(self, coro, lane: int, rec: Recorder, engine: AsyncioEngine, where: str | None) -> None:
        self._coro = coro
        self._lane = lane
        self._rec = rec
        self._engine = engine
        self._where = where  # where the next step resumes: the def line, then each await's line
        self._events = rec._events
        self._t0 = rec.t0
        self._done_t = 0
        # Where this coroutine waited before, by bytecode offset: None for anything but a
        # plain coroutine of the program's own code, which always takes the slow path.
        self._sites = engine.sites_of(coro)
        self._frame = None  # the coroutine's frame, from its first suspension until it ends
        self.__name__ = getattr(coro, "__name__", type(coro).__name__)
        self.__qualname__ = getattr(coro, "__qualname__", self.__name__)

    # -- steps: the hot path ------------------------------------------------------------

    def send(self, value=None, _mono=_monotonic_ns, _len=len, _CT=_CoroType):
        # The C Task resumes us through __next__ (= send with None): this runs once per step,
        # so it is written out in full rather than split into helper calls, and counts its
        # bytecodes (~7 ns each here).
        lane = self._lane
        rec = self._rec
        prev = rec.swap_lane(lane)
        events = self._events
        # A step inside another task's step: an eager task's first one (3.12's eager_task_factory);
        # its creator is suspended in create_task() meanwhile, not running.
        eager = prev in self._engine.task_lanes
        if eager:
            self._rec.record(prev, WAIT, "eager start of " + self.__name__)
        # One room check per step: the wait (and ready) may overfill the batch by two;
        # the next step's check, or anyone's record(), then flushes it.
        fast = _len(events) < _LIMIT
        if fast:
            events.append((_mono() - self._t0, lane, RUN, None, self._where, prev))
        else:
            self._rec.record(lane, RUN, None, self._where, prev)
        coro = self._coro
        try:
            yielded = coro.send(value)
        except BaseException as exc:
            rec.set_lane(prev)
            self._finish(exc)
            if eager:
                self._rec.record(prev, RUN, None, None, lane)
            raise
        rec.set_lane(prev)
        # Why and where it stopped. A task tends to wait at the same few places: the
        # coroutine's bytecode offset and the code it awaits there find the answer again.
        sites = self._sites
        if sites is not None:
            # cr_frame and cr_code are audited attribute reads (an audit hook in Python would
            # run twice a step): the frame is kept from the first time, the callee is told
            # by its qualified name (the code's own string object).
            frame = self._frame
            if frame is None:
                frame = self._frame = coro.cr_frame
            site = sites.get(frame.f_lasti)
            inner = coro.cr_await
            if site is not None and site[0] is (inner.__qualname__ if inner.__class__ is _CT else None):
                where = site[1]
                if yielded is None:
                    reason = site[2]
                else:
                    reason = site[3] or self._engine.dynamic_reason(inner, yielded)
            else:
                reason, where = self._engine.resolve(coro, yielded, sites)
        else:
            reason, where = self._engine.resolve(coro, yielded, None)
        self._where = where
        if fast:
            t = _mono() - self._t0
            events.append((t, lane, WAIT, reason, where))
            if yielded is None:
                # A bare yield (sleep(0)): the task is back in the ready queue at once.
                events.append((t, lane, READY, None, None, lane))
        else:
            self._rec.record(lane, WAIT, reason, where)
            if yielded is None:
                self._rec.record(lane, READY, None, None, lane)
        if eager:
            self._rec.record(prev, RUN, None, None, lane)
        if yielded is None:
            return None
        try:
            # The marker goes first among the future's callbacks; the Task adds its wake-up next.
            yielded.add_done_callback(self)
        except Exception:  # noqa: BLE001 - a foreign awaitable: no ready event, nothing else changes
            pass
        return yielded

    __next__ = send

    def throw(self, *args):
        # Cancellation arrives here: Task.cancel() throws CancelledError into the coroutine.
        rec, lane = self._rec, self._lane
        prev = rec.swap_lane(lane)
        exc_arg = args[0] if args else None
        name = exc_arg.__name__ if isinstance(exc_arg, type) else type(exc_arg).__name__
        rec.record(lane, RUN, "throw " + name, self._where, prev)
        try:
            yielded = self._coro.throw(*args)
        except BaseException as exc:
            rec.set_lane(prev)
            self._finish(exc)
            raise
        rec.set_lane(prev)
        reason, where = self._engine.resolve(self._coro, yielded, self._sites)
        self._where = where
        rec.record(lane, WAIT, reason, where)
        if yielded is None:
            rec.record(lane, READY, None, None, lane)
        else:
            try:
                yielded.add_done_callback(self)
            except Exception:  # noqa: BLE001
                pass
        return yielded

    def _finish(self, exc: BaseException) -> None:
        self._frame = None  # the finished frame holds the coroutine's locals: let them go now
        self._done_t = _monotonic_ns()
        self._engine.finish(self._lane, self._where, None if isinstance(exc, StopIteration) else exc)

    # -- wake-up marker --------------------------------------------------------------------

    def __call__(self, fut=None) -> None:
        # Only reached on loops that are not BaseEventLoops (e.g. uvloop): the future's
        # callbacks run later than it completed, so the time is approximate.
        self._woken(fut, 2)

    def _woken(self, fut, depth: int, _mono=_monotonic_ns, _len=len) -> None:
        """The future this task waits for completed: the task is ready (who completed it = cause)."""
        try:
            # Whoever completed it runs on the loop's thread, as the lane current there.
            current = self._rec._events.lane()
            inner = getattr(fut, "_coro", None)
            engine = self._engine
            if inner.__class__ is TracedCoro:
                cause = inner._lane  # a task finished (returned, raised or was cancelled)
            elif current in engine.task_lanes:
                cause = current  # a task set a result, set an Event, put to a Queue, cancelled, ...
            else:
                cause = engine.completer(fut, depth + 1, current)
            reason = "cancelled" if fut is not None and fut.cancelled() else None
            events = self._events
            if _len(events) < _LIMIT:
                events.append((_mono() - self._t0, self._lane, READY, reason, None, cause))
            else:
                self._rec.record(self._lane, READY, reason, None, cause)
        except Exception as exc:  # noqa: BLE001 - a hook never raises into the program
            self._engine._hook_failed(exc)

    # -- a coroutine to everyone else ------------------------------------------------------

    def close(self):
        self._frame = None
        return self._coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __repr__(self) -> str:
        return repr(self._coro)


def _forward(name: str) -> property:
    # An AttributeError passes through: asyncio probes cr_frame, then gi_frame, ...
    return property(lambda self: getattr(self._coro, name), doc=f"The wrapped coroutine's {name}.")


for _name in ("cr_await", "cr_code", "cr_frame", "cr_running", "cr_origin", "cr_suspended",
              "gi_code", "gi_frame", "gi_running", "gi_yieldfrom", "gi_suspended"):
    setattr(PyTracedCoro, _name, _forward(_name))
collections.abc.Coroutine.register(PyTracedCoro)
if _speedups is not None:
    collections.abc.Coroutine.register(_speedups.TracedCoro)

# The implementation tasks get; the engine's call_soon and completer look it up here at each use.
TracedCoro = PyTracedCoro if os.environ.get("CONCURVIEW_ASYNCIO_STEP") == "python" or _speedups is None \
    else _speedups.TracedCoro


_task_get_coro = asyncio.Task.get_coro


class Task(asyncio.Task):
    """The tasks the engine makes (the C Task, its steps unchanged): get_coro() is the program's own
    coroutine, not the engine's wrapper around it (inspect.iscoroutine, inspect.getcoroutinestate work)."""

    __slots__ = ()

    def get_coro(self):
        coro = _task_get_coro(self)
        return coro._coro if coro.__class__ is TracedCoro else coro


Task.__name__, Task.__qualname__, Task.__module__ = "Task", "Task", asyncio.Task.__module__


def _selector_classes() -> list[type]:
    """The selectors classes with a select() of their own (DefaultSelector is an alias of one)."""
    return [c for c in {c for c in vars(selectors).values() if isinstance(c, type)}
            if issubclass(c, selectors.BaseSelector) and c is not selectors.BaseSelector and "select" in c.__dict__]


class AsyncioEngine:
    """Arms every event loop created from now on: task factory, traced selector, wake-up hook.

    - Task factory: every task's coroutine is wrapped in a TracedCoro (the C Task stays).
    - `BaseEventLoop.call_soon`: a future schedules its done-callbacks through it the
      moment it completes; when one of them is a TracedCoro, the waiting task becomes
      ready right then, caused by whoever completed the future. The marker is not
      scheduled: it costs no loop iteration.
    - `run_forever` / `close`: a loop in a thread no other engine gave a lane gives
      the thread one for as long as the loop is open.
    """

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0
        self._names: collections.Counter[str] = collections.Counter()
        self.lane_names: dict[int, str] = {}
        self.task_lanes: set[int] = set()
        # Caches keyed by id(code) (hashing a code object hashes its contents: ~120 ns);
        # each entry keeps its code object alive, so the id cannot be reused meanwhile.
        self.user_codes: dict[int, tuple[bool, types.CodeType]] = {}
        self.reasons: dict[int, tuple[str, types.CodeType]] = {}
        self._code_sites: dict[int, tuple[types.CodeType, dict]] = {}
        self._main_ident = threading.main_thread().ident
        self._released: set[int] = set()  # thread lanes closed with their loop
        self._auto_names: dict[int, str] | None = None  # see install(): 3.13.0 only
        BaseEventLoop = base_events.BaseEventLoop
        self._hidden = {id(BaseEventLoop.shutdown_asyncgens.__code__),
                        id(BaseEventLoop.shutdown_default_executor.__code__)}

    # -- arming ---------------------------------------------------------------------------

    def install(self) -> None:
        if getattr(base_events.BaseEventLoop, "_concurview", None) is not None:
            return
        engine = self
        BaseEventLoop = base_events.BaseEventLoop
        orig_init = BaseEventLoop.__init__
        orig_set_factory = BaseEventLoop.set_task_factory
        orig_sel_init = selector_events.BaseSelectorEventLoop.__init__
        orig_run_forever = BaseEventLoop.run_forever
        orig_close = BaseEventLoop.close

        def __init__(loop, *args, **kwargs):
            orig_init(loop, *args, **kwargs)
            loop._concurview_user_factory = None
            orig_set_factory(loop, engine._factory)

        def selector_init(loop, *args, **kwargs):
            orig_sel_init(loop, *args, **kwargs)
            try:
                # The loop's selector stays the program's object; its class's select() (patched below)
                # shows the loop's waits for the selectors marked so.
                loop._selector._concurview_loop = True
            except Exception:  # noqa: BLE001 - a selector that takes no attribute: its waits go unseen
                pass

        set_task_factory, get_task_factory, run_forever, close = self._loop_methods(orig_run_forever, orig_close)

        BaseEventLoop.__init__ = __init__
        selector_events.BaseSelectorEventLoop.__init__ = selector_init
        for cls in _selector_classes():
            cls.select = self._loop_select(cls.__dict__["select"])
        BaseEventLoop.set_task_factory = set_task_factory
        BaseEventLoop.get_task_factory = get_task_factory
        BaseEventLoop.run_forever = run_forever
        BaseEventLoop.close = close
        BaseEventLoop.call_soon = self._make_call_soon(BaseEventLoop.call_soon)
        orig_create_task = BaseEventLoop.create_task
        if "set_name" in orig_create_task.__code__.co_names:
            # 3.13.0 renames a factory's task to "None" when create_task() got no name
            # (it calls task.set_name(name) regardless): keep asyncio's "Task-N".
            self._auto_names = {}

            def create_task(loop, coro, *, name=None, context=None):
                task = orig_create_task(loop, coro, name=name, context=context)
                auto = engine._auto_names.pop(id(task), None)
                if name is None and auto is not None:
                    task.set_name(auto)
                return task

            create_task.__doc__ = orig_create_task.__doc__
            BaseEventLoop.create_task = create_task
        BaseEventLoop._concurview = self
        from .processes import after_import

        after_import(self._patch_uvloop, "uvloop")

    def _loop_methods(self, orig_run_forever, orig_close) -> tuple:
        """A loop class's set/get_task_factory, run_forever and close as the engine needs them: the
        program's own factory (e.g. eager_task_factory) kept beneath ours; a loop in a thread no other
        engine traced gives it a lane until it closes."""
        engine = self

        def set_task_factory(loop, factory):
            if factory is not None and not callable(factory):
                raise TypeError("task factory must be a callable or None")
            loop._concurview_user_factory = factory

        def get_task_factory(loop):
            return loop._concurview_user_factory

        def run_forever(loop):
            engine._adopt_thread(loop)
            return orig_run_forever(loop)

        def close(loop):
            try:
                return orig_close(loop)
            finally:
                engine._release_thread(loop)

        return set_task_factory, get_task_factory, run_forever, close

    def _patch_uvloop(self, uvloop) -> None:
        """uvloop's loops (not BaseEventLoops: libuv in C) get the same task factory, through a subclass
        of `uvloop.Loop` put in its place (uvloop.run, new_event_loop and EventLoopPolicy make theirs from
        that name). Their tasks are traced; the loop's own waits in libuv are not seen. If uvloop's
        shape is not what this expects, the run says in its log that uvloop's tasks are not traced."""
        engine = self
        try:
            Base = uvloop.Loop
            if getattr(Base, "_concurview", None) is not None:
                return
            orig_set_factory = Base.set_task_factory
            hidden = {"Loop.shutdown_asyncgens", "Loop.shutdown_default_executor"}

            def uvloop_factory(loop, coro, **kwargs):
                if getattr(coro, "__qualname__", None) in hidden:
                    # uvloop.run()'s own clean-up tasks, as asyncio.run()'s are hidden.
                    user_factory = loop._concurview_user_factory
                    if user_factory is not None:
                        return user_factory(loop, coro, **kwargs)
                    return asyncio.Task(coro, loop=loop, **kwargs)
                return engine._factory(loop, coro, **kwargs)

            class Loop(Base):  # type: ignore[misc, valid-type]
                def __init__(loop, *args, **kwargs):
                    super().__init__(*args, **kwargs)
                    loop._concurview_user_factory = None
                    orig_set_factory(loop, uvloop_factory)

                set_task_factory, get_task_factory, run_forever, close = engine._loop_methods(
                    Base.run_forever, Base.close)

            Loop.__name__, Loop.__qualname__, Loop.__module__, Loop.__doc__ = (
                Base.__name__, Base.__qualname__, Base.__module__, Base.__doc__)
            Loop._concurview = engine
            uvloop.Loop = Loop
        except Exception as e:  # noqa: BLE001 - never break the program's import of uvloop
            self.rec.engine_failed("asyncio engine's uvloop support (uvloop's tasks are not traced)", e, first=True)

    def _loop_select(self, current):
        """A selector class's select(): for an event loop's selector, a wait of the loop's thread while it
        blocks (`event loop idle`); any other selector's goes on to `current` (the threads engine's
        wrapper, or the real one)."""
        # The class's own select, past the threads engine's wrapper (which would record the loop's waits
        # a second time, and cost a Python call per loop iteration).
        real = getattr(current, "__wrapped__", current)
        engine, rec = self, self.rec

        def select(sel, timeout=None):
            if getattr(sel, "_concurview_loop", None) is None:
                return current(sel, timeout)
            if timeout is not None and timeout <= 0:
                return real(sel, timeout)
            name = type(sel).__name__.replace("Selector", "").lower() or "select"
            lane = rec.current_lane()
            wait = "forever" if timeout is None else f"≤ {timeout:.3f}s"
            rec.record(lane, WAIT, f"event loop idle: {name} {wait}", engine.where.caller(2))
            ready = []
            try:
                ready = real(sel, timeout)
            finally:
                rec.record(lane, RUN, f"{name} returned {len(ready)} ready" if ready else f"{name} timed out")
            return ready

        select.__doc__, select.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
        select.__name__, select.__qualname__ = real.__name__, real.__qualname__
        return select

    @staticmethod
    def _make_call_soon(orig, woken: bool = True):
        """call_soon with the wake-up check in front.

        Every task step goes through call_soon, so the original body is repeated
        here rather than called (a second Python call per step); if this Python's
        body is not the one we know, we wrap it instead. `woken=False` drops the
        marker without recording (the ready_ab benchmark weighs the ready events so).
        """
        known = ("_check_closed", "_debug", "_check_thread", "_check_callback", "_call_soon", "_source_traceback")
        if not woken:
            def call_soon(self, callback, *args, context=None):
                if callback.__class__ is TracedCoro:
                    return None
                self._check_closed()
                if self._debug:
                    self._check_thread()
                    self._check_callback(callback, 'call_soon')
                handle = self._call_soon(callback, args, context)
                if handle._source_traceback:
                    del handle._source_traceback[-1]
                return handle
        elif tuple(orig.__code__.co_names) == known:
            def call_soon(self, callback, *args, context=None):
                if callback.__class__ is TracedCoro:
                    callback._woken(args[0] if args else None, 1)
                    return None  # futures ignore what call_soon returns
                self._check_closed()
                if self._debug:
                    self._check_thread()
                    self._check_callback(callback, 'call_soon')
                handle = self._call_soon(callback, args, context)
                if handle._source_traceback:
                    del handle._source_traceback[-1]
                return handle
        else:
            def call_soon(self, callback, *args, context=None):
                if callback.__class__ is TracedCoro:
                    callback._woken(args[0] if args else None, 1)
                    return None
                return orig(self, callback, *args, context=context)
        call_soon.__doc__ = orig.__doc__
        call_soon.__wrapped__ = orig  # type: ignore[attr-defined]
        return call_soon

    # -- tasks ----------------------------------------------------------------------------

    def _factory(self, loop, coro, **kwargs):
        user_factory = loop._concurview_user_factory
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None and id(code) in self._hidden:
            # asyncio.run()'s own clean-up tasks: not the program's concurrency.
            if user_factory is not None:
                return user_factory(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)
        rec = self.rec
        ident = _get_ident()
        if ident != self._main_ident:
            self._adopt_thread(loop)
        name = kwargs.get("name") or self._explicit_name()
        if name is None:
            base = getattr(coro, "__qualname__", None) or type(coro).__name__
            base = _ROLES.get(base, base)
            n = self._names[base] = self._names[base] + 1
            name = base if n == 1 else f"{base}-{n}"
        parent = rec.current_lane()
        where = self.where
        lane = rec.new_lane("task", name, parent=parent, tid=getattr(loop, "_thread_id", None) or ident, cause=parent,
                            where=where.caller())
        if lane == UNTRACED:  # past the lane cap: a plain task, no tracing cost at all
            if user_factory is not None:
                return user_factory(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)
        self.task_lanes.add(lane)
        self.lane_names[lane] = name
        start = where.of_code(code) if code is not None and self.is_user(code) else None
        wrapped = TracedCoro(coro, lane, rec, self, start)
        if user_factory is not None:
            task = user_factory(loop, wrapped, **kwargs)
        else:
            task = Task(wrapped, loop=loop, **kwargs)
        if self._auto_names is not None:
            self._auto_names[id(task)] = task.get_name()
        return task

    @staticmethod
    def _explicit_name() -> str | None:
        """The name given to create_task(), which asyncio applies only after the factory returns.

        loop.create_task(name=...) keeps it in a local; asyncio.create_task and
        TaskGroup.create_task (3.11, 3.12) keep it one frame further up.
        """
        frame = sys._getframe(2)
        for _ in range(3):
            if frame is None or frame.f_code.co_name != "create_task":
                return None
            name = frame.f_locals.get("name")
            if name is not None and not (isinstance(name, str) and name.startswith(_DEFAULT_NAME)):
                return str(name)
            frame = frame.f_back
        return None

    # -- why and where a step stopped -----------------------------------------------------------

    def sites_of(self, coro) -> dict | None:
        """The wait-site cache shared by every task running this coroutine function's code."""
        if coro.__class__ is not _CoroType or not self.is_user(coro.cr_code):
            return None
        code = coro.cr_code
        entry = self._code_sites.get(id(code))
        if entry is None:
            entry = self._code_sites[id(code)] = (code, {})
        return entry[1]

    def is_user(self, code: types.CodeType) -> bool:
        entry = self.user_codes.get(id(code))
        if entry is None:
            entry = self.user_codes[id(code)] = (self.where.is_user(code), code)
        return entry[0]

    def resolve(self, coro, yielded, sites: dict | None) -> tuple[str, str | None]:
        """(reason, where) of a step that stopped, by walking the await chain; fills `sites`.

        The whole chain is walked, whoever made the task (a framework's handler task runs the program's
        coroutine some levels down): `where` is the innermost line of the program's own code, and the
        reason is the first library coroutine that line awaits (sleep, Queue.get, Lock.acquire, ...) or,
        when it awaits a future directly, that future. A chain with none of the program's code is named
        after its innermost coroutine.
        """
        if coro.__class__ is _CoroType:
            code, frame, inner = coro.cr_code, coro.cr_frame, coro.cr_await
        else:
            code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            inner = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        # The chain: (code, frame, the coroutine) from the task's own down to the innermost.
        chain = [(code, frame, coro)]
        user_at = 0 if code is not None and self.is_user(code) else -1
        while inner is not None and len(chain) < _MAX_CHAIN:
            tp = inner.__class__
            if tp is _CoroType:
                c, f, nxt = inner.cr_code, inner.cr_frame, inner.cr_await
            elif tp is _GenType:
                c, f, nxt = inner.gi_code, inner.gi_frame, inner.gi_yieldfrom
            else:
                break  # a future (its iterator): the end of the chain
            chain.append((c, f, inner))
            if self.is_user(c):
                user_at = len(chain) - 1
            inner = nxt
        depth = user_at
        if user_at < 0:
            # None of the program's code: name the innermost coroutine; no line to show.
            user, frame = False, None
            code, _, last = chain[-1]
        elif user_at == len(chain) - 1:
            user, (code, frame, last) = True, chain[user_at]  # the program's line awaits a future directly
        else:
            user, frame = False, chain[user_at][1]
            code, _, last = chain[user_at + 1]
            if code.co_qualname.startswith(_PLUMBING) and user_at + 2 < len(chain) \
                    and chain[user_at + 2][2].__class__ is _CoroType:
                # `async with lock:` is the mixin's __aenter__ calling Lock.acquire:
                # name the lock, and look again next time (the lock's type may vary).
                code, _, last = chain[user_at + 2]
                depth = -1
        if user or code is None:
            # The program's line awaits a future (or yields) directly: named after the future.
            if_none, if_future = "yield", None
        elif code is _SLEEP_CODE:
            if_none, if_future = "await sleep(0)", None  # sleep(0) yields None; sleep(d) a future
        else:
            entry = self.reasons.get(id(code))
            if entry is None:
                name = code.co_qualname
                entry = self.reasons[id(code)] = ("await " + name, code)
            if_none = if_future = entry[0]
        if yielded is None:
            reason = if_none
        else:
            reason = if_future or self.dynamic_reason(last if code is _SLEEP_CODE else None, yielded)
        where = None if frame is None else self.where.of_frame(frame)
        if sites is not None and depth == 0 and chain[0][1] is not None:
            # The task's own coroutine awaits a library coroutine or a future directly, and nothing of
            # the program's is below it: what it awaits there is fixed by the code, so the next step
            # here can skip the walk.
            first = chain[1][2] if len(chain) > 1 else None
            callee = first.__qualname__ if first.__class__ is _CoroType else None
            sites[chain[0][1].f_lasti] = (callee, where, if_none, if_future)
        return reason, where

    def dynamic_reason(self, inner, yielded) -> str:
        """A reason that depends on values: `await sleep(0.3)`, or the future awaited directly."""
        if inner is not None and inner.__class__ is _CoroType and inner.cr_code is _SLEEP_CODE:
            return "await sleep(%g)" % inner.cr_frame.f_locals.get("delay", 0)
        return self.future_reason(yielded)

    def future_reason(self, yielded) -> str:
        """The program's own line awaits a future directly: `await task2`, `await gather`, `await Future`."""
        if yielded is None:
            return "yield"
        inner = getattr(yielded, "_coro", None)
        if inner.__class__ is TracedCoro:
            return "await " + self.lane_names.get(inner._lane, "task")
        tname = type(yielded).__name__
        return "await " + _FUTURE_NAMES.get(tname, tname)

    def finish(self, lane: int, where: str | None, exc: BaseException | None) -> None:
        """A task's coroutine ended: returned (exc None), was cancelled, or raised."""
        rec = self.rec
        if exc is None:
            rec.record(lane, CLOSE, "returned", where)
        elif isinstance(exc, asyncio.CancelledError):
            rec.record(lane, CLOSE, "cancelled", where)
        else:
            where = self.where.of_traceback(exc.__traceback__) or where
            rec.record(lane, ERROR, type(exc).__name__, where, None, f"{type(exc).__name__}: {exc}")
            rec.record(lane, CLOSE, "raised " + type(exc).__name__, where)

    def _hook_failed(self, exc: BaseException) -> None:
        """A step or wake-up hook failed (it never raises into the program): counted, the first one reported."""
        self.errors += 1
        self.rec.engine_failed("asyncio engine", exc, first=self.errors == 1)

    # -- who woke a task -------------------------------------------------------------------------

    def completer(self, fut, depth: int, current: int | None) -> int | None:
        """Who completed `fut` when no task was running: asyncio's callback for a task, or the loop."""
        if current is None:
            current = self.rec.current_lane()
        # A loop callback completed it. asyncio's own callbacks (gather's, TaskGroup's,
        # wait()'s) hold the child tasks, and the one that finished last is what made the
        # callback run: that task is the real cause.
        frame = sys._getframe(depth + 1)
        done_t, found = 0, None
        for _ in range(4):
            if frame is None or not frame.f_code.co_filename.startswith(_ASYNCIO_DIR):
                break
            for value in frame.f_locals.values():
                items = value if isinstance(value, (list, tuple, set)) else (value,)
                for item in itertools.islice(items, 1000):
                    c = getattr(item, "_coro", None)
                    if c.__class__ is TracedCoro and c._done_t > done_t:
                        done_t, found = c._done_t, c._lane
            if found is not None:
                break
            frame = frame.f_back
        return current if found is None else found

    # -- loops in threads no other engine traced ------------------------------------------------

    def _adopt_thread(self, loop) -> None:
        """A loop used in a thread that has no lane (no threads engine) gives the thread one, until it closes."""
        ident = _get_ident()
        if ident == self._main_ident:
            return
        rec = self.rec
        lane = rec._events.lane()
        if lane is None:
            lane = rec._thread_lanes.get(ident)
        if lane is not None and lane not in self._released:
            return
        lane = rec.new_lane("thread", threading.current_thread().name, parent=rec.main_lane, tid=ident,
                            cause=rec.main_lane, where=self.where.caller(3))
        rec.bind_thread(lane, ident)
        rec.record(lane, RUN, "runs an event loop")
        loop._concurview_thread_lane = (lane, ident)

    def _release_thread(self, loop) -> None:
        own = getattr(loop, "_concurview_thread_lane", None)
        if own is None:
            return
        loop._concurview_thread_lane = None
        lane, ident = own
        rec = self.rec
        rec.record(lane, CLOSE, "event loop closed")
        self._released.add(lane)
        if rec._thread_lanes.get(ident) == lane:
            del rec._thread_lanes[ident]
        if ident == _get_ident() and rec._events.lane() == lane:
            rec.set_lane(None)


def install(rec: Recorder, where: Where) -> AsyncioEngine:
    engine = AsyncioEngine(rec, where)
    engine.install()
    return engine
