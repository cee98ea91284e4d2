"""The traced child process: connects a recorder, arms the engines, then runs the program as __main__."""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import types

ENV_ARGV0 = "CONCURVIEW_ARGV0"  # the program's sys.argv[0] as given to `concurview run` (else its absolute path)
# Engines arm in this order; each module provides install(recorder, where).
ENGINES = ("threads", "processes", "generators", "greenlet_engine", "asyncio_engine", "probe")
# Engines armed only once the program imports the module they trace.
LAZY = {"asyncio_engine": "asyncio"}
# Set once the program is about to run: a failure before that is concurview's (the boot script says so,
# engines/runner.py), one after it the program's.
started = False


def _arm(name: str, rec, where) -> None:
    importlib.import_module(f"concurview.engines.{name}").install(rec, where)


def _compile(args: argparse.Namespace):
    """(file shown as the program, code to exec or None for a module run through runpy)."""
    if args.module:
        import importlib.util

        sys.path[0] = os.getcwd()  # what python -m does, before it looks the module up
        try:
            spec = importlib.util.find_spec(args.path)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            print(f"{sys.executable}: No module named {args.path}", file=sys.stderr)
            raise SystemExit(1)
        if spec.submodule_search_locations:  # a package: python -m runs its __main__
            main_spec = importlib.util.find_spec(args.path + ".__main__")
            if main_spec is None or main_spec.origin is None:
                print(f"{sys.executable}: No module named {args.path}.__main__; '{args.path}' is a package "
                      "and cannot be directly executed", file=sys.stderr)
                raise SystemExit(1)
            return main_spec.origin, None
        return spec.origin, None
    path = os.path.abspath(args.path)
    if args.scenario:
        from ..scenarios import with_params

        import json

        tree = with_params(path, json.loads(args.params or "{}"))
        return path, compile(tree, path, "exec")
    with open(path, "rb") as f:
        return path, compile(f.read(), path, "exec")


def _not_compiled(rec, args: argparse.Namespace, exc: BaseException) -> int:
    """The program could not be read or compiled: python's report on stderr, an `error` on the main lane."""
    import threading
    import traceback

    from ..trace.events import CLOSE, ERROR
    from .recorder import _get_ident, clip, ERROR_LIMIT
    from .where import Where

    path = os.path.abspath(args.path)
    if isinstance(exc, OSError):
        # python: "can't open file" and status 2
        text, status = f"{sys.executable}: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}", 2
        where = None
    else:
        if not isinstance(exc, SyntaxError) or exc.filename is None:  # compile()'s null bytes error
            exc = SyntaxError(str(exc.msg if isinstance(exc, SyntaxError) else exc).replace(
                "source code string", "source code"))
            exc.filename = path
        text, status = "".join(traceback.format_exception_only(exc)).rstrip(), 1
        name = exc.filename if isinstance(exc.filename, str) else path
        where = f"{Where(os.path.dirname(path)).file(name)}:{exc.lineno}" if exc.lineno else None
    print(text, file=sys.stderr)
    lane = rec.new_lane("main", threading.main_thread().name, tid=_get_ident())
    rec.main_lane = lane
    rec.record(lane, ERROR, type(exc).__name__, where, None, clip(text, ERROR_LIMIT))
    rec.record(lane, CLOSE, f"exit code {status}")
    rec.close()
    return status


_OURS = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _without_our_tail(tb):
    """The traceback without concurview's frames at its end: an exception raised inside a hook of ours
    (a KeyboardInterrupt arriving while print() flushed into the recorder) shows the program's line last,
    as under python."""
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    keep = len(frames)
    while keep > 1 and frames[keep - 1].tb_frame.f_code.co_filename.startswith(_OURS):
        keep -= 1
    if keep < len(frames):
        frames[keep - 1].tb_next = None
    return frames[0] if frames else None


