"""Trace files: JSON Lines (optionally gzipped), written atomically, read in batches without executing anything."""

from __future__ import annotations

import gzip
import io
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import msgspec

from concurview.engines.events import FORMAT_NAME, FORMAT_VERSION, Event, Footer, Header, Lane

if TYPE_CHECKING:  # numpy loads with the first trace read, not with every command that may read one
    from concurview.engines._speedups import EventParser
    from concurview.engines.outfile import OutputFile
    from concurview.engines.columns import Columns, StringTable

_GZIP_MAGIC = b"\x1f\x8b"
_LANE_TAG = b'"type":"lane"'
_FOOTER_TAG = b'"type":"footer"'
_CHUNK = 1 << 20  # bytes of the file read at once
_PARSED_ALL, _TAGGED = 0, 1  # EventParser.parse() stopped at the end, at a tagged line (2: at another)
_FLUSH_EVERY = 0.25  # s: a killed recorder loses at most this much of the .partial file


# msgspec reports invalid UTF-8 as UnicodeDecodeError; for a reader it is damage like any other.
_BAD = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)
_TORN = (msgspec.DecodeError, UnicodeDecodeError)  # what a line cut short raises


class TraceFormatError(Exception):
    """The file is not a readable concurview trace; the message is one line for the user."""


_encoder = msgspec.json.Encoder()
_header_dec = msgspec.json.Decoder(Header)


class _Magic(msgspec.Struct):
    """What makes a first line a concurview header: both fields present."""

    format: str
    version: int


_magic_dec = msgspec.json.Decoder(_Magic)
_lane_dec = msgspec.json.Decoder(Lane)
_footer_dec = msgspec.json.Decoder(Footer)
_event_dec = msgspec.json.Decoder(Event)


class TraceWriter:
    """Streams a trace to `path` through an OutputFile (engines/outfile.py): a regular file is written as a
    `.partial` beside it and renamed over it on close (readers never see a torn file); a device, FIFO or
    /dev/stdout is streamed to. Every OS error is an OutputError (one line, naming the kept partial)."""

    def __init__(self, path: str | os.PathLike[str] | OutputFile, header: Header,
                 inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
        from concurview.engines.outfile import OutputFile

        self._out = path if isinstance(path, OutputFile) else OutputFile(path, inputs)
        self.path = self._out.path
        raw = self._out.file
        try:
            self._file: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if self.path.suffix == ".gz" else raw
            )
            self._raw = raw
            self._flushed = time.monotonic()
            self._write(header)
        except OSError as e:
            raise self._out.failed(e) from None

    @property
    def partial(self) -> Path | None:
        """The temp file being written (None when streaming to a device, FIFO or stdout)."""
        return self._out.partial

    def _write(self, obj: object) -> None:
        self._file.write(_encoder.encode(obj) + b"\n")

    def lanes(self, lanes: list[Lane]) -> None:
        try:
            for lane in lanes:
                self._write(lane)
        except OSError as e:
            raise self._out.failed(e) from None

    def events(self, events: list[Event]) -> None:
        try:
            if events:
                self._file.write(_encoder.encode_lines(events))
            # Flush when the stream has caught up (a small batch) or every _FLUSH_EVERY under a flood.
            now = time.monotonic()
            if len(events) < 256 or now - self._flushed > _FLUSH_EVERY:
                self._file.flush()
                self._raw.flush()
                self._flushed = now
        except OSError as e:
            raise self._out.failed(e) from None

    def close(self, footer: Footer | None) -> Path:
        """Write the footer (None leaves the trace marked incomplete) and move the file into place."""
        try:
            if footer is not None:
                self._write(footer)
            if self._file is not self._raw:
                self._file.close()  # the gzip trailer; the raw file stays open for commit()
        except OSError as e:
            raise self._out.failed(e) from None
        return self._out.commit()

    def abandon(self) -> Path | None:
        """Stop writing, keep what was written; the partial's path (None when streaming)."""
        if self._file is not self._raw:
            try:
                self._file.close()
            except OSError:
                pass
        return self._out.abandon()


