"""The `concurview` command line: list, record, summary, open, and the app (Textual is imported only for the app)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path


COMMANDS = ("list", "record", "run", "compare", "summary", "open", "export", "completion")
# `-` as a file argument: the trace read from stdin (summary, export, open) or written to stdout (record -o,
# run --record, compare -o, export -o). A trace on stdout is the only thing on stdout (see _trace_to_stdout).
STDIO = "-"
_STDIN = "/dev/stdin"  # what `-` opens: the reader streams it, gunzips it (magic bytes) and bounds it as a file
_SHELLS = ("bash", "zsh", "tcsh")  # what shtab writes
# Lanes the text summary lists unless --all: a gevent server's million greenlets are a table nobody reads.
_SUMMARY_LANES = 200

EPILOG = """\
commands:
  (none)                 open the scenario picker
  NAME                   run scenario NAME in the app
  list                   the scenarios, one line each
  record NAME -o FILE    run a scenario headless and save its trace
  run SCRIPT [ARGS]      trace your own program (-m MODULE works too)
  compare                one workload on five models, side by side
  summary TRACE          lanes, switches, time running/waiting, max running at once
  open TRACE             open a recorded trace in the app
  export TRACE --to FMT  FMT chrome (Perfetto), txt or svg; -o FILE (default beside TRACE)
  completion SHELL       print a tab-completion script for bash, zsh or tcsh

'-' as a file means stdin (TRACE) or stdout (-o, --record): a trace sent to stdout is
all that goes there, the rest goes to stderr. A closed pipe (| head) ends concurview
quietly, by SIGPIPE, as it ends cat (status 141).

examples:
  concurview record asyncio-tasks -o t.jsonl --set task_sleep=0.3
  concurview summary t.jsonl --json
  concurview export t.jsonl --to chrome -o t.perfetto.json
  concurview run --record app.jsonl app.py --port 8080
  concurview record timer -o - --set interval=0.2 | gzip > timer.jsonl.gz
  zcat t.jsonl.gz | concurview export - --to txt -o - | less
  source <(concurview completion bash)
"""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Version(argparse.Action):
    """-V/--version: the version and which hot paths run (C speedups or pure Python), then exit."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default,
                         help=help or "show the version and whether the C speedups are in use, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from . import version_text

        print(version_text())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


_PYTHON_HELP = "trace it with this Python (3.11+, e.g. a project's .venv/bin/python); concurview's engines are lent to it"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="concurview",
        description="See how Python runs concurrent work, switch by switch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("-V", "--version", action=_Version)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="list the scenarios")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    rec = sub.add_parser("record", help="run a scenario headless and save its trace")
    rec.add_argument("scenario", metavar="NAME")
    rec.add_argument("-o", "--output", required=True, metavar="FILE",
                     help="trace file (.jsonl or .jsonl.gz; '-' for stdout)")
    rec.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    rec.add_argument("--timeout", type=_positive_float, metavar="S", help="kill the run after S seconds")
    rec.add_argument("--max-events", type=_positive_int, metavar="N",
                     help="keep at most N events, count the rest as dropped (default: $CONCURVIEW_MAX_EVENTS or 5M)")
    rec.add_argument("--python", metavar="PATH", help=_PYTHON_HELP)

    run = sub.add_parser("run", help="trace your own program (as `python SCRIPT ARGS` would run it)")
    run.add_argument("--record", metavar="FILE",
                     help="save the trace headless instead of opening the app ('-' for stdout: the program's "
                          "output then goes to stderr)")
    run.add_argument("--timeout", type=_positive_float, metavar="S", help="kill the run after S seconds")
    run.add_argument("--max-events", type=_positive_int, metavar="N",
                     help="keep at most N events, count the rest as dropped (default: $CONCURVIEW_MAX_EVENTS or 5M)")
    run.add_argument("--python", metavar="PATH", help=_PYTHON_HELP)
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m does")
    run.add_argument("script", nargs="?", metavar="SCRIPT")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")

    cmp = sub.add_parser("compare", help="one workload on several models, stacked on one time axis")
    cmp.add_argument("--models", default=",".join(_MODELS), metavar="M,M",
                     help=f"comma-separated, from: {', '.join(_MODELS)}")
    cmp.add_argument("--jobs", type=_positive_int, default=8, metavar="N")
    cmp.add_argument("--job-sleep", type=_positive_float, default=0.5, metavar="S", help="seconds each job waits")
    cmp.add_argument("--workers", type=_positive_int, default=4, metavar="N")
    cmp.add_argument("-o", "--output", metavar="FILE",
                     help="save the stacked runs as one trace ('-' for stdout: the table then goes to stderr)")
    cmp.add_argument("--timeout", type=_positive_float, default=120.0, metavar="S", help="per model")
    cmp.add_argument("--json", action="store_true", help="machine-readable output")

    sm = sub.add_parser("summary", help="summarise a trace file")
    sm.add_argument("trace", metavar="TRACE", help="trace file, gzipped or not ('-' for stdin)")
    sm.add_argument("--json", action="store_true", help="machine-readable output")
    sm.add_argument("--all", action="store_true",
                    help=f"list every lane (the text lists the first {_SUMMARY_LANES}; --json always has all)")
    _max_bytes_option(sm)

    ex = sub.add_parser("export", help="export a trace: chrome (Perfetto), txt or svg")
    ex.add_argument("trace", metavar="TRACE", help="trace file, gzipped or not ('-' for stdin)")
    ex.add_argument("--to", required=True, choices=("chrome", "txt", "svg"), help="output format")
    ex.add_argument("-o", "--output", metavar="FILE", help="where to write ('-' for stdout); default beside TRACE, stdout when TRACE is '-'")
    ex.add_argument("--width", type=int, default=100, metavar="COLS", help="diagram width for txt and svg")
    _max_bytes_option(ex)

    op = sub.add_parser("open", help="open a trace file in the app")
    op.add_argument("trace", metavar="TRACE",
                    help="trace file, gzipped or not ('-' for stdin: read whole, then the app takes the terminal)")
    _max_bytes_option(op)

    co = sub.add_parser("completion", help="print a shell's tab-completion script",
                        description="Print a tab-completion script for SHELL: "
                                    "`source <(concurview completion bash)`, or save it where your shell looks "
                                    "(bash: ~/.local/share/bash-completion/completions/concurview; "
                                    "zsh: a file named _concurview in a folder on $fpath).")
    co.add_argument("shell", metavar="SHELL", help=", ".join(_SHELLS))
    return p


