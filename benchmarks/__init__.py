"""concurview's benchmarks: traced and untraced side by side in one run (interleaved, medians), a JSON result each.

Each benchmark module provides `NAME`, a one-line `TITLE`, `missing()` (why it
cannot run here, or None) and `run(quick) -> list[Result]`. `python -m benchmarks`
runs them all (`make bench`).

How a traced workload runs: as users run it - the runner's boot script
(`python BOOT/concurview_boot.py`) with every engine armed - but its channel is drained by a reader thread here
instead of the runner. The engines' cost (recording, encoding, writing frames)
is all in the child; the runner's decoding happens in another process on
another core and is measured on its own (`transport`), so a slow parent does not
pass for a slow engine. Workloads time themselves (start-up, imports, tracer
set-up and trace saving are left out) and write their numbers as JSON.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results"
WORKLOADS = ROOT / "workloads"
ENGINES = REPO / "engines"

QUICK = False  # set by `python -m benchmarks --quick`; recorded in every result file

# The modules `python -m benchmarks` runs, in order.
MODULES = ("asyncio_storm", "asyncio_ready", "transport", "startup", "greenlet_pingpong", "gevent_storm",
           "threadpool", "gil_view", "store_open", "store_real", "cpython_suites", "ui_real")


@dataclass
class Result:
    """One measured number against its target; `passed` is None for an informative number."""

    name: str
    metric: str
    value: float
    unit: str
    target: str
    passed: bool | None
    details: dict = field(default_factory=dict)

    def line(self) -> str:
        verdict = "" if self.passed is None else (" PASS" if self.passed else " MISS")
        target = f" (target {self.target})" if self.target else ""
        return f"{self.name}: {self.metric} {_fmt(self.value)}{self.unit}{target}{verdict}"


def _fmt(v: float) -> str:
    if v == 0 or abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def machine() -> dict:
    """Where the numbers came from."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_at_start": load,
    }


def publish(name: str, results: list[Result], samples: dict | None = None) -> Path:
    """Print a line per result and write results/<name>.json."""
    for r in results:
        print(r.line(), flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {
        "name": name,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": QUICK,
        "results": [asdict(r) for r in results],
        "samples": samples or {},
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def interleave(variants: dict[str, Callable[[], dict]], reps: int) -> dict[str, list[dict]]:
    """Run each variant `reps` times, rotating the order every round, so drift hits all alike."""
    labels = list(variants)
    out: dict[str, list[dict]] = {k: [] for k in labels}
    for r in range(reps):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            out[label].append(variants[label]())
    return out


# -- running a workload ------------------------------------------------------------------------


def concurview_command() -> list[str]:
    """How a user starts concurview: the installed script beside this interpreter, else on PATH."""
    script = os.path.join(os.path.dirname(sys.executable), "concurview")
    if os.path.exists(script):
        return [script]
    found = shutil.which("concurview")
    return [found] if found else [sys.executable, "-m", "concurview"]


def _read_result(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_plain(workload: str, *args: object, timeout: float = 300) -> dict:
    """`python workload OUT args...`: the untraced baseline."""
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        out = os.path.join(tmp, "out.json")
        subprocess.run([sys.executable, str(WORKLOADS / workload), out, *map(str, args)], check=True,
                       stdout=subprocess.DEVNULL, timeout=timeout)
        return _read_result(out)


def run_viztracer(workload: str, *args: object, options: tuple[str, ...] = (), timeout: float = 300) -> dict:
    """The same workload under viztracer (the trace is saved to a temporary file, outside the timing)."""
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        out = os.path.join(tmp, "out.json")
        cmd = [sys.executable, "-m", "viztracer", "--quiet", *options, "-o", os.path.join(tmp, "viz.json"),
               str(WORKLOADS / workload), out, *map(str, args)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=timeout)
        return _read_result(out)


def has_viztracer() -> bool:
    import importlib.util

    return importlib.util.find_spec("viztracer") is not None


class Drain:
    """The runner's end of the channel, minus the decoding: accepts every process's stream and reads it.

    With `keep=True` the bytes are kept (per stream) for replaying into the store.
    """

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.tmp = tempfile.mkdtemp(prefix="cv-bench-")
        self.address = os.path.join(self.tmp, "channel")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.address)
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.streams: list[bytearray] = []
        self.nbytes = 0
        self._stop = False
        self._readers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            buf = bytearray()
            self.streams.append(buf)
            t = threading.Thread(target=self._read, args=(conn, buf), daemon=True)
            t.start()
            self._readers.append(t)

    def _read(self, conn: socket.socket, buf: bytearray) -> None:
        from concurview.engines.runner import READ_GAP

        conn.settimeout(None)
        with conn:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    return
                time.sleep(READ_GAP)  # as the runner reads: at most every READ_GAP while frames flow
                self.nbytes += len(data)
                if self.keep:
                    buf += data

    def close(self) -> None:
        self._stop = True
        self._acceptor.join()
        for t in self._readers:
            t.join(timeout=10)
        self.listener.close()
        try:
            os.unlink(self.address)
            os.rmdir(self.tmp)
        except OSError:
            pass


def run_traced(workload: str, *args: object, keep: bool = False, timeout: float = 300) -> dict:
    """The workload in concurview's traced child (every engine armed), its channel drained here.

    The result gets `wire_bytes`; with keep=True also `streams` (the raw frames of each process).
    """
    from concurview.engines.recorder import ENV_CHANNEL, ENV_T0
    from concurview.engines.runner import BOOT_SCRIPT, boot_dir

    drain = Drain(keep=keep)
    try:
        with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
            out = os.path.join(tmp, "out.json")
            env = dict(os.environ, **{ENV_CHANNEL: drain.address, ENV_T0: str(time.monotonic_ns()),
                                      "PYTHONUNBUFFERED": "1"})
            # Started as the runner starts it: the boot script, by path (engines/runner.py).
            cmd = [sys.executable, os.path.join(boot_dir(tmp), BOOT_SCRIPT), "--", str(WORKLOADS / workload), out,
                   *map(str, args)]
            subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           timeout=timeout)
            result = _read_result(out)
    finally:
        drain.close()
    result["wire_bytes"] = drain.nbytes
    if keep:
        result["streams"] = [bytes(b) for b in drain.streams]
    return result


def run_through_store(workload: str, *args: object, timeout: float = 300) -> tuple[dict, object, dict]:
    """As `concurview record` runs it: Run + Timeline. Returns (result, timeline, parent-side timings)."""
    from concurview.engines.runner import Run, Target
    from concurview.trace.store import Timeline

    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        out = os.path.join(tmp, "out.json")
        run = Run(Target(str(WORKLOADS / workload), args=[out, *map(str, args)]), timeout=timeout)
        tl = Timeline(run.header)
        t_start = time.perf_counter()
        t_first = None
        for batch in run:  # as the app does, minus the drawing (and with the collector on, as there)
            if t_first is None and len(batch.columns):
                t_first = time.perf_counter()
            tl.add(batch.lanes, batch.columns)
        t_end = time.perf_counter()
        tl.finish(run.footer())
        result = _read_result(out)
    timings = {"wall_s": t_end - t_start, "streaming_s": t_end - (t_first or t_start)}
    return result, tl, timings


def engine_present(module: str) -> bool:
    return (ENGINES / f"{module}.py").exists()
