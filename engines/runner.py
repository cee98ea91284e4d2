"""The runner: starts a traced child in its own process group, merges every process's frames, kills cleanly."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from .cgroup import RunCgroup

# Nothing here imports msgspec or numpy before the program is started (`run --record`'s start-up: they
# load while the child's interpreter starts). These equal recorder.py's and events.py's (a unit test says so).
ENV_CHANNEL = "CONCURVIEW_CHANNEL"
ENV_T0 = "CONCURVIEW_T0"
WIRE_LANE_SHIFT = 24

if TYPE_CHECKING:
    from ..trace.columns import Columns, Merger, Stream
    from ..trace.events import Event, Footer, Header, Lane
_EXIT_GRACE = 1.0  # s the run's other processes get to finish once the program has exited
# s the program gets to end by itself after a signal forwarded to it (Ctrl+C: its KeyboardInterrupt
# handlers, finally blocks, atexit hooks, a server's graceful shutdown) before the run kills it.
SIGNAL_GRACE = 5.0
_KILL_WAIT = 5.0  # s a killed program gets to be gone before the run gives up on it (never waits unbounded)
# The least time between two reads of the channel while frames flow. A write into a socket whose
# reader sleeps in select() wakes that reader from inside the writer's syscall: on a VM that is an
# interrupt to the other core for every frame, which the traced program pays for (asyncio sleep(0)
# storm: +250 ns a step, a third of the tracing). Reading at most every READ_GAP lets frames gather
# in the socket's buffer (about 100 kB a millisecond at full rate; the buffer holds 200 kB) and
# costs the view nothing (it repaints every 16 ms).
READ_GAP = 0.001

# Retention cap: the parent keeps at most this many events of a run; later ones are
# dropped and counted (footer.dropped, footer.max_events), so a flood cannot exhaust memory.
ENV_MAX_EVENTS = "CONCURVIEW_MAX_EVENTS"
DEFAULT_MAX_EVENTS = 5_000_000
_PR_SET_CHILD_SUBREAPER = 36
# Bytes written straight to fd 1/2 become one log event a line: a line is cut past this many bytes
# (with a marker), so output without newlines cannot grow the runner's memory.
OUTPUT_LINE_LIMIT = 64 * 1024
_PF_EXITING = 0x4  # /proc/PID/stat flags: the process is exiting (its files are being closed)
CLOSED_CHANNEL = "the program closed concurview's channel"
BOOT_FAILURE_TEXT = "the traced child failed before the program started"
_SUSPECT_WAIT = 0.25  # s after a stream ends before a running process is judged to have closed it


def max_events_from_env() -> int:
    """The retention cap from CONCURVIEW_MAX_EVENTS, or the default; ValueError (one line) if it is bad."""
    raw = os.environ.get(ENV_MAX_EVENTS, "").strip()
    if not raw:
        return DEFAULT_MAX_EVENTS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{ENV_MAX_EVENTS} wants a whole number of events, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{ENV_MAX_EVENTS} must be at least 1, got {raw!r}")
    return value


def _become_subreaper() -> None:
    """Orphans of the run (pool workers whose parent was killed first) are re-parented to us, not to init.

    Then we can reap them: in a container whose init never reaps, they would otherwise
    stay zombies in the program's process group. Linux only; elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _processes() -> Iterator[tuple[int, str, int, int, int]]:
    """(pid, state, ppid, pgid, sid) of every process we can see in /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        try:
            yield int(name), fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])
        except (IndexError, ValueError):
            continue


def _has_env(pid: int, entry: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:
        return False  # gone, or not ours to read


@dataclass
class Target:
    """What to run: a scenario with parameters, or a user's program with arguments."""

    path: str  # a file, or a module name when `module` is set
    scenario: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    module: bool = False
    # Headless runs in a terminal: the program keeps the terminal's stdin, stdout
    # and stderr (output is still recorded per lane), as under plain python.
    echo: bool = False
    # Another interpreter to run it with (`run --python PATH`: a project's own venv), checked by
    # check_python(); None: ours. `python_version` is what it said it is (the trace header's).
    python: str | None = None
    python_version: str | None = None

    def header(self) -> Header:
        """The trace's first line. A program's source text goes in it (`-m`: the module's file, found
        without importing anything), so the trace shows it wherever it is opened; a scenario's does not
        (its file is concurview's own: the app shows it from the catalogue)."""
        import stat

        from ..trace.events import SOURCE_TEXT_MAX

        source, text, missing = self.path, None, None
        if not self.scenario and self.module:
            # The file `python -m` would run, looked up the way its path finder does but on the file system
            # alone: importlib's finders import parent packages (running their code here) or raise on nested
            # namespace packages. A package runs its __main__.py.
            search = [os.getcwd(), *sys.path[1:]]  # python -m puts the cwd first
            source = None
            parts = self.path.split(".")
            for i, part in enumerate(parts):
                found, portions = None, []
                for entry in search:
                    base = os.path.join(entry or ".", part)
                    if os.path.isfile(os.path.join(base, "__init__.py")):
                        found = [base]
                        break
                    if os.path.isfile(base + ".py"):
                        found = base + ".py"
                        break
                    if os.path.isdir(base):
                        portions.append(base)  # a namespace package's, if nothing else is found
                found = found or portions or None
                if found is None or (isinstance(found, str) and i < len(parts) - 1):
                    break
                if isinstance(found, str):
                    source = found
                else:
                    search = found
                    mains = [m for m in (os.path.join(d, "__main__.py") for d in found) if os.path.isfile(m)]
                    source = mains[0] if i == len(parts) - 1 and mains else None
            if source is None:
                missing = f"no source file found for module {self.path}"
        if not self.scenario and source is not None:
            name = os.path.basename(source)
            try:
                st = os.stat(source)
                # Only a regular file: reading a FIFO (run <(...)) would take the program from the child.
                if not stat.S_ISREG(st.st_mode):
                    missing = f"{name} is not a regular file"
                elif st.st_size > SOURCE_TEXT_MAX:
                    missing = f"{name} is {st.st_size / 2**20:.2f} MB; a trace stores up to " \
                              f"{SOURCE_TEXT_MAX / 2**20:g} MB of a program's source"
                else:
                    with open(source, "rb") as f:
                        data = f.read(SOURCE_TEXT_MAX + 1)
                    if len(data) > SOURCE_TEXT_MAX:  # grew since the stat
                        missing = f"{name} is over {SOURCE_TEXT_MAX / 2**20:g} MB; a trace stores no more"
                    else:
                        try:
                            text = data.decode("utf-8-sig")
                        except UnicodeDecodeError:  # a coding cookie, as python reads it
                            import io
                            import tokenize

                            encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
                            text = data.decode(encoding, errors="replace")
                        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as python reads it
            except (OSError, LookupError, SyntaxError) as e:  # unreadable; an unknown or bad coding cookie
                text, missing = None, f"cannot read {name}: {getattr(e, 'strerror', None) or e}"
        from datetime import datetime, timezone

        from ..trace.events import Header

        return Header(
            scenario=self.scenario,
            program=None if self.scenario else self.path,
            params=dict(self.params),
            python=self.python_version or sys.version.split()[0],  # platform.python_version(), unimported
            platform=_platform_name(),
            start_time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            source=source,
            source_text=text,
            source_missing=missing,
        )

    def command(self, boot: str | None = None) -> list[str]:
        """The child's command line: the boot script `boot` (boot_dir() wrote it), else the child module."""
        cmd = [self.python or sys.executable]
        cmd += [os.path.join(boot, BOOT_SCRIPT)] if boot else ["-m", "concurview.engines.child"]
        if self.scenario:
            cmd += ["--scenario", "--params", json.dumps(self.params)]
        if self.module:
            cmd.append("--module")
        if self.echo:
            cmd.append("--echo")
        return cmd + ["--", self.path, *self.args]


