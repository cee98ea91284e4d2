"""The child-side recorder: cheap record(), batched msgpack frames to the runner, per-lane stdout/stderr capture."""

from __future__ import annotations

import _socket
import fcntl
import io
import os
import re
import sys
import time
from collections import deque

from .speedups import EventBuffer  # C, or engines/_pybuffer.py
from ..trace.events import ERROR, LOG, MARK, OPEN, WIRE_LANE_SHIFT



from .originals import original as _original


# Captured at import, before any engine patches them (and past gevent's patches):
# the recorder uses real OS threads, locks and sleeps whatever the program does.
_allocate_lock = _original("_thread", "allocate_lock")
_start_new_thread = _original("_thread", "start_new_thread")
_get_ident = _original("_thread", "get_ident")
_sleep = _original("time", "sleep")
_monotonic_ns = time.monotonic_ns
_monotonic = time.monotonic
_getpid = os.getpid
_fstat = os.fstat
_write = os.write
_local = _original("_thread", "_local")


class _Held(_local):
    """Per OS thread: how deep it is in the recorder's writing (a frame being encoded and sent, the write
    lock held), and the program's signal handlers held meanwhile (defer_signals()). Python runs signal
    handlers in the main thread wherever it is: a KeyboardInterrupt raised halfway through a frame would
    cut the stream (the runner then reads a damaged frame) or leave the write lock held."""

    depth = 0
    pending: tuple = ()
    raised: tuple | None = None  # (signum, exception) a program's handler raised last (see postpone())
    redeliver: tuple | None = None  # (signum, exception) to raise once out of a hook (see postpone())


_held = _Held()
# Code of hooks a signal handler's exception must never be raised inside (the greenlet tracer and what it
# calls: greenlet drops a tracer that raises): a handler due there waits until the hook has returned.
NO_SIGNALS_IN: set = set()
_interrupt_main = _original("_thread", "interrupt_main")


def _in_hook(frame) -> bool:
    while frame is not None:
        if frame.f_code in NO_SIGNALS_IN:
            return True
        frame = frame.f_back
    return False


# Signals whose handler is due but waits until the main thread is out of our hooks. They are tripped again
# from the flusher thread (redeliver_deferred), never from the main thread itself: python looks at tripped
# signals right after a built-in call returns, so tripping one inside a hook ran the handler again at once,
# inside the same hook, recursively, until a RecursionError (swallowed by the tracer's guard) lost it --
# the pure-Python tracer, a hook nearly all the time in a greenlet flood, was never interrupted.
_deferred: set = set()


def postpone(exc: BaseException) -> bool:
    """A hook caught `exc`, raised by a program's signal handler (Ctrl+C's KeyboardInterrupt) while the hook ran:
    it is raised again in the program once the hook has returned (the signal tripped again, its handler then
    raising this same exception instead of running twice). False if `exc` did not come from a handler."""
    held = _held
    raised = held.raised
    if raised is None or raised[1] is not exc:
        return False
    held.raised = None
    held.redeliver = raised
    _deferred.add(raised[0])
    return True


def redeliver_deferred() -> None:
    """Trip again the signals whose handler waits (the flusher's job, see _deferred); not one whose handler is no
    longer the program's Python function (it set SIG_IGN or SIG_DFL meanwhile: then nothing is due)."""
    getsignal = _real_getsignal
    for signum in tuple(_deferred):
        try:
            if getsignal is not None and callable(getsignal(signum)):
                _interrupt_main(signum)
                continue
        except (ValueError, RuntimeError, OSError):
            pass
        _deferred.discard(signum)


_real_getsignal = None  # signal.getsignal as python has it (defer_signals replaces the module's)


def _run_handler(handler, signum, frame):
    """The program's handler, or the exception postpone() kept for this signal; inside a hook, nothing yet."""
    held = _held
    if _in_hook(frame):
        _deferred.add(signum)  # tripped again by the flusher until the hook has returned
        return None
    _deferred.discard(signum)
    redeliver = held.redeliver
    if redeliver is not None and redeliver[0] == signum:
        held.redeliver = None
        raise redeliver[1].with_traceback(None)
    try:
        return handler(signum, frame)
    except BaseException as exc:
        held.raised = (signum, exc)
        raise


def _enter() -> _Held:
    held = _held
    held.depth += 1
    return held


def _leave(held: _Held) -> None:
    held.depth -= 1
    if not held.depth and held.pending:
        pending, held.pending = held.pending, ()
        for handler, signum, frame in pending:
            _run_handler(handler, signum, frame)  # the program's, now that the stream is whole (KeyboardInterrupt)


