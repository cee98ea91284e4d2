"""greenlet engine: greenlet.settrace sees every switch; the origin waits (and why), the target runs (gevent's hub included)."""

from __future__ import annotations

import linecache
import os
import sys
import weakref
from collections import Counter

from . import speedups
from ..trace.events import CLOSE, RUN, WAIT
from .recorder import BATCH_EVENTS, NO_SIGNALS_IN, Recorder, _get_ident, _monotonic_ns, postpone
from .where import Where

# What the engine keeps on each greenlet, as one attribute (id() is reused, an attribute is not):
# a small list, so the hot path reads and writes items instead of attributes.
ATTR = "_concurview"
# lane, where it resumes, "switch → name", name, is the hub, then the last switch site:
# its code, f_lasti and what _site() made of it, then the user's frame calling a library
# function whose explanation is fixed (gevent.sleep(0)): its code, f_lasti and the `where`
# _user_where() found (the C tracer's second cache; engines/_speedups_greenlet.c reads these slots),
# and a weak reference to the greenlet itself (the C tracer finds the list again from the greenlet's
# address and checks it is still that greenlet's).
(LANE, RESUME, TO_ME, NAME, HUB, SITE_CODE, SITE_LASTI, SITE, CALLER_CODE, CALLER_LASTI, CALLER_WHERE,
 SELF) = range(12)
# The tracer: "c" (engines/_speedups_greenlet.c, the default) or "python" (_make_tracer, the
# reference the C one is tested against).
ENV_TRACER = "CONCURVIEW_GREENLET_TRACER"

_GEVENT_DIR = os.sep + "gevent" + os.sep
_SOCKET_FILES = ("_socket3.py", "_socketcommon.py", "_ssl3.py", "ssl.py", "socket.py")
_CALLSITE_MAX = 60
# Library wrappers a greenlet runs in place of the program's function, and which of their arguments
# that function is: the lane is named after it (`handle`, `handle-2`: the program's connection
# handler, not gevent's `_handle_and_close_when_done`). Named here, at the lane's creation, because
# only here are the functions at hand; every view, file and export then shows the same name.
_WRAPPERS = {"_handle_and_close_when_done": 0}  # gevent.baseserver: handle(*args), then close(*args)
IDLE_NS = 100_000  # a hub poll at least this long is drawn as the hub waiting


def _gevent_file(code) -> str | None:
    """The file name of a gevent module's code (`hub.py`), or None for anything else."""
    fn = code.co_filename
    i = fn.rfind(_GEVENT_DIR)
    return None if i < 0 else fn[i + len(_GEVENT_DIR):]


def _info(g, lane, resume, to_me, name, hub: bool) -> list:
    """Greenlet g's info list (the slots above), with empty caches."""
    try:
        me = weakref.ref(g)
    except TypeError:  # a greenlet type without weak references: the C tracer looks the list up each time
        me = None
    return [lane, resume, to_me, name, hub, None, -1, None, None, -1, None, me]


def _short(value) -> str:
    """A number as the program wrote it: `1.0` -> `1`, `0.25` -> `0.25`."""
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


