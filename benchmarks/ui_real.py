"""The UI on real-shaped traces (thousands of short-lived lanes, log lines, nested tasks): open, and key -> repaint
for the keys a user presses (→ ← end t + - ↓ ] f), at 200x50, beside a bare Textual app's key -> repaint (the floor).

Real programs under `concurview run` make 2k-20k lanes (CPython's test_asyncio.test_tasks 1,907 lanes, an
aiohttp server answering 2,000 requests 2,204, gevent's test__pool 17k greenlets); before lane families folded
and the per-key passes over every lane went, each of these keys took 25-100 ms there. The traces come from
benchmarks/real_shapes.py: an asyncio server's shape with 2k and 20k lanes at 1M events, a gevent pool's
(170k greenlets of 6 events each) at 1M, and in a full run the 20k-lane shape at 10M events.
Key -> repaint is measured as bench_ui measures it: the Key posted as the driver posts it, until the screen
update that repaints the diagram is encoded for a truecolour terminal.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks import Result, median, publish
from benchmarks.bench_ui import SIZE, ScreenUpdates, _key_latency, _p95, watch_diagram_lines
from benchmarks.real_shapes import greenlet_storm, many_tasks

NAME = "ui_real"
TITLE = "UI on real-shaped traces (2k / 20k / 170k lanes; 1M and 10M events): open, key -> repaint per key"

# (key, character) in the order pressed; each round presses every one, the arrows several times.
# `]` on the third row: a folded family's (its next switch of any member).
KEYS = ([("right", None)] * 4 + [("left", None)] * 4
        + [("end", None), ("home", None), ("t", "t"), ("t", "t"), ("plus", "+"), ("minus", "-"),
           ("down", None), ("down", None), ("right_square_bracket", "]"), ("right_square_bracket", "]"),
           ("up", None), ("up", None), ("f", "f"), ("f", "f")])


def missing() -> str | None:
    return None


async def _bare_floor(quick: bool) -> list[float]:
    """Key -> repaint of a bare Textual app whose one key changes one line: what any key costs here."""
    from textual.app import App
    from textual.binding import Binding
    from textual.widgets import Static

    class Bare(App):
        BINDINGS = [Binding("right", "bump", priority=True)]

        def compose(self):
            yield Static("0", id="n")

        def action_bump(self) -> None:
            w = self.query_one("#n", Static)
            w.update(str(int(str(w.render())) + 1))

    updates = ScreenUpdates()
    try:
        app = Bare()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            updates.diagram = app.query_one("#n")
            return [await _key_latency(app, pilot, updates, "right", None) for _ in range(30 if quick else 100)]
    finally:
        updates.close()


async def _measure(path: Path, quick: bool) -> dict:
    from concurview.tui.app import make_app
    from concurview.tui.lanes import LaneDiagram

    rendered, restore = watch_diagram_lines()
    updates = ScreenUpdates()
    try:
        t0 = time.perf_counter()
        app = make_app(trace=str(path))
        async with app.run_test(size=SIZE) as pilot:
            while not rendered:
                await asyncio.sleep(0.001)
            open_s = rendered[0][0] - t0
            await pilot.pause()
            diagram = updates.diagram = app.query_one(LaneDiagram)
            diagram.focus()
            tl = app.timeline
            app.goto_switch(tl.n_switches // 2)
            await pilot.pause()
            by_key: dict[str, list[float]] = {}
            for _ in range(2 if quick else 8):
                for key, ch in KEYS:
                    by_key.setdefault(key, []).append(await _key_latency(app, pilot, updates, key, ch))
                app.goto_switch(tl.n_switches // 2)
                await pilot.pause()
            rows = len(app.nav.rows())
            await pilot.press("q")
        return {"open_s": open_s, "by_key": by_key, "lanes": len(tl.lanes), "events": tl.n_events,
                "switches": tl.n_switches, "rows_folded": rows}
    finally:
        restore()
        updates.close()


def run(quick: bool = False) -> list[Result]:
    shapes = [("asyncio server, 2k lanes", "tasks", 1_000_000, 500),
              ("asyncio server, 20k lanes", "tasks", 1_000_000, 50),
              ("gevent pool, 170k greenlets", "storm", 1_000_000 // 6, 0)]
    if quick:
        shapes = [(name.replace("2k", "400").replace("20k", "4k").replace("170k", "33k"), kind, n // 5, life)
                  for name, kind, n, life in shapes]
    else:
        shapes.append(("asyncio server, 20k lanes, 10M events", "tasks", 10_000_000, 500))
    ms = 1e3
    results: list[Result] = []
    samples: dict = {}
    floor = asyncio.run(_bare_floor(quick))
    with tempfile.TemporaryDirectory(prefix="cv-bench-ui-real-") as tmp:
        for name, kind, n, life in shapes:
            path = Path(tmp) / "shape.jsonl"
            w0 = time.perf_counter()
            if kind == "tasks":
                many_tasks(path, n, lanes_alive=200, life=life)
            else:
                greenlet_storm(path, n)
            print(f"#   {name}: wrote the trace in {time.perf_counter() - w0:.1f} s", flush=True)
            m = asyncio.run(_measure(path, quick))
            path.unlink()
            label = f"{name}, {m['events'] / 1e6:.3g}M events ({m['lanes']:,} lanes -> {m['rows_folded']} rows)"
            every = [x for xs in m["by_key"].values() for x in xs]
            steps = m["by_key"]["right"] + m["by_key"]["left"]
            per_key = {k: round(median(v) * ms, 2) for k, v in m["by_key"].items()}
            big = m["events"] > 2_000_000
            results += [
                Result(NAME, f"{label}: open to first diagram line", m["open_s"] * ms, " ms",
                       "<= 10000 ms" if big else "<= 1000 ms", m["open_s"] <= (10.0 if big else 1.0)),
                Result(NAME, f"{label}: key -> repaint (step) median", median(steps) * ms, " ms", "<= 5 ms",
                       median(steps) * ms <= 5),
                Result(NAME, f"{label}: key -> repaint (step) p95", _p95(steps) * ms, " ms", "<= 10 ms",
                       _p95(steps) * ms <= 10),
                Result(NAME, f"{label}: key -> repaint (every key) median", median(every) * ms, " ms", "<= 5 ms",
                       median(every) * ms <= 5, {"median_ms_by_key": per_key}),
                Result(NAME, f"{label}: key -> repaint (every key) p95", _p95(every) * ms, " ms", "<= 10 ms",
                       _p95(every) * ms <= 10, {"median_ms_by_key": per_key}),
            ]
            print(f"#   {name}: median ms by key {per_key}", flush=True)
            samples[name] = {"open_s": m["open_s"], "by_key_s": m["by_key"]}
    results.append(Result(NAME, "floor: key -> repaint of a bare Textual app (one line changes), median",
                          median(floor) * ms, " ms", "", None, {"p95_ms": _p95(floor) * ms}))
    publish(NAME, results, samples | {"bare_floor_s": floor})
    return results


if __name__ == "__main__":
    import sys

    import benchmarks
    benchmarks.QUICK = "--quick" in sys.argv
    run(quick=benchmarks.QUICK)