def defer_signals() -> None:
    """The program's Python signal handlers (default_int_handler's KeyboardInterrupt included) run when the
    main thread is out of the recorder's writing, not inside it: each is installed wrapped, and
    signal.signal / signal.getsignal give and take the program's own handlers, as if unwrapped."""
    import functools
    import signal

    global _real_getsignal
    real_signal, real_getsignal = signal.signal, signal.getsignal
    if getattr(real_signal, "_concurview", False):
        return
    _real_getsignal = real_getsignal

    def wrap(handler):
        if not callable(handler):
            return handler  # SIG_DFL, SIG_IGN

        def held_while_writing(signum, frame):
            held = _held
            if held.depth:
                held.pending = held.pending + ((handler, signum, frame),)
                return None
            return _run_handler(handler, signum, frame)

        held_while_writing._concurview_wraps = handler  # type: ignore[attr-defined]
        return held_while_writing

    def unwrap(handler):
        return getattr(handler, "_concurview_wraps", handler)

    @functools.wraps(real_signal)
    def signal_(signalnum, handler, /):
        return unwrap(real_signal(signalnum, wrap(handler)))

    @functools.wraps(real_getsignal)
    def getsignal(signalnum, /):
        return unwrap(real_getsignal(signalnum))

    for sig in signal.valid_signals():
        try:
            handler = real_getsignal(sig)
            if callable(handler):
                real_signal(sig, wrap(handler))
        except (OSError, ValueError, RuntimeError):
            pass
    signal_._concurview = True  # type: ignore[attr-defined]
    signal.signal, signal.getsignal = signal_, getsignal


# -- our threads, as the program does not see them ---------------------------------------------------
# Idents of the Python threads of ours (the flusher): left out of sys._current_frames() and
# sys._current_exceptions(). They are raw _thread threads: threading never knew them.
OUR_IDENTS: set = set()
# Native ids of every thread of ours (the flusher, the GIL sampler), kept after they end (a native id is a
# pid: not reused soon): os.fork's DeprecationWarning on 3.12+ counts the process's OS threads.
OUR_TIDS: set = set()
_get_native_id = _original("_thread", "get_native_id")
_concealed = False


def conceal_threads() -> None:
    """Make the helper threads of ours invisible to the program (issue 19): sys._current_frames and
    sys._current_exceptions leave them out (built-ins of `sys` like python's, from engines/_gilview.c; plain
    functions named like them on the pure path), and os.fork on 3.12+ warns about threads only when the
    program has some, as under python. Once per process (a forked child inherits it)."""
    global _concealed
    if _concealed:
        return
    _concealed = True
    from .speedups import gilview as gv

    real_frames, real_exceptions = sys._current_frames, sys._current_exceptions
    docs = [f"{f.__name__}{f.__text_signature__ or '()'}\n--\n\n{f.__doc__ or ''}"
            for f in (real_frames, real_exceptions)]
    if gv is not None:
        frames, exceptions = gv.conceal(sys, real_frames, real_exceptions, OUR_IDENTS, *docs)
    else:
        frames, exceptions = _without_ours(real_frames), _without_ours(real_exceptions)
    sys._current_frames, sys._current_exceptions = frames, exceptions
    if sys.version_info >= (3, 12) and sys.platform.startswith("linux"):
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _without_ours(real):
    """The pure path's sys._current_frames / _current_exceptions (a Python function: inspect can tell)."""
    def without_ours():
        found = real()
        for ident in tuple(OUR_IDENTS):
            found.pop(ident, None)
        return found

    for attr in ("__name__", "__qualname__", "__doc__"):
        setattr(without_ours, attr, getattr(real, attr))
    without_ours.__module__ = "sys"
    return without_ours


class _ForkWarning:
    """The message of a filter put first in the warnings filters just before a fork that python would warn
    about only because of our threads: it matches that warning (ignore), and takes itself out then."""

    __slots__ = ("entry", "filters")

    def __init__(self) -> None:
        self.entry = ("ignore", self, DeprecationWarning, None, 0)
        self.filters = None

    def match(self, text) -> bool:
        if not isinstance(text, str) or "is multi-threaded, use of " not in text:
            return False
        self.remove()
        return True

    def add(self) -> None:
        self.remove()
        warnings = sys.modules.get("warnings")
        try:
            filters = warnings.filters if warnings is not None else sys.modules["_warnings"].filters
        except (AttributeError, KeyError):
            return
        if isinstance(filters, list):
            filters.insert(0, self.entry)
            self.filters = filters

    def remove(self) -> None:
        filters, self.filters = self.filters, None
        if filters is None:
            return
        for i, item in enumerate(filters):
            if item is self.entry:
                del filters[i]
                break


