"""The scenario catalogue: each scenario is a plain program whose `SCENARIO = {...}` header is read without running it."""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass, field
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Picker order and headings.
TOPICS = {
    "threads": "Threads & pools",
    "processes": "Processes",
    "coroutines": "Coroutines & generators",
    "greenlet": "greenlet & gevent",
    "asyncio": "asyncio",
    "io": "IO models",
    "sockets": "Sockets",
    "compare": "Compare models",
}


class ScenarioError(Exception):
    """A scenario or parameter problem; the message is one line for the user."""


# What a scenario may need from the platform (its header's "requires" list).
REQUIREMENTS = ("linux", "select", "poll", "epoll", "sigio", "io_uring")


def requirement_missing(req: str) -> str | None:
    """Why requirement `req` is not met on this platform (one line), or None if it is."""
    import select
    import signal

    linux = sys.platform.startswith("linux")
    if req == "linux":
        return None if linux else f"needs Linux (this is {sys.platform})"
    if req in ("select", "poll", "epoll"):
        if hasattr(select, req):
            return None
        return ("epoll needs Linux (select.epoll missing)" if req == "epoll"
                else f"{req}() is missing on {sys.platform} (select.{req})")
    if req == "sigio":
        if hasattr(signal, "SIGIO") and hasattr(os, "O_ASYNC"):
            return None
        return f"signal-driven IO needs SIGIO and O_ASYNC (missing on {sys.platform})"
    if req == "io_uring":
        if not linux:
            return f"io_uring needs Linux (this is {sys.platform})"
        try:
            with open("/proc/sys/kernel/io_uring_disabled", encoding="ascii") as f:
                if f.read().strip() == "2":
                    return "io_uring is disabled by the kernel (kernel.io_uring_disabled = 2)"
        except OSError:
            pass
        return None
    return f"unknown requirement {req!r}"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    topic: str
    description: str
    path: Path
    params: dict[str, object] = field(default_factory=dict)
    facts: tuple[str, ...] = ()
    order: int = 0
    # The child runs gevent.monkey.patch_all() before anything else (unless the
    # scenario has a `patch` parameter and it is false).
    gevent: bool = False
    # Platform facts the program needs (REQUIREMENTS); see `unavailable`.
    requires: tuple[str, ...] = ()
    # A variant without a description in its header (the base's, or VARIANT_LEADS' opening and the base's rest):
    # the listing leads with its own title.
    variant_of: str | None = None
    # What each parameter may be, beyond its type (the header's "limits"): numbers a (low, high)
    # range, either end None for open; strings a tuple of choices or a regular expression. Numbers
    # without limits must be >= 0 (a count, a size or a time).
    limits: dict[str, object] = field(default_factory=dict)

    @property
    def unavailable(self) -> str | None:
        """None if the scenario can run on this platform, else a one-line reason."""
        for req in self.requires:
            reason = requirement_missing(req)
            if reason:
                return reason
        return None

    @property
    def summary(self) -> str:
        """The first sentence of the description (a variant's own title first), for one-line listings."""
        first = self.description.strip().split("\n\n")[0].replace("\n", " ")
        if self.variant_of is not None:
            first = f"{self.title} - {first}"
        return first if len(first) <= 100 else first[:97] + "..."

    def changed(self, params: Mapping[str, object] | None) -> str:
        """The parameters that differ from this scenario's defaults, as `--set` would take them:
        `patch=false · eat_sleep=0.5` ("" when all are the defaults)."""
        out = []
        for key, value in (params or {}).items():
            if key in self.params and value != self.params[key]:
                out.append(f"{key}={format_value(value)}")
        return " · ".join(out)

    def coerce(self, overrides: dict[str, str]) -> dict[str, object]:
        """Turn `--set key=value` strings into typed parameters (the type of each default)."""
        out = dict(self.params)
        for key, raw in overrides.items():
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise ScenarioError(f"scenario {self.name!r} has no parameter {key!r} (parameters: {known})")
            out[key] = _coerce_value(self.name, key, self.params[key], raw)
            _check_limit(self.name, key, out[key], self.limits.get(key), self.params[key])
        return out


