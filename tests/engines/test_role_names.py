"""Lanes a library made for the program are named by their role or the program's function they run, never the library's private wrapper."""

from __future__ import annotations

import pytest
from recording import record_timeline


@pytest.mark.parametrize("name, role", [("socket-echo-gevent", "handle"), ("socket-echo-asyncio", "accept connection")])
def test_server_lanes_are_named_by_their_role(name, role):
    """gevent's StreamServer runs each connection in `_handle_and_close_when_done(handle, ...)`: the lane
    is `handle`, `handle-2`, ...; asyncio.start_server's per-connection set-up task is `accept connection`."""
    tl = record_timeline(name, clients=3, requests=2, sample=3)
    names = [lane.name for lane in tl.lanes]
    assert not [n for n in names if n.split(".")[-1].startswith("_")], names
    assert {role, f"{role}-2", f"{role}-3"} <= set(names), names
