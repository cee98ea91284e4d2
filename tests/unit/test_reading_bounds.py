"""Reading is bounded by bytes and linear in them: gzip bombs, endless pipes and devices, very long lines."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
import zlib

import pytest

from concurview.trace.tracefile import (
    DEFAULT_MAX_BYTES, TraceFormatError, TraceReader, _Source, format_size, parse_size,
)
from concurview.cli import main
from concurview.trace.store import load

HEADER = b'{"format":"concurview-trace","version":1}\n'
LANE = b'{"type":"lane","id":0,"kind":"main","name":"m"}\n'


def event(i: int) -> bytes:
    return b'{"seq":%d,"t":%d,"lane":0,"kind":"%s"}\n' % (i, i, b"run" if i % 2 else b"wait")


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def bomb(path, inflated: int, head: bytes = HEADER + LANE):
    """A gzip file of a few kB that inflates to `inflated` bytes (blank lines after a valid head)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts, block = [c.compress(head)], b"\n" * (1 << 20)
    for _ in range(inflated // len(block)):
        parts.append(c.compress(block))
    path.write_bytes(b"".join(parts) + c.flush())
    return path


def test_a_gzip_read_inflates_no_more_than_asked(tmp_path):
    """One read of a bomb used to inflate all it was given: 1 MB of gzip is 1 GB of output."""
    p = bomb(tmp_path / "b.jsonl.gz", 40 << 20)
    assert p.stat().st_size < 100_000
    src = _Source(p)
    try:
        sizes = [len(src.read(1 << 16)) for _ in range(50)]
    finally:
        src.close()
    assert max(sizes) <= 1 << 16 and sum(sizes) > 1 << 20


def test_a_gzip_bomb_is_refused_in_one_line(tmp_path, capsys):
    p = bomb(tmp_path / "b.jsonl.gz", 40 << 20)
    for command in ("summary", "open", "export"):
        extra = ["--to", "txt", "-o", "-"] if command == "export" else []
        code, err = cli(capsys, command, str(p), *extra, "--max-bytes", "10M")
        assert code == 2, command
        assert err == f"concurview: error: {p}: more than 10 MB once decompressed; --max-bytes raises the limit\n"
    assert load(p, max_bytes=50_000_000).n_events == 0, "a higher limit reads it"


def test_the_bound_is_exact(tmp_path):
    body = HEADER + LANE + b"".join(event(i) for i in range(100))
    p = tmp_path / "t.jsonl"
    p.write_bytes(body)
    assert load(p, max_bytes=len(body)).n_events == 100
    with pytest.raises(TraceFormatError, match=rf"more than {len(body) - 1:,} bytes; --max-bytes"):
        load(p, max_bytes=len(body) - 1)
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(body))
    assert load(gz, max_bytes=len(body)).n_events == 100
    with pytest.raises(TraceFormatError, match="once decompressed"):
        load(gz, max_bytes=len(body) - 1)


def test_the_environment_sets_the_default(tmp_path, monkeypatch, capsys):
    p = tmp_path / "t.jsonl"
    p.write_bytes(HEADER + LANE + b"".join(event(i) for i in range(100)))
    monkeypatch.setenv("CONCURVIEW_MAX_BYTES", "1k")
    with pytest.raises(TraceFormatError, match="more than 1 kB"):
        load(p)
    code, err = cli(capsys, "summary", str(p), "--max-bytes", "1M")
    assert code == 0, err
    monkeypatch.setenv("CONCURVIEW_MAX_BYTES", "lots")
    code, err = cli(capsys, "summary", str(p))
    assert code == 2 and err == "concurview: error: $CONCURVIEW_MAX_BYTES: not a size: 'lots' " \
                                "(bytes, or with K, M or G: 512M)\n"


def test_sizes(capsys):
    assert [parse_size(s) for s in ("512M", "2G", "1.5GB", "64KiB", "1000000", "1 mb")] == \
        [512_000_000, 2_000_000_000, 1_500_000_000, 65536, 1_000_000, 1_000_000]
    assert format_size(DEFAULT_MAX_BYTES) == "2 GB" and format_size(1500) == "1.5 kB" \
        and format_size(2**29) == "536,870,912 bytes"
    for bad in ("0", "-5M", "lots", "5X"):
        with pytest.raises(ValueError):
            parse_size(bad)
    code, err = cli(capsys, "summary", "t.jsonl", "--max-bytes", "5X")
    assert code == 2 and err == "concurview: error: argument --max-bytes: not a size: '5X' " \
                                "(bytes, or with K, M or G: 512M)\n"