def _max_bytes_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-bytes", type=_byte_size, metavar="SIZE",
                   help="read at most SIZE of the trace, gunzipped (512M, 2G; default $CONCURVIEW_MAX_BYTES or 512M)")


def _byte_size(raw: str) -> int:
    from .trace.tracefile import parse_size

    try:
        return parse_size(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {raw!r}")
    return value


_MODELS = ("sequential", "threads", "processes", "gevent", "asyncio")


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {raw!r}")
    return value


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set wants KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # in here, not at exit: a reader that left is a BrokenPipeError below
        if _die_by is not None:
            _end_by(_die_by)
        return code
    except UsageError as e:
        print(f"concurview: error: {_stdin_named(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `concurview summary t.jsonl | head`: the reader left; so do we, quietly, the way cat and git do:
        # by SIGPIPE (the shell shows 141; `set -o pipefail` sees a pipeline cut short, as it would be).
        # What is still buffered for stdout goes nowhere, not to a traceback at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        _end_by(signal.SIGPIPE)
        return 128 + signal.SIGPIPE


def _end_by(sig: int) -> None:
    """End this process by signal `sig`, its default action (returns only if that does not end it)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


def _dispatch(argv: list[str]) -> int:
    # `concurview NAME [--set ...]` runs a scenario in the app.
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        from .scenarios import ScenarioError

        sub = _Parser(prog="concurview NAME")
        sub.add_argument("scenario")
        sub.add_argument("--set", action="append", default=[])
        args = sub.parse_args(argv)
        try:
            scenario, params = _scenario(args.scenario, args.set)
        except ScenarioError as e:
            raise UsageError(str(e)) from None
        return _run_app(scenario=scenario.name, params=params)

    if argv and argv[0] == "run":
        argv = _split_program(argv)
    args = _parser().parse_args(argv)  # --help ends here, before msgspec and the catalogue load
    try:
        if args.command == "list":
            return _list(args.json)
        if args.command == "record":
            return _record(args)
        if args.command == "run":
            return _run_program(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "summary":
            return _summary(_input(args.trace), args.json, args.max_bytes, args.all)
        if args.command == "export":
            return _export(args)
        if args.command == "open":
            return _open(args)
        if args.command == "completion":
            return _completion(args.shell)
        return _run_app()
    except Exception as e:
        if _users_fault(e):
            raise _output_failed(e) from None
        raise


def _stdin_is_a_file() -> bool:
    import stat

    try:
        return stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:
        return False


def _open(args: argparse.Namespace) -> int:
    from .trace.tracefile import ENV_MAX_BYTES
    from .trace.store import load

    folder = None
    path = _input(args.trace)
    try:
        if path == _STDIN:
            folder, path = _stdin_to_file(args.max_bytes)
        load(path, args.max_bytes)  # fail here, in one line, not inside the app
        if folder is not None:
            _take_the_terminal()
        if args.max_bytes is not None:
            os.environ[ENV_MAX_BYTES] = str(args.max_bytes)  # the app's own load reads it
        return _run_app(trace=path)
    finally:
        if folder is not None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _input(raw: str) -> str:
    """A trace argument as a path to read: `-` is stdin (refused when it is a terminal or closed)."""
    if raw != STDIO:
        return raw
    try:
        os.fstat(0)
    except OSError:
        raise UsageError("-: stdin is closed; pipe a trace in (concurview summary - < t.jsonl)") from None
    if os.isatty(0):
        raise UsageError("-: stdin is a terminal; pipe a trace in (concurview summary - < t.jsonl)")
    return _STDIN


def _stdin_named(message: str) -> str:
    """A one-line error about what `-` was opened as, naming it `stdin` or `stdout` (the reader and the
    output check name the path they opened)."""
    names = [(name, "stdin") for name in _STDIN_NAMES] + [("/dev/stdout", "stdout")]
    if _stdout_fd is not None:
        names.append((f"/dev/fd/{_stdout_fd}", "stdout"))
    for name, plain in names:
        message = message.replace(name + ":", plain + ":").replace(f"the input {name} ", f"the input {plain} ")
    return message


# The names `-` was read under: /dev/stdin, and `open -`'s copy of it.
_STDIN_NAMES = [_STDIN]


def _stdin_to_file(max_bytes: int | None) -> tuple[str, str]:
    """`open -`: stdin read whole into a private temporary folder (the app reads its trace by name, and
    stdin must be given back to the terminal for the keys). (folder, file); the bound is --max-bytes,
    as for any trace file (gzip data counted as it comes: the load bounds what it inflates to)."""
    import tempfile

    from .trace.tracefile import format_size, max_bytes_from_env

    if max_bytes is None:
        try:
            max_bytes = max_bytes_from_env()
        except ValueError as e:
            raise UsageError(str(e)) from None
    folder = tempfile.mkdtemp(prefix="concurview-stdin-")
    path = os.path.join(folder, "stdin")
    _STDIN_NAMES.append(path)
    try:
        with open(path, "wb") as f:
            have = 0
            while chunk := os.read(0, 1 << 20):
                have += len(chunk)
                if have > max_bytes + 2:  # + gzip's magic, as the reader counts
                    raise UsageError(f"stdin: more than {format_size(max_bytes)}; --max-bytes raises the limit")
                f.write(chunk)
    except OSError as e:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise UsageError(f"stdin: cannot read or keep it: {e.strerror or e}") from None
    except BaseException:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, path


def _take_the_terminal() -> None:
    """After `open -` read its trace: the terminal becomes stdin again (the app reads its keys from fd 0)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise UsageError("open -: no terminal to show the app on once stdin is read (/dev/tty cannot be "
                         "opened); use summary - or export - instead") from None
    os.dup2(tty, 0)
    os.close(tty)


def _trace_to_stdout(option: str) -> str:
    """A trace is about to be written to stdout (`-o -`): its own copy of fd 1 is returned, as a path
    the output module writes like a pipe (/dev/fd/N), and fd 1 becomes stderr -- for us and for the
    program, which inherits it. So nothing else can reach stdout: our messages, the table of compare,
    and `run --record -`'s program output (also kept in the trace, as log events) go to stderr."""
    try:
        os.fstat(1)
    except OSError:
        raise UsageError(f"{option} -: stdout is closed") from None
    sys.stdout.flush()
    global _stdout_fd
    fd = _stdout_fd = os.dup(1)  # not inherited by the program (PEP 446)
    os.dup2(2, 1)
    return f"/dev/fd/{fd}"


_stdout_fd: int | None = None  # the real stdout's copy, once a trace goes there


def _output_failed(e: Exception) -> UsageError | BrokenPipeError:
    """An output error to raise: a reader that left a pipe ends us as a closed stdout does, else one line."""
    import errno

    if getattr(e, "errno", None) == errno.EPIPE:
        return BrokenPipeError(errno.EPIPE, "the reader left")
    return UsageError(str(e))


def _completion(shell: str) -> int:
    """`completion SHELL`: shtab's static script from this parser (no code of ours runs at a TAB press),
    with trace and script arguments completing file names, and scenario names after record and alone."""
    if shell not in _SHELLS:
        hint = " (shtab, which writes the scripts, has no fish support)" if shell == "fish" else ""
        raise UsageError(f"completion: no script for {shell!r}{hint}; choose from {', '.join(_SHELLS)}")
    try:
        import shtab
    except ImportError:
        raise UsageError("completion needs shtab: pip install shtab") from None
    from .scenarios import catalogue

    parser = _parser()
    names = sorted(catalogue())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in list(sub.choices.items()):
        for action in command._actions:
            if action.metavar in ("FILE", "TRACE", "SCRIPT"):
                action.complete = shtab.FILE  # type: ignore[attr-defined]
            elif name == "record" and action.dest == "scenario":
                action.choices = names
            elif name == "completion" and action.dest == "shell":
                action.choices = list(_SHELLS)
    for name in names:  # `concurview NAME` runs a scenario in the app: its names complete as commands do
        if name not in sub.choices:
            alone = sub.add_parser(name, help="run this scenario in the app")
            alone.add_argument("--set", action="append", metavar="KEY=VALUE")
    sys.stdout.write(shtab.complete(parser, shell=shell))
    return 0


def _users_fault(e: Exception) -> bool:
    """A scenario, trace-file or output error: bad input, said in one line. Their modules are looked up, not
    imported: one that raised is loaded (`run --record` starts its program before msgspec is imported)."""
    for module, name in (("concurview.scenarios", "ScenarioError"), ("concurview.trace.tracefile", "TraceFormatError"),
                         ("concurview.trace.outfile", "OutputError")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(e, getattr(loaded, name)):
            return True
    return False


def _split_program(argv: list[str]) -> list[str]:
    """`run [OPTIONS] (SCRIPT | -m MODULE) ARGS...`: everything after the program is the program's.

    Marks the split with `--`, so the program's own options (`--help` too) never
    reach concurview's parser.
    """
    out = ["run"]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--record", "--timeout", "--max-events", "--python") and i + 1 < len(argv):
            out += [a, argv[i + 1]]
            i += 2
        elif a.startswith(("--record=", "--timeout=", "--max-events=", "--python=")) or a in ("-h", "--help"):
            out.append(a)
            i += 1
        elif a == "-m" and i + 1 < len(argv):
            return out + ["-m", argv[i + 1], "--", *argv[i + 2:]]
        elif a.startswith("-m") and len(a) > 2:
            return out + ["-m", a[2:], "--", *argv[i + 1:]]
        elif a == "--":
            return out + argv[i:]
        elif a.startswith("-"):
            return out + argv[i:]  # an unknown option: let argparse say so
        else:
            return out + ["--", *argv[i:]]
    return out


def _scenario(name: str, sets: list[str]):
    from .scenarios import get

    scenario = get(name)
    return scenario, scenario.coerce(_parse_sets(sets))


def _list(as_json: bool) -> int:
    from .scenarios import TOPICS, catalogue

    scenarios = list(catalogue().values())
    if as_json:
        print(json.dumps([
            {"name": s.name, "title": s.title, "topic": s.topic, "summary": _whole_summary(s),
             "description": s.description, "params": s.params, "unavailable": s.unavailable}
            for s in scenarios
        ], ensure_ascii=False, indent=2))
        return 0
    width = max((len(s.name) for s in scenarios), default=0)
    topic = None
    for s in scenarios:
        if s.topic != topic:
            topic = s.topic
            print(f"{'' if topic == scenarios[0].topic else chr(10)}{TOPICS.get(topic, topic)}")
        why = s.unavailable
        print(f"  {s.name:<{width}}  " + (f"(unavailable: {why}) {s.summary}" if why else s.summary))
    return 0


def _whole_summary(s) -> str:
    """Scenario.summary without its cut at 100 characters (the text listing's): for --json."""
    first = s.description.strip().split("\n\n")[0].replace("\n", " ")
    return first if s.variant_of is None else f"{s.title} - {first}"


def _output_path(raw: str, option: str = "-o", inputs: tuple = ()) -> Path:
    """`raw` checked as an output file (trace/outfile.py) before any work is done: UsageError if it cannot be."""
    from .trace.outfile import OutputError, check

    if not raw.strip():
        raise UsageError(f"{option}: an empty file name; give a file like trace.jsonl")
    out = Path(raw)
    if out.is_dir():
        raise UsageError(f"{out}: is a directory; give a file name like {out / 'trace.jsonl'}")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: no such directory")
    try:
        check(out, inputs)
    except OutputError as e:
        raise UsageError(str(e)) from None
    return out


def _max_events(args: argparse.Namespace) -> int:
    from .engines.runner import max_events_from_env

    if args.max_events is not None:
        return args.max_events
    try:
        return max_events_from_env()
    except ValueError as e:
        raise UsageError(str(e)) from None


# Signals a headless run passes on to the program (Ctrl+C, kill, a closed terminal): the program is in a
# session of its own, so no terminal reaches it; it gets them from us, as it would from the terminal.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The program died of this signal: so do we, once the trace is written (main()), as python does after
# an uncaught KeyboardInterrupt -- a shell's loop stops on Ctrl+C only if its command died of SIGINT.
_die_by: int | None = None


def _record_run(target, out: Path, timeout: float | None, label: str, max_events: int | None = None,
                inputs: tuple = ()) -> int:
    """Run `target` headless into trace file `out`; the exit status says how the run ended.

    The file is opened before the program starts (an unwritable output costs no run). If
    writing fails during the run (a full disk), the run is stopped, what was written is
    kept in the partial, and the exit status is 2 with one line naming it.

    The exit status is the program's: its exit code, or 128 + N when signal N ended it (we then end by
    SIGINT ourselves if that was it). 124 when --timeout stopped it; 128 + N when signal N reached
    us and the program had not ended within the grace period after it (it was killed).
    """
    global _die_by
    from .trace.outfile import OutputError, OutputFile
    from .engines.runner import Run

    run = Run(target, timeout=timeout, max_events=max_events)
    opened = OutputFile(out, inputs)
    writer = None
    failed: OutputError | None = None
    signalled: list[int] = []

    def started() -> None:
        # The trace writer (msgspec) and its header are made while the program's interpreter starts.
        nonlocal writer, failed
        from .trace.tracefile import TraceWriter

        try:
            writer = TraceWriter(opened, run.header)
        except OutputError as e:
            failed = e
            run.stop("cannot write the trace")

    run.on_started = started

    def forward(signum, _frame) -> None:
        signalled.append(signum)
        run.forward(signum)

    # A signal the user's shell set to be ignored stays ignored (`nohup concurview record ...` keeps
    # recording when the terminal closes): the program inherits SIG_IGN from us, as under plain python.
    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        for batch in run:
            if failed is not None:
                continue  # draining a stopped run
            try:
                writer.lanes(batch.lanes)
                writer.events(batch.events)
            except OutputError as e:
                failed = e
                run.stop("cannot write the trace")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        footer = run.footer()
        if failed is None and writer is None:  # the program never started
            started()
        if failed is None:
            try:
                writer.close(footer)
            except OutputError as e:
                failed = e
        elif writer is None:
            opened.discard()
    if failed is not None:
        raise _output_failed(failed)
    if run.boot_failure is not None:  # its traceback is on stderr already (or in the trace's output lines)
        print(_clean(f"concurview: {footer.reason}"), file=sys.stderr)
        return 2
    line = f"{label}: {footer.events} events, {footer.lanes} lanes, {footer.duration / 1e9:.3f} s -> {_shown(out)}"
    if footer.dropped:
        line += f", {footer.dropped} events dropped" + (
            f" (kept the first {footer.max_events}; --max-events)" if footer.max_events else "")
    code = footer.exit_code
    if not footer.complete or code is not None and code < 0:
        print(_clean(f"{line} ({'incomplete' if not footer.complete else 'ended'}: {footer.reason})"),
              file=sys.stderr)
        if run.stop_reason is not None:
            return 128 + signalled[0] if signalled else 124
        if code is not None and code < 0:
            if code == -signal.SIGINT:
                _die_by = signal.SIGINT
            return 128 - code  # 130 for SIGINT, 143 for SIGTERM, as a shell reports python's end
        return 1 if code is None else code
    print(_clean(line), file=sys.stderr)
    return code or 0


def _clean(text: str) -> str:
    """`text` with terminal control characters shown as \\xNN instead of sent to the terminal.

    A trace file is data from elsewhere: its strings must not drive the terminal (escape sequences,
    title changes). The app's sanitiser, trace/text.py's clean(), does it for the app and the CLI alike.
    """
    from .trace.text import clean

    return clean(text)


def _clean_json(text: str) -> str:
    """JSON escapes C0 controls itself; C1 controls (ensure_ascii=False) become \\u escapes, still valid JSON."""
    return text.translate({c: f"\\u{c:04x}" for c in [0x7f, *range(0x80, 0xa0)]})


def _record(args: argparse.Namespace) -> int:
    from .engines.runner import Target

    scenario, params = _scenario(args.scenario, args.set)
    if scenario.unavailable:
        raise UsageError(f"scenario {scenario.name!r} is unavailable here: {scenario.unavailable}")
    out = _output_path(_trace_output(args.output, "-o"), inputs=(scenario.path,))
    return _record_run(_with_python(Target(str(scenario.path), scenario.name, params), args.python), out,
                       args.timeout, scenario.name, _max_events(args), inputs=(scenario.path,))


def _with_python(target, path: str | None):
    """`--python PATH`: the target run by that interpreter, checked first (one line and exit 2 if it is not one)."""
    if path is not None:
        from .engines.runner import PythonError, check_python

        try:
            target.python, target.python_version = check_python(path)
        except PythonError as e:
            raise UsageError(str(e)) from None
    return target


def _trace_output(raw: str, option: str) -> str:
    """The trace output's path: `-` is stdout, made ours alone (_trace_to_stdout)."""
    return _trace_to_stdout(option) if raw == STDIO else raw


def _shown(out: Path) -> str:
    """An output's name in our messages: `stdout` for the trace we send there."""
    return "stdout" if os.fspath(out).startswith("/dev/fd/") and _stdout_fd is not None else str(out)


def _check_module(name: str) -> None:
    """`-m NAME` that python could not find: a usage error here, not a run that fails. Only the
    top-level name is looked up (finding `pkg.mod` would import `pkg`, the program's code, in here);
    python -m looks in the working directory first."""
    import importlib.machinery
    import importlib.util

    top = name.split(".")[0]
    try:
        found = importlib.util.find_spec(top) or importlib.machinery.PathFinder.find_spec(top, [os.getcwd()])
    except (ImportError, ValueError):
        found = None
    if not top or found is None:
        raise UsageError(f"-m {name}: No module named {top or repr(name)}")


def _run_program(args: argparse.Namespace) -> int:
    from .engines.child import ENV_ARGV0
    from .engines.runner import Target

    if args.args[:1] == ["--"]:
        args.args = args.args[1:]
    if args.record is not None and not args.record.strip():
        raise UsageError("--record: an empty file name; give a file like trace.jsonl")
    if args.module:
        if args.python is None:  # another interpreter's modules are its own to find
            _check_module(args.module)
        program_args = ([args.script] if args.script else []) + args.args
        target = Target(args.module, args=program_args, module=True, echo=args.record is not None)
        label = f"-m {args.module}"
    elif args.script == STDIO:
        raise UsageError("run -: a program from stdin is not supported (the program keeps stdin); "
                         "save it to a file and run that")
    elif args.script:
        script = Path(args.script)
        if not script.is_file():
            raise UsageError(f"{script}: no such file" if not script.exists() else f"{script}: not a file")
        target = Target(str(script.resolve()), args=args.args, echo=args.record is not None)
        import os

        os.environ[ENV_ARGV0] = args.script  # the program's sys.argv[0]: the path as given, as python has it
        label = script.name
    else:
        raise UsageError("run wants a SCRIPT or -m MODULE")
    _with_python(target, args.python)
    max_events = _max_events(args)
    if args.record is not None:  # `--record ""` is a bad name, not "no recording"
        inputs = (args.script,) if args.script and not args.module else ()
        out = _output_path(_trace_output(args.record, "--record"), "--record", inputs)
        return _record_run(target, out, args.timeout, label, max_events, inputs)
    if args.max_events is not None:
        import os

        from .engines.runner import ENV_MAX_EVENTS

        os.environ[ENV_MAX_EVENTS] = str(max_events)  # the app's Run reads it
    return _run_live(target, args.timeout)


def _app_factory():
    """`make_app`, imported with the cyclic garbage collector off, then everything the imports made (some 40k
    modules, classes and Textual's parsed CSS, all alive until exit) moved where no collection walks it again
    (`gc.freeze`): the first frame comes ~35 ms sooner (bench_ui), and later full collections are shorter."""
    import gc

    gc.disable()
    try:
        from .tui.app import make_app
    finally:
        gc.freeze()
        gc.enable()
    return make_app


STDIN_NOTICE = ("concurview: the app has the terminal, so the program's stdin is not connected (input() "
                "gets EOF); `concurview run --record FILE ...` leaves it the terminal")


def _run_live(target, timeout: float | None) -> int:
    """The app, live on the user's program. Exit status: the program's own exit code when it ran to its
    end (as under python); 124 when it was stopped or timed out before (as `--record` does for a timeout).

    The app owns the terminal (keys, screen): the program gets /dev/null as stdin and a pipe as stdout.
    Said before the app starts, so a program that reads input() and fails with EOFError is not a mystery."""
    print(STDIN_NOTICE, file=sys.stderr, flush=True)
    make_app = _app_factory()
    app = make_app(program=target, run_timeout=timeout)
    app.run()
    return 124 if app.program_exit is None else app.program_exit


def _compare(args: argparse.Namespace) -> int:
    from .engines.compare import run_model
    from .trace.compare import merge, table
    from .trace.narrative import format_time

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in _MODELS]
    if unknown or not models:
        raise UsageError(f"unknown model {', '.join(unknown) or '(none)'}; choose from {', '.join(_MODELS)}")
    # Opened before the runs: an unwritable output is an error now, not after minutes of runs.
    opened = None
    if args.output is not None:
        from .trace.outfile import OutputFile

        if args.output == STDIO and args.json:
            raise UsageError("-o - and --json both want stdout; give -o FILE")
        opened = OutputFile(_output_path(_trace_output(args.output, "-o")))
    runs = []
    try:
        for model in models:
            print(f"running {model} ...", file=sys.stderr)
            runs.append(run_model(model, args.jobs, args.job_sleep, args.workers, args.timeout))
    except BaseException:
        if opened is not None:
            opened.discard()  # nothing was written to it
        raise
    rows = table(runs)
    failed = None
    if opened is not None:
        from .trace.outfile import OutputError
        from .trace.tracefile import TraceWriter

        params = {"models": models, "jobs": args.jobs, "job_sleep": args.job_sleep, "workers": args.workers}
        tl = merge(runs, params)
        try:
            writer = TraceWriter(opened, tl.header)
            writer.lanes(tl.lanes)
            writer.events([tl.event(i) for i in range(tl.n_events)])
            out = writer.close(tl.footer)
            if _stdout_fd is None:
                print(f"stacked trace -> {out} (concurview open {out})", file=sys.stderr)
        except OutputError as e:
            failed = e  # said after the table: the runs' numbers are not lost with the file
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{args.jobs} jobs x {args.job_sleep:g} s, {args.workers} workers\n")
        print(f"  {'model':<11} {'total':>9} {'ideal':>9} {'switches':>8} {'lanes':>5} {'most at once':>12}"
              f" {'in flight':>9}")
        for r in rows:
            total = "failed" if r["total_s"] is None else format_time(int(r["total_s"] * 1e9))
            print(f"  {r['model']:<11} {total:>9} {format_time(int(r['ideal_s'] * 1e9)):>9} "
                  f"{r['switches']:>8} {r['lanes']:>5} {r['max_running_workers']:>12} {r['max_in_flight_workers']:>9}")
        counted = sorted({r.get("max_running_counts", "lanes running (hooks)") for r in rows})
        print(f"\n  most at once: workers running at the same moment ({'; '.join(counted)});"
              "\n  in flight: workers in the middle of a job, whatever their state (a sleeping job counts)")
    if failed is not None:
        raise _output_failed(failed)
    return 0 if all(r["complete"] and r["exit_code"] == 0 for r in rows) else 1


def _export(args: argparse.Namespace) -> int:
    from .trace.export import SUFFIXES, export
    from .trace.store import load

    if not 40 <= args.width <= 1000:
        raise UsageError(f"--width must be between 40 and 1000 columns, got {args.width}")
    from .trace.outfile import same_file, write_output

    trace = _input(args.trace)
    src = Path(trace)
    if not os.path.exists(src):
        load(trace, args.max_bytes)  # a missing input is the first thing to say (its one-line error)
    out: Path | None = None  # stdout
    # The output is checked before the (maybe long) load; it is never the input, by any name or link
    # (stdin counts when it is a file: `concurview export - -o - < t.jsonl >> t.jsonl`).
    inputs = (src,) if trace != _STDIN or _stdin_is_a_file() else ()
    if args.output is None and trace == _STDIN:
        args.output = STDIO  # a filter: no name to put the output beside
    if args.output is None:
        stem = src.name.split(".")[0] or "trace"
        out = src.with_name(stem + SUFFIXES[args.to])
        if same_file(out, src):
            raise UsageError(f"{src}: the default output name for --to {args.to} is this input itself; "
                             "give -o FILE")
        out = _output_path(str(out), inputs=inputs)
    elif args.output != STDIO:
        out = _output_path(args.output, inputs=inputs)
    else:
        _output_path("/dev/stdout", "-o", inputs)  # not `>> t.jsonl` of the input itself
    tl = load(trace, args.max_bytes)
    text = export(tl, args.to, args.width)
    if args.to in ("txt", "svg"):
        # txt: for a terminal, or a file someone will `cat`; svg: XML allows no C0 controls.
        text = _clean(text)
    if out is None:
        _write_stdout(text.encode("utf-8"))  # UTF-8 as in a file, whatever the locale
        return 0
    out = write_output(out, text.encode("utf-8"), inputs=inputs)
    print(f"{args.to}: {out}", file=sys.stderr)
    return 0


def _write_stdout(data: bytes) -> None:
    """All of `data` to stdout. A buffered write bigger than the buffer may write part of it and say so
    (a pipe whose reader left mid-write takes what fits): the rest is written until done or EPIPE."""
    sys.stdout.flush()
    out, view = sys.stdout.buffer, memoryview(data)
    while view:
        view = view[out.write(view):]
    out.flush()


def _summary(path: str, as_json: bool, max_bytes: int | None = None, every_lane: bool = False) -> int:
    from .trace.lints import lints
    from .trace.narrative import format_time
    from .trace.store import load

    tl = load(path, max_bytes)
    s = tl.summary()
    s["warnings"] = [lint.as_json() for lint in lints(tl)]
    if as_json:
        _summary_json(s)
        return 0
    say = _print_clean  # every line below carries strings from the trace file
    title = s["scenario"] or s["program"] or path
    state = "complete" if s["complete"] else f"INCOMPLETE: {s['incomplete_reason']}"
    code = "unknown" if s["exit_code"] is None else s["exit_code"]  # a foreign trace (Chrome) has none
    say(f"{title}  ({state}, exit code {code})")
    if s["params"]:
        say("params: " + " ".join(f"{k}={v}" for k, v in s["params"].items()))
    say(f"duration {format_time(int(s['duration_s'] * 1e9))} · {s['events']} events · {s['lanes']} lanes · "
          f"{s['switches']} switches · {s['dropped']} dropped · {s['errors']} errors")
    if s["undeclared"]:
        say(f"{s['undeclared']} event{'s' if s['undeclared'] != 1 else ''} on undeclared lanes ignored")
    rows = s["lane_totals"]
    shown = rows if every_lane or len(rows) <= _SUMMARY_LANES else rows[:_SUMMARY_LANES]
    w = max([4] + [len(lane.name) for lane in tl.lanes[:len(shown)]])
    blocked = bool(s["blocks"])  # the column only when a lane blocked its thread
    gil = bool(s.get("gil_view")) and s.get("max_running_counts") is not None  # the GIL view's numbers
    extra = (f" {'blocking':>10}" if blocked else "") + (f" {'GIL held':>10} {'GIL wait':>10} {'in kernel':>10}"
                                                          if gil else "")
    say(f"\n  {'lane':<{w}}  {'kind':<9} {'running':>10} {'waiting':>10} {'ready':>10} {'switches':>8}{extra}")
    for r in shown:
        cells = [format_time(int(r[k] * 1e9)) for k in ("running_s", "waiting_s", "ready_s", "blocking_s")]
        more = f" {cells[3]:>10}" if blocked else ""
        if gil:
            more += "".join(f" {format_time(int(r[k] * 1e9)) if k in r else '-':>10}"
                            for k in ("gil_s", "gil_wait_s", "kernel_s"))
        say(f"  {r['name']:<{w}}  {r['kind']:<9} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} {r['switches']:>8}"
            + more)
    if len(shown) < len(rows):
        say(f"  ... and {len(rows) - len(shown):,} more lanes (--all lists them; --json has them all)")
    counts = f" (counting {s['max_running_counts']})" if s.get("max_running_counts") else ""
    say("\nmost running at once: " + ", ".join(f"{k} {v}" for k, v in s["max_running"].items()) + counts)
    say("jobs in flight at once: " + ", ".join(f"{k} {v}" for k, v in s["max_in_flight"].items()))
    if s.get("gil_view"):
        say(s["gil_view"])
    if s["warnings"]:
        say(f"\n{len(s['warnings'])} warning{'s' if len(s['warnings']) != 1 else ''}:")
        for lint in s["warnings"]:
            say(f"  ! {lint['text']}")
    return 0


def _summary_json(s: dict) -> None:
    """summary --json, its lane rows written one at a time (a million lanes are not a million dicts at once)."""
    head = dict(s)
    rows = head.pop("lane_totals")
    text = json.dumps(head, ensure_ascii=False, indent=2)
    out = sys.stdout
    out.write(_clean_json(text[:-2]) + ',\n  "lane_totals": [')
    import msgspec

    encode = msgspec.json.Encoder().encode  # 15x json.dumps for a million small rows
    lines: list[str] = []
    for k, row in enumerate(rows):
        lines.append(("," if k else "") + "\n    " + encode(row).decode())
        if len(lines) >= 4096:
            out.write(_clean_json("".join(lines)))
            lines.clear()
    out.write(_clean_json("".join(lines)) + ("\n  ]\n}\n" if len(rows) else "]\n}\n"))


def _print_clean(*parts: object, **kwargs) -> None:
    import builtins

    builtins.print(*(_clean(str(p)) for p in parts), **kwargs)


def _run_app(**kwargs) -> int:
    from .engines.runner import max_events_from_env

    try:
        max_events_from_env()  # the app's runs read it: a bad value is an error here, not in the app
    except ValueError as e:
        raise UsageError(str(e)) from None
    make_app = _app_factory()
    app = make_app(**kwargs)
    app.run()
    return app.return_code or 0