def _report(exc: BaseException) -> None:
    """What python prints for an exception that ended the program: sys.excepthook's report, or, if the
    hook itself fails, both tracebacks, as python does."""
    try:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    except BaseException as failed:  # noqa: BLE001
        print("Error in sys.excepthook:", file=sys.stderr)
        sys.__excepthook__(type(failed), failed, failed.__traceback__)
        print("\nOriginal exception was:", file=sys.stderr)
        sys.__excepthook__(type(exc), exc, exc.__traceback__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="concurview-child")
    ap.add_argument("--scenario", action="store_true", help="PATH is a scenario; apply --params")
    ap.add_argument("--params", default="{}")
    ap.add_argument("--module", action="store_true", help="PATH is a module name, as in python -m")
    ap.add_argument("--echo", action="store_true",
                    help="the program's output goes to our stdout/stderr (else it is only recorded)")
    ap.add_argument("path")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)

    if args.scenario:
        import json

        from ..scenarios import load

        if load(args.path).gevent and json.loads(args.params or "{}").get("patch", True):
            # gevent must patch before anything imports threading or socket,
            # the recorder included (it then asks gevent for the originals).
            from gevent import monkey

            monkey.patch_all()

    import threading

    from ..trace.events import CLOSE, RUN, WAIT
    from .recorder import (
        ENV_CHANNEL, ENV_T0, _get_ident, connect, defer_signals, error_event, flush_stdio, wrap_stdio,
    )
    from .where import Where

    rec = connect(os.environ[ENV_CHANNEL], int(os.environ[ENV_T0]))
    defer_signals()  # Ctrl+C's KeyboardInterrupt never lands halfway through a frame
    try:
        path, code = _compile(args)
    except (SyntaxError, ValueError, OSError) as e:
        # What python reports before it runs anything: its own report, its exit status, and the
        # trace says so (an error on the main lane), never an empty "complete" run.
        return _not_compiled(rec, args, e)
    where = Where(os.path.dirname(path))

    main_lane = rec.new_lane("main", threading.main_thread().name, tid=_get_ident())
    rec.main_lane = main_lane
    rec.bind_thread(main_lane)
    rec.record(main_lane, RUN, "program starts", None if code is None else where.of_code(code))
    rec.start_flusher()

    for name in ENGINES:
        if name in LAZY and LAZY[name] not in sys.modules:
            # Armed when the program first imports what it traces (an import hook), not before:
            # importing asyncio costs a program that never uses it ~25 ms of start-up.
            from .processes import after_import

            after_import(lambda _module, name=name: _arm(name, rec, where), LAZY[name])
            continue
        module = importlib.import_module(f"concurview.engines.{name}")
        if name == "probe" and not module.wanted(path):
            continue  # its audit hook would slow every program down for nothing
        module.install(rec, where)

    # The GIL view samples the threads the threads engine gives lanes (gevent's "threads" are greenlets).
    from . import gilview, threads as threads_engine

    # Not for a program that reports its own IO through probes (the IO-model scenarios): its waits and
    # phases are its own to show, and a sampled "blocked in the kernel: read" would contradict them.
    from . import probe

    gil = gilview.arm(rec, where) if threads_engine._engine is not None and not probe.wanted(path) else None

    # The program's sys.stdout / sys.stderr stay the interpreter's own streams over its own fds (a
    # terminal, a pipe, a file: whatever the user gave us); each line written is also a log event.
    streams = wrap_stdio(rec, passthrough=args.echo)
    ended_by_sigint = False

    def _last_flush() -> None:
        # Registered before the program's own atexit hooks, so it runs after them.
        flush_stdio(streams)
        if gil is not None:
            gil.finish()
        rec.close()
        if ended_by_sigint:
            # What python does after an uncaught KeyboardInterrupt: end by SIGINT itself, so whoever
            # started it (a shell's loop, our runner) sees "killed by SIGINT", not a plain exit 1.
            import signal

            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)

    atexit.register(_last_flush)

    if code is not None:
        module = types.ModuleType("__main__")
        module.__file__ = path
        module.__builtins__ = __builtins__  # type: ignore[attr-defined]
        sys.modules["__main__"] = module
        sys.path[0] = os.path.dirname(path)
    else:
        sys.path[0] = os.getcwd()  # what python -m does
    # python's argv[0]: a script's path as given on the command line (the CLI passes it on), a module's file.
    argv0 = os.environ.pop(ENV_ARGV0, None)
    sys.argv = [argv0 if argv0 and code is not None and not args.scenario else path, *args.args]

    global started
    started = True
    exit_code = 0
    try:
        if code is not None:
            exec(code, module.__dict__)
        else:
            import runpy

            runpy.run_module(args.path, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        exit_code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)  # what python prints for sys.exit("message")
    except BaseException as e:  # noqa: BLE001 - the program's failure is an event, not our crash
        tb = e.__traceback__
        while tb is not None and not where.is_user(tb.tb_frame.f_code):
            tb = tb.tb_next  # drop our exec() / runpy frames, as python's own report would
        e.__traceback__ = _without_our_tail(tb)
        # The main thread's exception, on its lane: the current lane may still be a greenlet's if the switch
        # that brought it here was cut short (a KeyboardInterrupt inside the tracer).
        error_event(rec, main_lane, e, where.of_traceback(tb))
        # python's report: sys.excepthook (the program's own, if it set one). The app's live run
        # shows the error event instead of the default hook's copy of it.
        if args.echo or sys.excepthook is not sys.__excepthook__:
            _report(e)
        exit_code = 1
        ended_by_sigint = isinstance(e, KeyboardInterrupt)
    flush_stdio(streams)
    if threading.active_count() > 1:
        rec.record(main_lane, WAIT, "interpreter exit: joining non-daemon threads")
        try:
            threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize does next anyway
        except KeyboardInterrupt:  # a second Ctrl+C while joining: python says so and goes on exiting
            print("Exception ignored in: <module 'threading'>\nKeyboardInterrupt", file=sys.stderr)
        rec.record(main_lane, RUN, "threads joined")
    if gil is not None:
        gil.finish()
    rec.record(main_lane, CLOSE, f"exit code {exit_code}")
    rec.flush()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
