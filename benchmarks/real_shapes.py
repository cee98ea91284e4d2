"""Traces shaped like real programs' (many short-lived lanes, log text, greenlet storms), written fast for the benchmarks.

store_open's synthetic trace has 105 long-lived lanes; real programs have thousands to a million
short-lived ones (an aiohttp server: a task per request; gevent's test__pool: 17k greenlets), print
lines of their own, and nest tasks. These writers produce such traces as JSON Lines directly (the
format of docs/trace-format.md, as TraceWriter writes it), a few million lines a second.
"""

from __future__ import annotations

import json
from pathlib import Path

HEADER = {"format": "concurview-trace", "version": 1, "scenario": None, "params": {},
          "python": "3.11.7", "platform": "Linux", "start_time": "2026-12-06T00:00:00.000+00:00"}


def _begin(f, program: str):
    """Write the header and the main thread's lane; the file's write method."""
    f.write(json.dumps({**HEADER, "program": program}, separators=(",", ":")) + "\n")
    f.write('{"type":"lane","id":0,"kind":"main","name":"MainThread","pid":100,"tid":1}\n')
    return f.write


def greenlet_storm(path: Path, greenlets: int) -> int:
    """A gevent server's shape: a hub and `greenlets` short-lived greenlets, each spawned, run, switched
    back to the hub once, run again and finished (6 events). Returns the number of events."""
    seq = 0
    t = 0
    with open(path, "w", encoding="utf-8") as f:
        w = _begin(f, f"storm-{greenlets}.py")
        w('{"type":"lane","id":1,"kind":"hub","name":"Hub","parent":0,"pid":100,"tid":1}\n')
        w('{"seq":0,"t":0,"lane":0,"kind":"run","reason":"program starts","where":"storm.py:1"}\n')
        w('{"seq":1,"t":10,"lane":1,"kind":"open","cause":0}\n')
        seq = 2
        lines = []
        for g in range(greenlets):
            lane = g + 2
            lines.append(f'{{"type":"lane","id":{lane},"kind":"greenlet","name":"handle-{g + 1}","parent":0,'
                         f'"pid":100,"tid":1}}\n')
            for kind, extra in (("open", ',"where":"storm.py:9","cause":1'),
                                ("run", ',"reason":"switch \\u2192 handle","where":"storm.py:12","cause":1'),
                                ("wait", ',"reason":"switch \\u2192 Hub","where":"storm.py:14"'),
                                ("ready", ',"cause":1'),
                                ("run", ',"where":"storm.py:14","cause":1'),
                                ("close", ',"reason":"returned","where":"storm.py:15"')):
                t += 700
                lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"{kind}"{extra}}}\n')
                seq += 1
            if len(lines) > 50_000:
                w("".join(lines))
                lines.clear()
        w("".join(lines))
        w(json.dumps({"type": "footer", "complete": True, "exit_code": 0, "events": seq,
                      "lanes": greenlets + 2, "duration": t}, separators=(",", ":")) + "\n")
    return seq


def many_tasks(path: Path, events: int, lanes_alive: int = 200, log_every: int = 20, life: int = 40) -> int:
    """An asyncio server's shape: request tasks nested under connection tasks, `lanes_alive` at a
    time, each living ~`life` events (so 10M events make ~250k lanes at 40; 2k lanes at 5000), a
    printed line of its own text every `log_every` events. Returns the number of lanes."""
    seq = 0
    t = 0
    n_lanes = 2
    with open(path, "w", encoding="utf-8") as f:
        w = _begin(f, f"server-{events}.py")
        w('{"type":"lane","id":1,"kind":"task","name":"main","parent":0,"pid":100,"tid":1}\n')
        lines = ['{"seq":0,"t":0,"lane":0,"kind":"run","reason":"program starts","where":"server.py:1"}\n',
                 '{"seq":1,"t":5,"lane":1,"kind":"open","cause":0}\n',
                 '{"seq":2,"t":6,"lane":1,"kind":"run","where":"server.py:40"}\n',
                 '{"seq":3,"t":7,"lane":1,"kind":"wait","reason":"await serve_forever()","where":"server.py:41"}\n']
        seq = 4
        alive: list[list[int]] = []  # [lane, events left]
        reasons = [f"await sleep({i / 100:.2f})" for i in range(30)] + ["await StreamReader.read()", "await Lock.acquire()"]
        k = 0
        while seq < events:
            if len(alive) < lanes_alive:
                parent = alive[k % len(alive)][0] if alive and k % 3 == 0 else 1
                lane = n_lanes
                n_lanes += 1
                name = f"handle_request-{lane}" if parent != 1 else f"handle_connection-{lane}"
                lines.append(f'{{"type":"lane","id":{lane},"kind":"task","name":"{name}","parent":{parent},'
                             f'"pid":100,"tid":1}}\n')
                t += 300
                lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"open","where":"server.py:{20 + lane % 7}",'
                             f'"cause":{parent}}}\n')
                seq += 1
                alive.append([lane, life])
                continue
            slot = alive[k % len(alive)]
            k += 1
            lane = slot[0]
            slot[1] -= 1
            t += 250
            if slot[1] <= 0:
                lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"close","reason":"returned"}}\n')
                alive.remove(slot)
            elif seq % log_every == 0:
                lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"log","reason":"stdout",'
                             f'"text":"request {seq} from 10.0.{lane % 250}.{seq % 250} took {seq % 97} ms"}}\n')
            else:
                phase = slot[1] % 3
                if phase == 0:
                    lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"run","where":"server.py:{30 + seq % 9}",'
                                 f'"cause":0}}\n')
                elif phase == 1:
                    lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"wait","reason":"{reasons[seq % 32]}",'
                                 f'"where":"server.py:{30 + seq % 9}"}}\n')
                else:
                    lines.append(f'{{"seq":{seq},"t":{t},"lane":{lane},"kind":"ready","cause":0}}\n')
            seq += 1
            if len(lines) > 50_000:
                w("".join(lines))
                lines.clear()
        w("".join(lines))
        w(json.dumps({"type": "footer", "complete": True, "exit_code": 0, "events": seq, "lanes": n_lanes,
                      "duration": t}, separators=(",", ":")) + "\n")
    return n_lanes
