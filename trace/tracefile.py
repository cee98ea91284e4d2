"""Trace files: JSON Lines (optionally gzipped), written atomically, read in batches without executing anything."""

from __future__ import annotations

import gzip
import io
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import msgspec

from .events import FORMAT_NAME, FORMAT_VERSION, Event, Footer, Header, Lane

if TYPE_CHECKING:  # numpy loads with the first trace read, not with every command that may read one
    from ..engines.speedups import EventParser  # C, or msgspec for every line
    from .outfile import OutputFile
    from .columns import Columns, StringTable

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes of the file read at once
_PARSED_ALL = 0  # EventParser.parse() stopped at the end (1: at a tagged line, 2: at another it leaves)
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
    """Streams a trace to `path` through an OutputFile (trace/outfile.py): a regular file is written as a
    `.partial` beside it and renamed over it on close (readers never see a torn file); a device, FIFO or
    /dev/stdout is streamed to. Every OS error is an OutputError (one line, naming the kept partial)."""

    def __init__(self, path: str | os.PathLike[str] | OutputFile, header: Header,
                 inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
        from .outfile import OutputFile

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


# -- reading ----------------------------------------------------------------------------------------

# A trace's content (gunzipped) read at most, unless told otherwise: a real program's 10M-event
# trace is about 1 GB of lines (the store keeps ~24 bytes an event of it), and a gzip bomb or a
# pipe that never ends stops here. Memory is bounded more tightly by the line bound below: what a
# reader holds at once is one line, or one Chrome document, and the store's columns.
DEFAULT_MAX_BYTES = 2_000_000_000
MAX_LINE = 256_000_000  # one line at most (a trace's lines are < 300 kB since the recorder cuts printed lines)
ENV_MAX_BYTES = "CONCURVIEW_MAX_BYTES"  # what `--max-bytes` sets, for the app's own loads
_HEADER_MAX = 16_000_000  # a header line is a few hundred bytes: one far longer is not a header
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?)b?\s*", re.I)


def parse_size(raw: str) -> int:
    """`512M`, `2G`, `1.5GB`, `64KiB`, `1000000`: a number of bytes (ValueError, one line, for anything else)."""
    m = _SIZE.fullmatch(raw)
    if not m:
        raise ValueError(f"not a size: {raw!r} (bytes, or with K, M or G: 512M)")
    number, unit, binary = m.groups()
    n = int(float(number) * (1024 if binary else 1000) ** " kmgt".index(unit.lower() or " "))
    if n < 1:
        raise ValueError(f"must be at least 1 byte: {raw!r}")
    return n


