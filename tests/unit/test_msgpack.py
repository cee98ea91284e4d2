"""The pure-Python frame writer (engines/_msgpack.py) writes msgspec's bytes, and the traced child needs no msgspec."""

import subprocess
import sys

import msgspec
import pytest

from concurview.engines import _msgpack
from concurview.trace.events import Frame, WireLane

INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
        -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]


@pytest.mark.parametrize("value", [None, True, False, *INTS, "", "a" * 31, "é" * 40, "x" * 300, "y" * 70000,
                                   b"", b"\x00" * 255, b"\x01" * 256, b"\x02" * 70000, [], list(range(15)),
                                   list(range(16)), list(range(70000)), [[1, "a", None], (2, b"b")]])
def test_values_are_written_as_msgspec_writes_them(value):
    assert _msgpack.pack(value) == msgspec.msgpack.encode(value)
    back = msgspec.msgpack.decode(_msgpack.pack(value))
    assert _msgpack.unpack(_msgpack.pack(value)) == back


def test_a_frame_is_written_byte_for_byte_as_msgspec_writes_the_same_frame():
    lanes = [(5 << 24 | 1, "thread", "worker-1", 5 << 24, 5, 12345), (5 << 24 | 2, "greenlet", "eat", None, 5, None)]
    cols = [(123456789, bytes(range(16))), (5 << 24, b"\x00\x01" * 8), (0, b""), (-1, b"\x00" * 8),
            (0, b"\x01\x02"), (0, b""), (2**40, b"\xff" * 64)]
    frame = [5, lanes, 3, 16, *cols, ["sleep 1.0s", "x.py:3", "\udcff lone"], True]
    ours = _msgpack.pack(frame)
    struct = Frame(5, [WireLane(*lane) for lane in lanes], 3, 16, *[tuple(c) for c in cols],
                   ["sleep 1.0s", "x.py:3", "? lone"], True)
    assert ours == msgspec.msgpack.encode(struct)
    decoded = msgspec.msgpack.decode(ours, type=Frame)
    assert decoded.n == 16 and decoded.lanes[1].name == "eat" and decoded.strings[2] == "? lone"
    assert _msgpack.unpack(ours)[11] == ["sleep 1.0s", "x.py:3", "? lone"]


def test_a_cut_value_is_a_value_error():
    with pytest.raises(ValueError):
        _msgpack.unpack(_msgpack.pack(["abc", 1])[:-2])


@pytest.mark.parametrize("pure", ["0", "1"])
def test_the_traced_child_runs_without_msgspec_or_numpy(tmp_path, pure):
    """msgspec and numpy made unimportable in the child (another interpreter may not have them): the run is whole."""
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text("import sys\nsys.modules['msgspec'] = None\nsys.modules['numpy'] = None\n")
    prog = tmp_path / "prog.py"
    prog.write_text("import threading, sys\nt = threading.Thread(target=print, args=('hi',))\nt.start(); t.join()\n"
                    "print('msgspec' in sys.modules and sys.modules['msgspec'] is not None)\n")
    trace = tmp_path / "t.jsonl"
    import os

    # -E: the CLI itself ignores PYTHONPATH (it needs msgspec); the child honours it.
    env = dict(os.environ, PYTHONPATH=str(block), CONCURVIEW_PURE=pure)
    out = subprocess.run([sys.executable, "-E", "-m", "concurview", "run", "--record", str(trace), str(prog)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hi", "False"]
    assert '"kind":"thread"' in trace.read_text().replace(" ", "")
