"""Nothing a trace says reaches the terminal raw, and the source pane shows only source text the trace stores.

A trace is data from anywhere: its names and texts are shown escaped (text.clean) in every pane and
dialog; its header's paths are never opened (`"source": "/etc/shadow"` once showed that file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hostile_trace import FIELDS, payload, write_hostile_trace
from uitraces import trace

from concurview.tui.app import ConcurviewApp, make_app
from concurview.tui.panes import SourceView

SIZE = (160, 45)
# What no drawn cell may hold: C0 (tab and newline too: a segment is one line of cells), DEL, C1, the bidi
# controls, lone surrogates.
RAW = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def screen_text(app: ConcurviewApp) -> str:
    """Every cell of the screen as drawn (all widgets, the dialogs and notifications on top), checked raw-free."""
    strips = app.screen._compositor.render_strips()
    for y, strip in enumerate(strips):
        for segment in strip:
            if segment.control:
                continue  # Textual's own cursor moves, not text
            assert not RAW.search(segment.text), f"row {y} draws {segment.text!r}"
    return "\n".join(strip.text for strip in strips)


def source_text(app: ConcurviewApp) -> str:
    view = app.query_one(SourceView)
    return "\n".join(view.render_line(y).text for y in range(view.size.height))


def escaped(tag: str) -> str:
    return f"{tag}\\x1b]52;c;"


@pytest.mark.parametrize("failed", ["incomplete", "raised"])
async def test_no_pane_or_dialog_draws_a_control_character_from_a_hostile_trace(tmp_path, failed):
    """Walk every event (explanation line, lane labels, output, source marks), the error dialog, find results
    and a notification naming a lane: nothing drawn holds a control or bidi character; the strings show escaped."""
    app = make_app(trace=str(write_hostile_trace(tmp_path / "evil.jsonl", failed=failed)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = screen_text(app)
        dialog = "The run did not finish" if failed == "incomplete" else "The program raised"
        assert dialog in shown
        assert escaped(FIELDS["footer" if failed == "incomplete" else "error"]) in shown, "the dialog shows it escaped"
        await pilot.press("escape")
        await pilot.pause()
        shown = screen_text(app)
        for field in ("program", "lane", "log", "mark", "source"):
            assert escaped(FIELDS[field]) in shown, f"the {field} shows, escaped"
        seen = set()
        for _ in range(app.timeline.n_events + 1):  # every event: the explanation describes each
            await pilot.press("shift+right")
            seen.add(screen_text(app))
        assert any(escaped(FIELDS["reason"]) in s for s in seen) and any(escaped(FIELDS["error"]) in s for s in seen)
        await pilot.press("right_square_bracket", "right_square_bracket")  # "<lane> has no later switch"
        await pilot.pause()
        screen_text(app)
        for query in ("RSN", "LOG", "LNA", "ERR"):
            await pilot.press("slash", *query)
            await pilot.pause()
            assert escaped(FIELDS[{"RSN": "reason", "LOG": "log", "LNA": "lane", "ERR": "error"}[query]]) \
                in screen_text(app), "find results show it escaped"
            await pilot.press("escape")
        assert app.sub_title.isprintable()


def _trace_with_header(path: Path, **header) -> Path:
    """A small valid trace (one lane, two switches) under the given header fields."""
    lines = [
        {"format": "concurview-trace", "version": 1, "params": {}, **header},
        {"type": "lane", "id": 0, "kind": "main", "name": "MainThread", "pid": 1, "tid": 1},
        {"seq": 0, "t": 0, "lane": 0, "kind": "open"},
        {"seq": 1, "t": 1000, "lane": 0, "kind": "run", "where": "x.py:1"},
        {"seq": 2, "t": 2000, "lane": 0, "kind": "wait", "reason": "sleep 1.0s", "where": "x.py:2"},
        {"seq": 3, "t": 3000, "lane": 0, "kind": "run", "where": "x.py:3"},
        {"seq": 4, "t": 4000, "lane": 0, "kind": "close"},
        {"type": "footer", "complete": True, "exit_code": 0, "events": 5, "lanes": 1},
    ]
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.py"
    path.write_text("API_KEY = 'TOPSECRET-4f1e'\n")
    return path


@pytest.mark.parametrize("header", [
    pytest.param(lambda s: {"program": str(s), "source": str(s)}, id="the program's recorded path"),
    pytest.param(lambda s: {"program": "secret.py", "source": "secret.py"}, id="a file beside the trace"),
    pytest.param(lambda s: {"program": "x.py", "source": str(s), "source_missing": None}, id="source names it"),
    pytest.param(lambda s: {"scenario": "no-such-scenario", "source": str(s)}, id="an unknown scenario"),
])
async def test_the_source_pane_never_shows_a_file_the_trace_names(tmp_path, secret, header):
    path = _trace_with_header(tmp_path / "t.jsonl", **header(secret))
    app = make_app(trace=str(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.timeline.n_events == 5 and app.timeline.complete
        shown = source_text(app)
        assert "TOPSECRET" not in shown and "TOPSECRET" not in screen_text(app)
        assert "source is not stored in this trace" in shown or "source not stored in this trace" in shown


async def test_etc_passwd_named_by_a_trace_is_not_shown(tmp_path):
    path = _trace_with_header(tmp_path / "t.jsonl", program="/etc/passwd", source="/etc/passwd")
    async with make_app(trace=str(path)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "root:" not in screen_text(pilot.app) and "source not stored" in source_text(pilot.app)


async def test_a_scenario_trace_shows_the_scenarios_own_file_whatever_its_source_says(tmp_path, secret):
    """The scenario's name picks concurview's own file from the catalogue; the header's path is not read."""
    path = _trace_with_header(tmp_path / "t.jsonl", scenario="timer", source=str(secret))
    async with make_app(trace=str(path)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = source_text(pilot.app)
        assert "TOPSECRET" not in shown and "threading.Timer" in shown


async def test_the_stored_source_text_is_shown_and_escaped(tmp_path):
    text = "import time\n\ttime.sleep(1)  # \x1b]52;c;eHh4\x07 tab-indented\n"
    path = _trace_with_header(tmp_path / "t.jsonl", program="/gone/x.py", source="/gone/x.py", source_text=text)
    async with make_app(trace=str(path)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = source_text(pilot.app)
        assert "time.sleep(1)  # \\x1b]52;c;eHh4\\x07 tab-indented" in shown and "import time" in shown
        assert pilot.app.query_one(SourceView).border_title == "source · x.py"


async def test_an_older_trace_of_a_program_says_its_source_is_not_stored():
    """error-raises.jsonl predates stored source (its program, raises.py, lies beside it: not read)."""
    async with make_app(trace=trace("error-raises")).run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = source_text(pilot.app)
        assert "source not stored in this trace" in shown and "int(" not in shown


@pytest.mark.parametrize("size, message", [(5 << 20, "source too large to show"), (300 << 10, None)])
async def test_a_huge_source_text_neither_crashes_nor_stalls_the_app(tmp_path, size, message):
    """Over the 1 MB shown: a note; over the 128 KB highlighted: shown plain (pygments takes ~5 s a MB)."""
    line = "x = 1  # " + "y" * 80 + "\n"
    text = line * (size // len(line))
    path = _trace_with_header(tmp_path / "t.jsonl", program="big.py", source="big.py", source_text=text)
    async with make_app(trace=str(path)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("right", "right")
        await pilot.pause()
        shown = source_text(pilot.app)
        assert (message in shown) if message else "x = 1  # yyy" in shown


async def test_the_export_dialog_proposes_a_plain_file_name_whatever_the_trace_calls_itself(tmp_path):
    """The scenario's name from the trace becomes the proposed file's stem: no path, no escape sequences."""
    from textual.widgets import Input

    path = _trace_with_header(tmp_path / "t.jsonl", scenario="../../etc/x\x1b]0;owned\x07")
    async with make_app(trace=str(path)).run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        proposed = Path(pilot.app.screen.query_one(Input).value)
        assert proposed.parent == Path.cwd() and proposed.name == "etc_x_0_owned.jsonl"
        screen_text(pilot.app)
