"""Pilot tests: `concurview run SCRIPT` live on a real program, the stacked compare from the picker, unavailable scenarios."""

from __future__ import annotations

import dataclasses
import textwrap

from uitraces import wait_for
from textual.widgets import OptionList

from concurview.engines.runner import Target
from concurview.scenarios import Scenario, catalogue
from concurview.trace import compare
from concurview.tui.app import make_app
from concurview.tui.panes import SourceView
from concurview.tui.picker import ScenarioPicker
from concurview.tui.screens import ErrorScreen

SIZE = (160, 45)


def status(app) -> str:
    return str(app.query_one("#status").render())


async def test_run_script_opens_live_on_the_users_program_and_keeps_its_exit_code(tmp_path):
    program = tmp_path / "tiny_workers.py"
    program.write_text(textwrap.dedent("""\
        import sys, threading, time

        def work(n):
            time.sleep(0.05)
            print("worker", n, "done")

        threads = [threading.Thread(target=work, args=(i,), name=f"w{i}") for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sys.exit(3)
        """))
    app = make_app(program=Target(str(program)), run_timeout=30)
    async with app.run_test(size=SIZE) as pilot:
        assert app.current_run is not None and "tiny_workers.py" in status(app) and "live" in status(app)
        assert not app.query_one(ScenarioPicker).display, "no picker: the program is what is shown"
        await wait_for(pilot, lambda: app.current_run is None, timeout=30)
        assert "tiny_workers.py" in status(app) and "recorded" in status(app)
        names = {lane.name for lane in app.timeline.lanes}
        assert {"MainThread", "w0", "w1"} <= names
        view = app.query_one(SourceView)
        assert view.file_name == program.name, "the source pane shows the user's program"
        assert any("threading.Thread(target=work" in view.render_line(y).text for y in range(view.size.height))
        assert app.program_exit == 3, "the program's exit code is what concurview returns"
        assert app.timeline.n_switches > 0
        await pilot.press("r")  # rerun runs the program again
        await wait_for(pilot, lambda: app.current_run is None and app.timeline.n_events > 0, timeout=30)
        assert app.program_exit == 3


async def test_compare_from_the_picker_stacks_every_model_on_one_axis(replays):
    runner = replays("asyncio-gather", parts=1)
    app = make_app(runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(ScenarioPicker)
        assert compare.ALL in app.scenarios, "the picker offers the stacked compare"
        picker.highlight(compare.ALL)
        await pilot.pause()
        assert "stacks the runs" in str(app.query_one("#picker-description").render())
        assert {i.id for i in app.query("#picker-params Input")} == {"param-jobs", "param-job_sleep",
                                                                      "param-workers"}
        app.query_one("#picker").focus()
        await pilot.press("enter")
        for i in range(len(compare.MODELS)):
            await wait_for(pilot, lambda: len(runner.runs) > i)
            runner.runs[i].release(2)
        await wait_for(pilot, lambda: app.timeline is not None and app._compare_token is None)
        models = [r.target.params["model"] for r in runner.runs]
        assert models == list(compare.MODELS)
        prefixes = {lane.name.split(" · ")[0] for lane in app.timeline.lanes}
        assert prefixes == set(compare.MODELS), "one group of lanes per model"
        assert "compare" in status(app)


async def test_compare_is_in_the_command_palette():
    app = make_app()
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Compare models" in titles


@dataclasses.dataclass(frozen=True)
class _Unavailable(Scenario):
    unavailable: str | None = None


def unavailable_catalogue() -> dict[str, Scenario]:
    base = catalogue()["threadpool-shutdown"]
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Scenario)}
    fields.update(name="io-async", title="Asynchronous IO (io_uring)", topic="io", unavailable=(
        "io_uring needs Linux >= 6.14 (this kernel: 5.15); errno 38 ENOSYS from io_uring_setup"))
    return {"threadpool-shutdown": base, "io-async": _Unavailable(**fields)}


async def test_unavailable_scenarios_are_dimmed_with_the_reason_and_enter_explains(replays):
    runner = replays("threadpool-shutdown")
    app = make_app(scenarios=unavailable_catalogue(), runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(ScenarioPicker)
        option_list = app.query_one("#picker", OptionList)
        prompt = option_list.get_option("io-async").prompt
        assert "✗" in str(prompt), "marked so it reads without colour"
        picker.highlight("io-async")
        await pilot.pause()
        assert "Unavailable here: io_uring needs Linux" in str(app.query_one("#picker-description").render())
        option_list.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "cannot run here" in app.screen.title_text and "ENOSYS" in app.screen.message
        assert runner.runs == [], "nothing was started"
        await pilot.press("escape")
        picker.highlight("threadpool-shutdown")
        option_list.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: runner.runs)


async def test_a_live_program_killed_by_a_signal_exits_as_a_shell_reports_it(tmp_path):
    """`concurview run segv.py`: the program crashed by itself, so the status is 128 + SIGSEGV (139),
    not 124 (which is for a run stopped or timed out before its end)."""
    program = tmp_path / "segv.py"
    program.write_text("import ctypes\nprint('about to crash', flush=True)\nctypes.string_at(0)\n")
    app = make_app(program=Target(str(program)), run_timeout=30)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.current_run is None, timeout=30)
        await pilot.pause()
    assert app.program_exit == 139
