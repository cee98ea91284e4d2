"""Sleep reasons carry the program's own argument as written (`sleep 0.05s`, `sleep 1s`), a computed float in %g, never its 17 digits."""

from __future__ import annotations

from recording import events, record_program


def test_sleep_reasons_are_short(tmp_path):
    """A computed argument (an event loop's `deadline - now`) reads `sleep 0.0299876s`, not
    `sleep 0.029987630000104453s`; a literal one reads as written; a float that is whole, without `.0`."""
    tl = record_program(tmp_path, """
        import time
        time.sleep(0.02)
        deadline = time.monotonic() + 0.03
        time.sleep(max(0.0, deadline - time.monotonic()))
        time.sleep(0.0)
        time.sleep(1e-3)
    """)
    reasons = [e.reason for e in events(tl, "wait") if (e.reason or "").startswith("sleep")]
    assert reasons[0] == "sleep 0.02s" and reasons[2:] == ["sleep 0s", "sleep 0.001s"], reasons
    computed = reasons[1][len("sleep "):-1]
    assert len(computed.replace(".", "").lstrip("0")) <= 6 and abs(float(computed) - 0.03) < 0.01, reasons