_fork_warning = _ForkWarning()


def _before_fork() -> None:
    """Python 3.12+ warns at os.fork() when /proc/self/stat counts more than one thread: ours count there.
    When the program's own threads are one (the one forking), that warning is python's to ignore."""
    _fork_warning.remove()  # one a previous fork left (its warning was not looked up: already shown once)
    from .speedups import gilview as gv

    ours_tids = OUR_TIDS | {gv.sampler_tid()} if gv is not None else OUR_TIDS
    if not ours_tids:
        return
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return  # python then counts threading's threads: ours are not among them
    ours = sum(1 for tid in tids if tid.isdigit() and int(tid) in ours_tids)
    if ours and len(tids) - ours <= 1:
        _fork_warning.add()


def _after_fork_in_child() -> None:
    _fork_warning.remove()  # no warning in the child


class Covered(_local):
    """Per OS thread: how many engine wrappers are recording the wait of the call under way (a pool
    worker asking for work, Process.join). The blocking calls below them (a pipe's recv, waitpid)
    record nothing: one wait, the outer wrapper's, named after what the program called."""

    depth = 0

BATCH_EVENTS = 256
FLUSH_INTERVAL = 0.016
# Full batches are encoded at once but written together, once this many bytes are pending (or at
# the next flush: the flusher's tick, an explicit flush): a write per 256 events was a syscall, and a
# wake-up of the reader, per 256 events.
WRITE_BYTES = 32 * 1024
DEFAULT_CAP = 1_000_000  # events pending in the child before new ones are dropped

# A printed line longer than this (characters) is cut, with a marker saying how much went: a flood of
# huge lines must not take the tool's memory (the runner's table keeps every distinct string).
LINE_LIMIT = 64 * 1024
ERROR_LIMIT = 256 * 1024  # an error's text (its traceback)
# The channel lives at a high fd, where a program that closes and reopens its files (a daemon's
# closerange(3, ...) then open(log)) does not get its number back; the number is checked to still be
# our socket (fstat: device and inode) before every write, and a lost channel is reconnected.
CHANNEL_FD = 960

ENV_CHANNEL = "CONCURVIEW_CHANNEL"
ENV_T0 = "CONCURVIEW_T0"
# Lane cap: at most N lanes of one family (same kind, same name but for its numbers: handle,
# handle-2, conn-7, ...) are recorded; the rest get UNTRACED, their events are not sent, only counted.
# Read whenever a lane is made, so a program may set it itself (os.environ) before it starts workers.
ENV_MAX_LANES = "CONCURVIEW_MAX_LANES"
UNTRACED = -1
_CAPPED_KINDS = frozenset({"thread", "greenlet", "task", "timer", "generator"})
_NUMBERED = re.compile(r"-\d+$|\d+")  # eat, eat-2, eat-3: one family


def _on_buffer(name: str, doc: str) -> property:
    """A Recorder attribute kept in its event buffer, where the C fast paths read it."""
    return property(lambda self: getattr(self._events, name), lambda self, value: setattr(self._events, name, value),
                    doc=doc)


