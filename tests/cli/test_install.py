"""Installing concurview: without a C compiler (a one-line note, the pure-Python paths, the same trace),
the wheel's contents, the sdist's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import wheelcheck

from concurview.engines import speedups

ROOT = Path(__file__).resolve().parent.parent.parent
RECORD = ["record", "asyncio-tasks", "--set", "task_sleep=0.3", "--set", "task2_sleep=0.2", "--timeout", "60"]
NOTE = "note: building the C speedups failed"


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


def _facts(python: Path | str, trace: Path) -> tuple[dict, list]:
    """What a trace says, read back by `python`'s concurview: the summary's facts that do not depend on
    timing or on the GIL sampler, and every event but the sampler's (lane name, kind, reason, where, text),
    numbers in its texts left out."""
    summary = json.loads(_run([python, "-m", "concurview", "summary", trace, "--json"], check=True).stdout)
    lanes = {lane["id"]: lane for lane in summary["lane_totals"]}
    facts = {key: summary[key] for key in ("scenario", "params", "complete", "exit_code", "lanes", "errors", "logs",
                                            "max_in_flight", "blocks", "warnings")}
    facts["lane_totals"] = [(lane["kind"], lane["name"], lane["parent"], lane["switches"], round(lane["waiting_s"], 1))
                            for lane in lanes.values()]
    code = ("import sys, json\nfrom concurview.trace.tracefile import TraceReader\nr = TraceReader(sys.argv[1])\n"
            "names = {}\nout = []\nfor lanes, events in r.batches():\n"
            "    names.update((l.id, l.name) for l in lanes)\n"
            "    out += [(names.get(e.lane), e.kind, e.reason, e.where, e.text) for e in events]\n"
            "print(json.dumps(out))")
    events = json.loads(_run([python, "-c", code, trace], check=True).stdout)
    # The GIL view's sampler is C only (its samples and marks go), and times vary from run to run
    # (`epoll ≤ 0.099s`, the elapsed time the program prints).
    return facts, [[re.sub(r"\d+(\.\d+)?", "#", f) if isinstance(f, str) else f for f in e] for e in events
                   if e[1] != "sample" and not (e[1] == "mark" and (e[2] or "").startswith("GIL view"))]


@pytest.mark.slow
def test_an_install_without_a_c_compiler_works_on_the_pure_paths_and_records_the_same_trace(tmp_path):
    had_build = (ROOT / "build").exists()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    # This environment's pip installs into the new one (pip --python): a pip that shows a build's warnings.
    env = {**os.environ, "CC": "/bin/false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("CONCURVIEW_PURE", None)
    done = _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", ROOT], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    output = [line for line in (done.stdout + done.stderr).splitlines() if "Location 'file:" not in line]
    notes = [line for line in output if NOTE in line]
    import pip

    if tuple(int(x) for x in pip.__version__.split(".")[:2]) >= (23, 3):  # older pips show no build warnings
        assert len(notes) == 1 and "/bin/false exited with status 1" in notes[0], output
    assert "Traceback" not in done.stderr and "error:" not in done.stderr.lower()
    site = Path(_run([python, "-c", "import concurview, os; print(os.path.dirname(concurview.__file__))"],
                     check=True, cwd=tmp_path).stdout.strip())
    assert not list(site.glob("engines/*.so")) and not list(site.glob("engines/*.c"))
    assert (ROOT / "build").exists() == had_build, "the build left build/ in the tree"

    version = _run([venv / "bin" / "concurview", "--version"], check=True).stdout
    assert "pure Python, the C extension is not built" in version
    pure_trace = tmp_path / "pure.jsonl"
    done = _run([venv / "bin" / "concurview", *RECORD, "-o", pure_trace], cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    c_trace = tmp_path / "c.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "CONCURVIEW_PURE"}
    done = _run([sys.executable, "-m", "concurview", *RECORD, "-o", c_trace], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    if speedups.native is not None:
        assert "C speedups" in _run([sys.executable, "-m", "concurview", "-V"], env=env, check=True).stdout
    pure, c = _facts(python, pure_trace), _facts(sys.executable, c_trace)
    assert pure[0] == c[0]
    assert pure[1] == c[1]
    assert len(pure[1]) > 15


@pytest.mark.slow
@pytest.mark.skipif(speedups.native is None, reason="the C extension is not built here")
def test_the_wheel_holds_the_package_built_and_stripped_without_its_sources(tmp_path):
    had_build = (ROOT / "build").exists()
    done = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp_path,
                 ROOT], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("concurview-*.whl")
    assert wheelcheck.problems(str(wheel)) == []
    with zipfile.ZipFile(wheel) as z:
        sizes = {n: z.getinfo(n).file_size for n in z.namelist() if n.endswith(".so")}
    assert sizes and max(sizes.values()) < 300_000, sizes  # stripped: 116 KB (504 KB with its symbols)
    assert (ROOT / "build").exists() == had_build, "the build left build/ in the tree"


def test_the_wheel_check_finds_sources_an_unstripped_binary_and_missing_files(tmp_path):
    binary = next(iter((ROOT / "engines").glob("_speedups*.so")), None)
    wheel = tmp_path / "concurview-0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("concurview/__init__.py", "")
        z.writestr("concurview/engines/_speedups.c", "/* */")
        z.writestr("concurview/setup.py", "")
        z.writestr("tests/test_x.py", "")
        if binary is not None:
            z.write(binary, "concurview/engines/_speedups.cpython-311-x86_64-linux-gnu.so")
    found = "\n".join(wheelcheck.problems(str(wheel)))
    assert "a C source in the wheel: concurview/engines/_speedups.c" in found
    assert "not part of the package: concurview/setup.py" in found and "tests/test_x.py" in found
    assert "missing: concurview/tui/concurview.tcss" in found and "no `concurview` console script" in found
    symbols = wheelcheck.elf_sections(binary.read_bytes()) if binary is not None else None
    if symbols is not None and ".symtab" in symbols:  # the editable build keeps its symbols (make venv)
        assert "not stripped" in found


def test_the_sdist_has_the_sources_tests_and_docs(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    code = f"import setuptools.build_meta as b; print(b.build_sdist({str(tmp_path)!r}))"
    done = _run([sys.executable, "-c", code], cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    (sdist,) = tmp_path.glob("concurview-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for name in ("setup.py", "MANIFEST.in", "Makefile", "engines/_speedups.c", "engines/_speedups.h",
                 "tests/unit/test_pure_buffer.py", "tests/traces/asyncio-tasks.jsonl", "docs/trace-format.md",
                 "constraints/test.txt", "constraints/oldest.txt", "benchmarks/README.md"):
        assert name in names, name
    assert not [n for n in names if n.endswith((".so", ".pyc"))]
