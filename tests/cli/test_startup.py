"""`run --record` starts the program early: nothing heavy is loaded before it starts, in concurview or in the program's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from concurview.trace.tracefile import TraceReader

EXE = [sys.executable, "-m", "concurview"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def test_the_program_starts_without_numpy_textual_or_asyncio_loaded_for_it(tmp_path):
    """The traced process loads what the engines need, not numpy or Textual, and asyncio only once the program
    imports it (the asyncio engine is armed then): ~25 ms of every start-up."""
    prog = tmp_path / "mods.py"
    prog.write_text("import json, sys\nprint(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(prog)], capture_output=True,
                         text=True, env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    assert "concurview.engines.threads" in loaded  # the engines are armed
    assert not loaded & {"numpy", "textual", "asyncio", "concurview.engines.asyncio_engine"}, \
        sorted(loaded & {"numpy", "textual", "asyncio", "concurview.engines.asyncio_engine"})


def test_concurview_starts_the_program_before_loading_msgspec_and_numpy(tmp_path):
    """What `concurview run --record` has loaded when it starts the program: not the trace writer's msgspec nor
    the merger's numpy (~80 ms here), which load while the program's interpreter starts."""
    prog = tmp_path / "empty.py"
    prog.write_text("")
    probe = textwrap.dedent(f"""
        import json, subprocess, sys
        seen = []
        real = subprocess.Popen.__init__
        def init(self, *args, **kwargs):
            seen.append(sorted(sys.modules))
            real(self, *args, **kwargs)
        subprocess.Popen.__init__ = init
        from concurview.cli import main
        code = main(["run", "--record", {str(tmp_path / "t.jsonl")!r}, {str(prog)!r}])
        print(json.dumps({{"code": code, "first": seen[0]}}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["code"] == 0
    first = set(result["first"])
    assert "concurview.engines.runner" in first
    assert not first & {"numpy", "msgspec", "textual"}, sorted(first & {"numpy", "msgspec", "textual"})


def test_a_program_that_imports_asyncio_late_is_traced_as_before(tmp_path):
    prog = tmp_path / "late.py"
    prog.write_text(textwrap.dedent("""
        def main():
            import asyncio

            async def job(n):
                await asyncio.sleep(0.01 * n)
                return n

            async def run():
                return await asyncio.gather(job(1), job(2))

            print(asyncio.run(run()))

        main()
    """))
    trace = tmp_path / "t.jsonl"
    out = subprocess.run([*EXE, "run", "--record", str(trace), str(prog)], capture_output=True, text=True,
                         env=ENV, timeout=60)
    assert out.returncode == 0 and out.stdout == "[1, 2]\n", out.stderr
    lanes = [lane for ls, _ in TraceReader(trace).batches() for lane in ls]
    assert sum(lane.kind == "task" for lane in lanes) >= 3, [(lane.kind, lane.name) for lane in lanes]
