"""The IO scenarios on screen: each read's two phases as bands (phase 2 visible without zooming), marks showing their message, the phases in the ? legend."""

from __future__ import annotations

from uitraces import trace

from concurview.tui.app import make_app
from concurview.tui.lanes import GLYPHS, PHASE1, PHASE2, LaneDiagram
from concurview.tui.panes import LogView
from concurview.tui.screens import GLYPH_LEGEND

SIZE = (120, 34)
MODELS = ("blocking", "non-blocking", "epoll", "signal-driven", "async")
P1, P2 = GLYPHS[PHASE1], GLYPHS[PHASE2]


def rows(app) -> dict[str, str]:
    """lane name -> its drawn cells (without the label), as the diagram draws them."""
    diagram = app.query_one(LaneDiagram)
    label_width, _ = diagram.layout_widths()
    tree = app.timeline.lane_tree()
    return {app.timeline.lanes[lane].name: diagram.render_line(y + 1).text[label_width + 1:]
            for y, (lane, _) in enumerate(tree)}


def assert_both_phases(drawn: dict[str, str], time_axis: bool) -> None:
    for m in MODELS:
        cells = drawn[f"kernel buffer · {m}"]
        assert P1 in cells and P2 in cells, f"{m}: both phases drawn - {cells!r}"
        assert cells.rindex(P1) < cells.index(P2), f"{m}: phase 1, then phase 2"
        if time_axis:
            assert cells.count(P2) == 1, f"{m}: a copy of microseconds is one column (magnified), not zero"
    # The program's lane has no bands: it shows what the program does (█ running, ─ waiting).
    assert P1 not in drawn["MainThread"] and P2 not in drawn["MainThread"]


async def test_io_models_draws_phase_two_without_zooming_on_both_axes():
    """Fit to the whole run (about 1.2 s at 80 columns: 15 ms a column), each model's phase 2 of
    microseconds still shows as one ▓ column after its ░ phase 1; on the switch axis too."""
    app = make_app(trace=trace("io-models"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.axis = "time"
        await pilot.press("0")
        await pilot.pause()
        assert_both_phases(rows(app), time_axis=True)
        await pilot.press("t")
        await pilot.pause()
        assert app.axis == "switch"
        assert_both_phases(rows(app), time_axis=False)  # phase 2 spans the switch it starts with


async def test_main_thread_is_drawn_waiting_during_a_blocking_models_phase_one():
    """Under blocking's ░ band the MainThread row waits (─); under non-blocking's it runs (█)."""
    app = make_app(trace=trace("io-models"))
    async with app.run_test(size=(240, 20)) as pilot:
        await pilot.pause()
        app.axis = "time"
        await pilot.press("0")
        await pilot.pause()
        drawn = rows(app)
        main = drawn["MainThread"]
        for model, glyph in (("blocking", "─"), ("epoll", "─"), ("non-blocking", "█"), ("async", "█")):
            band = [i for i, c in enumerate(drawn[f"kernel buffer · {model}"]) if c == P1]
            inner = band[1:-1]  # the edges may share a cell with what comes before and after
            assert inner and {main[i] for i in inner} == {glyph}, (model, main, drawn[f"kernel buffer · {model}"])


async def test_marks_show_their_message_in_the_output_pane():
    """io-nonblocking's marks (EAGAIN counts) read as their message in the output pane."""
    app = make_app(trace=trace("io-nonblocking"))
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        log = app.query_one(LogView)
        tl = app.timeline
        marks = [tl.event(int(i)) for i in tl.events_of_kind("mark")]
        assert marks and log.line_count <= log.scrollable_content_region.height, "all of it on screen"
        lines = [log.render_line(y).text for y in range(log.line_count)]
        for m in marks:
            assert any(f"◆{m.reason}" in line for line in lines), (m.reason, lines)


def test_a_mark_with_a_source_label_shows_its_message_first():
    """The bug the issue reported: a mark whose text is a label ("observed") showed only the label."""
    from concurview.trace.events import Event
    from concurview.tui.panes import _output_lines

    mark = Event(seq=1, t=5, lane=0, kind="mark", reason="recv() copied 64 B in 151 µs", text="observed")
    assert _output_lines(mark) == ["recv() copied 64 B in 151 µs (observed)"]
    table = Event(seq=2, t=6, lane=0, kind="mark", reason="selectors: 90k req/s", text="a\nb")
    assert _output_lines(table) == ["selectors: 90k req/s", "a", "b"]
    log = Event(seq=3, t=7, lane=0, kind="log", reason="stdout", text="hello")
    assert _output_lines(log) == ["hello"]


async def test_a_table_printed_and_summarised_shows_once():
    """socket-echo prints its result table; its mark is the one-line summary, not the table again."""
    app = make_app(trace=trace("socket-echo"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        log = app.query_one(LogView)
        tl = app.timeline
        shown = []
        for row in range(log.line_count):
            ev, k = log.entry(row)
            e = tl.event(ev)
            shown.append((e.kind, k))
        headers = [e for e in tl.logs() if e.kind == "log" and e.text.lstrip().startswith("style")]
        assert len(headers) == 1
        assert [k for kind, k in shown if kind == "mark"] == [0], "the mark is one line"


def test_the_help_legend_names_both_phases():
    legend = {glyph: what for glyph, what in GLYPH_LEGEND}
    assert legend[P1].startswith("IO phase 1") and legend[P2].startswith("IO phase 2")
    assert "magnified" in " ".join(what for _, what in GLYPH_LEGEND)