def _open(path: Path):
    """The file opened for reading, or a one-line TraceFormatError."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise TraceFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceFormatError(f"{path}: is a directory, not a trace file") from None
    except OSError as e:
        raise TraceFormatError(f"{path}: cannot read: {e.strerror}") from None


class _Source:
    """A trace file's bytes a chunk at a time, gunzipped on the fly when they are gzip.

    Gzip members are read one after another; a stream cut short or damaged ends at
    the intact output before the damage (the reader then sees a truncated file).
    """

    def __init__(self, path: Path, data: bytes | None = None) -> None:
        self._f = io.BytesIO(data) if data is not None else _open(path)
        self._path = path
        self.raw_read = 0  # bytes of the file read so far (compressed ones, for gzip)
        self._carry = self._raw(2)
        self._dec = zlib.decompressobj(wbits=31) if self._carry[:2] == _GZIP_MAGIC else None
        self._done = False

    def _raw(self, n: int) -> bytes:
        try:
            data = self._f.read(n)
            self.raw_read += len(data)
            return data
        except OSError as e:
            raise TraceFormatError(f"{self._path}: cannot read: {e.strerror}") from None

    def read(self, n: int) -> bytes:
        """Up to about n bytes more (b"" at the end)."""
        if self._dec is None:
            out, self._carry = self._carry + self._raw(n), b""
            return out
        while not self._done:
            raw, self._carry = self._carry or self._raw(n), b""
            if not raw:
                self._done = True  # cut short: what came out so far is the intact prefix
                break
            try:
                out = self._dec.decompress(raw)
            except zlib.error:
                self._done = True  # damaged: keep what came out before
                break
            if self._dec.eof:  # end of a member: another may follow
                rest = self._dec.unused_data
                if len(rest) < 2:
                    rest += self._raw(2 - len(rest))
                if rest[:2] == _GZIP_MAGIC:
                    self._dec, self._carry = zlib.decompressobj(wbits=31), rest
                else:
                    self._done = True  # trailing bytes that are not gzip: ignored
            if out:
                return out
        return b""

    def close(self) -> None:
        self._f.close()


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip (a damaged stream yields its intact prefix)."""
    src = _Source(path)
    try:
        return b"".join(iter(lambda: src.read(_CHUNK), b""))
    finally:
        src.close()


def read_head(path: Path, n: int = 4096) -> bytes:
    """The first n bytes of the file's (gunzipped) content: enough to tell what it is."""
    src = _Source(path)
    try:
        out = b""
        while len(out) < n and (more := src.read(n)):
            out += more
        return out[:n]
    finally:
        src.close()