class Recorder:
    """Collects lanes and events of one process and streams them to the runner.

    `record()` is the hot path: one row appended to the C event buffer (engines
    with a fast path of their own append tuples to `_events`, or rows from C).
    The thread that fills a batch writes it (blocking: backpressure); threads
    arriving while a write is under way keep appending, and past `cap` pending
    events new ones are dropped and counted instead of blocking.
    """

    def __init__(self, channel: _socket.socket | int | None, t0: int, cap: int = DEFAULT_CAP,
                 address: str | None = None) -> None:
        # channel: the stream to the runner (open_channel), or any fd frames are written to (tests).
        self._address = address  # to reconnect to, should the program close the channel
        self._sock: _socket.socket | None = None
        self.fd = -1
        self._ident: tuple[int, int] | None = None
        self.lost = False  # the program closed the channel and it could not be reopened
        self.reconnects = 0
        if channel is not None:
            self._attach(channel)
        self.pid = _getpid()
        self.dropped = 0
        self._base = self.pid << WIRE_LANE_SHIFT
        self._n_lanes = 0
        self._lanes: deque = deque()
        # cap: past it on_full (_full) is asked at every record(), to drop while a write is blocked.
        self._events = EventBuffer(t0, BATCH_EVENTS, self._full, cap)
        # The hot path is the buffer's own, one C call an event:
        #   record(lane, kind, reason=None, where=None, cause=None, text=None)
        #   record_at(t, lane, kind, ...)  -- at trace time t (ns), measured by other means (a kernel stamp)
        #   now()  -- trace time (ns since t0)
        self.record = self._events.record
        self.record_at = self._events.record_at
        self.now = self._events.now
        # Which lane runs on each OS thread, kept in a C thread-local (greenlet switches and task
        # steps set it): current_lane() is that, else the thread's lane in _thread_lanes, else the
        # main lane. set_lane(lane) makes lane current (None forgets it); swap_lane(lane) also
        # returns what current_lane() said before.
        self.current_lane = self._events.current_lane
        self.set_lane = self._events.set_lane
        self.swap_lane = self._events.swap_lane
        self._write_lock = _allocate_lock()
        self._lane_lock = _allocate_lock()
        self.covered = Covered()
        self._closed = False
        # Encoded frames not written yet: out[:_used] (under _write_lock). The bytearray is kept at
        # its size and written over, not emptied: no allocation, no growth copies per write.
        self._out = bytearray()
        self._used = 0
        self._written = 0.0  # when frames were last written (monotonic s)
        self._thread_lanes: dict[int, int] = {}
        self._events.thread_lanes = self._thread_lanes
        self._families: dict[str, int] = {}  # lane family -> lanes made (lane cap)
        self.untraced = 0  # lanes not recorded because of the lane cap
        self._over: dict[str, int] = {}  # lane family -> lanes of it not recorded
        # Called by the flusher before each flush, with the GIL (the GIL view drains its sampler here).
        self.drains: list = []

    main_lane = _on_buffer("main_lane", "The main thread's lane: the current lane of a thread nobody told about.")
    cap = _on_buffer("cap", "Events pending in the child before new ones are dropped (while another thread writes).")
    t0 = _on_buffer("t0", "Trace start (monotonic ns): event times are relative to it.")

    def _full(self) -> bool:
        """A record() found a batch pending: send it (False), or, past `cap` events while another
        thread's write is blocked, drop this event and count it (True)."""
        lock = self._write_lock
        if len(self._events) >= self.cap and lock.locked():
            self.dropped += 1
            return True
        held = _enter()
        try:
            if lock.acquire(False):
                try:
                    self._flush_locked(WRITE_BYTES)
                finally:
                    lock.release()
        finally:
            _leave(held)
        return False

    # -- lanes ---------------------------------------------------------------

    def new_lane(self, kind: str, name: str, parent: int | None = None,
                 tid: int | None = None, cause: int | None = None, where: str | None = None,
                 t: int | None = None) -> int:
        """Allocate a lane, declare it and record its `open` event (now, or at trace time `t`).

        Past the lane cap (ENV_MAX_LANES) this is UNTRACED: callers record as usual, nothing is sent.
        """
        if kind in _CAPPED_KINDS and ENV_MAX_LANES in os.environ and self._capped(kind, name):
            return UNTRACED
        if parent == UNTRACED:
            parent = None
        if cause == UNTRACED:
            cause = None
        with self._lane_lock:
            lane = self._base | self._n_lanes
            self._n_lanes += 1
            self._lanes.append((lane, kind, name, parent, self.pid, tid))
        if t is None:
            self.record(lane, OPEN, where=where, cause=cause)
        else:
            self.record_at(t, lane, OPEN, None, where, cause)
        return lane

    def _capped(self, kind: str, name: str) -> bool:
        try:
            cap = int(os.environ[ENV_MAX_LANES])
        except (KeyError, ValueError):
            return False
        family = kind + " " + _NUMBERED.sub("", name)
        with self._lane_lock:
            n = self._families[family] = self._families.get(family, 0) + 1
            if cap <= 0 or n <= cap:
                return False
            self.untraced += 1
            self._over[family] = n - cap
        if n == cap + 1:
            self.record(self.main_lane, MARK, f"lane cap: {kind} lanes like {name!r} past the first {cap} "
                        f"are not recorded ({ENV_MAX_LANES}={cap})")
        return True

    def engine_failed(self, what: str, exc: BaseException, first: bool) -> None:
        """An engine's hook raised: its first failure becomes a log line on the main lane (a log,
        not an `error`: the program did not fail, the trace may miss events); later ones are
        only counted by the engine. Never raises."""
        if not first:
            return
        try:
            self.record(self.main_lane, LOG, "concurview", None, None,
                        f"concurview's {what} failed (later failures are only counted): "
                        f"{type(exc).__name__}: {exc}")
        except BaseException:  # noqa: BLE001 - reporting a failure must not fail
            pass

    def bind_thread(self, lane: int, ident: int | None = None) -> None:
        """`lane` is the lane of thread `ident` (the calling one by default), and current here."""
        self._thread_lanes[_get_ident() if ident is None else ident] = lane
        self.set_lane(lane)

    def unbind_thread(self, lane: int, ident: int) -> None:
        """Thread `ident` ends: its entry goes (idents are reused; a process that starts threads all day
        must not keep one per thread ever started). Its current lane is a C thread-local: it goes with it."""
        if self._thread_lanes.get(ident) == lane:
            del self._thread_lanes[ident]

    # -- transport -----------------------------------------------------------

    def flush(self, block: bool = True) -> None:
        held = _enter()
        try:
            lock = self._write_lock
            if not lock.acquire(block):
                return
            try:
                self._flush_locked()
            finally:
                lock.release()
        finally:
            _leave(held)

    def _flush_locked(self, write_at: int = 0) -> None:
        """Encode the pending events as one frame; write what is encoded once write_at bytes are."""
        events = self._events
        out = self._out
        if self._lanes or events or self.dropped:
            # Events first, lanes after: a lane declared in between goes out with this frame and
            # its events with the next, so the runner always knows a lane before its events.
            # One length-prefixed Frame written into out after what is pending, encoded by the buffer (byte for byte
            # what msgspec writes for Frame(pid, lanes, dropped, *events.take(main_lane))).
            lanes = self._lanes
            ll = [lanes.popleft() for _ in range(len(lanes))] if lanes else []
            self._used = events.take_frame(out, self._used, self.pid, ll, self.dropped, self.main_lane)
        used = self._used
        if not used or used < write_at:
            return
        self._written = _monotonic()
        self._used = 0
        sock, fd = self._sock, self.fd
        if fd < 0:
            return  # no channel (a fork about to exec, a runner gone): the frames go nowhere
        data = memoryview(out)[:used]
        restore = None
        sent = 0
        # A signal handler's exception (Ctrl+C's KeyboardInterrupt) raised inside a send: the frame is
        # finished first (half a frame would damage the stream), then the program gets it.
        interrupted: BaseException | None = None
        try:
            while sent < used:
                if not self._owns_channel():
                    # The program closed our fd (and may have reopened the number as a file of its
                    # own): never write there. A new stream, restored to what the runner has.
                    restore = self._recover(data, sent)
                    if restore is None:
                        return
                    data.release()
                    data = memoryview(restore)
                    sent, used, sock, fd = 0, len(restore), self._sock, self.fd
                try:
                    if sock is not None:
                        sent += sock.send(data[sent:], _socket.MSG_NOSIGNAL)
                    else:
                        sent += _write(fd, data[sent:])
                except InterruptedError:
                    continue
                except OSError:
                    if self._owns_channel():
                        # The runner is gone (killed UI, closed pipe): stop talking, keep running.
                        self._closed = True
                        return
                except BaseException as e:  # noqa: BLE001 - raised again below
                    interrupted = interrupted or e
        finally:
            data.release()
            if len(out) > 4 * WRITE_BYTES:  # a frame of huge log lines: do not keep its room
                self._out = bytearray()
        if interrupted is not None:
            raise interrupted

    # -- the channel: ours, checked, reconnected --------------------------------

    def _attach(self, channel: _socket.socket | int) -> None:
        if isinstance(channel, int):
            self._sock, self.fd = None, channel
        else:
            self._sock, self.fd = channel, channel.fileno()
        st = _fstat(self.fd)
        self._ident = (st.st_dev, st.st_ino)

    def _owns_channel(self) -> bool:
        """Our fd still is our socket (one fstat: per write of ~32 KiB, not per event)."""
        try:
            st = _fstat(self.fd)
        except (OSError, ValueError):
            return False
        return (st.st_dev, st.st_ino) == self._ident

    def _let_go(self, close: bool) -> None:
        """Forget the channel; close its fd only when it still is ours (else the number is the program's)."""
        sock, self._sock = self._sock, None
        fd = self.fd if sock is None else sock.detach()  # a socket object must never close a reused number
        if close and fd >= 0 and self._owns_channel():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd = -1

    def _recover(self, data: memoryview, sent: int) -> bytearray | None:
        """Reconnect after the program closed the channel: what to send on the new stream, or
        None when that fails (the trace then misses the rest of this process: `lost`).

        Frames already encoded refer to the string table the runner built from the old stream: the
        new stream opens with a frame that resets the table and restores it as far as they need
        (from the buffer's table), then carries those frames unchanged. Bytes of them already sent
        whole are not sent again.
        """
        self._let_go(close=False)
        address = self._address or os.environ.get(ENV_CHANNEL)
        try:
            if address is None:
                raise OSError("no channel address")
            self._attach(open_channel(address))
        except OSError:
            self.lost = True
            self._closed = True
            return None
        self.reconnects += 1
        try:
            return self._restored(bytes(data), sent)
        except Exception:  # noqa: BLE001 - never into the program: later frames still go out
            self._events.reset_strings()
            return bytearray()

    def _restored(self, pending: bytes, sent: int) -> bytearray:
        # Frames as the wire lays them out (trace/events.py): [pid, lanes, dropped, n, 7 columns, strings, reset].
        from ._msgpack import pack, unpack

        frames: list[tuple[int, list]] = []
        pos = 0
        while pos + 4 <= len(pending):
            end = pos + 4 + int.from_bytes(pending[pos:pos + 4], "little")
            if end > sent:  # not (wholly) on the old stream
                frames.append((pos, unpack(pending[pos + 4:end])))
            pos = end
        known = self._events.encoded - sum(len(f[11]) for _, f in frames)
        cut = 0  # frames before this one are not sent again: their table is gone (a reset since)
        if self._events.reset_pending or known < 0:
            cut = len(frames)
        for i, (_, f) in enumerate(frames):
            if f[12]:
                cut = i
        lanes = []
        for _, f in frames[:cut]:
            lanes += f[1]
            self.dropped += f[3]
        table = self._events.table()[:known] if cut == 0 and known > 0 else []
        head = pack([self.pid, lanes, self.dropped, 0, *[(0, b"")] * 7, table, True])
        out = bytearray(len(head).to_bytes(4, "little"))
        out += head
        out += pending[frames[cut][0]:] if cut < len(frames) else b""
        return out

    def start_flusher(self) -> None:
        """Flush every ~16 ms from a real OS thread so a quiet program's events still arrive.

        Not when frames went out less than half an interval ago (what is pending is younger than
        that; nothing waits more than ~24 ms): a busy program writes its own, and a flush from here
        holds the write lock while it waits for the GIL (up to the switch interval, twice), which
        made the program's record() calls at a batch boundary ask for a flush again and again.
        """
        known = _allocate_lock()
        known.acquire()

        def loop() -> None:
            ident = _get_ident()
            OUR_IDENTS.add(ident)
            OUR_TIDS.add(_get_native_id())
            known.release()
            try:
                _block_signals()
                tick = _monotonic()
                while not self._closed:
                    if _deferred:  # a signal handler waits for the main thread to leave a hook: soon
                        _sleep(0.001)
                        redeliver_deferred()
                        if _monotonic() - tick < FLUSH_INTERVAL:
                            continue
                    else:
                        _sleep(FLUSH_INTERVAL)
                    tick = _monotonic()
                    for drain in self.drains:
                        drain()
                    if (self._events or self._lanes or self._used) and _monotonic() - self._written >= FLUSH_INTERVAL / 2:
                        self.flush()
            finally:
                OUR_IDENTS.discard(ident)  # idents are reused: a later thread of the program's may get it
        OUR_IDENTS.add(_start_new_thread(loop, ()))  # hidden from its first moment (loop() adds it too)
        known.acquire()  # its native id is known before the program can fork (see _before_fork)

    def close(self) -> None:
        for drain in self.drains:
            drain()
        if self.untraced:
            self.record(self.main_lane, MARK, f"{self.untraced} lanes not recorded (lane cap)", None, None,
                        ", ".join(f"{n} × {f}" for f, n in self._over.items()))
        self.flush()
        self._closed = True

    def reinit_after_fork(self) -> None:
        """In a forked child: its own stream to the runner (as connect() opens), its pid and lane base, fresh locks.

        What the parent had pending is the parent's to send: the queues are emptied
        in place (engines keep references to them), and the only thread left, the
        one that forked, keeps its thread-local lane until an engine binds another.
        """
        self.pid = _getpid()
        self.covered.depth = 0  # the child's waits are its own
        self._base = self.pid << WIRE_LANE_SHIFT
        self._n_lanes = 0
        self.dropped = 0
        self._lanes.clear()
        self._events.clear()
        self._used = 0  # the parent's encoded frames: the parent writes them
        self._events.reset_strings()  # the new stream starts a string table of its own
        self._write_lock = _allocate_lock()
        self._lane_lock = _allocate_lock()
        self._thread_lanes.clear()
        OUR_IDENTS.clear()  # the parent's threads of ours are not here
        OUR_TIDS.clear()
        self._families.clear()
        self._over.clear()
        self.untraced = 0
        self.t0 = int(os.environ.get(ENV_T0, self.t0))
        self.lost, self.reconnects = False, 0
        # The parent's stream: closed here, so the runner sees it end when the parent's copy ends
        # (unless the number is no longer ours: then it is the program's).
        self._let_go(close=True)
        try:
            self._attach(open_channel(self._address or os.environ[ENV_CHANNEL]))
        except (OSError, KeyError):
            self._closed = True  # no runner to talk to: record into the void, keep running
            return
        self._closed = False
        self.start_flusher()