def test_dev_zero_ends_at_once_in_one_line():
    out = subprocess.run([sys.executable, "-m", "concurview", "summary", "/dev/zero"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr == "concurview: error: /dev/zero: not a concurview trace (line 1 is not a JSON object)\n"


def _feed_forever(fifo: str, first: bytes, more: bytes) -> threading.Thread:
    """A writer that sends `first`, then `more` over and over until the reader goes away."""
    def run() -> None:
        try:
            with open(fifo, "wb") as f:
                f.write(first)
                while True:
                    f.write(more)
        except (BrokenPipeError, OSError):
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _summary_of_fifo(tmp_path, first: bytes, more: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    writer = _feed_forever(fifo, first, more)
    try:
        out = subprocess.run([sys.executable, "-m", "concurview", "summary", fifo, *args],
                             capture_output=True, text=True, timeout=60)
    finally:
        # The writer ends when the reader closes; if the reader never opened, open it to release the writer.
        if writer.is_alive():
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
        writer.join(5)
    return out


def test_a_pipe_that_never_ends_hits_the_bound(tmp_path):
    events = b"".join(event(i) for i in range(1000))
    out = _summary_of_fifo(tmp_path, HEADER + LANE, events, "--max-bytes", "2M")
    assert out.returncode == 2
    assert out.stderr == f"concurview: error: {tmp_path / 'fifo'}: more than 2 MB; --max-bytes raises the limit\n"


def test_a_header_that_never_ends_is_refused(tmp_path):
    out = _summary_of_fifo(tmp_path, b'{"format":', b" " * 65536)
    assert out.returncode == 2
    assert out.stderr == (f"concurview: error: {tmp_path / 'fifo'}: not a concurview trace "
                          "(line 1 is longer than 16 MB)\n")


def test_endless_empty_gzip_members_hit_the_bound(tmp_path):
    """Gzip data that inflates to nothing, forever: the gzip bytes are bounded too."""
    out = _summary_of_fifo(tmp_path, gzip.compress(HEADER), gzip.compress(b"") * 1000, "--max-bytes", "1M")
    assert out.returncode == 2
    assert out.stderr == (f"concurview: error: {tmp_path / 'fifo'}: more than 1 MB of gzip data; "
                          "--max-bytes raises the limit\n")


def test_a_trace_through_a_pipe_reads_whole(tmp_path):
    """The file is opened once: a look at its head used to swallow a pipe's first 4 kB."""
    body = HEADER + LANE + b"".join(event(i) for i in range(2000)) + b'{"type":"footer","events":2000,"lanes":1}\n'
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(body)
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        out = subprocess.run([sys.executable, "-m", "concurview", "summary", fifo, "--json"],
                             capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the reader waited for a second writer")
    finally:
        if writer.is_alive():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert out.returncode == 0, out.stderr
    assert '"events": 2000' in out.stdout and '"complete": true' in out.stdout


def _read_time(path, chunk: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        r = TraceReader(path)
        n = sum(len(es) for _, es in r.batches(chunk_bytes=chunk))
        best = min(best, time.perf_counter() - t0)
        assert n == 1
    return best


def test_a_long_line_is_read_in_linear_time(tmp_path):
    """A line 4x longer takes about 4x the time, not 16x (the buffer was grown by concatenation
    and searched for a newline from its start at each chunk: a 200 MB line took minutes)."""
    times = {}
    for mb in (4, 16):
        p = tmp_path / f"long{mb}.jsonl"
        p.write_bytes(HEADER + LANE + b'{"seq":0,"t":1,"lane":0,"kind":"log","text":"' + b"x" * (mb << 20) + b'"}\n')
        times[mb] = _read_time(p, 16 << 10)
    assert times[16] < 8 * times[4] + 0.05, times


def test_the_parser_keeps_no_copy_of_a_long_string():
    """The C parser remembers raw strings to intern repeats fast; a long one (a traceback, a 200 MB
    line) is not remembered: its copy doubled the memory the string takes."""
    import tracemalloc

    from concurview.engines._speedups import EventParser
    from concurview.trace.columns import StringTable

    text = b"y" * (8 << 20)
    lines = b'{"seq":0,"t":1,"lane":0,"kind":"log","text":"%s"}\n' % text
    lines += b'{"seq":1,"t":2,"lane":0,"kind":"log","reason":"%s","text":"%s"}\n' % (b"r" * 5000, text)
    lines += b'{"seq":2,"t":3,"lane":0,"kind":"log","reason":"%s"}\n' % (b"r" * 5000)
    strings = StringTable()
    tracemalloc.start()
    try:
        parser = EventParser(strings._ids, strings.strings)
        before = tracemalloc.get_traced_memory()[0]
        assert parser.parse(lines, 0) == (0, len(lines), 3)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    _n, _t, _lane, _kind, reason, _where, text_ids, _cause = parser.take()
    assert text_ids[0:4] == text_ids[4:8] and reason[4:8] == reason[8:12], "repeats still intern to one id"
    assert strings.strings.count("y" * (8 << 20)) == 1
    assert kept < 1.3 * len(text), f"{kept / len(text):.2f}x the text kept"


def test_a_line_that_never_ends_is_refused_at_the_line_bound(tmp_path, monkeypatch):
    """What a reader holds at once is one line: a line longer than MAX_LINE ends the read in one line,
    long before the content bound (here 1 MB against 2 GB)."""
    from concurview.trace import tracefile
    from concurview.trace.tracefile import TraceFormatError
    from concurview.trace.store import load

    monkeypatch.setattr(tracefile, "MAX_LINE", 1_000_000)
    path = tmp_path / "long.jsonl"
    path.write_bytes(HEADER + LANE + b'{"seq":0,"t":1,"lane":0,"kind":"log","text":"' + b"x" * 3_000_000)
    with pytest.raises(TraceFormatError, match=r"long.jsonl: line 3 is longer than 1 MB$"):
        load(path)


def test_a_chrome_document_is_bounded_as_a_line(tmp_path, monkeypatch):
    from concurview.trace import tracefile
    from concurview.trace.tracefile import TraceFormatError
    from concurview.trace.store import load

    monkeypatch.setattr(tracefile, "MAX_LINE", 1_000_000)
    path = tmp_path / "big.json"
    path.write_text('{"traceEvents": [' + ",".join(['{"ph":"X","ts":1,"dur":1,"pid":1,"tid":1,"name":"x"}'] * 30_000)
                    + "]}")
    with pytest.raises(TraceFormatError, match="a Chrome trace longer than 1 MB"):
        load(path)
