"""threads engine: a lane per thread and Timer; sleeps, contended locks, queue gets and joins as waits; pool work items as runs."""

from __future__ import annotations

import _thread
import functools
import os
import queue
import sys
import threading

from . import gilview, speedups
from ..trace.events import BLOCK, CLOSE, ERROR, READY, RUN, WAIT
from .recorder import Recorder, _allocate_lock, _get_ident
from .where import Where

_engine: ThreadsEngine | None = None  # the one engine of this process, for the lock and queue types
# Other engines' set-up and clean-up for a thread started through _thread directly (the greenlet engine
# arms its tracer, and lets it go): (enter, leave) pairs, called in the new thread at its start and end.
STARTER_HOOKS: list = []

_CRLock = getattr(threading, "_CRLock", None) or _thread.RLock
_rlock_acquire = _CRLock.acquire
_rlock_release = _CRLock.release
_SimpleQueue = queue.SimpleQueue
_sq_get = _SimpleQueue.get
_sq_put = _SimpleQueue.put
_Empty = queue.Empty
_RLOCK_FACTORY_CODE = threading.RLock.__code__
_FunctionType = type(lambda: None)

# Library calls a program makes that end up blocking in a lock: the outermost one met
# on the way up from the lock names the wait (`Event.wait`, not `Condition.wait`).
# Keyed by (file name, qualified name): only library frames are looked up.
LABELS = {
    ("threading.py", "Condition.wait"): "Condition.wait",
    ("threading.py", "Condition.wait_for"): "Condition.wait_for",
    ("threading.py", "Event.wait"): "Event.wait",
    ("threading.py", "Semaphore.acquire"): "Semaphore.acquire",
    ("threading.py", "Barrier.wait"): "Barrier.wait",
    ("threading.py", "Thread.start"): "Thread.start",
    ("threading.py", "Thread.join"): "Thread.join",
    ("queue.py", "Queue.get"): "Queue.get",
    ("queue.py", "Queue.put"): "Queue.put",
    ("queue.py", "Queue.join"): "Queue.join",
    ("_base.py", "Future.result"): "Future.result",
    ("_base.py", "Future.exception"): "Future.exception",
    ("_base.py", "wait"): "futures.wait",
    ("_base.py", "as_completed"): "as_completed",
    ("thread.py", "ThreadPoolExecutor.shutdown"): "shutdown(wait=True)",
    ("process.py", "ProcessPoolExecutor.shutdown"): "shutdown(wait=True)",
    ("thread.py", "_python_exit"): "interpreter exit",
    ("process.py", "_python_exit"): "interpreter exit",
    ("process.py", "_ExecutorManagerThread.wait_result_broken_or_wakeup"): "waiting for results",
    ("queues.py", "Queue._feed"): "feeder: waiting for items to send",
    ("queues.py", "Queue.get"): "multiprocessing Queue.get",
    ("connection.py", "Connection.poll"): "Connection.poll",
    ("queues.py", "SimpleQueue.get"): "multiprocessing SimpleQueue.get",
    ("queues.py", "SimpleQueue.put"): "multiprocessing SimpleQueue.put",
    ("pool.py", "Pool._handle_results"): "pool: waiting for results",
    ("pool.py", "Pool._wait_for_updates"): "pool: watching its workers",
    ("synchronize.py", "Condition.wait"): "multiprocessing Condition.wait",
    ("synchronize.py", "Event.wait"): "multiprocessing Event.wait",
    ("synchronize.py", "Event.set"): "multiprocessing Event.set",
    ("subprocess.py", "run"): "subprocess.run",
    ("subprocess.py", "call"): "subprocess.call",
    ("subprocess.py", "check_call"): "subprocess.check_call",
    ("subprocess.py", "check_output"): "subprocess.check_output",
    ("subprocess.py", "Popen.wait"): "Popen.wait",
    ("subprocess.py", "Popen.communicate"): "Popen.communicate",
}
_TIMER = "Timer"  # the label of the engine's own Timer.run
# The per-call wrappers (time.sleep, Condition.wait/notify, _WorkItem.run, the lock factories):
# "c" (engines/_speedups_threads.c, the default: the common case in C, the rest handed to the
# Python wrappers and methods below) or "python" (the Python wrappers alone: the reference).
ENV_HOOKS = "CONCURVIEW_THREADS_HOOKS"
_MAX_DEPTH = 32  # frames walked looking for a label and the program's line
_REPR_MAX = 40  # characters of one argument in `task('屌丝4')`
_CALL_MAX = 100


def _disguise(wrapper, real):
    """`wrapper` named as `real` (name, qualified name, module): what replaces a function of python's keeps
    looking like it to the program (`threading.Lock.__module__`, a test of a module's __all__)."""
    for attr in ("__name__", "__qualname__", "__module__"):
        value = getattr(real, attr, None)
        if isinstance(value, str):
            try:
                setattr(wrapper, attr, value)
            except (AttributeError, TypeError):
                pass
    return wrapper


def _unraisable_args_type():
    """sys.unraisablehook's argument type (the hook accepts no other), found by catching one."""
    found: list = []

    class Probe:
        def __del__(self):
            raise RuntimeError("concurview: finding UnraisableHookArgs")

    hook = sys.unraisablehook
    sys.unraisablehook = found.append
    try:
        Probe()
    finally:
        sys.unraisablehook = hook
    return type(found[0]) if found else None


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _seconds(value) -> str:
    """A duration as the program wrote it: 1.0 -> `1.0s`, 2 -> `2s`."""
    if type(value) is float:
        return f"{value:g}s"  # the argument as written (0.5), not a computed deadline's 17 digits
    return f"{value}s" if isinstance(value, int) else f"{value!r}s"


# What a program can tell of threading.Lock: a factory function (3.11, 3.12: `_thread.allocate_lock`)
# or the lock type itself (3.13: `_thread.lock`, instantiable). Either way the engine's stand-ins
# keep that shape, name and module.
_LOCK_IS_TYPE = isinstance(threading.Lock, type)


def _lock_args(probe, args, kwargs) -> tuple:
    """(blocking, timeout) of an acquire(*args, **kwargs), checked as python checks them: by the real
    lock's own acquire on `probe`, a fresh free lock, where it cannot block (same errors, same messages)."""
    probe.acquire(*args, **kwargs)
    return _acquire_args(*args, **kwargs)


def _acquire_args(blocking=True, timeout=-1):
    return blocking, timeout


class _LockMeta(type):
    """TracedLock's type. Its instances are `_thread.lock`s to isinstance() (the library's own locks are
    the real ones: both are of `type(threading.Lock())`). Calling it is threading.Lock() on 3.13, where
    threading.Lock is the type (the engine's factory: a traced lock when the program makes it), and an
    error before, as calling `_thread.lock` is."""

    factory = None  # set by the engine where threading.Lock is a type

    def __call__(cls, *args, **kwargs):
        factory = _LockMeta.factory
        if factory is None:
            raise TypeError("cannot create '_thread.lock' instances")
        return factory(*args, **kwargs)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, _thread.LockType) or type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub, _thread.LockType) or type.__subclasscheck__(cls, sub)


_LOCK_CALL_CODE = _LockMeta.__call__.__code__