def format_value(value: object) -> str:
    """A parameter's value as it is typed: `false`, `0.5`, `20`, `poll`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _check_limit(scenario: str, key: str, value: object, limit: object, example: object) -> None:
    """A ScenarioError (one line) unless `value` is within the parameter's limit."""
    if isinstance(value, bool):
        return
    bad = f"scenario {scenario!r}: parameter {key!r}"
    if isinstance(value, (int, float)):
        low, high = limit if isinstance(limit, tuple) else (0, None)
        if low is not None and value < low:
            raise ScenarioError(f"{bad} must be at least {low}, got {value!r}")
        if high is not None and value > high:
            raise ScenarioError(f"{bad} must be at most {high}, got {value!r}")
    elif isinstance(limit, tuple) and value not in limit:
        raise ScenarioError(f"{bad} must be one of {', '.join(map(str, limit))}; got {value!r}")
    elif isinstance(limit, str) and re.fullmatch(limit, str(value)) is None:
        raise ScenarioError(f"{bad} must look like {example!r} (the pattern {limit}), got {value!r}")


def _limits(value: object, params: dict[str, object], path: Path) -> dict[str, object]:
    """The header's "limits", checked: each names a parameter, with a (low, high) range or choices or a pattern."""
    if not isinstance(value, dict) or not set(value) <= set(params):
        raise ScenarioError(f"{path.name}: 'limits' must map known parameters to their limits; got {value!r}")
    out: dict[str, object] = {}
    for key, limit in value.items():
        if isinstance(limit, str):
            re.compile(limit)
            out[key] = limit
        elif isinstance(limit, (list, tuple)):
            out[key] = tuple(limit)
        else:
            raise ScenarioError(f"{path.name}: limit of {key!r} must be a range, choices or a pattern")
    return out


def _coerce_value(scenario: str, key: str, default: object, raw: str) -> object:
    kind = type(default)
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        return raw
    except ValueError:
        raise ScenarioError(
            f"scenario {scenario!r}: parameter {key!r} wants {kind.__name__}, got {raw!r}") from None


def _header(tree: ast.Module, path: Path) -> dict:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "SCENARIO"):
            try:
                header = ast.literal_eval(node.value)
            except ValueError:
                raise ScenarioError(f"{path.name}: SCENARIO must be a literal dict") from None
            if not isinstance(header, dict) or "name" not in header:
                raise ScenarioError(f"{path.name}: SCENARIO needs at least a 'name'")
            return header
    raise ScenarioError(f"{path.name}: no SCENARIO header")


# A variant's own opening paragraph, for the variants whose file gives them none: it replaces the
# base scenario's (which describes the defaults: "shutdown(wait=True) waits ..."); the rest of the
# base's description follows (what to watch for, what the lesson's code got wrong).
VARIANT_LEADS = {
    "threadpool-shutdown-nowait":
        "Twenty tasks on a pool of three threads: shutdown(wait=False) returns at once, so '主' is printed "
        "while tasks still run - yet every queued task still runs before the program exits, and the closed "
        "pool refuses new work.",
    "timer-cancel":
        "threading.Timer cancelled before it fires: MainThread calls t.cancel() halfway through the delay; "
        "the timer thread wakes early, sees it was cancelled and ends without running the task.",
    "io-poll":
        "IO multiplexing with poll(): one call waits until any of many sockets is readable; then recv() copies. "
        "No 1024-descriptor limit as with select(), but the whole list is still handed to the kernel on every call.",
    "io-epoll":
        "IO multiplexing with epoll: the kernel keeps the watched list (epoll_ctl once) and epoll_wait waits "
        "until any socket is readable; then recv() copies. Its cost stays flat with thousands of idle sockets.",
    "socket-echo-gevent":
        "Single-threaded socket concurrency with gevent: StreamServer starts a greenlet per connection, and "
        "every recv()/sendall() that would block switches to the hub - N clients, one OS thread.",
    "socket-echo-asyncio":
        "Single-threaded socket concurrency with asyncio streams: a task per connection; each "
        "`await reader.read()` hands the thread back to the event loop - N clients, one OS thread.",
    "socket-echo-threads":
        "Socket concurrency with a thread per client: each connection's thread blocks in its own recv() and "
        "the kernel does the multiplexing, at the price of a thread (stack, memory, scheduling) per connection.",
}