class GreenletEngine:
    """Arms greenlet.settrace on the main thread (and on each thread as it starts)."""

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0  # tracer failures swallowed (greenlet would silently drop a raising tracer)
        self.first_error: str | None = None
        self._names: Counter[str] = Counter()
        # (id(code) + f_lasti << 48) -> (handler | None, where, call site text, code).
        # The code object is kept in the entry, so its id cannot be reused while cached.
        self._sites: dict[int, tuple] = {}
        # The tracers armed, by thread: each one goes when its thread ends (see forget_thread).
        self._tracers: dict[int, object] = {}
        self._watchers: list = []
        self._user: dict[int, tuple] = {}  # id(code) -> (code, is the user's)

    # -- arming ----------------------------------------------------------------------

    def install(self, process_wide: bool = True) -> None:
        """Trace this thread; process_wide also arms new threads and stops at interpreter exit
        (False: only this thread, for tests that trace inside their own process)."""
        import greenlet

        self._greenlet = greenlet
        import threading

        main = greenlet.getcurrent()
        if getattr(main, ATTR, None) is None:
            name = threading.main_thread().name if threading.current_thread() is threading.main_thread() else "main"
            setattr(main, ATTR, _info(main, self.rec.current_lane(), None, "switch → " + name, name, False))
        self._main_thread = _get_ident()
        self.arm_thread()
        if process_wide:
            self._hook_creation()  # process-wide by nature: one greenlet type
            self._arm_new_threads()
            self._stop_at_interpreter_exit()

    def _hook_creation(self) -> None:
        """Declare each plain greenlet's lane when it is created (`p = greenlet(play)`), not at its
        first switch: one never switched to still gets its lane, `open` at the program's line.
        Needs the C extension (engines/_speedups_greenlet.c hook_greenlet_init); without it, lanes
        are declared at the first switch as before."""
        native = speedups.native
        hook = getattr(native, "hook_greenlet_init", None) if native is not None else None
        if hook is None:
            return
        self._skip_types: dict[type, bool] = {}
        try:
            self.creation_hooked = bool(hook(self._greenlet.greenlet, self._created))
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def unhook_creation(self) -> None:
        """Stop declaring greenlets at creation (tests that trace inside their own process)."""
        native = speedups.native
        if getattr(self, "creation_hooked", False) and native is not None:
            native.hook_greenlet_init(self._greenlet.greenlet, None)
            self.creation_hooked = False

    def _created(self, g) -> None:
        """greenlet g was just made: its lane, named after its function, created where the program
        called greenlet(...). gevent's greenlets and hub are left to the tracer (their function is
        set after greenlet.__init__; gevent records where they were spawned)."""
        try:
            t = type(g)
            skip = self._skip_types.get(t)
            if skip is None:
                skip = self._skip_types[t] = any(c.__module__.startswith("gevent") for c in t.__mro__)
            if skip or getattr(g, ATTR, None) is not None:
                return
            try:
                run = g.run
            except AttributeError:
                return  # no function yet: named at its first switch
            base = getattr(run, "__name__", None) or type(run).__name__
            if base in ("run", "_run"):
                base = t.__name__
            code = getattr(run, "__code__", None)
            start = self.where.of_code(code) if code is not None else None
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is g:
                frame = frame.f_back  # a subclass's __init__: where the program made the greenlet
            frame = self.where.user_frame(frame)
            made = self.where.of_frame(frame) if frame is not None else None
            info = _info(g, None, start, None, None, False)
            self._declare(g, info, "greenlet", base, start, self._greenlet.getcurrent(), where=made or start)
            setattr(g, ATTR, info)
        except BaseException as exc:  # noqa: BLE001 - never fail the program's greenlet(...) call
            self._failed(exc)

    def stop(self) -> None:
        """Stop tracing the calling thread (its previous tracer, if any, is put back)."""
        greenlet = self._greenlet
        tracer = greenlet.gettrace()
        me = _get_ident()
        if tracer is not None and self._tracers.get(me) is tracer:
            greenlet.settrace(_previous(tracer))
        for prepare, check, ident in self._watchers:
            if ident == me:
                prepare.stop()
                check.stop()

    def forget_thread(self) -> None:
        """The calling thread ends: its tracer (48 KB of caches once it switched a greenlet) and its hub's
        watchers are let go, not kept for every thread the program ever started."""
        self.stop()
        me = _get_ident()
        self._tracers.pop(me, None)
        self._watchers = [w for w in self._watchers if w[2] != me]

    def _stop_at_interpreter_exit(self) -> None:
        # gevent's patched threading._shutdown still switches after the program has
        # ended (and its main lane is closed): stop tracing when the interpreter,
        # not the program or concurview's child, calls it.
        import threading

        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is None or getattr(shutdown, "_concurview_greenlet", False):
            return
        engine = self

        def _shutdown(*args, **kwargs):
            try:
                sys._getframe(1)
            except ValueError:  # no Python caller: Py_Finalize
                try:
                    if _get_ident() == engine._main_thread:
                        engine.stop()
                except BaseException:  # noqa: BLE001
                    engine.errors += 1
            return shutdown(*args, **kwargs)

        _shutdown._concurview_greenlet = True  # type: ignore[attr-defined]
        threading._shutdown = _shutdown  # type: ignore[attr-defined]

    def arm_thread(self) -> None:
        """Install the tracer on the calling OS thread (once; chained to the thread's previous tracer)."""
        greenlet = self._greenlet
        me = _get_ident()
        current = greenlet.gettrace()
        if current is not None and self._tracers.get(me) is current:
            return
        python = os.environ.get(ENV_TRACER) == "python" or speedups.native is None
        tracer = self._make_tracer() if python else self._make_c_tracer()
        self._tracers[me] = tracer
        prev = greenlet.settrace(tracer)
        if python:
            tracer.__defaults__ = tracer.__defaults__[:-1] + (prev,)
        else:
            tracer.previous = prev

    def _arm_new_threads(self) -> None:
        import threading

        inner = getattr(threading.Thread, "_bootstrap_inner", None)
        if inner is None or getattr(inner, "_concurview_greenlet", False):
            return
        engine = self

        def _bootstrap_inner(thread, *args, **kwargs):
            try:
                engine.arm_thread()
            except BaseException:  # noqa: BLE001 - never stop a thread from starting
                engine.errors += 1
            try:
                return inner(thread, *args, **kwargs)
            finally:
                try:
                    engine.forget_thread()
                except BaseException:  # noqa: BLE001
                    engine.errors += 1

        _bootstrap_inner._concurview_greenlet = True  # type: ignore[attr-defined]
        threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[method-assign]
        # Threads started through _thread directly (the threads engine gives them lanes): the same.
        from . import threads

        threads.STARTER_HOOKS.append((self.arm_thread, self.forget_thread))

    # -- the tracer --------------------------------------------------------------------

    def _make_c_tracer(self):
        """The tracer in C: the common switch there, everything else through the methods below."""
        from ._speedups import GreenletTracer

        return GreenletTracer(self.rec._events, adopt=self._adopt, site=self._site,
                              caller_where=self._caller_where, name_on_call=self._name_on_call,
                              failed=self._failed)

    def _make_tracer(self):
        """The tracer in Python: what the C one does, kept as its reference (ENV_TRACER=python)."""
        rec = self.rec
        events = rec._events
        adopt = self._adopt
        site = self._site
        slow = self._slow
        failed = self._failed
        name_on_call = self._name_on_call
        limit = BATCH_EVENTS - 2

        # Everything the hot path touches is bound as a default argument (a local): greenlet
        # calls tracer(event, args) and the rest keep their defaults.
        def tracer(event, args, _t0=rec.t0, _mono=_monotonic_ns, _extend=events.extend, _events=events,
                   _set_lane=rec.set_lane, _len=len, _switch="switch", _prev=None):
            tl = 0
            try:
                origin, target = args
                try:
                    oi = origin._concurview
                except AttributeError:
                    oi = adopt(origin)
                try:
                    ti = target._concurview
                except AttributeError:
                    ti = adopt(target, origin)
                t = _mono() - _t0
                ol = oi[0]
                tl = ti[0]
                f = origin.gr_frame
                # Tuples may stop after their last non-default field (the wire's arrays do).
                if f is None:
                    # A finished greenlet's last switch is to its parent ("throw": it raised).
                    ev = (t, ol, CLOSE, "returned" if event == _switch else "raised")
                else:
                    # One-entry cache per greenlet: a loop switches from the same place every time.
                    code = f.f_code
                    lasti = f.f_lasti
                    if code is oi[5] and lasti == oi[6]:
                        ent = oi[7]
                    else:
                        ent = oi[7] = site(f)
                        oi[5] = code
                        oi[6] = lasti
                    if ent[0] is None:  # the user's own line called switch() (or a compiled gevent wait)
                        w = oi[1] = ent[1]
                        ev = (t, ol, WAIT, ent[2] if ti[4] else ti[2], w)
                    else:
                        reason, w = ent[0](f, ti)
                        oi[1] = w
                        ev = (t, ol, WAIT, reason, w)
                if tl is None:
                    # A plain greenlet starting: its lane (and this wait, which names it) is
                    # recorded when its function is called.
                    pass
                elif _len(_events) < limit:
                    _extend((ev, (t, tl, RUN, None if event == _switch else event, ti[1], ol)))
                    _set_lane(tl)
                else:
                    slow(ev, (t, tl, RUN, None if event == _switch else event, ti[1], ol))
                    _set_lane(tl)
            except BaseException as exc:  # noqa: BLE001 - a raising tracer is dropped by greenlet
                failed(exc)
            if _prev is not None:
                _prev(event, args)
            if tl is None:
                try:
                    name_on_call(target, ti, ev)
                except BaseException as exc:  # noqa: BLE001
                    failed(exc)

        NO_SIGNALS_IN.add(tracer.__code__)
        return tracer

    def _slow(self, ev: tuple, run: tuple) -> None:
        # Near a batch boundary: the recorder's own path flushes, or drops and counts.
        # record() takes the fields after t (the tuples may be short: defaults fill the rest).
        rec = self.rec
        rec.record(*ev[1:])
        if run is not None:
            rec.record(*run[1:])

    def _failed(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            # Not our failure: a signal handler's KeyboardInterrupt (or SystemExit) raised while the tracer ran.
            # The program gets it as soon as the tracer has returned; if it cannot be re-raised then, it goes
            # out of the tracer now (greenlet drops the tracer, the program gets it at its switch).
            if postpone(exc):
                return
            raise exc
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"
            self.rec.engine_failed("greenlet tracer", exc, first=True)

    # -- lanes -------------------------------------------------------------------------

    def _adopt(self, g, origin=None) -> list:
        """First sight of a greenlet: give it a lane (and an `open` event) and tag it."""
        rec = self.rec
        if g.parent is None:
            # The main greenlet of a thread: the thread's own lane (nothing ran on it yet here).
            info = _info(g, rec.current_lane(), None, "switch → main", "main", False)
            setattr(g, ATTR, info)
            return info
        hub = any(c.__name__ == "Hub" and c.__module__.startswith("gevent") for c in type(g).__mro__)
        run = None
        if hub:
            kind, base = "hub", "Hub"
        else:
            kind = "greenlet"
            run = getattr(g, "_run", None)  # gevent.Greenlet keeps its function here until it ends
            if run is None or getattr(run, "__name__", None) == "_run":
                run = getattr(g, "run", None)
            if run is None and g.gr_frame is None and not g.dead:
                # A plain greenlet forgets `run` just before this first switch in: the lane
                # is declared when that function is called (see _name_on_call).
                info = _info(g, None, None, None, None, False)
                setattr(g, ATTR, info)
                return info
            base = getattr(run, "__name__", None) or type(run).__name__
            if base in ("run", "_run", "NoneType"):
                base = type(g).__name__
            at = _WRAPPERS.get(base)
            args = getattr(g, "args", None) if at is not None else None
            if isinstance(args, tuple) and len(args) > at and getattr(args[at], "__code__", None) is not None:
                run = args[at]  # the program's own function: its name, and its first line as the start
                base = run.__name__
        code = getattr(run, "__code__", None)
        start = self.where.of_code(code) if code is not None else None
        info = _info(g, None, start, None, None, hub)
        lane = self._declare(g, info, kind, base, start, origin)
        setattr(g, ATTR, info)
        if hub:
            self._watch_loop(g, lane)
            # A program that runs monkey.patch_all() itself replaced threading._shutdown
            # after install(): wrap the new one (the hub exists by then).
            self._stop_at_interpreter_exit()
        return info

    def _declare(self, g, info: list, kind: str, base: str, start: str | None, origin=None,
                 where: str | None = None) -> int:
        """Name the lane (`eat`, `eat-2`, ...), find who created it, declare it: its `open` event."""
        n = self._names[base] = self._names[base] + 1
        name = base if n == 1 else f"{base}-{n}"
        creator = None
        spawner = getattr(g, "spawning_greenlet", None)  # gevent: a weakref to who spawned it
        if spawner is not None:
            spawner = spawner()
            creator = getattr(spawner, ATTR, None)
        if creator is None:
            creator = getattr(g.parent, ATTR, None)
        if creator is None and origin is not None:
            creator = getattr(origin, ATTR, None)
        parent = None if creator is None else creator[LANE]
        where = where or self._spawn_where(g) or start
        lane = self.rec.new_lane(kind, name, parent=parent, tid=_get_ident(), cause=parent, where=where)
        info[LANE], info[TO_ME], info[NAME] = lane, "switch → " + name, name
        return lane

    def _name_on_call(self, g, info: list, wait: tuple) -> None:
        """A one-shot profile hook: the first Python call in the new greenlet is its run function.

        Set last thing in the tracer, so the next 'call' on this thread is that
        function (or, for a callable with no Python code, the next switch's tracer).
        """
        previous = sys.getprofile()
        engine = self

        def hook(frame, event, arg):
            if event != "call" and event != "c_call":
                return
            sys.setprofile(previous)
            try:
                if info[LANE] is not None:
                    return
                code = frame.f_code if event == "call" else None
                if code is not None and code.co_filename != __file__:
                    base, start = code.co_name, engine.where.of_code(code)
                else:
                    base, start = getattr(arg, "__name__", None) or type(g).__name__, None
                info[RESUME] = start
                lane = engine._declare(g, info, "greenlet", base, start)
                cause = wait[1]
                ev = wait
                if ev[2] == WAIT and ev[3] is None:
                    ev = ev[:3] + (info[TO_ME],) + ev[4:]
                rec = engine.rec
                events = rec._events
                if len(events) < BATCH_EVENTS - 2:
                    events.append(ev)  # at the time of the switch, not now
                else:
                    rec.record(*ev[1:])
                rec.record(lane, RUN, None, start, cause)
                rec.set_lane(lane)
            except BaseException as exc:  # noqa: BLE001
                engine._failed(exc)

        sys.setprofile(hook)

    def _watch_loop(self, hub, lane: int) -> None:
        """Show the hub waiting while its event loop blocks in epoll (a switch cannot show it).

        A prepare watcher of the lowest priority runs after gevent's own callbacks,
        just before the loop polls; a check watcher of the highest priority runs
        first after the poll. A poll that lasted at least IDLE_NS becomes a wait.
        """
        loop = getattr(hub, "loop", None)
        if loop is None:
            return
        try:
            backend = str(getattr(loop, "backend", "poll"))
            rec = self.rec
            events = rec._events
            t0 = rec.t0
            state = [0]

            def before(_mono=_monotonic_ns):
                state[0] = _mono()

            def after(_mono=_monotonic_ns):
                start, state[0] = state[0], 0
                end = _mono()
                if start and end - start >= IDLE_NS:
                    events.append((start - t0, lane, WAIT, f"event loop idle: {backend}", None, None, None))
                    events.append((end - t0, lane, RUN, f"{backend} returned", None, None, None))
                    if len(events) >= BATCH_EVENTS:
                        rec.flush(block=False)

            prepare = loop.prepare(ref=False, priority=getattr(loop, "MINPRI", None))
            check = loop.check(ref=False, priority=getattr(loop, "MAXPRI", None))
            prepare.start(before)
            check.start(after)
            self._watchers.append((prepare, check, _get_ident()))
        except Exception as exc:  # noqa: BLE001 - another loop implementation: no idle waits shown
            self._failed(exc)

    def _spawn_where(self, g) -> str | None:
        frame = getattr(g, "spawning_stack", None)  # gevent keeps a light copy of the spawning stack
        is_user = self.where.is_user
        while frame is not None:
            code = getattr(frame, "f_code", None)
            if code is not None and is_user(code):
                return self.where.at(code, frame.f_lineno)
            frame = getattr(frame, "f_back", None)
        return None

    # -- why a greenlet stopped ----------------------------------------------------------

    def _site(self, f) -> tuple:
        """What a switch made at frame f means: (handler or None, where, call site text, code, fixed reason).

        A fixed reason (gevent.sleep(0)) says the explanation reads no local value: it is
        (fixed reason, _user_where(f)), which the C tracer answers from its caches.
        """
        code = f.f_code
        key = id(code) + (f.f_lasti << 48)
        ent = self._sites.get(key)
        if ent is not None:
            return ent
        if self._is_user(code):
            line = f.f_lineno
            ent = (None, self.where.at(code, line), self._callsite(code, line), code, None)
        else:
            handler = self._handler(code)
            if handler == self._why_hub:
                # The hub hands the thread to a greenlet: "switch → eat", nowhere in the user's code.
                ent = (None, None, None, code, None)
            elif handler == self._why_sleep and "waiter.get()" in linecache.getline(code.co_filename, f.f_lineno):
                ent = (self._why_sleep0, None, None, code, "sleep(0)")  # gevent.sleep(0): no need to read locals
            else:
                ent = (handler, None, None, code, None)
        self._sites[key] = ent
        return ent

    @staticmethod
    def _callsite(code, line: int) -> str:
        """The source of the line that gave control away (`e.join()`): what a compiled gevent wait was."""
        text = linecache.getline(code.co_filename, line).strip()
        if " #" in text:
            text = text[:text.index(" #")].rstrip()
        if not text:
            return "switch → hub"
        return text if len(text) <= _CALLSITE_MAX else text[:_CALLSITE_MAX - 1] + "…"

    def _user_where(self, f) -> str | None:
        """Where the user's code is suspended, above a library frame."""
        f = f.f_back
        if f is not None:
            # Fast path: the direct caller is a user line already seen.
            ent = self._sites.get(id(f.f_code) + (f.f_lasti << 48))
            if ent is not None and ent[0] is None and ent[1] is not None:
                return ent[1]
        while f is not None:
            if self._is_user(f.f_code):
                return self._site(f)[1]
            f = f.f_back
        return None

    def _caller_where(self, f, info: list) -> str | None:
        """_user_where(f) for the C tracer, remembered on the greenlet when f's caller is the user's
        code: then it depends on that frame's code and f_lasti alone, and the next switch from the
        same line is answered in C."""
        w = self._user_where(f)
        back = f.f_back
        if back is not None and self._is_user(back.f_code):
            info[CALLER_CODE], info[CALLER_LASTI], info[CALLER_WHERE] = back.f_code, back.f_lasti, w
        return w

    def _is_user(self, code) -> bool:
        # By id: hashing a code object hashes its bytecode and constants every time.
        v = self._user.get(id(code))
        if v is None or v[0] is not code:
            v = self._user[id(code)] = (code, self.where.is_user(code))
        return v[1]

    def _handler(self, code):
        """How to explain a switch made from this library function (gevent's sleep, socket waits, the hub)."""
        name = code.co_name
        gfile = _gevent_file(code)
        if gfile == "hub.py" and name == "sleep":
            return self._why_sleep
        if gfile == "hub.py" and name == "run":
            return self._why_hub
        if gfile == "timeout.py":
            return self._why_timeout
        if gfile is not None and gfile.rsplit(os.sep, 1)[-1] in _SOCKET_FILES:
            return self._why_socket
        return self._why_library

    def _why_sleep(self, f, ti) -> tuple[str, str | None]:
        seconds = f.f_locals.get("seconds", 0)
        reason = "sleep(0)" if not seconds or seconds <= 0 else f"sleep {_short(seconds)}s"
        return reason, self._user_where(f)

    def _why_sleep0(self, f, ti) -> tuple[str, str | None]:
        return "sleep(0)", self._user_where(f)

    def _why_hub(self, f, ti) -> tuple[str, str | None]:
        return ti[TO_ME], None

    def _why_timeout(self, f, ti) -> tuple[str, str | None]:
        return "Timeout → " + ti[NAME], self._user_where(f)

    def _why_socket(self, f, ti) -> tuple[str, str | None]:
        sock = f.f_locals.get("self")
        try:
            fd = sock.fileno()
        except Exception:  # noqa: BLE001
            fd = None
        what = f.f_code.co_name.lstrip("_")
        return (what if fd is None else f"{what} fd={fd}"), self._user_where(f)

    def _why_library(self, f, ti) -> tuple[str, str | None]:
        # The library function the user's code called: the last library frame below the user's.
        is_user = self._is_user
        api = f
        g = f.f_back
        while g is not None and not is_user(g.f_code):
            api = g
            g = g.f_back
        code = api.f_code
        gfile = _gevent_file(code)
        if gfile == "hub.py" and code.co_name == "sleep":
            return self._why_sleep(api, ti)
        name = getattr(code, "co_qualname", code.co_name)
        return name, self._user_where(api)


def _previous(tracer):
    """The tracer that `tracer` (ours, C or Python) chains to."""
    return tracer.__defaults__[-1] if hasattr(tracer, "__defaults__") else tracer.previous


# The one-shot profile hook _name_on_call sets (a nested function: its code is a constant of the method's).
_NAME_HOOK = next(c for c in GreenletEngine._name_on_call.__code__.co_consts if getattr(c, "co_name", None) == "hook")


def install(rec: Recorder, where: Where) -> GreenletEngine | None:
    engine = GreenletEngine(rec, where)
    # What the tracers call (the C one too): a KeyboardInterrupt is never raised inside them (recorder.postpone).
    NO_SIGNALS_IN.update(f.__code__ for f in (GreenletEngine._adopt, GreenletEngine._site, GreenletEngine._slow,
                                              GreenletEngine._created,
                                              GreenletEngine._caller_where, GreenletEngine._name_on_call,
                                              GreenletEngine._declare, GreenletEngine._failed))
    NO_SIGNALS_IN.add(_NAME_HOOK)
    try:
        engine.install()
    except ImportError:
        return None  # no greenlet here: nothing to trace
    return engine