class TracedLock(metaclass=_LockMeta):
    """threading.Lock() with a cheap uncontended path; only an acquire that would block is recorded.

    Condition, Event, Semaphore, Barrier, queue.Queue and the executors all
    wait through locks like this one (a Condition's waiters are plain locks),
    so their waits show, named by the library call that blocked.

    To the program it is `_thread.lock`: its name, module and repr, its argument checks and errors,
    and (as python's) it cannot be instantiated directly before 3.13 (see _LockMeta). The engine makes
    them with `_new_lock()`.
    """

    __slots__ = ("_lock", "_waiters", "_waker", "__weakref__")

    def acquire(self, *args, **kwargs):
        if args or kwargs:
            blocking, timeout = _lock_args(_allocate_lock(), args, kwargs)
        else:
            blocking, timeout = True, -1
        if self._lock.acquire(False):
            return True
        if not blocking or _engine is None:
            return self._lock.acquire(blocking, timeout)  # the real call's answer
        return _engine.block(self, self._lock.acquire, (True, timeout), timeout, "Lock.acquire")

    __enter__ = acquire

    def release(self) -> None:
        if self._waiters and self._lock.locked():
            _engine.wake(self)
        self._lock.release()

    def __exit__(self, *exc) -> None:
        # release(), written out: one call less on every `with lock:`
        if self._waiters and self._lock.locked():
            _engine.wake(self)
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()
        self._waiters = None
        self._waker = None

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<{state} _thread.lock object at {id(self):#x}>"


def _new_lock(cls=TracedLock) -> TracedLock:
    lock = object.__new__(cls)
    lock._lock = _allocate_lock()
    lock._waiters = None  # lanes blocked in acquire (approximate: who wakes is the OS's choice)
    lock._waker = None  # the lane whose release let a waiter in
    return lock


class _RLockMeta(type):
    """TracedRLock's type: the engine puts TracedRLock itself in threading._CRLock (a type there, as
    python's: a program may subclass it), and calling it is the engine's factory (a traced RLock when the
    program makes one). The library's real RLocks are its instances too."""

    factory = None

    def __call__(cls, *args, **kwargs):
        if cls is TracedRLock and _RLockMeta.factory is not None:
            return _RLockMeta.factory(*args, **kwargs)
        return type.__call__(cls, *args, **kwargs)

    def __instancecheck__(cls, obj) -> bool:
        return (cls is TracedRLock and isinstance(obj, _CRLock)) or type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub) -> bool:
        return (cls is TracedRLock and issubclass(sub, _CRLock)) or type.__subclasscheck__(cls, sub)


_RLOCK_CALL_CODE = _RLockMeta.__call__.__code__


class TracedRLock(_CRLock, metaclass=_RLockMeta):
    """threading.RLock() (the C one, subclassed): recorded only when an acquire would block.
    To the program it is `_thread.RLock` (name, module, repr, argument checks)."""

    __slots__ = ("_waiters", "_waker")

    def __init__(self, *args, **kwargs) -> None:
        self._waiters = None
        self._waker = None

    def acquire(self, *args, **kwargs):
        if args or kwargs:
            blocking, timeout = _lock_args(_CRLock(), args, kwargs)
        else:
            blocking, timeout = True, -1
        if _rlock_acquire(self, False):
            return True
        if not blocking or _engine is None:
            return _rlock_acquire(self, blocking, timeout)
        return _engine.block(self, _rlock_acquire, (self, True, timeout), timeout, "RLock.acquire")

    __enter__ = acquire

    def release(self) -> None:
        if self._waiters:
            _engine.wake(self)
        _rlock_release(self)

    def __exit__(self, *exc) -> None:
        self.release()

    def _at_fork_reinit(self) -> None:
        _CRLock._at_fork_reinit(self)
        self._waiters = None
        self._waker = None

    def __repr__(self) -> str:
        return _CRLock.__repr__(self).replace(f" {type(self).__name__} object", " _thread.RLock object", 1)


def _new_rlock() -> TracedRLock:
    return type.__call__(TracedRLock)


for _cls, _real in ((TracedLock, _thread.LockType), (TracedRLock, _CRLock)):
    _cls.__name__, _cls.__qualname__, _cls.__module__ = _real.__name__, _real.__qualname__, _real.__module__


class TracedSimpleQueue(_SimpleQueue):
    """queue.SimpleQueue (the C one, subclassed): a get that finds the queue empty waits, recorded.

    ThreadPoolExecutor's workers take work from one of these: their idle time
    shows as `waiting for work`.
    """

    __slots__ = ("_waiters", "_waker")

    def __init__(self) -> None:
        self._waiters = None
        self._waker = None

    def get(self, block=True, timeout=None):
        try:
            return _sq_get(self, False)
        except _Empty:
            if not block or _engine is None:
                return _sq_get(self, block, timeout)
        return _engine.queue_wait(self, timeout)

    def put(self, item, block=True, timeout=None) -> None:
        if self._waiters:
            _engine.wake(self)
        _sq_put(self, item)

    def put_nowait(self, item) -> None:
        self.put(item)


_LockType = type(_allocate_lock())

# The Python methods the C hooks stand for (kept: an engine armed later may want them back).
_PY_METHODS = {(cls, name): cls.__dict__[name] for cls, names in (
    (TracedLock, ("acquire", "__enter__", "release", "__exit__")), (TracedSimpleQueue, ("put", "get")))
    for name in names}
_METHOD_HOOKS = {  # method -> (hook kind, the real call it makes, extra)
    "acquire": ("acquire", _LockType.acquire, {}),
    "__enter__": ("acquire", _LockType.acquire, {}),
    "release": ("release", _LockType.release, {}),
    "__exit__": ("release", _LockType.release, {"aux": True}),  # takes *exc
    "put": ("put", _sq_put, {}),
    "get": ("get", _sq_get, {"aux": _SimpleQueue.qsize}),
}