# The traced child starts as `python BOOT/concurview_boot.py ...`: python puts BOOT first on sys.path, where
# `concurview` is a link to this very package, so neither a `concurview/` folder in the working directory
# (a clone) nor another install can stand in for the engines, and another interpreter (`--python`) finds them
# without anything installed into it. The child then gives the program python's own sys.path[0] (its script's
# folder, or the working directory for -m) in BOOT's place. A failure before the program starts is said in
# BOOT/failed (one line), besides its traceback on stderr.
BOOT_SCRIPT = "concurview_boot.py"
BOOT_FAILED = "failed"
BOOT_STATUS = 3  # the boot script's exit status then (the CLI says the line and exits 2)
_BOOT_TEXT = """\
# concurview's traced child, started by path (engines/runner.py): BOOT_DIR/concurview is the package.
import sys

child = None
try:
    from concurview.engines import child
    status = child.main()
except Exception as exc:
    if child is not None and child.started:
        raise
    import os
    import traceback

    traceback.print_exception(exc)
    line = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "failed"), "w") as f:
            f.write(line)
    except OSError:
        pass
    sys.exit(%d)
sys.exit(status)
""" % BOOT_STATUS


def _platform_name() -> str:
    """What `platform.platform()` says (`Linux-6.18.44-x86_64-with-glibc2.36`), without its cost on the start-up
    path: it runs `uname -p` in a subprocess and scans the interpreter's binary for the libc version (~6 ms)."""
    u = os.uname()
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")  # `glibc 2.36`
    except (ValueError, OSError):
        libc = None
    if not libc or sys.platform != "linux":
        import platform

        return platform.platform()
    name, _, version = libc.partition(" ")
    return f"{u.sysname}-{u.release}-{u.machine}-with-{name}{version}"