def _block_signals() -> None:
    """The calling thread (one of ours) takes no asynchronous signal: the kernel hands a signal sent to the
    process to a thread that does not block it, and one taken here would leave the program's main thread
    asleep in a blocking call (time.sleep, a join) until that ends -- Ctrl+C would not interrupt it."""
    try:
        import signal

        sync = {getattr(signal, n) for n in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT")
                if hasattr(signal, n)}
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - sync)
    except (AttributeError, ValueError, OSError):
        pass


class _Channel(_socket.socket):
    """The channel's socket object, which never closes its fd when collected (at interpreter exit, say):
    by then the number may be the program's, and the runner must see the stream end with the process."""

    __slots__ = ()

    def __del__(self) -> None:
        try:
            self.detach()
        except Exception:  # noqa: BLE001
            pass


def _high_fd() -> int:
    """Where the channel goes: CHANNEL_FD, or lower when the fd limit is lower (an fd far above what a
    program opens, below the limit: the kernel's fd table grows to cover it, 8 bytes an fd)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return CHANNEL_FD
    if soft == resource.RLIM_INFINITY or soft > CHANNEL_FD + 64:
        return CHANNEL_FD
    return max(3, soft - 64)


def open_channel(address: str) -> _socket.socket:
    """A new stream to the runner at `address`, on a high close-on-exec fd, blocking.

    The C-level socket (gevent's patch_all() replaces socket.socket, never _socket): its send() is
    a real send(2), which fails (ENOTSOCK) rather than writes if the number became a file.
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(None)  # whatever socket.setdefaulttimeout() the program set
        try:
            # Room for what a busy program writes while the runner waits READ_GAP between reads
            # (the kernel caps it at net.core.wmem_max; the default 208 kB already holds ~2 ms).
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, 1 << 20)
        except OSError:
            pass
        sock.connect(address)
        try:
            high = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, _high_fd())
        except OSError:
            high = os.dup(sock.fileno())  # no room up there: a number as low as any (close-on-exec too)
    except BaseException:
        sock.close()
        raise
    sock.close()
    moved = _Channel(fileno=high)
    moved.settimeout(None)
    return moved