def format_size(n: int) -> str:
    """`512 MB`, `1.5 GB`, `4,119 bytes`: decimal units (as parse_size reads them) when exact, else bytes."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size and n * 10 % size == 0:
            return f"{n / size:g} {unit}"
    return f"{n:,} bytes"


def max_bytes_from_env() -> int:
    """$CONCURVIEW_MAX_BYTES, or the default (ValueError naming the variable when it is not a size)."""
    raw = os.environ.get(ENV_MAX_BYTES)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(raw)
    except ValueError as e:
        raise ValueError(f"${ENV_MAX_BYTES}: {e}") from None


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
    """A trace file's bytes a chunk at a time, gunzipped on the fly when they are gzip; at most
    `max_bytes` of them (and of the gzip data), else a one-line TraceFormatError.

    Gzip members are read one after another; a stream cut short or damaged ends at
    the intact output before the damage (the reader then sees a truncated file). Each
    read inflates at most the bytes asked for, so a gzip bomb costs memory for one
    chunk until it passes the bound; a pipe or a device that never ends passes it too.
    """

    def __init__(self, path: Path, data: bytes | None = None, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            try:
                max_bytes = max_bytes_from_env()
            except ValueError as e:
                raise TraceFormatError(str(e)) from None
        self.max_bytes = max_bytes
        self._f = io.BytesIO(data) if data is not None else _open(path)
        self._path = path
        self.raw_read = 0  # bytes of the file read so far (compressed ones, for gzip)
        self.size = 0  # bytes of content produced so far (gunzipped)
        self._peeked = b""
        self._dec: zlib._Decompress | None = None
        try:
            self._carry = self._raw(2)
        except BaseException:
            self.close()
            raise
        self._dec = zlib.decompressobj(wbits=31) if self._carry[:2] == _GZIP_MAGIC else None
        self._done = False

    def _too_big(self, what: str) -> TraceFormatError:
        return TraceFormatError(f"{self._path}: more than {format_size(self.max_bytes)}{what}; "
                                "--max-bytes raises the limit")

    def _raw(self, n: int) -> bytes:
        try:
            data = self._f.read(n)
        except OSError as e:
            raise TraceFormatError(f"{self._path}: cannot read: {e.strerror}") from None
        self.raw_read += len(data)
        if self.raw_read > self.max_bytes + 2:  # + the 2 bytes looked at to tell gzip
            raise self._too_big(" of gzip data" if self._dec is not None else "")
        return data

    def read(self, n: int) -> bytes:
        """Up to about n bytes more (b"" at the end)."""
        if self._peeked:
            out, self._peeked = self._peeked, b""
            return out
        return self._produce(max(n, 1))

    def peek(self, n: int) -> bytes:
        """The first n bytes (fewer at the end); read() gives them again."""
        parts, have = [self._peeked], len(self._peeked)
        while have < n and (more := self._produce(n - have)):
            parts.append(more)
            have += len(more)
        self._peeked = b"".join(parts)
        return self._peeked[:n]

    def read_all(self) -> bytes:
        """The rest at once (a Chrome document, decoded whole): at most MAX_LINE bytes of it."""
        parts, have = [], 0
        while more := self.read(_CHUNK):
            have += len(more)
            if have > MAX_LINE:
                raise TraceFormatError(f"{self._path}: a Chrome trace longer than {format_size(MAX_LINE)} "
                                       "(read whole to decode it)")
            parts.append(more)
        return b"".join(parts)

    def _produce(self, n: int) -> bytes:
        out = self._inflate(n) if self._dec is not None else self._plain(n)
        self.size += len(out)
        if self.size > self.max_bytes:
            raise self._too_big(" once decompressed" if self._dec is not None else "")
        return out

    def _plain(self, n: int) -> bytes:
        out, self._carry = self._carry + self._raw(n), b""
        return out

    def _inflate(self, n: int) -> bytes:
        while not self._done:
            raw = self._dec.unconsumed_tail  # input a previous call left, having given n bytes out
            if not raw:
                raw, self._carry = self._carry or self._raw(n), b""
            try:
                out = self._dec.decompress(raw, n)
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
            elif not raw and not out:
                self._done = True  # cut short: what came out so far is the intact prefix
            if out:
                return out
        return b""

    def close(self) -> None:
        self._f.close()


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The file's bytes, gunzipped when they are gzip (a damaged stream yields its intact prefix)."""
    src = _Source(path, max_bytes=max_bytes)
    try:
        return src.read_all()
    finally:
        src.close()


def read_head(path: Path, n: int = 4096) -> bytes:
    """The first n bytes of the file's (gunzipped) content: enough to tell what it is."""
    src = _Source(path)
    try:
        return src.peek(n)
    finally:
        src.close()


def open_source(path: str | os.PathLike[str], max_bytes: int | None = None) -> _Source:
    """The file, opened once for a look at its head (`peek`) and then for a reader (`TraceReader(source=)`):
    a pipe (`<(zcat t.jsonl.gz)`) cannot be opened twice."""
    return _Source(Path(path), max_bytes=max_bytes)


class _Tag(msgspec.Struct):
    """What a line the C parser left is: an event (no `type`), a lane, the footer, or a newer record."""

    type: str | None = None


_tag_dec = msgspec.json.Decoder(_Tag)


