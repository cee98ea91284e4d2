"""`run --record` stores the program's source in the trace: opened elsewhere, after the file is gone, it shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from concurview.trace.events import SOURCE_TEXT_MAX
from concurview.tui.app import make_app
from concurview.tui.panes import SourceView
from concurview.trace.store import load

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
EXE = [sys.executable, "-m", "concurview"]
SIZE = (160, 45)

PROGRAM = textwrap.dedent("""\
    import threading, time

    def work(n):  # the line a worker waits at
        time.sleep(0.02)
        print("worker", n)

    t = threading.Thread(target=work, args=(1,), name="w1")
    t.start()
    t.join()
    """)


def record(cwd: Path, *program: str) -> Path:
    out = cwd / "t.jsonl"
    proc = subprocess.run([*EXE, "run", "--record", str(out), *program], capture_output=True, text=True,
                          cwd=cwd, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return out


def shown(app) -> str:
    view = app.query_one(SourceView)
    return "\n".join(view.render_line(y).text for y in range(view.size.height))


async def test_a_recorded_program_shows_its_source_after_the_file_is_gone(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "prog.py").write_text(PROGRAM)
    trace = record(work, "prog.py")
    assert load(trace).header.source_text == PROGRAM, "stored as the program was, in the header"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = shutil.move(str(trace), elsewhere / "t.jsonl")
    shutil.rmtree(work)
    async with make_app(trace=str(moved)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("right")
        await pilot.pause()
        text = shown(pilot.app)
        assert "def work(n):  # the line a worker waits at" in text
        assert pilot.app.query_one(SourceView).file_name == "prog.py"
        assert pilot.app.query_one(SourceView).marks, "the lanes' lines are marked in the stored text"


def test_a_module_run_stores_the_modules_file_without_importing_it(tmp_path):
    shutil.copytree(PROGRAMS / "mypkg", tmp_path / "mypkg")
    # Importing the package in the parent would print this (and run any code in it) before the program.
    (tmp_path / "mypkg" / "__init__.py").write_text("print('IMPORTED IN THE PARENT')\n")
    out = tmp_path / "t.jsonl"
    proc = subprocess.run([*EXE, "run", "--record", str(out), "-m", "mypkg"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=90)
    assert proc.returncode == 0, proc.stderr
    header = load(out).header
    assert header.source.endswith("__main__.py") and "python -m mypkg" in header.source_text
    assert proc.stdout.count("IMPORTED IN THE PARENT") == 1, "imported once: by the program itself"


async def test_a_huge_program_is_not_stored_and_the_pane_says_so(tmp_path):
    big = tmp_path / "big.py"
    big.write_text(PROGRAM + ("# " + "x" * 98 + "\n") * (SOURCE_TEXT_MAX // 100 + 10))
    assert big.stat().st_size > SOURCE_TEXT_MAX
    trace = record(tmp_path, "big.py")
    header = load(trace).header
    assert header.source_text is None and "big.py is 1.01 MB" in header.source_missing
    assert trace.stat().st_size < 100_000, "the trace stays small"
    async with make_app(trace=str(trace)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "big.py is 1.01 MB; a trace stores up to 1 MB of a program's source" in shown(pilot.app)


def test_the_module_file_is_found_on_the_file_system_alone(tmp_path, monkeypatch):
    """Nested namespace packages made importlib's finders raise (KeyError); nothing is imported here either."""
    from concurview.engines.runner import Target

    (tmp_path / "ns" / "inner").mkdir(parents=True)
    (tmp_path / "ns" / "inner" / "m.py").write_text("print('m')\n")
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("raise SystemExit('imported in the parent')\n")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__main__.py").write_text("print('main')\n")
    monkeypatch.chdir(tmp_path)
    cases = {"ns.inner.m": ("m.py", "print('m')\n"), "pkg.sub": ("__main__.py", "print('main')\n"),
             "pkg.nothing": (None, None), "ns": (None, None)}
    for module, (name, text) in cases.items():
        header = Target(module, module=True).header()
        assert (header.source and Path(header.source).name, header.source_text) == (name, text), module
        assert (header.source_missing is None) == (text is not None), module