def load(path: str | os.PathLike[str], order: int = 0) -> Scenario:
    """The scenario a file defines (its variants are in load_all)."""
    return load_all(path, order)[0]


def load_all(path: str | os.PathLike[str], order: int = 0) -> list[Scenario]:
    """The scenario a file defines, then its variants.

    A variant (`"variants": [{"name": ..., "params": {...}}, ...]` in the
    header) is the same program under its own name, with some parameter
    defaults changed and optionally its own title, description and facts.
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as e:
        raise ScenarioError(f"{path}: cannot read scenario: {e}") from None
    h = _header(tree, path)
    base = Scenario(
        name=h["name"], title=h.get("title", h["name"]), topic=h.get("topic", "other"),
        description=_reflow(ast.get_docstring(tree) or ""), path=path, params=dict(h.get("params", {})),
        facts=tuple(h.get("facts", ())), order=int(h.get("order", order)),
        gevent=bool(h.get("gevent", False)), requires=_requires(h.get("requires", ()), path),
        limits=_limits(h.get("limits", {}), dict(h.get("params", {})), path),
    )
    out = [base]
    for i, v in enumerate(h.get("variants", ())):
        unknown = set(v.get("params", {})) - set(base.params)
        if "name" not in v or unknown:
            raise ScenarioError(f"{path.name}: variant {i + 1} needs a name and known params (unknown: {unknown})")
        if "description" in v:
            description = _reflow(v["description"])
        elif v["name"] in VARIANT_LEADS:
            description = "\n\n".join([VARIANT_LEADS[v["name"]], *base.description.split("\n\n")[1:]])
        else:
            description = base.description
        out.append(Scenario(
            name=v["name"], title=v.get("title", v["name"]), topic=base.topic,
            description=description, path=path,
            params={**base.params, **v.get("params", {})}, facts=tuple(v.get("facts", base.facts)),
            order=int(v.get("order", base.order)), gevent=base.gevent,
            requires=_requires(v["requires"], path) if "requires" in v else base.requires,
            variant_of=None if "description" in v or "title" not in v else base.name, limits=base.limits,
        ))
    return out


def _requires(value: object, path: Path) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, str) and r in REQUIREMENTS for r in value):
        raise ScenarioError(f"{path.name}: 'requires' must be a list from {', '.join(REQUIREMENTS)}; got {value!r}")
    return tuple(value)


def _reflow(doc: str) -> str:
    """Join each paragraph's lines, so the picker can wrap the text to its own width."""
    return "\n\n".join(" ".join(p.split()) for p in doc.strip().split("\n\n"))


_cache: dict[str, Scenario] | None = None


def catalogue() -> dict[str, Scenario]:
    """Every scenario shipped with concurview, by name, in picker order."""
    global _cache
    if _cache is None:
        found = [s for p in sorted(HERE.glob("*.py")) if not p.name.startswith("_") for s in load_all(p)]
        topic_rank = {t: i for i, t in enumerate(TOPICS)}
        found.sort(key=lambda s: (topic_rank.get(s.topic, len(TOPICS)), s.order, s.name))
        _cache = {s.name: s for s in found}
    return _cache


def get(name: str) -> Scenario:
    try:
        return catalogue()[name]
    except KeyError:
        names = ", ".join(catalogue())
        raise ScenarioError(f"unknown scenario {name!r} (try one of: {names})") from None


def with_params(path: str | os.PathLike[str], params: dict[str, object]) -> ast.Module:
    """The scenario's syntax tree with the literal defaults in SCENARIO['params'] replaced.

    Only constants change, so line numbers, tracebacks and the source pane still
    match the file on disk.
    """
    path = Path(path)
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "SCENARIO" and isinstance(node.value, ast.Dict)):
            for k, v in zip(node.value.keys, node.value.values):
                if isinstance(k, ast.Constant) and k.value == "params" and isinstance(v, ast.Dict):
                    for i, pk in enumerate(v.keys):
                        if isinstance(pk, ast.Constant) and pk.value in params:
                            old = v.values[i]
                            new = ast.Constant(params[pk.value])
                            v.values[i] = ast.copy_location(new, old)
                            new.end_lineno, new.end_col_offset = old.end_lineno, old.end_col_offset
    return tree
