"""processes engine: every child process (fork, spawn, forkserver) gets its own stream and a process lane; pool tasks are runs on the worker's lane."""

from __future__ import annotations

import os
import sys

from ..trace.events import CLOSE, RUN, WAIT, WIRE_LANE_SHIFT
from .recorder import LaneStream, Recorder, _get_ident, error_event, flush_stdio
from .where import Where

_POOL_WORKER = ("concurrent.futures.process", "_process_worker")  # its first argument: the call queue
_MP_POOL_WORKER = ("multiprocessing.pool", "worker")  # multiprocessing.Pool's: its first, the task queue
_WORKERS = (_POOL_WORKER, _MP_POOL_WORKER)
# The `python -c` programs multiprocessing starts with a fresh interpreter (spawn, forkserver):
# a child started with one of these is armed before that program runs.
_FRESH = {"from multiprocessing.spawn import spawn_main": "spawn",
          "from multiprocessing.forkserver import main": "forkserver"}
# Engines not armed again in a spawned child (besides this one): generators (on 3.11 it would trace
# every call waiting for a `__main__` module that a spawned child never runs).
_NOT_IN_SPAWNED = ("processes", "generators")


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

    - spawn and forkserver start a fresh interpreter (`python -c "from
      multiprocessing.spawn import spawn_main; ..."`) through
      `multiprocessing.util.spawnv_passfds`: the command is prefixed with a call to
      `bootstrap()`, which connects the new process to the runner, gives it its
      lane (named after the Process object, parent = the lane that started it) and
      arms the engines before multiprocessing's own code runs. A forkserver gets a
      lane of its own; the children it forks get theirs when their Process object
      arrives (`BaseProcess._bootstrap`).
    """

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0
        self.forks = 0  # children forked by this process (names bare forks)
        self._patched_join = False
        self.fresh: str | None = None  # "spawn" / "forkserver" in a process started by bootstrap()
        self.lane_closed = False
        self._lane_pending = False  # forked by a forkserver: the lane comes with its Process object

    def install(self) -> None:
        os.register_at_fork(before=self._before, after_in_parent=self._after_in_parent,
                            after_in_child=self._after_in_child)
        self._patch_exit()
        after_import(self._patch_util, "multiprocessing.util")
        after_import(self._patch_process, "multiprocessing.process")

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
            if self.fresh == "forkserver" and caller.f_code.co_name == "main" \
                    and caller.f_code.co_filename.endswith("forkserver.py"):
                # A forkserver forking a worker: its lane comes with its Process object (_bootstrap).
                self.rec.reinit_after_fork()
                self._reset_writers()
                self.fresh, self.forks, self._lane_pending = "forkserver-child", 0, True
                return
            self._adopt_child(caller)
        except Exception:  # noqa: BLE001
            self.errors += 1

    @staticmethod
    def _reset_writers() -> None:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, LaneStream):
                stream._cv_lines.reset()  # another thread of the parent may have held its lock at the fork

    def _adopt_child(self, caller) -> None:
        rec = self.rec
        parent = rec.current_lane()
        process_obj = _process_being_launched(caller)
        at = self.where.caller(3)
        rec.reinit_after_fork()
        self._reset_writers()
        pid = os.getpid()
        self.forks = 0
        self.fresh, self.lane_closed, self._lane_pending = None, False, False
        if process_obj is not None:
            name = f"{process_obj.name} (pid {pid})"
        else:
            name = f"fork (pid {pid})"
        lane = rec.new_lane("process", name, parent=parent, tid=_get_ident(), cause=parent, where=at)
        rec.main_lane = lane
        rec.bind_thread(lane)
        rec.record(lane, RUN, "forked", at, parent)
        rec.flush()  # declared at once: the parent's join (caused by this lane) must not reach the runner first
        self._trace_pool_worker(process_obj)

    # -- the pool worker's side ----------------------------------------------------------------

    def _trace_pool_worker(self, process_obj) -> None:
        """A pool's worker process (ProcessPoolExecutor's or multiprocessing.Pool's): each item it
        takes from its queue is a run named after the call."""
        target = getattr(process_obj, "_target", None)
        kind = (getattr(target, "__module__", None), getattr(target, "__name__", None))
        args = getattr(process_obj, "_args", ())
        if kind in _WORKERS and args:
            self._trace_call_queue(args[0], self.describe if kind == _POOL_WORKER else self.describe_task)
            if len(args) > 1:
                self._flush_before_results(args[1])

    def _flush_before_results(self, result_queue) -> None:
        """The worker's events go out before each result it sends: once the parent has its results it
        may terminate the pool (SIGTERM, no exit handlers), and what the worker recorded would die with it."""
        rec, put = self.rec, getattr(result_queue, "put", None)
        if put is None:
            return

        def traced_put(*args, **kwargs):
            rec.flush(block=False)
            return put(*args, **kwargs)

        result_queue.put = traced_put

    def _trace_call_queue(self, call_queue, describe) -> None:
        """Each item the worker takes from its call queue is a run named after the call (describe(threads, item))."""
        engine, rec = self, self.rec
        get = call_queue.get
        poll = getattr(call_queue, "_poll", None)
        threads = sys.modules.get("concurview.engines.threads")
        covered = rec.covered

        def traced_get(*args, **kwargs):
            lane = rec.current_lane()
            try:
                idle = poll is None or not poll()
            except Exception:  # noqa: BLE001
                idle = True
            if idle:
                rec.record(lane, WAIT, "waiting for work")
                # Out before it waits: an idle worker is what Pool.terminate() kills (SIGTERM, no
                # exit handlers), and its events would die with it.
                rec.flush(block=False)
            covered.depth += 1  # this wait is recorded here, not by the pipe's recv() below
            try:
                item = get(*args, **kwargs)
            finally:
                covered.depth -= 1
            try:
                if item is None:
                    rec.record(lane, RUN, "no more work: shutting down")
                else:
                    reason, at = describe(threads, item)
                    rec.record(lane, RUN, reason, at)
            except Exception:  # noqa: BLE001
                engine.errors += 1
            return item

        call_queue.get = traced_get

    def describe(self, threads, item) -> tuple[str, str | None]:
        """A ProcessPoolExecutor work item (`_CallItem`): `task('屌丝4')`."""
        return self._describe_call(threads, item.fn, item.args, item.kwargs)

    def describe_task(self, threads, task) -> tuple[str, str | None]:
        """A multiprocessing.Pool task, (job, i, func, args, kwds): `work(3)`; a map's chunk,
        `work(3) and 4 more` (map and starmap hand the worker mapstar((work, chunk)))."""
        _job, _i, func, args, kwds = task
        if getattr(func, "__module__", None) == "multiprocessing.pool" and \
                getattr(func, "__name__", None) in ("mapstar", "starmapstar"):
            try:
                ((fn, chunk),) = args
                chunk = tuple(chunk)
                first = tuple(chunk[0]) if func.__name__ == "starmapstar" else (chunk[0],)
            except (TypeError, ValueError, IndexError):  # not the shape this Python's pool.py sends
                pass
            else:
                reason, at = self._describe_call(threads, fn, first, {})
                return (reason + f" and {len(chunk) - 1} more" if len(chunk) > 1 else reason), at
        return self._describe_call(threads, func, args, kwds)

    @staticmethod
    def _describe_call(threads, fn, args, kwargs) -> tuple[str, str | None]:
        tengine = getattr(threads, "_engine", None)
        if tengine is not None:
            return tengine.describe_call(fn, args, kwargs)
        return getattr(fn, "__name__", "call") + "(...)", None

    # -- spawn and forkserver: a fresh interpreter, armed first ---------------------------------

    def _patch_util(self, module) -> None:
        """spawnv_passfds starts spawn children and the forkserver: prefix their program with bootstrap()."""
        engine = self
        orig = module.spawnv_passfds

        def spawnv_passfds(path, args, passfds):
            try:
                args = engine._armed_command(list(args), sys._getframe(1))
            except Exception:  # noqa: BLE001 - start it untraced rather than not at all
                engine.errors += 1
            return orig(path, args, passfds)

        spawnv_passfds.__doc__, spawnv_passfds.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        module.spawnv_passfds = spawnv_passfds

    def _armed_command(self, args: list, frame) -> list:
        i = args.index("-c") if "-c" in args else -1
        if i < 0 or i + 1 >= len(args):
            return args
        code = args[i + 1]
        how = next((v for k, v in _FRESH.items() if code.startswith(k)), None)
        if how is None:
            return args  # the resource tracker and other helpers stay untraced
        rec = self.rec
        process_obj = _process_being_launched(frame)
        parent = rec.current_lane()
        if how == "forkserver":
            name = "forkserver"  # started on behalf of a process, but serves every later one
        else:
            name = process_obj.name if process_obj is not None else "spawn"
        main = sys.modules.get("__main__")
        # The child's output goes where ours goes (passthrough), or is recorded only, as ours is.
        echo = any(getattr(s, "_cv_passthrough", False) for s in (sys.__stdout__, sys.__stderr__))
        info = {"how": how, "name": name, "parent": parent, "where": self.where.caller(3), "echo": echo,
                "root": self.where.root.rstrip(os.sep) or os.sep,
                "program": getattr(main, "__file__", None)}
        if not self._patched_join:
            self._patch_process_join()
        rec.flush()  # the parent's lanes reach the runner before the child's
        prefix = ("try:\n    from concurview.engines.processes import bootstrap as _concurview\n"
                  "except ImportError:\n    pass\nelse:\n    _concurview(%r)\n" % (info,))
        args[i + 1] = prefix + code
        return args

    def _patch_process(self, module) -> None:
        """In a spawned or forkserver child: the lane learns its Process object; the exit code closes it."""
        engine = self
        BaseProcess = module.BaseProcess
        orig = BaseProcess._bootstrap

        def _bootstrap(process, *args, **kwargs):
            fresh = engine.fresh is not None
            try:
                if fresh:
                    engine._adopt_process(process)
                engine._announce_target(process)
            except Exception:  # noqa: BLE001
                engine.errors += 1
            if not fresh:
                return orig(process, *args, **kwargs)  # a fork child: os._exit closes its lane
            code = 1
            try:
                code = orig(process, *args, **kwargs)
                return code
            finally:
                engine.close_lane(code)

        _bootstrap.__doc__, _bootstrap.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        BaseProcess._bootstrap = _bootstrap

    def _adopt_process(self, process) -> None:
        rec = self.rec
        if self._lane_pending:
            self._lane_pending = False
            parent = rec.main_lane
            name = f"{process.name} (pid {os.getpid()})"
            lane = rec.new_lane("process", name, parent=parent, tid=_get_ident(), cause=parent)
            rec.main_lane = lane
            rec.bind_thread(lane)
            rec.record(lane, RUN, "forked by the forkserver", None, parent)
            rec.flush()
        self._trace_pool_worker(process)

    def _announce_target(self, process) -> None:
        """A Process(target=task, args=(99,)) runs `task(99)`: a run named after the call (pool workers name each
        task); an exception escaping its run() is an error event on the process's lane."""
        target = getattr(process, "_target", None)
        if target is not None and (getattr(target, "__module__", None),
                                   getattr(target, "__name__", None)) not in _WORKERS:
            threads = sys.modules.get("concurview.engines.threads")
            tengine = getattr(threads, "_engine", None)
            if tengine is not None:
                tengine.announce_call(target, tuple(getattr(process, "_args", ())),
                                      dict(getattr(process, "_kwargs", {})))
        run = process.run
        engine = self

        def traced_run():
            try:
                return run()
            except BaseException as exc:
                if not isinstance(exc, SystemExit):
                    try:
                        tb = exc.__traceback__
                        error_event(engine.rec, engine.rec.current_lane(), exc, engine.where.of_traceback(tb))
                    except Exception:  # noqa: BLE001
                        engine.errors += 1
                raise

        process.run = traced_run  # _bootstrap calls self.run(): this instance's, for this process only

    def close_lane(self, code) -> None:
        """The process's lane ends (once): its output flushed, `exit code N`, everything sent."""
        if self.lane_closed:
            return
        self.lane_closed = True
        rec = self.rec
        try:
            flush_stdio([s for s in (sys.stdout, sys.stderr) if isinstance(s, LaneStream)])
            rec.record(rec.main_lane, CLOSE, f"exit code {code}")
            rec.flush()
        except BaseException:  # noqa: BLE001
            self.errors += 1

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
            covered = rec.covered
            covered.depth += 1  # waitpid or connection.wait below: this wait, recorded here
            try:
                return orig(process, timeout)
            finally:
                covered.depth -= 1
                done = popen.returncode is not None
                # The child's lane is the first its own recorder declared: (pid << shift) | 0.
                rec.record(lane, RUN, None if done else "timed out", at,
                           popen.pid << WIRE_LANE_SHIFT if done else None)

        join.__doc__, join.__wrapped__ = orig.__doc__, orig  # type: ignore[attr-defined]
        BaseProcess.join = join

    def _patch_exit(self) -> None:
        rec = self.rec
        real = os._exit

        engine = self

        def _exit(status, /):
            try:
                if not engine.lane_closed:
                    engine.lane_closed = True
                    flush_stdio([s for s in (sys.stdout, sys.stderr) if isinstance(s, LaneStream)])
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