def connect(address: str, t0: int) -> Recorder:
    """Open this process's own stream to the runner (every process gets one: frames never interleave)."""
    conceal_threads()
    return Recorder(open_channel(address), t0, address=address)


class LaneLines:
    """Splits what one stream printed into lines, each a `log` event on the lane that printed it."""

    def __init__(self, recorder: Recorder, reason: str) -> None:
        self._rec = recorder
        self.reason = reason  # "stdout" / "stderr": the log event's reason
        self.reset()

    def reset(self) -> None:
        """Forget partial lines and take a fresh lock (a forked child: another thread may have held it)."""
        self._partial: dict[int, str] = {}
        self._cut: dict[int, int] = {}  # lane -> bytes cut from its partial line (past LINE_LIMIT)
        self._lock = _allocate_lock()

    def add(self, s: str) -> None:
        held = _enter()
        try:
            self._add(s)
        finally:
            _leave(held)

    def _add(self, s: str) -> None:
        rec = self._rec
        lane = rec.current_lane()
        cut = 0
        with self._lock:
            pending = self._partial.pop(lane, "") + s
            *lines, rest = pending.split("\n")
            if lines:
                cut = self._cut.pop(lane, 0)
            if len(rest) > LINE_LIMIT:  # a line still growing: keep its head, count the rest
                self._cut[lane] = self._cut.get(lane, 0) + _utf8_size(rest, LINE_LIMIT)
                rest = rest[:LINE_LIMIT]
            if rest:
                self._partial[lane] = rest
        for line in lines:
            if cut or len(line) > LINE_LIMIT:
                line, cut = clip(line, LINE_LIMIT, cut), 0
            rec.record(lane, LOG, self.reason, None, None, line)

    def flush(self) -> None:
        with self._lock:
            partial, self._partial = self._partial, {}
            cuts, self._cut = self._cut, {}
        for lane, rest in partial.items():
            self._rec.record(lane, LOG, self.reason, None, None, clip(rest, LINE_LIMIT, cuts.get(lane, 0)))
        # An explicit flush sends what was printed now, as a real stream would: a crash
        # (SIGSEGV, os._exit) right after `print(..., flush=True)` still has the line in the trace.
        # Not once the recorder is closed (interpreter exit): what comes later is not sent.
        if not self._rec._closed:
            self._rec.flush(block=False)


