"""Child -> store: a traced child floods 1M events; how fast they are decoded into the Timeline, and what they weigh there.

Also the same for a real workload, gevent 500 x 1000 `sleep(0)` (1M switches): its
captured stream replayed through the runner's decoding and the store, so the rate is
the parent's, not how fast gevent produces them.
"""

from __future__ import annotations

import cProfile
import importlib.util
import io
import pstats
import time
import tracemalloc

from benchmarks import Result, median, publish, run_through_store, run_traced

NAME = "transport"
TITLE = "child -> store: 1M events decoded into the Timeline (events/s), store bytes per event"
EVENTS = 1_000_000
GEVENT_TASKS, GEVENT_STEPS = 500, 1000  # each sleep(0) switches to the hub and back: 1M switches


def missing() -> str | None:
    return None


def run(quick: bool = False) -> list[Result]:
    n = EVENTS // 4 if quick else EVENTS
    reps = 1 if quick else 3
    # 1. End to end, as `concurview record` and the app run it: Run decodes and merges, the
    #    Timeline ingests; the child waits on the socket whenever the parent falls behind.
    runs = [run_through_store("event_flood.py", n) for _ in range(reps)]
    streaming = median([timings["streaming_s"] for _, _, timings in runs])
    _, tl, _ = runs[-1]
    rate = tl.n_events / streaming
    # 2. How fast the child alone produces them (its channel drained, not decoded).
    captured = run_traced("event_flood.py", n, keep=True)
    child_rate = n / captured["elapsed_s"]
    wire = captured["wire_bytes"] / n
    # 3. Where the parent's time goes: the captured stream replayed through the same code.
    stages = replay_stages(captured["streams"])
    stages.pop("events")
    per_event = {k: v / n * 1e9 for k, v in stages.items()}
    profile = replay_profile(captured["streams"])
    # 4. What the store keeps per event: its own account, and everything it retains (tracemalloc).
    own = tl.memory_bytes() / tl.n_events
    retained = replay_retained(captured["streams"]) / n

    # 5. A real workload: gevent's switches, decoded as fast as the parent can.
    gevent_rate = gevent_events = None
    if importlib.util.find_spec("gevent") is not None:
        steps = GEVENT_STEPS // 4 if quick else GEVENT_STEPS
        g = run_traced("gevent_storm.py", GEVENT_TASKS, steps, keep=True)
        g_stages = replay_stages(g["streams"])
        gevent_events = g_stages.pop("events")
        gevent_rate = gevent_events / sum(g_stages.values())

    results = [
        Result(NAME, f"{tl.n_events:,} events decoded into the store at", rate, " events/s", ">= 1.5M/s",
               rate >= 1.5e6, {
                   "streaming_s": streaming, "child_alone_events_per_s": child_rate,
                   "wire_bytes_per_event": wire, "parent_ns_per_event": per_event,
                   "profile_top": profile,
               }),
        Result("store-memory", f"Timeline.memory_bytes() at {tl.n_events:,} events:", own, " B/event", "<= 24",
               own <= 24, {"retained_bytes_per_event_tracemalloc": retained, "lanes": len(tl.lanes)}),
    ]
    if gevent_rate is not None:
        results.append(Result(
            NAME + "-gevent", f"gevent {GEVENT_TASKS} x {steps} sleep(0): {gevent_events:,} events decoded at",
            gevent_rate, " events/s", ">= 1.5M/s", gevent_rate >= 1.5e6,
            {"events": gevent_events, "parent_s": g_stages},
        ))
    publish(NAME, results, {"streaming_s": [t["streaming_s"] for _, _, t in runs]})
    stage_line = ", ".join(f"{k} {v:.0f}" for k, v in per_event.items())
    print(f"#   child alone: {child_rate / 1e6:.2f}M events/s, {wire:.1f} wire bytes/event; "
          f"parent ns/event: {stage_line}")
    print(f"#   store retains {retained:.1f} B/event in all (tracemalloc)")
    if rate < 1.5e6:
        print("#   parent profile (replay, by own time):")
        for row in profile[:8]:
            print(f"#     {row['tottime_ns_per_event']:6.0f} ns/event  {row['function']}")
    return results


def _batches(streams: list[bytes]):
    """The stream cut as the runner cuts it: whatever one recv(1 MiB) brought is one batch."""
    from concurview.trace.columns import Columns, Stream
    from concurview.engines.runner import Run, Target

    run = Run(Target("replay"))
    for data in streams:
        stream = Stream()
        for pos in range(0, len(data), 1 << 20):
            stream.buf += data[pos:pos + (1 << 20)]
            lanes, parts = [], []
            run._frames(stream, lanes, parts)
            yield lanes, Columns.concat(parts) if parts else []


def replay_stages(streams: list[bytes]) -> dict[str, float]:
    """Seconds spent decoding frames, merging them into Columns, and in Timeline.add (and the events)."""
    from concurview.trace.columns import Columns, Stream
    from concurview.engines.runner import Run, Target
    from concurview.trace.store import Timeline

    decoded = []
    t0 = time.perf_counter()
    for data in streams:
        stream = Stream()
        for pos in range(0, len(data), 1 << 20):
            stream.buf += data[pos:pos + (1 << 20)]
            decoded.append((stream, stream.groups()))
    t_decode = time.perf_counter() - t0
    run = Run(Target("replay"))
    merged = []
    t0 = time.perf_counter()
    for stream, groups in decoded:
        lanes, parts = [], []
        for group in groups:
            room = run.max_events - run.n_events
            cols = run._merger.merge(stream, group, room, lanes)
            if cols is not None:
                parts.append(cols)
                run.n_events += len(cols)
        merged.append((lanes, Columns.concat(parts) if parts else []))
    t_merge = time.perf_counter() - t0
    del decoded
    tl = Timeline()
    t0 = time.perf_counter()
    for lanes, cols in merged:
        tl.add(lanes, cols)
    t_add = time.perf_counter() - t0
    return {"decode": t_decode, "merge": t_merge, "store_add": t_add, "events": tl.n_events}


def replay_profile(streams: list[bytes]) -> list[dict]:
    from concurview.trace.store import Timeline

    n = 0
    prof = cProfile.Profile()
    tl = Timeline()
    prof.enable()
    for lanes, events in _batches(streams):
        tl.add(lanes, events)
        n += len(events)
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{func} ({file.rsplit('/', 1)[-1]}:{line})", "tottime_ns_per_event": tt / n * 1e9})
    rows.sort(key=lambda r: -r["tottime_ns_per_event"])
    return rows[:12]


def replay_retained(streams: list[bytes]) -> int:
    """Bytes still allocated once the batches are gone and only the Timeline is left."""
    from concurview.trace.store import Timeline

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tl = Timeline()
    for lanes, events in _batches(streams):
        tl.add(lanes, events)
    lanes = events = None  # the last batch (a 1 MiB read is ~150k narrow events) is not the store's
    tl.finish(None)
    retained = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del tl
    return retained
