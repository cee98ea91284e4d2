"""The runner's side of the channel: a string budget in bytes, and no run ends "complete" unless it ended cleanly."""

from __future__ import annotations

from concurview.trace.columns import PLACEHOLDER, StringTable
from concurview.engines.runner import Run, Target


def test_strings_past_the_budget_become_the_placeholder_and_are_counted():
    table = StringTable(budget=1000)
    kept = [table.intern(f"{i:04d}" * 10) for i in range(20)]  # 140 bytes each, as estimated
    assert table.over == 20 - 7 and table[kept[-1]] == PLACEHOLDER
    assert table[kept[0]] == "0000" * 10 and table.intern("0000" * 10) == kept[0], "kept strings stay"
    assert StringTable().budget is None, "files and the store: no budget"


def test_a_run_with_many_distinct_lines_keeps_its_strings_within_budget(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("for i in range(5000):\n    print(f'line {i:05d} ' + 'x' * 100)\n")
    run = Run(Target(str(prog)), string_budget=200_000)
    texts = [e.text for batch in run for e in batch.events if e.kind == "log"]
    f = run.footer()
    assert f.complete and f.exit_code == 0, f
    assert len(texts) == 5000 and texts[0].startswith("line 00000 ")
    # (counted: every string past the budget, the close event's "exit code 0" among them)
    assert texts[-1] == PLACEHOLDER and f.strings_dropped >= texts.count(PLACEHOLDER) > 3000, f


def test_a_run_whose_reader_stops_early_is_not_complete(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("import time\nfor i in range(50):\n    print(i, flush=True)\n    time.sleep(0.01)\n")
    run = Run(Target(str(prog)))
    it = iter(run)
    next(it)
    f = run.footer()  # the CLI writes the footer in a finally: a failed write lands here
    assert not f.complete and f.reason == "concurview stopped reading the run before it ended", f
    it.close()


class FailingRun(Run):
    """A fault injected into the runner's own code (a bug stand-in: no real one is known to trigger)."""

    def _output_lines(self, *args, **kwargs):
        raise RuntimeError("boom\nsecond line")


def test_an_exception_inside_concurview_gives_an_incomplete_footer_with_one_line(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("print('hi')\n")
    run = FailingRun(Target(str(prog)))
    try:
        for _ in run:
            pass
    except RuntimeError:
        pass
    f = run.footer()
    assert not f.complete and f.reason == "concurview failed: RuntimeError: boom", f