class LaneStream(io.TextIOWrapper):
    """sys.stdout / sys.stderr under the tool: the interpreter's own text stream, over its own buffer and fd.

    Everything a program may ask of a standard stream (reconfigure, buffer, fileno, isatty, encoding,
    errors, line_buffering, a context manager, isinstance(..., io.TextIOBase)) is the real one's; what
    is written also becomes `log` events, a line each, on the lane that wrote it -- at write(), not
    when the buffer reaches the fd, so a block-buffered pipe does not move lines to whoever flushes.

    `passthrough`: the text also goes to the fd, as under python (a run in a terminal, or any run
    whose stdio is the user's). Without it (the app's live run, whose fds are the runner's pipe) the
    text is recorded only: bytes that reach the pipe by other ways (C code, `.buffer`, subprocesses)
    are recorded by the runner, and recording these twice would show every line twice.
    """

    def write(self, s):
        if self._cv_passthrough:
            n = super().write(s)  # its errors (a closed file, not a str, an encoding) are python's
        else:
            if not isinstance(s, str):
                raise TypeError(f"write() argument must be str, not {type(s).__name__}")
            if self.closed:
                raise ValueError("I/O operation on closed file.")
            n = len(s)
        self._cv_lines.add(s)
        return n

    def flush(self) -> None:
        super().flush()
        self._cv_lines.flush()


