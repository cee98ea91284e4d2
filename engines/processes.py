"""processes engine: every forked child gets its own stream and a process lane; pool tasks are runs on the worker's lane."""

from __future__ import annotations

import os
import sys

from concurview.engines.events import CLOSE, RUN, WAIT, WIRE_LANE_SHIFT
from concurview.engines.recorder import LaneWriter, Recorder, _allocate_lock, _get_ident
from concurview.engines.where import Where

_POOL_WORKER = ("concurrent.futures.process", "_process_worker")


class ProcessesEngine:
    """Follows os.fork (multiprocessing's default start method here, ProcessPoolExecutor's workers included).

    - `os.register_at_fork`: before a fork the parent flushes (its lanes reach the
      runner before the child's, so the child's lane finds its parent); in the
      child the recorder reconnects under the new pid and the child gets a lane of
      kind `process`, `Process-1 (pid 1234)`, parent and cause = the forking lane.
    - A ProcessPoolExecutor worker's call queue: each call item it takes is a run
      named after the call, `task('屌丝4')`; an empty queue is `waiting for work`.
    - `os._exit` (how multiprocessing's children end) records the lane's close and
      flushes first: atexit handlers do not run there.
    - `multiprocessing.Process.join` in the parent is a wait, woken by the child's lane.

    Only fork is followed: a child made by the spawn or forkserver start method
    runs a fresh interpreter that nothing arms (yet).
    """

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0
        self.forks = 0  # children forked by this process (names bare forks)
        self._patched_join = False

    def install(self) -> None:
        os.register_at_fork(before=self._before, after_in_parent=self._after_in_parent,
                            after_in_child=self._after_in_child)
        self._patch_exit()

    # -- fork hooks (never raise: the fork already happened, or is about to) ---------------

    def _before(self) -> None:
        try:
            self.rec.flush()
        except Exception:  # noqa: BLE001
            self.errors += 1

    def _after_in_parent(self) -> None:
        self.forks += 1
        if not self._patched_join:
            try:
                self._patch_process_join()
            except Exception:  # noqa: BLE001
                self.errors += 1
        threads = sys.modules.get("concurview.engines.threads")
        engine = getattr(threads, "_engine", None)
        if engine is not None and engine._pending:
            engine.patch_pending()

    def _after_in_child(self) -> None:
        try:
            caller = sys._getframe(1)
            if caller.f_code.co_name == "_execute_child":
                # subprocess with a preexec_fn: an exec follows at once. Keep quiet, and never
                # write into the parent's stream from here.
                self.rec.fd = -1
                self.rec._closed = True
                return
            self._adopt_child(caller)
        except Exception:  # noqa: BLE001
            self.errors += 1

    def _adopt_child(self, caller) -> None:
        rec = self.rec
        parent = rec.current_lane()
        process_obj = _process_being_launched(caller)
        at = self.where.caller(3)
        rec.reinit_after_fork()
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, LaneWriter):
                # Another thread of the parent may have held these at the fork.
                stream._lock = _allocate_lock()
                stream._partial = {}
        pid = os.getpid()
        self.forks = 0
        if process_obj is not None:
            name = f"{process_obj.name} (pid {pid})"
        else:
            name = f"fork (pid {pid})"
        lane = rec.new_lane("process", name, parent=parent, tid=_get_ident(), cause=parent, where=at)
        rec.main_lane = lane
        rec.bind_thread(lane)
        rec.record(lane, RUN, "forked", at, parent)
        target = getattr(process_obj, "_target", None)
        if (getattr(target, "__module__", None), getattr(target, "__name__", None)) == _POOL_WORKER:
            args = getattr(process_obj, "_args", ())
            if args:
                self._trace_call_queue(args[0])

    # -- the pool worker's side ----------------------------------------------------------------

    def _trace_call_queue(self, call_queue) -> None:
        """Each item the worker takes from its call queue is a run named after the call."""
        engine, rec = self, self.rec
        get = call_queue.get
        poll = getattr(call_queue, "_poll", None)
        threads = sys.modules.get("concurview.engines.threads")

        def traced_get(block=True, timeout=None):
            lane = rec.current_lane()
            try:
                idle = poll is None or not poll()
            except Exception:  # noqa: BLE001
                idle = True
            if idle:
                rec.record(lane, WAIT, "waiting for work")
            item = get(block, timeout)
            try:
                if item is None:
                    rec.record(lane, RUN, "no more work: shutting down")
                else:
                    reason, at = engine.describe(threads, item)
                    rec.record(lane, RUN, reason, at)
            except Exception:  # noqa: BLE001
                engine.errors += 1
            return item

        call_queue.get = traced_get

    def describe(self, threads, item) -> tuple[str, str | None]:
        tengine = getattr(threads, "_engine", None)
        if tengine is not None:
            return tengine.describe_call(item.fn, item.args, item.kwargs)
        return getattr(item.fn, "__name__", "call") + "(...)", None

    # -- the parent's side -----------------------------------------------------------------------

    def _patch_process_join(self) -> None:
        module = sys.modules.get("multiprocessing.process")
        if module is None:
            return
        self._patched_join = True
        engine, rec = self, self.rec
        BaseProcess = module.BaseProcess
        orig = BaseProcess.join

        def join(process, timeout=None):
            popen = getattr(process, "_popen", None)
            try:
                blocks = popen is not None and popen.poll() is None
            except Exception:  # noqa: BLE001
                blocks = False
            if not blocks:
                return orig(process, timeout)
            lane = rec.current_lane()
            at = engine.where.caller(2)
            reason = f"join {process.name}" + ("" if timeout is None else f" (timeout {timeout}s)")
            rec.record(lane, WAIT, reason, at)
            try:
                return orig(process, timeout)
            finally:
                done = popen.returncode is not None
                # The child's lane is the first its own recorder declared: (pid << shift) | 0.
                rec.record(lane, RUN, None if done else "timed out", at,
                           popen.pid << WIRE_LANE_SHIFT if done else None)

        join.__doc__, join.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        BaseProcess.join = join

    def _patch_exit(self) -> None:
        rec = self.rec
        real = os._exit

        def _exit(status, /):
            try:
                for stream in (sys.stdout, sys.stderr):
                    if isinstance(stream, LaneWriter):
                        stream.flush()
                rec.record(rec.main_lane, CLOSE, f"exit code {status}")
                rec.flush()
            except BaseException:  # noqa: BLE001 - exiting now whatever happens
                pass
            real(status)

        _exit.__doc__, _exit.__wrapped__ = real.__doc__, real  # type: ignore[attr-defined]
        os._exit = _exit


def _process_being_launched(frame):
    """The multiprocessing Process object whose Popen._launch called os.fork, if that is who forked."""
    for _ in range(4):
        if frame is None:
            return None
        if frame.f_code.co_name == "_launch" and "multiprocessing" in frame.f_code.co_filename:
            return frame.f_locals.get("process_obj")
        frame = frame.f_back
    return None


def install(rec: Recorder, where: Where) -> ProcessesEngine:
    engine = ProcessesEngine(rec, where)
    engine.install()
    return engine
