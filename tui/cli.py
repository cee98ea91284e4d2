"""The `concurview` command line: list, record, summary, open, and the app (Textual is imported only for the app)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from concurview import __version__

COMMANDS = ("list", "record", "summary", "open")

EPILOG = """\
commands:
  (none)                 open the scenario picker
  NAME                   run scenario NAME in the app
  list                   the scenarios, one line each
  record NAME -o FILE    run a scenario headless and save its trace
  summary TRACE          lanes, switches, time running/waiting, max running at once
  open TRACE             open a recorded trace in the app

examples:
  concurview record asyncio-tasks -o t.jsonl --set task_sleep=0.3
  concurview summary t.jsonl --json
"""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="concurview",
        description="See how Python runs concurrent work, switch by switch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"concurview {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="list the scenarios")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    rec = sub.add_parser("record", help="run a scenario headless and save its trace")
    rec.add_argument("scenario", metavar="NAME")
    rec.add_argument("-o", "--output", required=True, metavar="FILE", help="trace file (.jsonl or .jsonl.gz)")
    rec.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    rec.add_argument("--timeout", type=_positive_float, metavar="S", help="kill the run after S seconds")

    sm = sub.add_parser("summary", help="summarise a trace file")
    sm.add_argument("trace", metavar="TRACE")
    sm.add_argument("--json", action="store_true", help="machine-readable output")

    op = sub.add_parser("open", help="open a trace file in the app")
    op.add_argument("trace", metavar="TRACE")
    return p


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {raw!r}")
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
        return _dispatch(argv)
    except UsageError as e:
        print(f"concurview: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `concurview summary t.jsonl | head`: the reader left; so do we, quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(argv: list[str]) -> int:
    from concurview.engines.tracefile import TraceFormatError
    from concurview.scenarios import ScenarioError

    # `concurview NAME [--set ...]` runs a scenario in the app.
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        sub = _Parser(prog="concurview NAME")
        sub.add_argument("scenario")
        sub.add_argument("--set", action="append", default=[])
        args = sub.parse_args(argv)
        try:
            scenario, params = _scenario(args.scenario, args.set)
        except ScenarioError as e:
            raise UsageError(str(e)) from None
        return _run_app(scenario=scenario.name, params=params)

    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list(args.json)
        if args.command == "record":
            return _record(args)
        if args.command == "summary":
            return _summary(args.trace, args.json)
        if args.command == "open":
            from concurview.tui.store import load

            load(args.trace)  # fail here, in one line, not inside the app
            return _run_app(trace=args.trace)
        return _run_app()
    except (ScenarioError, TraceFormatError) as e:
        raise UsageError(str(e)) from None


def _scenario(name: str, sets: list[str]):
    from concurview.scenarios import get

    scenario = get(name)
    return scenario, scenario.coerce(_parse_sets(sets))


def _list(as_json: bool) -> int:
    from concurview.scenarios import TOPICS, catalogue

    scenarios = list(catalogue().values())
    if as_json:
        print(json.dumps([
            {"name": s.name, "title": s.title, "topic": s.topic, "summary": s.summary, "params": s.params}
            for s in scenarios
        ], ensure_ascii=False, indent=2))
        return 0
    width = max((len(s.name) for s in scenarios), default=0)
    topic = None
    for s in scenarios:
        if s.topic != topic:
            topic = s.topic
            print(f"{'' if topic == scenarios[0].topic else chr(10)}{TOPICS.get(topic, topic)}")
        print(f"  {s.name:<{width}}  {s.summary}")
    return 0


def _record(args: argparse.Namespace) -> int:
    from concurview.engines.runner import Run, Target
    from concurview.engines.tracefile import TraceWriter

    scenario, params = _scenario(args.scenario, args.set)
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"{out}: is a directory; give a file name like {out / 'trace.jsonl'}")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: no such directory")
    run = Run(Target(str(scenario.path), scenario.name, params), timeout=args.timeout)
    writer = TraceWriter(out, run.header)
    # Ctrl+C stops the run (the child is in its own process group) and keeps what arrived.
    previous = signal.signal(signal.SIGINT, lambda *_: run.stop("interrupted"))
    try:
        for batch in run:
            writer.lanes(batch.lanes)
            writer.events(batch.events)
    finally:
        signal.signal(signal.SIGINT, previous)
        footer = run.footer()
        writer.close(footer)
    line = (f"{scenario.name}: {footer.events} events, {footer.lanes} lanes, "
            f"{footer.duration / 1e9:.3f} s -> {out}")
    if not footer.complete:
        print(f"{line} (incomplete: {footer.reason})", file=sys.stderr)
        return 130 if run.stop_reason == "interrupted" else 124
    print(line, file=sys.stderr)
    return footer.exit_code or 0


def _summary(path: str, as_json: bool) -> int:
    from concurview.tui.store import format_time, load

    tl = load(path)
    s = tl.summary()
    if as_json:
        print(json.dumps(s, ensure_ascii=False, indent=2))
        return 0
    title = s["scenario"] or s["program"] or path
    state = "complete" if s["complete"] else f"INCOMPLETE: {s['incomplete_reason']}"
    print(f"{title}  ({state}, exit code {s['exit_code']})")
    if s["params"]:
        print("params: " + " ".join(f"{k}={v}" for k, v in s["params"].items()))
    print(f"duration {format_time(int(s['duration_s'] * 1e9))} · {s['events']} events · {s['lanes']} lanes · "
          f"{s['switches']} switches · {s['dropped']} dropped · {s['errors']} errors")
    rows = s["lane_totals"]
    w = max([4] + [len(r["name"]) for r in rows])
    print(f"\n  {'lane':<{w}}  {'kind':<9} {'running':>10} {'waiting':>10} {'ready':>10} {'switches':>8}")
    for r in rows:
        cells = [format_time(int(r[k] * 1e9)) for k in ("running_s", "waiting_s", "ready_s")]
        print(f"  {r['name']:<{w}}  {r['kind']:<9} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} {r['switches']:>8}")
    print("\nmost running at once: " + ", ".join(f"{k} {v}" for k, v in s["max_running"].items()))
    return 0


def _run_app(**kwargs) -> int:
    from concurview.tui.app import make_app

    app = make_app(**kwargs)
    app.run()
    return app.return_code or 0
