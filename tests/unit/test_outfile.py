"""trace/outfile.py in-process: how each kind of target is written, planted links, inputs, errors kept in one line."""

from __future__ import annotations

import os
import stat

import pytest

from concurview.trace.events import Footer, Header, Lane
from concurview.trace.outfile import OutputError, OutputFile, check, write_output
from concurview.trace.tracefile import TraceReader, TraceWriter


def test_targets_are_classified_without_writing_anything():
    """Read-only checks on the machine's own nodes: nothing here opens /dev/stdout or /dev/null for writing."""
    assert check("/dev/stdout") == "fd" and check("/dev/fd/2") == "fd" and check(f"/proc/{os.getpid()}/fd/1") == "fd"
    assert check("/dev/null") == "stream"
    with pytest.raises(OutputError, match="is a directory"):
        check("/tmp")
    with pytest.raises(OutputError, match="empty file name"):
        check("")
    with pytest.raises(OutputError, match="file descriptor 987 is not open"):
        check("/dev/fd/987")


def test_a_file_or_link_planted_at_the_partial_name_is_left_alone(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "t.jsonl.partial").symlink_to(victim)
    out = OutputFile(tmp_path / "t.jsonl")
    assert out.partial is not None and out.partial.name.startswith("t.jsonl.") and out.partial.name.endswith(".partial")
    assert out.partial != tmp_path / "t.jsonl.partial"
    out.file.write(b"new")
    out.commit()
    assert victim.read_text() == "precious" and (tmp_path / "t.jsonl").read_bytes() == b"new"
    assert (tmp_path / "t.jsonl.partial").is_symlink(), "the planted link is not ours to remove"


def test_a_symlink_target_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.jsonl"
    victim.write_text("precious")
    link = tmp_path / "t.jsonl"
    link.symlink_to(victim)
    write_output(link, b"trace")
    assert not link.is_symlink() and link.read_bytes() == b"trace" and victim.read_text() == "precious"


def test_an_input_is_refused_by_any_name(tmp_path):
    src = tmp_path / "t.jsonl"
    src.write_text("trace")
    (tmp_path / "soft").symlink_to(src)
    os.link(src, tmp_path / "hard")
    for name in (src, tmp_path / "soft", tmp_path / "hard", tmp_path / "." / "t.jsonl"):
        with pytest.raises(OutputError, match="is the input"):
            write_output(name, b"x", inputs=[src])
    assert src.read_text() == "trace" and not list(tmp_path.glob("*.partial"))


def test_new_files_get_the_umask_mode_not_a_private_one(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_output(tmp_path / "t.txt", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_tracewriter_to_a_fifo_streams_and_leaves_the_fifo(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open does not wait
    try:
        w = TraceWriter(fifo, Header(scenario="fifo"))
        assert w.partial is None
        w.lanes([Lane(0, "main", "MainThread")])
        w.events([])
        w.close(Footer(events=0, lanes=1))
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    copy = tmp_path / ("copy" + name[1:])
    copy.write_bytes(data)
    r = TraceReader(copy)
    assert [lane for ls, _ in r.batches() for lane in ls] == [Lane(0, "main", "MainThread")] and r.complete


def test_a_failed_rename_keeps_the_partial_and_names_it(tmp_path):
    w = TraceWriter(tmp_path / "t.jsonl", Header(scenario="x"))
    w.lanes([Lane(0, "main", "MainThread")])
    (tmp_path / "t.jsonl").mkdir()  # something took the name while we wrote
    with pytest.raises(OutputError) as e:
        w.close(Footer(events=0, lanes=1))
    assert "kept in" in str(e.value) and e.value.partial is not None and str(e.value.partial) in str(e.value)
    r = TraceReader(e.value.partial)
    assert [lane for ls, _ in r.batches() for lane in ls] == [Lane(0, "main", "MainThread")] and r.complete
    assert "\n" not in str(e.value) and e.value.strerror and e.value.filename == str(tmp_path / "t.jsonl")