class ThreadsEngine:
    """Gives every thread a lane and records what blocks it.

    Patched before the program runs: `Thread.start` / `_bootstrap_inner` (a lane
    per thread, opened at start() by its creator, bound to the thread so its
    prints land on it), `Thread.join`, `time.sleep`, `threading.Lock`,
    `threading._allocate_lock`, `threading.RLock`, `queue.SimpleQueue`,
    `threading.excepthook`, `os.waitpid`, the receiving socket calls (`recv`,
    `recv_into`, `recvfrom`, `recvfrom_into`, `accept`), `select.select` and the
    `selectors` classes' `select()`. Patched when first used (checked at each
    thread start): `concurrent.futures.thread._WorkItem.run` (each work item a run
    named after its call). Patched as they are imported: `multiprocessing.connection`'s
    `wait` and its connections' `recv` calls (a pool's result thread binds `recv`
    before any thread starts), and `multiprocessing.synchronize`'s locks and
    semaphores (their acquire, and `with lock:`).

    A socket or select call is recorded only when it would block: a first,
    non-blocking attempt (MSG_DONTWAIT, a zero timeout) answers the common case
    with one system call, as the real call would. Programs that report their own
    IO through probes (the IO-model scenarios) get no socket waits from here.
    """

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0
        self._labels: dict[int, tuple[str | None, object]] = {}  # id(code) -> (label, code kept alive)
        self._woken_by: dict[int, int] = {}  # lane -> the lane whose notify() woke it
        self._users: dict[int, tuple[bool, object]] = {}  # id(code) -> (the program's own, code kept alive)
        self._call_sites: dict[int, tuple[str | None, object]] = {}  # id(code) -> (where of its def, code)
        # (id(code) << 32) + f_lasti -> (`file:line` if the program's own code else None, code kept alive)
        self._sites: dict[int, tuple[str | None, object]] = {}
        self._pending = {"concurrent.futures.thread": self._patch_thread_pool}
        self._io: bool | None = None  # socket/select waits recorded (decided at the first one)
        self._worker_code = None  # concurrent.futures.thread._worker.__code__ once seen
        self._work_item_type = None
        self._starter_name = "_start_joinable_thread" if hasattr(threading, "_start_joinable_thread") \
            else "_start_new_thread"
        self._starter = getattr(threading, self._starter_name)
        self._c_hooks = os.environ.get(ENV_HOOKS, "c") != "python" and speedups.native is not None
        self.covered = rec.covered  # depth > 0: an outer wrapper records this wait (recorder.Covered)
        self.hooks: dict[str, object] = {}  # kind -> the C hook installed (tests read slow_calls)

    def _hook(self, kind: str, real, python, key: str | None = None, **extra):
        """The wrapper to install: `python` itself, or its C hook (which hands it what is uncommon)."""
        if not self._c_hooks:
            return _disguise(python, real)
        try:
            from ._speedups import ThreadHook

            hook = ThreadHook(kind, self.rec._events, real, python, self, **extra)
        except Exception:  # noqa: BLE001 - an old build without the hooks: the Python wrapper
            self.errors += 1
            return python
        hook.__doc__ = python.__doc__
        hook.__wrapped__ = getattr(python, "__wrapped__", real)  # type: ignore[attr-defined]
        hook.__name__, hook.__qualname__ = python.__name__, python.__qualname__  # type: ignore[attr-defined]
        hook.__module__ = python.__module__
        self.hooks[key or kind] = hook
        return _disguise(hook, real)

    def _patch_lock_types(self) -> None:
        """TracedLock's acquire/release and TracedSimpleQueue's put/get: their uncontended case in C."""
        for (cls, name), python in _PY_METHODS.items():
            kind, real, extra = _METHOD_HOOKS[name]
            key = f"{'TracedLock' if cls is TracedLock else cls.__name__}.{name}"  # TracedLock is named `lock`
            setattr(cls, name, self._hook(kind, real, python, key=key, traced=cls, **extra))

    # -- arming ---------------------------------------------------------------------------

    def install(self) -> bool:
        global _engine
        monkey = sys.modules.get("gevent.monkey")
        gevent_threads = monkey is not None and monkey.is_module_patched("threading")
        gevent_time = monkey is not None and monkey.is_module_patched("time")
        if gevent_threads and gevent_time:
            return False  # gevent turned threads into greenlets: the greenlet engine shows them
        _engine = self
        if not gevent_time:
            self._patch_sleep()
        if not (monkey is not None and monkey.is_module_patched("os")) and hasattr(os, "WNOHANG"):
            self._patch_waitpid()
        if not (monkey is not None and monkey.is_module_patched("socket")):
            try:
                self._patch_sockets()
            except Exception:  # noqa: BLE001 - a platform without MSG_DONTWAIT: no socket waits
                self.errors += 1
        if not (monkey is not None and (monkey.is_module_patched("os") or monkey.is_module_patched("select"))):
            try:
                self._patch_blocking_calls()
            except Exception:  # noqa: BLE001 - a platform without poll/epoll: the rest still armed
                self.errors += 1
        if not gevent_threads:
            self._patch_threads()
            self._patch_starters()
            lock, rlock = self._lock_factories()
            threading.Lock = lock  # type: ignore[misc, assignment]
            self._patch_condition()
            if getattr(threading, "_CRLock", None) is not None:
                # Not threading.RLock itself: C code (gevent's Cython modules) calling it would be
                # taken for the program's frame below it.
                _RLockMeta.factory = rlock
                threading._CRLock = TracedRLock  # type: ignore[attr-defined]
            queue.SimpleQueue = TracedSimpleQueue  # type: ignore[misc]
            self._patch_lock_types()
            from .processes import after_import

            after_import(self._guarded(self._patch_connection), "multiprocessing.connection")
            after_import(self._guarded(self._patch_semlock), "multiprocessing.synchronize")
        return True

    def _guarded(self, patch):
        """`patch(module)`, its failure counted (a patch that fails leaves the module as it was)."""
        def run(module) -> None:
            try:
                patch(module)
            except Exception:  # noqa: BLE001
                self.errors += 1
        return run

    def _patch_condition(self) -> None:
        """Condition.wait is a wait (every Event, Semaphore, Barrier, Queue and Future wait is one);
        notify() makes the lanes it wakes ready.

        The lanes waiting on a condition are kept in the order of its waiters: wait()
        adds one, and notify() takes them from the front, both under the condition's lock.
        """
        engine, rec = self, self.rec
        Condition = threading.Condition
        orig_wait, orig_notify = Condition.wait, Condition.notify
        getframe, current_lane, stop_kind = sys._getframe, rec.current_lane, self.stop_kind
        woken_by = self._woken_by

        def wait(cond, timeout=None):
            if timeout is not None and timeout <= 0:
                return orig_wait(cond, timeout)
            lane = current_lane()
            d = cond.__dict__
            lanes = d.get("_concurview_lanes")
            if lanes is None:
                lanes = d["_concurview_lanes"] = []
            reason, at = engine.wait_reason(getframe(1), "Condition.wait", timeout)
            lanes.append(lane)
            rec.record(lane, stop_kind(lane), reason, at)
            got = False
            try:
                got = orig_wait(cond, timeout)
                return got
            finally:
                # The condition's lock is held again here: notify() took us off the list if it woke us.
                if got:
                    cause = woken_by.pop(lane, None)
                    rec.record(lane, RUN, None, at, cause)
                else:
                    try:
                        lanes.remove(lane)
                    except ValueError:
                        pass
                    rec.record(lane, RUN, "timed out", at)

        def notify(cond, n=1):
            lanes = cond.__dict__.get("_concurview_lanes")
            if not lanes:
                return orig_notify(cond, n)
            k = min(n, len(lanes))
            result = orig_notify(cond, n)
            # Still under the lock: the woken cannot run (and record it) before these are recorded.
            me = current_lane()
            for lane in lanes[:k]:
                woken_by[lane] = me
                rec.record(lane, READY, None, None, me)
            del lanes[:k]
            return result

        for f, orig in ((wait, orig_wait), (notify, orig_notify)):
            f.__doc__, f.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        Condition.wait = self._hook("wait", orig_wait, wait, table=woken_by)
        Condition.notify = self._hook("notify", orig_notify, notify, table=woken_by)

    def _io_traced(self) -> bool:
        """Socket and select waits are recorded unless the program reports its own IO (probes)."""
        traced = self._io
        if traced is None:
            traced = True
            try:
                from . import probe

                traced = not probe.wanted(sys.argv[0] if sys.argv else None)
            except Exception:  # noqa: BLE001
                self.errors += 1
            self._io = traced
        return traced

    def io_wait(self, frame, reason: str, timeout) -> tuple[int, str | None] | None:
        """Record that the current lane waits in an IO call; None if it is not the program's wait to show."""
        if not self._io_traced():
            return None
        try:
            label, _, at = self.why(frame)
            if at is None:
                return None  # library plumbing with none of the program's code above it
            if label:
                reason = f"{label}: {reason}"
            if timeout is not None:
                reason += f" (timeout {_seconds(timeout)})"
            lane = self.rec.current_lane()
            self.rec.record(lane, self.stop_kind(lane), reason, at)
            return lane, at
        except Exception:  # noqa: BLE001
            self.errors += 1
            return None

    def _patch_sockets(self) -> None:
        import select
        import socket

        engine, rec = self, self.rec
        Socket = socket.socket
        DONTWAIT = socket.MSG_DONTWAIT
        getframe = sys._getframe

        def blocking_call(sock, name, real, args, fast):
            """`fast` failed with BlockingIOError on a socket that blocks: the real call is a wait."""
            timeout = sock.gettimeout()
            waiting = engine.io_wait(getframe(2), f"{name} fd={sock.fileno()}", timeout)
            if waiting is None:
                return real(sock, *args)
            ok = False
            try:
                result = real(sock, *args)
                ok = True
                return result
            finally:
                rec.record(waiting[0], RUN, None if ok else "timed out" if timeout else None, waiting[1])

        def wrap(name, flags_at):
            real = getattr(Socket, name)

            def method(sock, *args):
                if sock.timeout == 0.0:
                    return real(sock, *args)  # non-blocking: never waits
                n = len(args)
                if n <= flags_at:
                    fast = args + (0,) * (flags_at - n) + (DONTWAIT,)
                else:
                    fast = args[:flags_at] + (args[flags_at] | DONTWAIT,) + args[flags_at + 1:]
                try:
                    return real(sock, *fast)
                except BlockingIOError:
                    return blocking_call(sock, name, real, args, fast)

            method.__name__, method.__qualname__ = name, f"socket.{name}"
            method.__doc__, method.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
            return method

        # recv(bufsize[, flags]), recvfrom(bufsize[, flags]), recv_into(buffer[, nbytes[, flags]]), ...
        for name, flags_at in (("recv", 1), ("recvfrom", 1), ("recv_into", 2), ("recvfrom_into", 2)):
            setattr(Socket, name, wrap(name, flags_at))

        real_accept = Socket.accept
        real_select = select.select

        def accept(sock):
            if sock.timeout == 0.0:
                return real_accept(sock)
            try:
                ready = real_select([sock], [], [], 0)[0]
            except (OSError, ValueError):
                return real_accept(sock)  # let the real call raise what it raises
            if ready:
                return real_accept(sock)
            return blocking_call(sock, "accept", real_accept, (), None)

        accept.__doc__, accept.__wrapped__ = real_accept.__doc__, real_accept  # type: ignore[attr-defined]
        Socket.accept = accept

        covered = self.covered

        def select_(rlist, wlist, xlist, timeout=None, /):
            if covered.depth or (timeout is not None and timeout <= 0):
                return real_select(rlist, wlist, xlist, timeout)
            ready = real_select(rlist, wlist, xlist, 0)
            if ready[0] or ready[1] or ready[2]:
                return ready
            n = len(rlist) + len(wlist) + len(xlist)
            waiting = engine.io_wait(getframe(1), f"select ({n} fd{'s' if n != 1 else ''})", timeout)
            if waiting is None:
                return real_select(rlist, wlist, xlist, timeout)
            ready = ([], [], [])
            try:
                ready = real_select(rlist, wlist, xlist, timeout)
                return ready
            finally:
                rec.record(waiting[0], RUN, None if (ready[0] or ready[1] or ready[2]) else "timed out", waiting[1])

        select_.__name__ = "select"
        select_.__doc__, select_.__wrapped__ = real_select.__doc__, real_select  # type: ignore[attr-defined]
        select.select = select_
        self._patch_selectors()

    def _patch_selectors(self) -> None:
        """`selectors`' select() (subprocess.run's pipes, a selectors-based server): a wait when nothing
        is ready yet, as select.select. An event loop's selector is the asyncio engine's to show."""
        import selectors

        engine, rec, covered, getframe = self, self.rec, self.covered, sys._getframe

        def wrap(real):
            def select(sel, timeout=None):
                if covered.depth or (timeout is not None and timeout <= 0):
                    return real(sel, timeout)
                covered.depth += 1  # SelectSelector calls select.select, patched above
                try:
                    ready = real(sel, 0)
                finally:
                    covered.depth -= 1
                if ready:
                    return ready
                try:
                    n = len(sel.get_map() or ())
                    kind = type(sel).__name__.replace("Selector", "").lower() or "select"
                    waiting = engine.io_wait(getframe(1), f"{kind} ({n} fd{'s' if n != 1 else ''})", timeout)
                except Exception:  # noqa: BLE001 - a hook never raises into the program
                    engine.errors += 1
                    waiting = None
                if waiting is None:
                    return real(sel, timeout)
                ready = []
                covered.depth += 1
                try:
                    ready = real(sel, timeout)
                    return ready
                finally:
                    covered.depth -= 1
                    rec.record(waiting[0], RUN, None if ready else "timed out", waiting[1])

            select.__doc__, select.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
            return select

        # Each class with a select() of its own (EpollSelector, the DefaultSelector here, has one).
        for cls in {c for c in vars(selectors).values() if isinstance(c, type)}:  # DefaultSelector is an alias
            if issubclass(cls, selectors.BaseSelector) and cls is not selectors.BaseSelector \
                    and "select" in cls.__dict__:
                cls.select = wrap(cls.__dict__["select"])

    # -- blocking calls no other hook sees (issue 18, item 5) ------------------------------------

    def _user_call(self, frame) -> bool:
        """Whether `frame` (the caller of a wrapped call) is the program's own code: library plumbing
        (multiprocessing's pipes, subprocess) calling os.read is not a wait the program asked for."""
        code = frame.f_code
        entry = self._users.get(id(code))
        if entry is None:
            entry = self._users[id(code)] = (self.where.is_user(code), code)
        return entry[0]

    def _covered_wait(self, frame, reason: str, timeout, call, /, *args):
        """waited(), with the calls under it (a read inside input()) recording nothing of their own."""
        if not self._io_traced():
            return call(*args)  # the program reports its own IO (probes): its waits are its own to show
        covered = self.covered
        covered.depth += 1
        try:
            return self.waited(frame, reason, timeout, call, *args)
        finally:
            covered.depth -= 1

    def _patch_blocking_calls(self) -> None:
        """input(), sys.stdin's read/readline/readlines, os.read on a pipe, tty or FIFO, signal.pause and
        the poll()/epoll() objects the program makes: each a wait named after the call, at the program's
        line, when it would block (a zero-timeout select or poll asks first: regular files never block).
        The selectors (and so asyncio's loop) keep their own path: they bound the real poll and epoll
        when imported, before this runs."""
        import builtins
        import select
        import signal

        engine, covered, getframe = self, self.covered, sys._getframe
        real_select = getattr(select.select, "__wrapped__", select.select)

        def readable(fd: int) -> bool:
            """Data (or EOF, or an error) waits on fd: a read returns at once. True when unsure."""
            try:
                if fd < 1024:
                    return bool(real_select([fd], [], [], 0)[0])
                p = real_poll()
                p.register(fd, select.POLLIN)
                return bool(p.poll(0))
            except (OSError, ValueError, TypeError):
                return True

        real_read = os.read

        def read(fd, n, /):
            if covered.depth or not engine._user_call(getframe(1)):
                return real_read(fd, n)
            try:
                ready = not os.get_blocking(fd) or readable(fd)
            except (OSError, TypeError):
                ready = True  # a bad fd: the real call raises what it raises
            if ready:
                return real_read(fd, n)
            return engine._covered_wait(getframe(1), f"os.read(fd {fd})", None, real_read, fd, n)

        read.__doc__, read.__wrapped__ = real_read.__doc__, real_read  # type: ignore[attr-defined]
        os.read = read

        real_input = builtins.input

        def input(prompt="", /):
            if covered.depth:
                return real_input(prompt)
            try:
                ready = readable(sys.stdin.fileno())
            except Exception:  # noqa: BLE001 - no stdin, or one without a descriptor
                ready = True
            if ready:
                return real_input(prompt)
            return engine._covered_wait(getframe(1), "input()", None, real_input, prompt)

        input.__doc__, input.__wrapped__ = real_input.__doc__, real_input  # type: ignore[attr-defined]
        builtins.input = input

        stdin = sys.stdin
        if stdin is not None:
            for name in ("read", "readline", "readlines"):
                try:
                    setattr(stdin, name, self._stdin_call(stdin, name, getattr(stdin, name), readable))
                except (AttributeError, TypeError):
                    pass  # a stream that takes no attributes: the sampler still sees the read

        if hasattr(signal, "pause"):
            real_pause = signal.pause

            def pause():
                if covered.depth:
                    return real_pause()
                return engine._covered_wait(getframe(1), "signal.pause()", None, real_pause)

            pause.__doc__, pause.__wrapped__ = real_pause.__doc__, real_pause  # type: ignore[attr-defined]
            signal.pause = pause

        real_poll = select.poll
        select.poll = self._poller(real_poll, "poll.poll", 1e-3)
        if hasattr(select, "epoll"):
            select.epoll = self._poller(select.epoll, "epoll.poll", 1.0)

    def _stdin_call(self, stdin, name: str, real, readable):
        engine, covered, getframe = self, self.covered, sys._getframe

        def call(*args):
            if covered.depth:
                return real(*args)
            try:
                ready = readable(stdin.fileno())
            except Exception:  # noqa: BLE001
                ready = True
            if ready:
                return real(*args)
            return engine._covered_wait(getframe(1), f"sys.stdin.{name}()", None, real, *args)

        call.__name__ = call.__qualname__ = name
        call.__doc__, call.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
        return call

    def _poller(self, real_new, label: str, unit: float):
        """select.poll / select.epoll as the program calls them: the real object, in a thin wrapper whose
        poll() is a wait when nothing is ready yet (C types, neither subclassable nor patchable)."""
        engine, covered, getframe = self, self.covered, sys._getframe

        class Poller:
            __slots__ = ("_real", "_fds")

            def __init__(self, real) -> None:
                self._real = real
                self._fds: set = set()

            def register(self, fd, *args):
                self._real.register(fd, *args)
                self._fds.add(fd if isinstance(fd, int) else fd.fileno())

            def unregister(self, fd):
                self._real.unregister(fd)
                self._fds.discard(fd if isinstance(fd, int) else fd.fileno())

            def poll(self, timeout=None, *args):
                real = self._real
                if covered.depth or timeout == 0:
                    return real.poll(timeout, *args)
                ready = real.poll(0, *args)
                if ready:
                    return ready
                n = len(self._fds)
                seconds = None if timeout is None or timeout < 0 else timeout if unit == 1 else timeout * unit
                return engine._covered_wait(getframe(1), f"{label} ({n} fd{'s' if n != 1 else ''})", seconds,
                                            real.poll, timeout, *args)

            def __getattr__(self, name):
                return getattr(self._real, name)

            def __enter__(self):
                self._real.__enter__()
                return self

            def __exit__(self, *exc):
                return self._real.__exit__(*exc)

        Poller.__name__ = Poller.__qualname__ = real_new.__name__

        def new(*args, **kwargs):
            real = real_new(*args, **kwargs)
            return Poller(real) if engine._user_call(getframe(1)) else real

        new.__doc__, new.__wrapped__ = real_new.__doc__, real_new  # type: ignore[attr-defined]
        new.__name__ = new.__qualname__ = real_new.__name__
        if hasattr(real_new, "fromfd"):
            new.fromfd = real_new.fromfd  # type: ignore[attr-defined]
        return new

    def _lock_factories(self):
        """threading.Lock / RLock: traced when the program itself makes them.

        The library's own locks (a Queue's mutex, an executor's, a Future's condition)
        are the C ones: held for microseconds, their Python-level wrappers would cost
        more than they show, and every wait they stand for (Queue.get, Future.result,
        Event.wait, ...) already shows through Condition.wait.
        """
        getframe, users, is_user = sys._getframe, self._users, self.where.is_user
        real_lock = _thread.LockType if _LOCK_IS_TYPE else _allocate_lock

        def Lock(*args, **kwargs):
            frame = getframe(1)
            if frame.f_code is _LOCK_CALL_CODE:  # threading.Lock() called the type (3.13): look one further
                frame = frame.f_back
            if args or kwargs:
                return real_lock(*args, **kwargs)  # its own error
            code = frame.f_code
            entry = users.get(id(code))
            if entry is None:
                entry = users[id(code)] = (is_user(code), code)
            return _new_lock() if entry[0] else _allocate_lock()

        def RLock(*args, **kwargs):
            frame = getframe(1)
            for _ in range(3):  # threading.RLock() and TracedRLock's type called us: look further up
                if frame.f_code is not _RLOCK_FACTORY_CODE and frame.f_code is not _RLOCK_CALL_CODE:
                    break
                frame = frame.f_back
            code = frame.f_code
            entry = users.get(id(code))
            if entry is None:
                entry = users[id(code)] = (is_user(code), code)
            return _new_rlock() if entry[0] else _CRLock(*args, **kwargs)

        Lock.__doc__ = real_lock.__doc__
        RLock.__doc__ = _CRLock.__doc__
        lock = self._hook("lock", real_lock, Lock, traced=_new_lock, skip=_LOCK_CALL_CODE, is_user=is_user)
        rlock = self._hook("rlock", _CRLock, RLock, traced=_new_rlock, skip=(_RLOCK_FACTORY_CODE, _RLOCK_CALL_CODE),
                           is_user=is_user)
        if not _LOCK_IS_TYPE:
            return lock, rlock
        _LockMeta.factory = lock
        return TracedLock, rlock

    def gevent_threads(self) -> bool:
        """True once gevent's monkey.patch_all() (run by the program itself) made threads greenlets."""
        return getattr(threading, self._starter_name, None) is not self._starter

    def _patch_sleep(self) -> None:
        import time

        engine, rec = self, self.rec
        real = time.sleep
        getframe, current_lane, stop_kind = sys._getframe, rec.current_lane, self.stop_kind
        sites = self._sites
        reasons: dict = {}  # secs -> "sleep 1.0s": formatting a float costs more than the rest of the hook

        def sleep(secs, /):
            # Once per sleep: written out rather than split into helper calls (each costs here).
            try:
                caller = getframe(1)
                site = sites.get((id(caller.f_code) << 32) + caller.f_lasti)
                if site is None:
                    site = engine.site(caller)
                at = site[0]
                if at is None:
                    # A library's polling loop (subprocess.Popen.wait(timeout) sleeps 1, 2, 4 ms...
                    # between checks): plumbing, not a wait the program asked for.
                    return real(secs)
                lane = current_lane()
                reason = reasons.get(secs)
                if reason is None:
                    reason = f"sleep {secs:g}s" if type(secs) is float else f"sleep {secs}s"  # the C hook's format
                    if len(reasons) < 1024:
                        reasons[secs] = reason
                rec.record(lane, stop_kind(lane), reason, at)
            except Exception:  # noqa: BLE001 - a hook never raises into the program
                engine.errors += 1
                return real(secs)
            try:
                return real(secs)
            finally:
                rec.record(lane, RUN, None, at)

        sleep.__doc__ = real.__doc__
        sleep.__wrapped__ = real  # type: ignore[attr-defined]
        time.sleep = self._hook("sleep", real, sleep, table=reasons)

    def _patch_waitpid(self) -> None:
        """os.waitpid without WNOHANG, for a child that has not exited yet, is a wait (subprocess.run,
        Popen.wait, a child watcher's thread): one non-blocking try answers the common case first."""
        engine, covered = self, self.covered
        real, WNOHANG, getframe = os.waitpid, os.WNOHANG, sys._getframe

        def waitpid(pid, options, /):
            if options & WNOHANG or covered.depth:
                return real(pid, options)
            done = real(pid, options | WNOHANG)  # no such child: raises as the real call would
            if done[0] != 0:
                return done
            return engine.waited(getframe(1), f"waitpid({pid})", None, real, pid, options)

        waitpid.__doc__, waitpid.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
        os.waitpid = waitpid

    def _patch_threads(self) -> None:
        engine, rec = self, self.rec
        Thread = threading.Thread
        orig_start, orig_inner, orig_join = Thread.start, Thread._bootstrap_inner, Thread.join
        stop_kind = self.stop_kind

        def start(thread):
            try:
                if not engine.gevent_threads():
                    thread._concurview_start = (rec.current_lane(), rec.now(), engine.where.caller(2))
                if engine._pending:
                    engine.patch_pending()
            except Exception:  # noqa: BLE001
                engine.errors += 1
            return orig_start(thread)

        def _bootstrap_inner(thread):
            info = thread.__dict__.pop("_concurview_start", None)
            if info is None:
                return orig_inner(thread)  # started before we were armed, or a gevent "thread"
            ident = _get_ident()
            lane = engine.open_thread(thread, info, ident)
            try:
                return orig_inner(thread)
            finally:
                # Its work is done: a join from now on only waits for the OS thread to go (3.13 keeps
                # is_alive() true a while longer than 3.11), which is no wait of the joiner's.
                thread._concurview_done = True
                if lane is not None:
                    engine.close_thread(thread, lane, ident)

        def join(thread, timeout=None):
            try:
                blocks = (thread._started.is_set() and thread.is_alive()
                          and not thread.__dict__.get("_concurview_done")
                          and thread is not threading.current_thread() and not engine.gevent_threads())
            except Exception:  # noqa: BLE001 - let the real join raise what it raises
                blocks = False
            if not blocks:
                return orig_join(thread, timeout)
            lane = rec.current_lane()
            try:
                label, _, at = engine.why(sys._getframe(1))
                reason = f"join {thread.name}" if label in (None, "Thread.join") else f"{label}: join {thread.name}"
                if timeout is not None:
                    reason += f" (timeout {_seconds(timeout)})"
            except Exception:  # noqa: BLE001
                engine.errors += 1
                reason, at = f"join {thread.name}", None
            rec.record(lane, stop_kind(lane), reason, at)
            try:
                return orig_join(thread, timeout)
            finally:
                done = not thread.is_alive()
                rec.record(lane, RUN, None if done else "timed out", at,
                           thread.__dict__.get("_concurview_lane") if done else None)

        for name, f, orig in (("start", start, orig_start), ("_bootstrap_inner", _bootstrap_inner, orig_inner),
                              ("join", join, orig_join)):
            f.__doc__, f.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
            setattr(Thread, name, f)

        hook = threading.excepthook

        def excepthook(args, /):
            try:
                exc = args.exc_value
                if exc is not None and args.thread is not None:
                    lane = args.thread.__dict__.get("_concurview_lane")
                    if lane is not None:
                        name = type(exc).__name__
                        args.thread._concurview_raised = name
                        rec.record(lane, ERROR, name, engine.where.of_traceback(args.exc_traceback), None,
                                   f"{name}: {exc}")
            except Exception:  # noqa: BLE001
                engine.errors += 1
            return hook(args)

        excepthook.__doc__ = hook.__doc__
        threading.excepthook = _disguise(excepthook, hook)

        Timer = threading.Timer
        if tuple(Timer.run.__code__.co_names) == ("finished", "wait", "interval", "is_set", "function", "args",
                                                  "kwargs", "set"):
            # The same steps as Timer.run, plus a run event named after the call when it fires.
            def run(timer):
                timer.finished.wait(timer.interval)
                if not timer.finished.is_set():
                    engine.announce_call(timer.function, timer.args, timer.kwargs)
                    timer.function(*timer.args, **timer.kwargs)
                timer.finished.set()

            run.__doc__, run.__wrapped__ = Timer.run.__doc__, Timer.run  # type: ignore[attr-defined]
            Timer.run = run
            self._labels[id(run.__code__)] = (_TIMER, run.__code__)

    def _patch_starters(self) -> None:
        """_thread.start_new_thread (and its alias start_new) and 3.13's _thread.start_joinable_thread: a
        thread the program starts through them (CPython's test_thread, gevent's ThreadPool workers) gets a
        lane as a threading.Thread does. threading itself keeps the real ones (it bound them when
        imported): a threading.Thread is not given a second lane."""
        self._hook_args = _unraisable_args_type()
        real_new = _thread.start_new_thread
        traced_new = _disguise(self._traced_starter(real_new), real_new)
        _thread.start_new_thread = traced_new
        if getattr(_thread, "start_new", None) is real_new:
            _thread.start_new = _disguise(self._traced_starter(real_new), real_new)
        real_joinable = getattr(_thread, "start_joinable_thread", None)
        if real_joinable is not None:
            _thread.start_joinable_thread = _disguise(
                self._traced_starter(real_joinable), real_joinable)

    def _traced_starter(self, real):
        engine, rec = self, self.rec

        def start(*args, **kwargs):
            if not args or not callable(args[0]):
                return real(*args, **kwargs)  # python's own error (what it says differs by version)
            function = args[0]
            try:
                info = (rec.current_lane(), rec.now(), engine.where.caller(2))
            except Exception:  # noqa: BLE001
                engine.errors += 1
                return real(*args, **kwargs)

            def bootstrap(*a, **kw):
                ident = _get_ident()
                lane = engine.open_raw_thread(function, info, ident)
                raised = None
                try:
                    function(*a, **kw)
                except SystemExit:
                    pass  # as python: a thread's SystemExit ends it quietly
                except BaseException as exc:  # noqa: BLE001 - reported as python reports it, below
                    raised = type(exc).__name__
                    engine.unraisable(exc, function)
                finally:
                    if lane is not None:
                        engine.close_raw_thread(lane, ident, raised)

            return real(bootstrap, *args[1:], **kwargs)

        start.__doc__, start.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
        return start

    def unraisable(self, exc: BaseException, function) -> None:
        """An exception escaped a thread started through _thread: reported through sys.unraisablehook as
        python does (`Exception ignored in thread started by`, the function, the traceback from its frame)."""
        tb = exc.__traceback__
        exc = exc.with_traceback(tb.tb_next if tb is not None else None)
        try:
            lane = self.rec.current_lane()
            self.rec.record(lane, ERROR, type(exc).__name__, self.where.of_traceback(exc.__traceback__), None,
                            f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001
            self.errors += 1
        Args = self._hook_args
        if sys.version_info >= (3, 13):
            msg, obj = f"Exception ignored in thread started by {function!r}", None
        else:
            msg, obj = "Exception ignored in thread started by", function
        hook = getattr(sys, "unraisablehook", None)
        if Args is None or hook is None:
            return
        try:
            hook(Args((type(exc), exc, exc.__traceback__, msg, obj)))
        except BaseException:  # noqa: BLE001 - python ignores a failing hook here too (it reports it)
            pass
        finally:
            del exc

    def patch_pending(self) -> None:
        """Patch the library modules the program has imported since (a dict lookup per thread start until done)."""
        for name in list(self._pending):
            module = sys.modules.get(name)
            if module is not None:
                patch = self._pending.pop(name, None)
                if patch is not None:
                    try:
                        patch(module)
                    except Exception:  # noqa: BLE001
                        self.errors += 1

    def _patch_thread_pool(self, module) -> None:
        engine, rec = self, self.rec
        WorkItem = module._WorkItem
        orig = WorkItem.run
        self._worker_code = module._worker.__code__
        self._work_item_type = WorkItem

        current_lane, call_sites = rec.current_lane, self._call_sites

        def run(item):
            # Once per task: the call's name is formatted here, inline (see describe_call).
            try:
                fn, args, kwargs = item.fn, item.args, item.kwargs
                if kwargs or fn.__class__ is not _FunctionType:
                    reason, at = engine.describe_call(fn, args, kwargs)
                else:
                    reason = f"{getattr(fn, '__name__', 'call')}({', '.join([repr(a) for a in args])})"
                    if len(reason) > _CALL_MAX:
                        reason = engine.describe_call(fn, args, kwargs)[0]
                    code = getattr(fn, "__code__", None)
                    site = call_sites.get(id(code))
                    at = site[0] if site is not None else engine.describe_call(fn, args, kwargs)[1]
                lane = current_lane()
                cause = item.__dict__.pop("_concurview_cause", None)
                rec.record(lane, RUN, reason, at, cause)
            except Exception:  # noqa: BLE001
                engine.errors += 1
            return orig(item)

        run.__doc__, run.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        WorkItem.run = self._hook("run", orig, run)

    def _patch_connection(self, module) -> None:
        """`wait` (and the modules that took it by name: multiprocessing.pool does, as it is
        imported) and the connections' receiving calls: each a wait when it would block."""
        engine, covered = self, self.covered
        orig = module.wait

        def wait(object_list, timeout=None):
            if covered.depth or (timeout is not None and timeout <= 0):
                return orig(object_list, timeout)
            return engine.waited(sys._getframe(1), f"connection.wait ({len(object_list)} objects)", timeout,
                                 orig, object_list, timeout)

        wait.__doc__, wait.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        module.wait = wait
        for name, mod in list(sys.modules.items()):
            if name.startswith(("multiprocessing.", "concurrent.futures.")) and getattr(mod, "wait", None) is orig:
                mod.wait = wait
        base = getattr(module, "_ConnectionBase", None)
        if base is not None:
            for name in ("recv", "recv_bytes", "recv_bytes_into"):
                setattr(base, name, self._receiving(getattr(base, name), "Connection." + name))

    def _patch_semlock(self, module) -> None:
        """multiprocessing's Lock, RLock, Semaphore (and the Condition, Event and Queue locks built
        on them) block in sem_wait(): an acquire that would block is a wait, as a threading lock's."""
        engine, covered, getframe = self, self.covered, sys._getframe
        SemLock = module.SemLock
        orig_make = SemLock._make_methods

        def traced_acquire(real, default: str):
            def acquire(block=True, timeout=None):
                if not block or covered.depth or (timeout is not None and timeout <= 0):
                    return real(block, timeout)
                if real(False):  # uncontended: one call, nothing recorded
                    return True
                return engine.waited(getframe(1), default, timeout, real, block, timeout)

            acquire.__doc__, acquire.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
            return acquire

        def _make_methods(lock):
            orig_make(lock)
            lock.acquire = traced_acquire(lock.acquire, f"multiprocessing {type(lock).__name__}.acquire")

        def __enter__(lock):
            return lock.acquire()  # the C __enter__ would skip the instance's acquire

        _make_methods.__wrapped__ = orig_make  # type: ignore[attr-defined]
        SemLock._make_methods = _make_methods
        SemLock.__enter__ = __enter__

    def _receiving(self, orig, default: str):
        """A connection's recv*(): when nothing is there to read yet (a zero-timeout poll, as
        `Connection.poll()` asks), a wait named after what the program called, then a run."""
        engine, covered = self, self.covered

        def receive(conn, *args, **kwargs):
            try:
                ready = covered.depth or conn._poll(0)
            except Exception:  # noqa: BLE001 - closed, not readable...: the real call says so
                ready = True
            if ready:
                return orig(conn, *args, **kwargs)
            return engine.waited(sys._getframe(1), default, None, orig, conn, *args, **kwargs)

        receive.__name__ = receive.__qualname__ = orig.__name__
        receive.__doc__, receive.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        return receive

    # -- lanes ----------------------------------------------------------------------------------

    def open_thread(self, thread, info, ident: int) -> int | None:
        """The new thread's first moments: its lane (opened when start() was called), bound to it."""
        try:
            rec = self.rec
            parent, t, at = info
            kind = "timer" if isinstance(thread, threading.Timer) else "thread"
            lane = rec.new_lane(kind, thread.name, parent=parent, tid=ident, cause=parent, where=at, t=t)
            thread._concurview_lane = lane
            rec.bind_thread(lane, ident)
            rec.record(lane, RUN, "thread starts", self._target_where(thread), parent)
            gilview.register(lane, ident)
            return lane
        except Exception:  # noqa: BLE001
            self.errors += 1
            return None

    def open_raw_thread(self, function, info, ident: int) -> int | None:
        """A thread started through _thread directly: its lane, named after its function, bound to it. Nothing
        here asks threading about the thread (current_thread() would make it a _DummyThread)."""
        try:
            rec = self.rec
            parent, t, at = info
            name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None) \
                or type(function).__name__
            lane = rec.new_lane("thread", name, parent=parent, tid=ident, cause=parent, where=at, t=t)
            rec.bind_thread(lane, ident)
            rec.record(lane, RUN, "thread starts", self._def_site(getattr(function, "__code__", None)), parent)
            gilview.register(lane, ident)
        except Exception:  # noqa: BLE001
            self.errors += 1
            return None
        for enter, _ in STARTER_HOOKS:
            try:
                enter()
            except Exception:  # noqa: BLE001
                self.errors += 1
        return lane

    def close_raw_thread(self, lane: int, ident: int, raised: str | None) -> None:
        for _, leave in STARTER_HOOKS:
            try:
                leave()
            except Exception:  # noqa: BLE001
                self.errors += 1
        try:
            rec = self.rec
            gilview.unregister()
            rec.record(lane, CLOSE, "returned" if raised is None else "raised " + raised)
            rec.unbind_thread(lane, ident)
        except Exception:  # noqa: BLE001
            self.errors += 1

    def close_thread(self, thread, lane: int, ident: int) -> None:
        try:
            rec = self.rec
            gilview.unregister()
            raised = thread.__dict__.get("_concurview_raised")
            rec.record(lane, CLOSE, "returned" if raised is None else "raised " + raised)
            rec.unbind_thread(lane, ident)
        except Exception:  # noqa: BLE001
            self.errors += 1

    def _target_where(self, thread) -> str | None:
        target = getattr(thread, "_target", None) or getattr(thread, "function", None)
        code = getattr(target, "__code__", None)
        if code is None:
            run = getattr(type(thread).run, "__code__", None)
            code = run if run is not None and self.where.is_user(run) else None
        return self._def_site(code)

    def _def_site(self, code) -> str | None:
        if code is None:
            return None
        entry = self._call_sites.get(id(code))
        if entry is None:
            at = self.where.of_code(code) if self.where.is_user(code) else None
            entry = self._call_sites[id(code)] = (at, code)
        return entry[0]

    # -- runs named after a call ----------------------------------------------------------------

    def describe_call(self, fn, args, kwargs) -> tuple[str, str | None]:
        """(`task('屌丝4')`, where fn is defined if it is the program's)."""
        if type(fn) is functools.partial:
            inner = fn.func
            if getattr(inner, "__name__", None) == "_process_chunk" and fn.args and args:
                # ProcessPoolExecutor.map sends chunks: partial(_process_chunk, task)((args1, args2, ...))
                chunk = args[0]
                try:
                    n = len(chunk)
                    first = tuple(chunk[0]) if n else ()
                except Exception:  # noqa: BLE001
                    n, first = 0, ()
                text, at = self.describe_call(fn.args[0], first, {})
                return (text if n <= 1 else f"{text} +{n - 1} more"), at
            text, at = self.describe_call(inner, fn.args + tuple(args), {**fn.keywords, **kwargs})
            return text, at
        name = getattr(fn, "__name__", None) or type(fn).__name__
        parts = [repr(a) for a in args]
        if kwargs:
            parts += [f"{k}={v!r}" for k, v in kwargs.items()]
        for i, p in enumerate(parts):
            if len(p) > _REPR_MAX:
                parts[i] = _cut(p, _REPR_MAX)
        text = f"{name}({', '.join(parts)})"
        if len(text) > _CALL_MAX:
            text = _cut(text, _CALL_MAX)
        code = getattr(fn, "__code__", None)
        entry = self._call_sites.get(id(code))
        if entry is None:
            entry = self._call_sites[id(code)] = (self._def_site(code), code)
        return text, entry[0]

    def announce_call(self, fn, args, kwargs, cause: int | None = None) -> None:
        """The current lane starts running a call it was handed (a pool's work item, a Timer's function)."""
        try:
            reason, at = self.describe_call(fn, args, kwargs)
        except Exception:  # noqa: BLE001 - a repr() that raises
            reason, at = "call", None
        rec = self.rec
        lane = rec.current_lane()
        rec.record(lane, RUN, reason, at, cause)

    def site(self, frame) -> tuple[str | None, object]:
        """(`file:line` of `frame` if it is the program's code, else None), cached by code and offset."""
        code = frame.f_code
        entry = self._sites[(id(code) << 32) + frame.f_lasti] = (
            self.where.of_frame(frame) if self.where.is_user(code) else None, code)
        return entry

    # -- blocking --------------------------------------------------------------------------------

    def stop_kind(self, lane: int) -> int:
        """WAIT, or BLOCK when `lane` is not the calling thread's own lane.

        Only the engines of cooperative lanes (asyncio tasks, greenlets, generators) make another
        lane current on a thread, for as long as it runs there. Such a lane waiting in a blocking
        call (this engine's: a sleep, a lock, a queue, a socket) is not handing the thread to its
        loop or hub: it holds the whole thread, and every lane that takes turns with it waits too.
        """
        rec = self.rec
        lanes = rec._thread_lanes
        own = lanes.get(_get_ident(), rec.main_lane) if lanes else rec.main_lane
        return WAIT if lane == own else BLOCK

    def label_of(self, code) -> str | None:
        """What why() makes of a frame running `code`: "" the program's own, a label from LABELS, or None."""
        entry = self._labels.get(id(code))
        if entry is None:
            user = self.where.is_user(code)
            name = None if user else LABELS.get((os.path.basename(code.co_filename), code.co_qualname))
            entry = self._labels[id(code)] = ("" if user else name, code)
        return entry[0]

    def why(self, frame) -> tuple[str | None, object, str | None]:
        """(the outermost library call on the way up that names this wait, its frame, the program's line)."""
        label = label_frame = None
        labels, is_user = self._labels, self.where.is_user
        for _ in range(_MAX_DEPTH):
            if frame is None:
                break
            code = frame.f_code
            entry = labels.get(id(code))
            if entry is None:
                user = is_user(code)
                name = None if user else LABELS.get((os.path.basename(code.co_filename), code.co_qualname))
                entry = labels[id(code)] = ("" if user else name, code)
            found = entry[0]
            if found == "":  # the program's own code: the wait happens at this line
                site = self._sites.get((id(code) << 32) + frame.f_lasti)
                if site is None:
                    site = self.site(frame)
                return label, label_frame, site[0]
            if found is not None:
                label, label_frame = found, frame
            frame = frame.f_back
        return label, label_frame, None

    def wait_reason(self, frame, default: str, timeout) -> tuple[str, str | None]:
        """(why a wait that starts at `frame` waits, the program's line): `Event.wait`, `Future.result`, ..."""
        try:
            label, label_frame, at = self.why(frame)
            if label == _TIMER:
                return f"Timer: wait {_seconds(timeout)}, then call {label_frame.f_locals['timer'].function.__name__}", at
            reason = label or default
            if timeout is not None and timeout >= 0:
                reason += f" (timeout {_seconds(timeout)})"
            return reason, at
        except Exception:  # noqa: BLE001 - a hook never raises into the program
            self.errors += 1
            return default, None

    def waited(self, frame, default: str, timeout, call, /, *args, **kwargs):
        """`call(*args, **kwargs)`, a call that will block, as a wait of the current lane named by
        wait_reason() (`frame` is the caller's), then a run: `timed out` when a timeout was given and
        it came back empty-handed. Recording never raises into the program; the call's own errors do."""
        rec = self.rec
        try:
            lane = rec.current_lane()
            reason, at = self.wait_reason(frame, default, timeout)
            rec.record(lane, self.stop_kind(lane), reason, at)
        except Exception:  # noqa: BLE001
            self.errors += 1
            return call(*args, **kwargs)
        result = None
        try:
            result = call(*args, **kwargs)
            return result
        finally:
            rec.record(lane, RUN, None if result or timeout is None else "timed out", at)

    def block(self, lock, acquire, args: tuple, timeout, default: str) -> bool:
        """A lock acquire that would block: wait (named after what the program called), then run."""
        rec = self.rec
        lane = rec.current_lane()
        reason, at = self.wait_reason(sys._getframe(2), default, None if timeout < 0 else timeout)
        waiters = lock._waiters
        if waiters is None:
            waiters = lock._waiters = []
        waiters.append(lane)
        rec.record(lane, self.stop_kind(lane), reason, at)
        ok = False
        try:
            ok = acquire(*args)
            return ok
        finally:
            try:
                waiters.remove(lane)
            except ValueError:
                pass
            waker, lock._waker = lock._waker, None
            rec.record(lane, RUN, None if ok else "timed out", at, waker if ok else None)

    def wake(self, obj) -> None:
        """A release (or put) with someone blocked on it: the first of them is ready, caused by us."""
        try:
            lane = obj._waiters[0]
        except (IndexError, TypeError):
            return
        rec = self.rec
        me = rec.current_lane()
        obj._waker = me
        rec.record(lane, READY, None, None, me)

    def queue_wait(self, q: TracedSimpleQueue, timeout) -> object:
        """SimpleQueue.get on an empty queue: a pool worker waits for work; anyone else waits for an item."""
        rec = self.rec
        lane = rec.current_lane()
        caller = sys._getframe(2)
        worker = caller is not None and caller.f_code is self._worker_code
        try:
            if worker:
                reason, at = "waiting for work", None
            else:
                label, _, at = self.why(caller)
                reason = label or "SimpleQueue.get"
                if timeout is not None:
                    reason += f" (timeout {_seconds(timeout)})"
        except Exception:  # noqa: BLE001
            self.errors += 1
            reason, at = "SimpleQueue.get", None
        waiters = q._waiters
        if waiters is None:
            waiters = q._waiters = []
        waiters.append(lane)
        rec.record(lane, self.stop_kind(lane), reason, at)
        got = False
        item = None
        try:
            item = _sq_get(q, True, timeout)
            got = True
            return item
        finally:
            try:
                waiters.remove(lane)
            except ValueError:
                pass
            waker, q._waker = q._waker, None
            if got and worker and item is not None and type(item) is self._work_item_type:
                item._concurview_cause = waker  # its run (named after the call) is the next event
            elif got and worker:
                rec.record(lane, RUN, "no more work: shutting down", at, waker)
            else:
                rec.record(lane, RUN, None if got else "timed out", at, waker if got else None)


def install(rec: Recorder, where: Where) -> ThreadsEngine | None:
    engine = ThreadsEngine(rec, where)
    return engine if engine.install() else None