class TraceReader:
    """Reads a trace file: `header`, then `batches()` of (lanes, events), then `footer`/`truncated`.

    The file is streamed a chunk at a time, so reading takes memory for one chunk (or
    one line, when a line is longer), not for the file, and time in proportion to its
    size. A file cut off mid-line loads its intact prefix and sets `truncated`; any
    other damage raises TraceFormatError naming the line. Every line is JSON, whatever
    its spacing and key order; lines of a type from a newer writer are skipped.
    """

    def __init__(self, path: str | os.PathLike[str], data: bytes | None = None, *,
                 max_bytes: int | None = None, source: _Source | None = None) -> None:
        self.path = Path(path)
        self._src = source if source is not None else _Source(self.path, data, max_bytes)
        self.max_line = min(self._src.max_bytes, MAX_LINE)
        self._rest = b""  # read after the header line, not yet parsed
        self._eof = False
        self._line = 1  # number of the next line to parse
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

    def _read(self, n: int) -> bytes:
        more = self._src.read(n)
        if not more:
            self._eof = True
            self._src.close()
        return more

    def _read_header(self) -> None:
        parts: list[bytes] = []
        size, rest, ended = 0, b"", False
        while more := self._read(1 << 16):
            end = more.find(b"\n")  # in the new bytes only: a long line costs linear time
            if end >= 0:
                parts.append(more[:end])
                rest, ended = more[end + 1:], True
                break
            parts.append(more)
            size += len(more)
            head = parts[0].lstrip() if len(parts) == 1 else b"{"
            if head and head[:1] != b"{":
                raise TraceFormatError(f"{self.path}: not a concurview trace (line 1 is not a JSON object)")
            if size > _HEADER_MAX:
                raise TraceFormatError(f"{self.path}: not a concurview trace "
                                       f"(line 1 is longer than {format_size(_HEADER_MAX)})")
        line = b"".join(parts)
        if not line.strip() and not rest.strip():
            raise TraceFormatError(f"{self.path}: empty file, not a concurview trace")
        try:
            magic = _magic_dec.decode(line)
        except _BAD as e:
            raise TraceFormatError(f"{self.path}: not a concurview trace (line 1: {_why(e)})") from None
        except RecursionError as e:
            raise TraceFormatError(f"{self.path}: line 1: {_why(e)}") from None
        if magic.format != FORMAT_NAME:
            raise TraceFormatError(f"{self.path}: not a concurview trace (format {magic.format!r})")
        if magic.version > FORMAT_VERSION:
            raise TraceFormatError(
                f"{self.path}: trace format version {magic.version} is newer than this concurview reads "
                f"({FORMAT_VERSION}); upgrade concurview")
        try:
            self.header = _header_dec.decode(line)
        except (*_BAD, RecursionError) as e:
            raise TraceFormatError(f"{self.path}: line 1: {_why(e)}") from None
        if not ended:
            self.truncated = True  # no newline after the header: the file was cut in it
        else:
            self._rest = rest
            self._line = 2

    def columns(self, strings: StringTable,
                chunk_bytes: int = _CHUNK) -> Iterator[tuple[list[Lane], Columns, list[int]]]:
        """Lanes and events in file order, a chunk of the file at a time, the events in columns
        (their strings interned into `strings`): (new lanes, events, named_from) where each lane
        may be named by the events from index named_from[i] on (those after its line).

        Event lines go through the C parser; a line it leaves - a tagged lane or footer
        line, or anything unusual - is decoded by msgspec, which also names what is
        wrong with a damaged line.
        """
        from ..engines.speedups import EventParser  # C, or msgspec for every line

        parser = EventParser(strings._ids, strings.strings)
        # The bytes since the last newline, in pieces: a line longer than a chunk is joined
        # once, when its end comes (appending to one buffer, or searching it all for the
        # newline each time, made a 200 MB line take minutes).
        pending: list[bytes | memoryview] = [self._rest] if self._rest else []
        line_bytes = len(self._rest)
        self._rest = b""
        try:
            while not self.truncated and not self._eof:
                more = self._read(chunk_bytes)
                cut = more.rfind(b"\n") + 1
                if not cut:
                    pending.append(more)
                    line_bytes += len(more)
                    if line_bytes > self.max_line:
                        # Only the first piece may hold whole lines (what the header's read left).
                        lineno = self._line + bytes(pending[0]).count(b"\n")
                        raise TraceFormatError(f"{self.path}: line {lineno} is longer than "
                                               f"{format_size(self.max_line)}")
                    continue
                line_bytes = len(more) - cut
                view = memoryview(more)
                pending.append(view[:cut])
                block = b"".join(pending)
                pending = [view[cut:]] if cut < len(more) else []
                yield from self._block(block, False, parser, strings)
            if not self.truncated:
                block = b"".join(pending)
                if block:
                    yield from self._block(block, True, parser, strings)
        finally:
            pending = []
            self._src.close()

    def batches(self, chunk_bytes: int = _CHUNK) -> Iterator[tuple[list[Lane], list[Event]]]:
        """As columns(), the events as records numbered from 0 (for tools and tests: slow)."""
        from .columns import StringTable

        strings, seq = StringTable(), 0
        for lanes, cols, _named_from in self.columns(strings, chunk_bytes):
            events = cols.events(seq)
            seq += len(events)
            yield lanes, events

    def _block(self, data: bytes, final: bool, parser: EventParser,
               strings: StringTable) -> Iterator[tuple[list[Lane], Columns, list[int]]]:
        """The whole lines in `data` (the last one may lack its newline when `final`), as one batch:
        the lanes declared in it, its events, and for each lane the index of the first event after
        its line (a file may declare a lane every few lines: a batch per lane line cost a million
        numpy arrays for a gevent server's trace)."""
        from .columns import Columns

        pos, n = 0, len(data)
        parts: list[Columns] = []
        taken = 0  # events in parts
        slow: list[Event] = []  # lines msgspec decoded since the parser's rows were last taken
        lanes: list[Lane] = []
        named_from: list[int] = []

        def take() -> None:
            # The parser's rows come after the slow events decoded before them (see below).
            nonlocal slow, taken
            if slow:
                parts.append(Columns.from_events(slow, strings))
                taken += len(slow)
                slow = []
            if parser.pending():
                parts.append(_rows(parser.take(), strings))
                taken += len(parts[-1])

        while pos < n and not self.truncated:
            stop, at, lines = parser.parse(data, pos)
            self._line += lines
            if stop == _PARSED_ALL:
                break
            eol = data.find(b"\n", at)
            line = data[at:n if eol < 0 else eol]
            found: list[Lane] = []
            event = self._decode(line, self._line, final and eol < 0, found)
            if event is not None:
                if parser.pending():
                    take()  # the rows parsed before this line come before it
                slow.append(event)
            elif found:
                lanes += found
                named_from += [taken + len(slow) + parser.pending()] * len(found)
            self._line += 1
            pos = n if eol < 0 else eol + 1
        take()
        if parts or lanes:
            yield lanes, Columns.concat(parts) if parts else Columns.empty(strings), named_from

    def _decode(self, line: bytes, lineno: int, last: bool, lanes: list[Lane]) -> Event | None:
        """A line the C parser left, decoded by msgspec whatever its spacing or key order: an event
        (returned), a lane (appended to `lanes`), the footer, or a record type from the future
        (skipped). A line that is not JSON is damage, unless it is the last one, torn."""
        try:
            kind = _tag_dec.decode(line).type
            if kind is None:
                return _event_dec.decode(line)
            if kind == "lane":
                lanes.append(_lane_dec.decode(line))
            elif kind == "footer":
                self.footer = _footer_dec.decode(line)
            return None
        except (*_BAD, RecursionError) as e:
            if last and isinstance(e, _TORN):
                self.truncated = True
                return None
            raise TraceFormatError(f"{self.path}: line {lineno}: {_why(e)}") from None


def _rows(taken: tuple, strings: StringTable) -> Columns:
    """EventParser.take()'s bytes as Columns."""
    import numpy as np

    from .columns import Columns

    _n, t, lane, kind, reason, where, text, cause = taken
    i32 = np.int32
    return Columns(np.frombuffer(t, np.int64), np.frombuffer(lane, i32), np.frombuffer(kind, np.uint8),
                   np.frombuffer(reason, i32), np.frombuffer(where, i32), np.frombuffer(text, i32),
                   np.frombuffer(cause, i32), strings)


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _why(e: Exception) -> str:
    """What is wrong with a line, in a few words (msgspec's own message, shortened)."""
    if isinstance(e, RecursionError):
        return "JSON nested too deeply"
    return _short(e)