class TraceReader:
    """Reads a trace file: `header`, then `batches()` of (lanes, events), then `footer`/`truncated`.

    The file is streamed a chunk at a time, so reading takes memory for one chunk,
    not for the file. A file cut off mid-line loads its intact prefix and sets
    `truncated`; any other damage raises TraceFormatError naming the line.
    """

    def __init__(self, path: str | os.PathLike[str], data: bytes | None = None) -> None:
        self.path = Path(path)
        self._src = _Source(self.path, data)
        self._buf = b""  # read, not yet consumed; always starts at a line start
        self._eof = False
        self._line = 1  # number of the first line in _buf
        self.footer: Footer | None = None
        self.truncated = False
        try:
            self._read_header()
        except BaseException:
            self._src.close()
            raise

    @property
    def complete(self) -> bool:
        return self.footer is not None and self.footer.complete and not self.truncated

    @property
    def fraction_read(self) -> float:
        """How much of the file has been read so far (0..1; 1 when its size is unknown)."""
        try:
            size = os.fstat(self._src._f.fileno()).st_size
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return 1.0
        return min(1.0, self._src.raw_read / size) if size else 1.0

    def _fill(self, n: int) -> None:
        more = self._src.read(n)
        if more:
            self._buf += more
        else:
            self._eof = True
            self._src.close()

    def _read_header(self) -> None:
        while not self._eof and b"\n" not in self._buf:
            self._fill(1 << 16)
        data = self._buf
        if not data.strip():
            raise TraceFormatError(f"{self.path}: empty file, not a concurview trace")
        end = data.find(b"\n")
        line = data if end < 0 else data[:end]
        try:
            magic = _magic_dec.decode(line)
        except _BAD as e:
            raise TraceFormatError(f"{self.path}: not a concurview trace (line 1: {_short(e)})") from None
        if magic.format != FORMAT_NAME:
            raise TraceFormatError(f"{self.path}: not a concurview trace (format {magic.format!r})")
        if magic.version > FORMAT_VERSION:
            raise TraceFormatError(
                f"{self.path}: trace format version {magic.version} is newer than this concurview reads "
                f"({FORMAT_VERSION}); upgrade concurview")
        try:
            self.header = _header_dec.decode(line)
        except _BAD as e:
            raise TraceFormatError(f"{self.path}: line 1: {_short(e)}") from None
        if end < 0:
            self.truncated = True
            self._buf = b""
        else:
            self._buf = data[end + 1:]
            self._line = 2

    def columns(self, strings: StringTable, chunk_bytes: int = _CHUNK) -> Iterator[tuple[list[Lane], Columns]]:
        """Lanes and events in file order, a chunk of the file at a time, the events in columns
        (their strings interned into `strings`); new lanes come before the events that follow them.

        Event lines go through the C parser; a line it leaves - a tagged lane or footer
        line, or anything unusual - is decoded by msgspec, which also names what is
        wrong with a damaged line.
        """
        from concurview.engines._speedups import EventParser

        parser = EventParser(strings._ids, strings.strings)
        try:
            while not self.truncated:
                if not self._eof:
                    self._fill(chunk_bytes)
                data = self._buf
                if self._eof:
                    cut = len(data)
                    if not cut:
                        break
                else:
                    cut = data.rfind(b"\n") + 1
                    if not cut:
                        continue  # one line longer than a chunk: read on
                block, self._buf = data[:cut], data[cut:]
                yield from self._block(block, self._eof, parser, strings)
                if self._eof:
                    break
        finally:
            self._buf = b""
            self._src.close()

    def batches(self, chunk_bytes: int = _CHUNK) -> Iterator[tuple[list[Lane], list[Event]]]:
        """As columns(), the events as records numbered from 0 (for tools and tests: slow)."""
        from concurview.engines.columns import StringTable

        strings, seq = StringTable(), 0
        for lanes, cols in self.columns(strings, chunk_bytes):
            events = cols.events(seq)
            seq += len(events)
            yield lanes, events

    def _block(self, data: bytes, final: bool, parser: EventParser,
               strings: StringTable) -> Iterator[tuple[list[Lane], Columns]]:
        """The whole lines in `data` (the last one may lack its newline when `final`)."""
        from concurview.engines.columns import Columns

        pos, n = 0, len(data)
        parts: list[Columns] = []
        slow: list[Event] = []  # lines msgspec decoded since the parser's last rows
        while pos < n and not self.truncated:
            stop, at, lines = parser.parse(data, pos)
            self._line += lines
            if parser.pending():
                if slow:
                    parts.append(Columns.from_events(slow, strings))
                    slow = []
                parts.append(_rows(parser.take(), strings))
            if stop == _PARSED_ALL:
                break
            eol = data.find(b"\n", at)
            line = data[at:n if eol < 0 else eol]
            last = final and eol < 0
            if stop == _TAGGED:
                lanes: list[Lane] = []
                self._decode_tagged(line, self._line, lanes, last)
                if lanes:
                    if slow:
                        parts.append(Columns.from_events(slow, strings))
                        slow = []
                    if parts:
                        yield [], Columns.concat(parts)
                        parts = []
                    yield lanes, Columns.empty(strings)
            else:
                event = self._decode_event(line, self._line, last)
                if event is not None:
                    slow.append(event)
            self._line += 1
            pos = n if eol < 0 else eol + 1
        if slow:
            parts.append(Columns.from_events(slow, strings))
        if parts:
            yield [], Columns.concat(parts)

    def _decode_tagged(self, line: bytes, lineno: int, lanes: list[Lane], last: bool) -> None:
        try:
            if _LANE_TAG in line:
                lanes.append(_lane_dec.decode(line))
            elif _FOOTER_TAG in line:
                self.footer = _footer_dec.decode(line)
            # any other tagged line is a record type from the future: skipped
        except _BAD as e:
            if last and isinstance(e, _TORN):
                self.truncated = True
                return
            raise TraceFormatError(f"{self.path}: line {lineno}: {_short(e)}") from None

    def _decode_event(self, line: bytes, lineno: int, last: bool) -> Event | None:
        """An event line the parser left to msgspec (None: the file ends in a torn line)."""
        try:
            return _event_dec.decode(line)
        except _BAD as e:
            if last and isinstance(e, _TORN):
                self.truncated = True
                return None
            raise TraceFormatError(f"{self.path}: line {lineno}: {_short(e)}") from None


def _rows(taken: tuple, strings: StringTable) -> Columns:
    """EventParser.take()'s bytes as Columns."""
    import numpy as np

    from concurview.engines.columns import Columns

    _n, t, lane, kind, reason, where, text, cause = taken
    i32 = np.int32
    return Columns(np.frombuffer(t, np.int64), np.frombuffer(lane, i32), np.frombuffer(kind, np.uint8),
                   np.frombuffer(reason, i32), np.frombuffer(where, i32), np.frombuffer(text, i32),
                   np.frombuffer(cause, i32), strings)


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