def lane_stream(stream, recorder: Recorder, reason: str, passthrough: bool):
    """A LaneStream in place of `stream` (a TextIOWrapper over a fd), same buffer, same settings; None
    if `stream` is not one (closed fd 1: python's sys.stdout is None) -- then it is left alone."""
    if type(stream) is not io.TextIOWrapper or stream.closed:
        return None
    settings = dict(encoding=stream.encoding, errors=stream.errors, newline="\n",
                    line_buffering=stream.line_buffering, write_through=stream.write_through)
    mode = getattr(stream, "mode", "w")
    new = LaneStream(stream.detach(), **settings)
    new.mode = mode
    new._cv_passthrough = passthrough
    new._cv_lines = LaneLines(recorder, reason)
    return new


def wrap_stdio(recorder: Recorder, passthrough: bool) -> list:
    """sys.stdout and sys.stderr (and their __dunder__ twins, which are the same objects under python) made
    LaneStreams; the LaneStreams made."""
    made = []
    for name in ("stdout", "stderr"):
        old = getattr(sys, name)
        new = lane_stream(old, recorder, name, passthrough)
        if new is None:
            continue
        setattr(sys, name, new)
        if getattr(sys, f"__{name}__") is old:
            setattr(sys, f"__{name}__", new)
        made.append(new)
    return made


def flush_stdio(streams) -> None:
    """Flush LaneStreams at the end, whatever the program did to them (closed, detached)."""
    for stream in streams:
        try:
            stream.flush()
        except (ValueError, OSError):
            try:
                stream._cv_lines.flush()
            except Exception:  # noqa: BLE001
                pass


def error_event(recorder: Recorder, lane: int, exc: BaseException, where: str | None) -> None:
    import traceback

    text = "".join(traceback.format_exception(exc)).rstrip()
    recorder.record(lane, ERROR, type(exc).__name__, where, None, clip(text, ERROR_LIMIT))


def _utf8_size(text: str, start: int = 0) -> int:
    """Bytes of text[start:] in UTF-8 (lone surrogates count as one '?', as they are sent)."""
    if text.isascii():
        return max(len(text) - start, 0)
    return sum(len(text[i:i + (1 << 20)].encode("utf-8", "replace")) for i in range(start, len(text), 1 << 20))


def size_text(n: int) -> str:
    """A byte count for people: 812 bytes, 935 KiB, 12.5 MiB."""
    if n < 1024:
        return f"{n} bytes"
    if n < 10 << 20:
        return f"{n / 1024:.0f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def clip(text: str, limit: int, cut: int = 0) -> str:
    """`text` cut to `limit` characters, with a marker saying how much went (`cut` bytes more went already)."""
    if len(text) > limit:
        cut += _utf8_size(text, limit)
        text = text[:limit]
    if not cut:
        return text
    return f"{text}… [truncated {size_text(cut)}]"

