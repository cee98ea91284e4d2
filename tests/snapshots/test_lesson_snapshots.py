"""SVG snapshots of #21 items 4 and 5: play's never-ran lane and the footer at 120x40, a generator's saved locals
in the step text and the footer at 80x24 (recorded fixtures, fixed sizes; see test_snapshots.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from concurview.tui.app import make_app

TRACES = Path(__file__).resolve().parent.parent / "traces"


@pytest.fixture(autouse=True)
def _no_color_from_the_outside(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_greenlet_play_never_ran_120x40(snap_compare):
    """greenlet-eat-play at its last switch: play's lane (created at line 58) drawn ┄ to the end, its label
    `never`; the status line says `sleep=0.2` and 2 warnings (w); the footer ends with p picker, ? help,
    q quit and ^p."""

    async def run_before(pilot) -> None:
        await pilot.pause()
        pilot.app.goto_switch(-1)
        await pilot.pause()

    app = make_app(trace=str(TRACES / "greenlet-eat-play.jsonl"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_generator_saved_locals_80x24(snap_compare):
    """generator-pingpong on the switch axis at the consumer's second yield: the step says
    `consumer waits (yield '200 OK' · saved r='200 OK', n=1 ...)`; the footer at 80 columns keeps
    p picker, ? help, q quit and ^p."""

    async def run_before(pilot) -> None:
        await pilot.pause()
        app = pilot.app
        tl = app.timeline
        k = next(k for k in range(tl.n_switches) if "n=1" in (tl.switch(k).stopped_reason or ""))
        app.goto_switch(k)
        await pilot.pause()

    app = make_app(trace=str(TRACES / "generator-pingpong.jsonl"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
