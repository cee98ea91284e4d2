"""SVG snapshots of folded lane families, an unfolded one, and the lane filter, on the recorded many-tasks trace.

tests/traces/many-tasks.jsonl is an asyncio server's shape (benchmarks/real_shapes.py, 3000 events):
113 lanes, handle_connection-N tasks with handle_request-N tasks nested under them. Update with
`pytest tests/snapshots/test_fold_snapshots.py --snapshot-update` and read the SVGs' text first.
"""

from __future__ import annotations

from pathlib import Path

from concurview.tui.app import make_app

TRACE = Path(__file__).resolve().parent.parent / "traces" / "many-tasks.jsonl"
SIZE = (120, 34)


def app():
    return make_app(trace=str(TRACE))


def middle_then(*keys: str):
    async def run_before(pilot) -> None:
        await pilot.pause()
        pilot.app.goto_switch(pilot.app.timeline.n_switches // 2)
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
    return run_before


def test_folded_families(snap_compare):
    """Four rows instead of 113: MainThread, main, `⊞◇ 65 handle_connection-N` and `⊞◇ 46 handle_request-N`
    under it; each family row's cells are bars (▁..█: the share of its members present that are busy), the
    label's state word the state most members are in at the cursor (middle switch); the status line says
    "2 families folded"."""
    assert snap_compare(app(), terminal_size=SIZE, run_before=middle_then())


def test_folded_family_selected(snap_compare):
    """The requests' family row selected (▸, highlighted); the status line counts its members at the cursor:
    "46 handle_request-N tasks: N running-ready, N waiting" (200 columns: the status line's end shows)."""
    assert snap_compare(app(), terminal_size=(200, 34), run_before=middle_then("down", "down", "down"))


def test_unfolded_family(snap_compare):
    """Enter on the requests' family: its 46 handle_request-N lanes get a row each (one-line lanes, short
    lives), the connections' family stays folded above them; "1 family folded"."""
    async def run_before(pilot) -> None:
        await middle_then()(pilot)
        pilot.app.query_one("#lanes").focus()
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_lane_filter(snap_compare):
    """`l` then `waited:Lock`: only the 12 lanes that ever waited on Lock.acquire (handle_connection-29, -45 ...,
    handle_request-5, -13 ... under them), too few of each family to fold; the status line says
    "12 of 113 lanes (filter: waited:Lock)"."""
    assert snap_compare(app(), terminal_size=SIZE, run_before=middle_then("l", *"waited:Lock", "enter"))


def test_lane_filter_dialog(snap_compare):
    """The filter dialog: "Show only the lanes that match", the pattern typed (`kind:task state:wait`), the
    terms it takes below."""
    assert snap_compare(app(), terminal_size=SIZE, run_before=middle_then("l", *"kind:task state:wait"))