def package_root() -> str:
    """The folder that is the `concurview` package this runner is part of (the repository's top level in an
    editable install: pyproject's package-dir maps `concurview` to it and `concurview.engines` to its engines/)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def boot_dir(parent: str) -> str:
    """A folder in `parent` holding the boot script and a `concurview` link to this package."""
    boot = os.path.join(parent, "boot")
    os.mkdir(boot)
    os.symlink(package_root(), os.path.join(boot, "concurview"))
    with open(os.path.join(boot, BOOT_SCRIPT), "w") as f:
        f.write(_BOOT_TEXT)
    return boot


class PythonError(ValueError):
    """`--python PATH` is not an interpreter concurview can trace with (one line)."""


def check_python(path: str) -> tuple[str, str]:
    """(absolute path, version "3.12.1") of interpreter `path`, a CPython 3.11 or newer; PythonError if not."""
    exe = shutil.which(path) if os.sep not in path else path
    if exe is None or not os.path.exists(exe):
        raise PythonError(f"--python {path}: no such file")
    if os.path.isdir(exe) or not os.access(exe, os.X_OK):
        raise PythonError(f"--python {path}: not an executable file")
    probe = "import platform, sys; print(sys.implementation.name, platform.python_version(), sys.version_info >= (3, 11))"
    try:
        out = subprocess.run([exe, "-I", "-c", probe], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        raise PythonError(f"--python {path}: cannot run it: {_first_line(e)}") from None
    words = out.stdout.split()
    if out.returncode != 0 or len(words) != 3:
        raise PythonError(f"--python {path}: not a Python 3.11 or newer (it did not answer as one)")
    impl, version, new_enough = words
    if impl != "cpython" or new_enough != "True":
        raise PythonError(f"--python {path}: {impl} {version}; concurview traces CPython 3.11 or newer")
    # Not resolved: a venv's python is a link to its base interpreter, and only by the link's path is it the venv's.
    return os.path.abspath(exe), version


@dataclass
class Batch:
    """What arrived since the last batch, renumbered for the merged trace."""

    lanes: list[Lane]
    columns: Columns  # the events, seq `seq0` on
    dropped: int  # total dropped so far, all processes
    seq0: int = 0

    @property
    def events(self) -> list[Event]:
        """The events as records (one object each: for writers of small batches and tests)."""
        return self.columns.events(self.seq0)

    @classmethod
    def from_events(cls, lanes: list[Lane], events: list[Event], dropped: int = 0, strings=None) -> Batch:
        """A batch of Event records (runs made up by tests and tools). Batches of one run share `strings`
        (a StringTable), as a real run's do: the app joins batches that queued up into one."""
        from ..trace.columns import Columns, StringTable

        table = StringTable() if strings is None else strings
        return cls(lanes, Columns.from_events(events, table), dropped, events[0].seq if events else 0)