_engine: ProcessesEngine | None = None


def install(rec: Recorder, where: Where) -> ProcessesEngine:
    global _engine
    engine = _engine = ProcessesEngine(rec, where)
    engine.install()
    return engine


def bootstrap(info: dict) -> None:
    """First thing in a spawned child or a forkserver: connect, declare the process's lane, arm the engines.

    Runs before multiprocessing's own `-c` program; never raises into it.
    """
    try:
        _bootstrap(info)
    except Exception:  # noqa: BLE001 - the child runs untraced rather than not at all
        pass


def _bootstrap(info: dict) -> None:
    import atexit
    import importlib

    from .recorder import ENV_CHANNEL, ENV_T0, connect

    rec = connect(os.environ[ENV_CHANNEL], int(os.environ[ENV_T0]))
    from .recorder import defer_signals

    defer_signals()
    where = Where(info["root"])
    parent, at = info.get("parent"), info.get("where")
    pid = os.getpid()
    lane = rec.new_lane("process", f"{info['name']} (pid {pid})", parent=parent, tid=_get_ident(), cause=parent,
                        where=at)
    rec.main_lane = lane
    rec.bind_thread(lane)
    rec.record(lane, RUN, "spawned" if info.get("how") == "spawn" else "forkserver starts", at, parent)
    rec.flush()
    rec.start_flusher()
    engine = install(rec, where)
    engine.fresh = info.get("how")
    from .child import ENGINES, LAZY, _arm

    program = sys.modules["__main__"].__dict__.get("__file__") if "__main__" in sys.modules else None
    for name in ENGINES:
        if name in _NOT_IN_SPAWNED:
            continue
        try:
            if name in LAZY and LAZY[name] not in sys.modules:  # armed when the program imports it, as in the child
                after_import(lambda _module, name=name: _arm(name, rec, where), LAZY[name])
                continue
            module = importlib.import_module(f"concurview.engines.{name}")
            if name == "probe" and not module.wanted(info.get("program") or program):
                continue
            module.install(rec, where)
        except Exception:  # noqa: BLE001
            engine.errors += 1
    from .recorder import wrap_stdio

    # Its stdio are its own fds, inherited from the process that spawned it (the terminal or the
    # runner's pipe): written through when the run's are, as a fork child's are.
    wrap_stdio(rec, passthrough=bool(info.get("echo")))

    def last_flush() -> None:
        engine.close_lane(0)
        rec.close()

    atexit.register(last_flush)


def after_import(action, name: str) -> None:
    """Run `action(module)` once module `name` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        action(module)
        return
    for finder in sys.meta_path:
        if isinstance(finder, _AfterImport):
            finder.actions[name] = action
            return
    sys.meta_path.insert(0, _AfterImport({name: action}))


class _AfterImport:
    """A meta path finder that finds nothing itself: it wraps the real loader of a few modules to patch them once loaded."""

    def __init__(self, actions: dict) -> None:
        self.actions = actions

    def find_spec(self, name, path=None, target=None):
        if name not in self.actions:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, self.actions, name)
        return spec


class _PatchingLoader:
    def __init__(self, loader, actions: dict, name: str) -> None:
        self._loader = loader
        self._actions = actions
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        action = self._actions.pop(self._name, None)  # once, when the module is really loaded
        if action is not None:
            try:
                action(module)
            except Exception:  # noqa: BLE001 - a patch that fails leaves the module as it was
                pass

    def __getattr__(self, name):
        return getattr(self._loader, name)