class Run:
    """One traced run. Iterate it for batches; it ends when every process of the run is gone.

    `stop()` may be called from another thread (the UI's stop key); the
    iteration then drains what already arrived and ends with an incomplete footer.
    """

    def __init__(self, target: Target, timeout: float | None = None, max_events: int | None = None,
                 string_budget: int | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.max_events = max_events_from_env() if max_events is None else max_events
        self.capped = 0  # events dropped by the retention cap (the recorders' drops are in _dropped)
        self._header: Header | None = None  # made when first asked for (target.header(): it reads the source)
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.stop_reason: str | None = None
        self.n_events = 0
        self.n_lanes = 0
        self.t_last = 0
        # numpy loads with the run, not with the app, and once the program is starting (__iter__): the
        # import (~50 ms) then overlaps the child's own start instead of delaying it.
        self._string_budget = string_budget
        self._merger_made: Merger | None = None
        self._dropped: dict[int, int] = {}
        self._stop_requested: str | None = None
        self._t0 = 0
        self._output_lane: int | None = None
        self._env_mark = b""  # CONCURVIEW_CHANNEL=...: unique to this run, inherited by all its processes
        self._killed: set[int] = set()
        self._cgroup: RunCgroup | None = None  # the run's own cgroup, where the machine allows it
        self.unkillable = False  # the program outlived our SIGKILL for _KILL_WAIT s (the run ended without it)
        self._uncaught: str | None = None  # type of the exception that ended the program's main thread
        self._damage: str | None = None  # a process sent bytes that are not frames: the run ends
        self._torn: str | None = None  # a stream ended inside a frame (its process died while writing)
        self._lost: dict[int, str] = {}  # pid -> a stream it closed while running (until it reconnects)
        # pid -> (when its stream ended, the command line it had): a stream that ends while its process
        # runs is judged a moment later (an exec closes our fd before the new program's command line
        # is readable; a busy machine stretches that moment).
        self._suspect: dict[int, tuple[float, bytes | None]] = {}
        self._failure: str | None = None  # an exception inside concurview ended the run
        self._started = self._finished = False
        self._long: bytes | None = None  # the head of an output line being cut (OUTPUT_LINE_LIMIT)
        self._long_cut = 0  # bytes of it cut so far
        self._signalled: tuple[int, float, float] | None = None  # (signal, kill deadline, grace): forward()
        # Called once the program is started (its interpreter starting): work of the caller's that can
        # overlap that (`run --record` imports its trace writer then). What it raises fails the run.
        self.on_started = None
        # The child failed before the program started (an engine's import, a broken path): its one line.
        self.boot_failure: str | None = None

    @property
    def header(self) -> Header:
        """The trace's first line (made once, when first asked for: `run --record` asks once the program started)."""
        if self._header is None:
            self._header = self.target.header()
        return self._header

    @header.setter
    def header(self, value: Header) -> None:
        self._header = value

    @property
    def _merger(self) -> Merger:
        if self._merger_made is None:
            _import_numpy()
            from ..trace.columns import STRING_BUDGET, Merger

            budget = self._string_budget
            self._merger_made = Merger(STRING_BUDGET if budget is None else budget)
        return self._merger_made

    @property
    def strings(self):
        """Every string of the run: the batches' columns index it."""
        return self._merger.strings

    # -- control ---------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        self._stop_requested = reason

    def forward(self, sig: int, grace: float = SIGNAL_GRACE) -> None:
        """Deliver signal `sig` to the program's process group, as a terminal delivers Ctrl+C to its
        foreground job (the program is in a session of its own, where no terminal reaches it). If it
        has not ended `grace` s after the first one, the run is stopped (killed) and the footer says so.
        Safe in a signal handler."""
        if self.proc is None:
            self.stop(_signal_name(sig))  # not started yet: nothing to deliver it to
            return
        if self._signalled is None:
            self._signalled = (sig, time.monotonic() + grace, grace)
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def dropped(self) -> int:
        """Events lost so far: dropped by the recorders (backpressure) plus by the retention cap."""
        return sum(self._dropped.values()) + self.capped

    def _kill_group(self) -> None:
        """SIGKILL every process of the run, and reap the ones that were re-parented to us.

        The run is: its cgroup, where we could make one (cgroup.kill takes every process in it at
        once, however fast they fork, whatever they do to their session or environment); then the
        program's process group and session (it is their leader), and any process carrying this
        run's CONCURVIEW_CHANNEL in its environment -- which catches daemons that called setsid() to
        leave the session. Repeated until a pass finds nothing (a process may fork while we kill),
        for at most _KILL_WAIT s.
        """
        if self.proc is None:
            return
        root = self.proc.pid
        if self._cgroup is not None:
            self._killed.update(self._cgroup.pids())
            self._cgroup.kill()
        try:
            os.killpg(root, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        me = os.getpid()
        deadline = time.monotonic() + _KILL_WAIT
        while time.monotonic() < deadline:
            victims = [
                pid for pid, state, _ppid, pgid, sid in _processes()
                if pid != me and state not in "ZX" and (
                    pgid == root or sid == root or (self._env_mark and _has_env(pid, self._env_mark)))
            ]
            if self._cgroup is not None:
                victims += self._cgroup.pids()
            if not victims:
                break
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self._killed.add(pid)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)
        try:
            self.proc.wait(timeout=2.0)  # the root first: its children then come to us
        except subprocess.TimeoutExpired:
            pass
        self._reap(root)

    def _wait_killed(self) -> bool:
        """Wait, at most _KILL_WAIT s, for the killed program to be gone. False (and `unkillable`) if it is not."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout=_KILL_WAIT)
            return True
        except subprocess.TimeoutExpired:
            self.unkillable = True
            return False

    def _reap(self, root: int, wait: float = 2.0) -> None:
        """Collect killed processes that became our children (we are a subreaper), so no zombie stays behind."""
        me = os.getpid()
        deadline = time.monotonic() + wait
        while True:
            pending = False
            cg = self._cgroup
            for pid, state, ppid, pgid, sid in _processes():
                if pid == root:
                    continue
                if not (pid in self._killed or pgid == root or sid == root):
                    # cgroup.kill's dead: our zombie children still name the run's cgroup.
                    if not (cg is not None and ppid == me and state == "Z" and cg.owns(pid)):
                        continue
                if ppid != me:
                    # Not ours (yet): still dying, or its parent has not been reaped.
                    pending = pending or (ppid != 1 and state not in "ZX") or ppid in self._killed
                    continue
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        self._killed.discard(pid)
                        continue
                except ChildProcessError:
                    self._killed.discard(pid)
                    continue
                pending = True
            if not pending or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    # -- the loop --------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        tmpdir = tempfile.mkdtemp(prefix="concurview-")
        address = os.path.join(tmpdir, "channel")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(64)
        listener.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, "accept")
        self._t0 = time.monotonic_ns()
        # The program's environment is ours plus these two, nothing else (README, "Reliability"): not
        # PYTHONUNBUFFERED either, which would change its stdio objects and its subprocesses'.
        env = dict(os.environ, **{ENV_CHANNEL: address, ENV_T0: str(self._t0)})
        self._env_mark = f"{ENV_CHANNEL}={address}".encode()
        _become_subreaper()
        try:
            echo = self.target.echo
            # Made before the child exists, joined right after: the child runs nothing of the
            # program (nor forks) until its interpreter has started, milliseconds later.
            self._cgroup = RunCgroup.create()
            boot = boot_dir(tmpdir)
            self.proc = subprocess.Popen(
                self.target.command(boot), env=env, start_new_session=True,
                stdin=None if echo else subprocess.DEVNULL,
                stdout=None if echo else subprocess.PIPE,
                stderr=None if echo else subprocess.STDOUT,
            )
            if self._cgroup is not None and not self._cgroup.add(self.proc.pid):
                self._cgroup = None  # refused: fall back to process group, session and environment
            self._output_lane = self.proc.pid << WIRE_LANE_SHIFT  # the root process's main lane
            if self.proc.stdout is not None:
                os.set_blocking(self.proc.stdout.fileno(), False)
                sel.register(self.proc.stdout, selectors.EVENT_READ, "output")
            self._started = True
            if self.on_started is not None:
                self.on_started()
            self._merger  # numpy, while the child starts
            yield from self._loop(sel, listener)
        except GeneratorExit:
            raise  # the reader stopped iterating (footer: not finished)
        except BaseException as e:  # noqa: BLE001 - a run that failed in here is never "complete"
            self._failure = "interrupted" if isinstance(e, KeyboardInterrupt) else \
                f"concurview failed: {type(e).__name__}: {_first_line(e)}"
            raise
        finally:
            self._kill_group()
            if self.proc is not None:
                self._wait_killed()
            if self._cgroup is not None:
                self._cgroup.remove()
            for key in list(sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            sel.close()
            self._read_boot_failure(os.path.join(tmpdir, "boot", BOOT_FAILED))
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _read_boot_failure(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                self.boot_failure = f.read(2000).strip() or "(no message)"
        except OSError:
            pass

    def _loop(self, sel: selectors.BaseSelector, listener: socket.socket) -> Iterator[Batch]:
        from ..trace.columns import Stream

        assert self.proc is not None
        streams: dict[socket.socket, Stream] = {}
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        exited_at: float | None = None
        killed_after_exit = killed_for_damage = False
        output = bytearray()
        read_at = 0.0  # when frames were last read
        exiting = False  # every stream has ended, the program has not been seen to exit yet
        while True:
            seq0 = self.n_events
            lanes: list[Lane] = []
            parts: list[Columns] = []
            gap = read_at + READ_GAP - time.monotonic()
            if gap > 0:
                time.sleep(gap)
            timeout = 0.02
            if exiting:
                # Its streams end as it exits, its status comes a moment later: wait for that, not for
                # a select() that nothing will wake (20 ms of every run's end).
                try:
                    self.proc.wait(timeout=0.02)
                except subprocess.TimeoutExpired:
                    pass
                timeout = 0
            for key, _ in sel.select(timeout=timeout):
                what, obj = key.data, key.fileobj
                if what == "accept":
                    try:
                        conn, _addr = listener.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    streams[conn] = self._stream(conn)
                    sel.register(conn, selectors.EVENT_READ, "frames")
                elif what == "frames":
                    read_at = time.monotonic()
                    stream = streams[obj]  # type: ignore[index]
                    alive = self._read_into(obj, stream.buf)  # type: ignore[arg-type]
                    self._frames(stream, lanes, parts)
                    if stream.damage is not None:
                        # The program wrote into its channel: its bytes are not read further, the run ends.
                        self._damage = self._damage or f"damaged frame from {stream.who}: {stream.damage}"
                        alive = False
                    elif not alive:
                        self._stream_ended(stream, streams)
                    if not alive:
                        sel.unregister(obj)
                        obj.close()  # type: ignore[union-attr]
                        del streams[obj]  # type: ignore[arg-type]
                else:
                    chunk = self._read_output(obj)  # type: ignore[arg-type]
                    if chunk is None:
                        sel.unregister(obj)
                    else:
                        output += chunk
                        self._output_lines(output, lanes, parts, final=False)
            now = time.monotonic()
            if self._suspect:
                self._judge_suspects(streams, now - _SUSPECT_WAIT)
            if self.exit_code is None and self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                exited_at = now
            if self._damage is not None and not killed_for_damage:
                self._kill_group()  # (not a stop: the footer's reason is the damage, the status the kill's)
                killed_for_damage = True
            reason = self._stop_requested
            signalled = self._signalled
            if reason is None and signalled is not None and self.exit_code is None and now > signalled[1]:
                reason = f"{_signal_name(signalled[0])}: the program had not ended {signalled[2]:g} s after it; killed"
            if reason is None and deadline is not None and now > deadline:
                reason = f"timeout after {self.timeout:g} s"
            if reason is not None and self.stop_reason is None:
                self.stop_reason = reason
                self._kill_group()
            if lanes or parts:
                yield Batch(lanes, self._joined(parts), self.dropped, seq0)
            open_streams = len(sel.get_map()) - 1  # the listener stays registered
            exiting = open_streams == 0 and self.exit_code is None
            if self.exit_code is not None and open_streams == 0:
                break
            if exited_at is not None and now - exited_at > _EXIT_GRACE:
                if killed_after_exit:
                    # Still a stream open after the kill: held by something beyond our reach
                    # (a setsid() escapee that dropped our environment). Stop waiting for it.
                    break
                # The program is gone but something of its run still holds a stream: end it.
                self._kill_group()
                killed_after_exit = True
                exited_at = now
            if ((self.stop_reason is not None or killed_for_damage) and self.exit_code is None
                    and not self._wait_killed()):
                break  # it will not die: end the run without it (the footer says so)
        seq0 = self.n_events
        tail_lanes: list[Lane] = []
        tail: list[Columns] = []
        self._output_lines(output, tail_lanes, tail, final=True)
        if tail:
            yield Batch(tail_lanes, self._joined(tail), self.dropped, seq0)
        if self._suspect:
            time.sleep(max(0.0, max(w for w, _ in self._suspect.values()) + _SUSPECT_WAIT - time.monotonic()))
            self._judge_suspects(streams, float("inf"))
        self._finished = True

    def _stream(self, conn: socket.socket) -> Stream:
        """A new process's stream: its pid as the kernel says (Linux), and its command line then."""
        from ..trace.columns import Stream

        pid = None
        try:
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0] or None
        except (AttributeError, OSError, struct.error):
            pass
        stream = Stream(pid)
        if pid is not None:
            self._lost.pop(pid, None)  # it reconnected
            self._suspect.pop(pid, None)
            stream.cmdline = _cmdline(pid)
        return stream

    def _stream_ended(self, stream: Stream, streams: dict) -> None:
        """A stream's end: its process exited (nothing to say), or closed the channel while it runs."""
        pid = stream.pid
        running = pid is not None and stream.cmdline is not None and _running(pid) \
            and _cmdline(pid) == stream.cmdline  # (an exec closes it too: not the program's doing)
        if running and not any(s.pid == pid for s in streams.values() if s is not stream):
            self._suspect[pid] = (time.monotonic(), stream.cmdline)  # judged in _judge_suspects
        elif stream.buf and not running and self._torn is None:
            # It died while writing a frame: that frame's events are lost.
            self._torn = f"damaged frame from {stream.who}: the stream ended inside a frame ({len(stream.buf)} bytes)"

    def _judge_suspects(self, streams: dict, ended_before: float) -> None:
        """Streams that ended while their process ran, before `ended_before`: a process still running
        the same program, with no stream of its own, closed our channel (unless it reconnects later)."""
        for pid, (when, cmdline) in list(self._suspect.items()):
            if when > ended_before:
                continue
            del self._suspect[pid]
            if (_running(pid) and _cmdline(pid) == cmdline
                    and not any(s.pid == pid for s in streams.values())):
                self._lost[pid] = CLOSED_CHANNEL

    @staticmethod
    def _read_into(conn: socket.socket, buf: bytearray) -> bool:
        try:
            data = conn.recv(1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            return False
        buf += data
        return bool(data)

    @staticmethod
    def _read_output(pipe) -> bytes | None:
        try:
            data = os.read(pipe.fileno(), 1 << 16)
        except BlockingIOError:
            return b""
        except OSError:
            return None
        return data or None

    def _joined(self, parts: list[Columns]) -> Columns:
        from ..trace.columns import Columns

        return Columns.concat(parts) if parts else Columns.empty(self.strings)

    def _frames(self, stream: Stream, lanes: list[Lane], parts: list[Columns]) -> None:
        """The whole frames that arrived on a process's stream, as one Columns part per string table."""
        for group in stream.groups():
            try:
                self._group(stream, group, lanes, parts)
            except (ValueError, IndexError, OverflowError) as e:  # columns.DamagedFrame among them
                from ..trace.columns import DamagedFrame

                stream.damage = _first_line(e) if isinstance(e, DamagedFrame) else f"{type(e).__name__}: {_first_line(e)}"
                return

    def _group(self, stream: Stream, group: list, lanes: list[Lane], parts: list[Columns]) -> None:
        merger = self._merger
        for frame in group:
            self._dropped[frame.pid] = max(frame.dropped, self._dropped.get(frame.pid, 0))
        n = sum(frame.n for frame in group)
        room = self.max_events - self.n_events
        if n > room:
            # Retention cap: keep the oldest, drop the newest and count them (a consistent prefix).
            room = max(room, 0)
            self.capped += n - room
            if not room:
                return  # nor new lanes: nothing of theirs will be kept
        cols = merger.merge(stream, group, room, lanes)
        self.n_lanes = len(merger.lane_ids)
        if cols is None:
            return
        parts.append(cols)
        self.n_events += len(cols)
        self.t_last = max(self.t_last, int(cols.t.max()))
        main = merger.lane_ids.get(self._output_lane)  # type: ignore[arg-type]
        from ..trace.events import ERROR

        errors = ((cols.kind == ERROR) & (cols.lane == main)).nonzero()[0]
        if len(errors):
            # An exception escaped the program's main thread.
            self._uncaught = self.strings[int(cols.reason[errors[-1]])]

    def _output_lines(self, output: bytearray, lanes: list[Lane], parts: list[Columns], final: bool) -> None:
        """Bytes written straight to fd 1/2 (C code, crashes, subprocesses) become log lines on the main lane."""
        assert self.proc is not None
        events: list[Event] = []
        lane = self._merger.lane_ids.get(self._output_lane)  # type: ignore[arg-type]
        if lane is None:
            if not final:
                return  # keep the bytes until the main lane is declared
            if not output:
                return
            # The child died before declaring its main lane (bad interpreter, import error...).
            from ..trace.events import Event, WireLane

            new = self._merger.declare(WireLane(self._output_lane, "process", "child", None, self.proc.pid))
            lanes.append(new)
            lane = new.id
            events.append(Event(self.n_events, self.t_last, lane, "open"))
            self.n_events += 1
            self.n_lanes = len(self._merger.lane_ids)
        try:
            self._output_events(output, lane, events, final)
        finally:
            if events:
                from ..trace.columns import Columns

                parts.append(Columns.from_events(events, self.strings))

    def _output_events(self, output: bytearray, lane: int, events: list[Event], final: bool) -> None:
        from ..trace.events import EVENT_KINDS, LOG, Event
        from .recorder import size_text

        limit = OUTPUT_LINE_LIMIT
        while output or (final and self._long is not None):
            end = output.find(b"\n")
            if end < 0:
                if not final:
                    if self._long is not None:  # still the long line: count, do not keep
                        self._long_cut += len(output)
                        del output[:]
                    elif len(output) > limit:
                        self._long = bytes(output[:limit])
                        self._long_cut = len(output) - limit
                        del output[:]
                    return
                end = len(output)
            raw = bytes(output[:end])
            del output[:end + 1]
            cut = 0
            if self._long is not None:
                raw, cut, self._long = self._long, self._long_cut + len(raw), None
            elif len(raw) > limit:
                raw, cut = raw[:limit], len(raw) - limit
            line = raw.decode("utf-8", "replace")
            if cut:
                line += f"… [truncated {size_text(cut)}]"
            if self.n_events >= self.max_events:
                self.capped += 1
                continue
            t = max(self.t_last, time.monotonic_ns() - self._t0)
            events.append(Event(self.n_events, t, lane, EVENT_KINDS[LOG], "output", None, None, line))
            self.n_events += 1
            self.t_last = t

    def footer(self) -> Footer:
        """How the run ended. Incomplete (with the reason) when stopped, timed out or killed by a signal.

        A program that ended by itself but failed is complete, with a reason too:
        "uncaught ValueError" (exit code 1) or "exit code 7" (sys.exit / os._exit).
        """
        code = self.exit_code
        reason = self._failure or self.stop_reason or self._damage
        if reason is None and self.boot_failure is not None:
            reason = f"{BOOT_FAILURE_TEXT}: {self.boot_failure}"
        complete = reason is None
        if reason is None and code == -signal.SIGINT and self._uncaught == "KeyboardInterrupt":
            reason = "uncaught KeyboardInterrupt"  # python ends so: by SIGINT, once its exit handlers ran
        elif reason is None and code is not None and code < 0:
            complete = False
            reason = f"killed by {_signal_name(-code)}"
        elif reason is None and code:
            reason = f"uncaught {self._uncaught}" if self._uncaught and code == 1 else f"exit code {code}"
        if self._signalled is not None and self.stop_reason is None and code is not None \
                and code != -self._signalled[0]:
            # It ended by itself after a signal we forwarded (its handlers ran): say so.
            reason = f"{reason or 'exit code 0'} after {_signal_name(self._signalled[0])}"
        # Only a clean end is complete: not a run concurview stopped reading, not one that lost events
        # to a torn frame, not one whose program closed the channel for good.
        trouble = None
        if self._started and not self._finished:
            trouble = "concurview stopped reading the run before it ended"
        elif self._lost:
            trouble = f"{CLOSED_CHANNEL} (pid {', '.join(map(str, sorted(self._lost)))})"
        elif self._torn:
            trouble = self._torn
        if complete and trouble is not None:
            complete = False
            reason = trouble if not reason else f"{reason}; {trouble}"
        if self.unkillable:
            complete = False
            reason = f"{reason or 'stopped'}; the program (pid {self.proc.pid if self.proc else '?'}) " \
                     f"was still there {_KILL_WAIT:g} s after SIGKILL"
        from ..trace.events import Footer

        return Footer(
            complete=complete,
            exit_code=code,
            reason=reason,
            events=self.n_events,
            lanes=self.n_lanes,
            dropped=self.dropped,
            duration=self.t_last,
            max_events=self.max_events if self.capped else None,
            strings_dropped=self.strings.over,
        )


def _import_numpy() -> None:
    """numpy, without the BLAS thread pool it starts on import (a thread per core, ~20 ms of a `run --record`'s
    start-up): the runner does no linear algebra. The variable is ours for the import only: the programs we
    start get the environment as it was."""
    if "numpy" in sys.modules:
        return
    keys = [k for k in ("OPENBLAS_NUM_THREADS",) if k not in os.environ]
    for k in keys:
        os.environ[k] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        for k in keys:
            os.environ.pop(k, None)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else type(e).__name__


def _running(pid: int) -> bool:
    """The process is there and not exiting (a zombie, or one closing its files on its way out, is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        return fields[0] not in (b"Z", b"X", b"x") and not int(fields[6]) & _PF_EXITING
    except (OSError, IndexError, ValueError):
        return False


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None
