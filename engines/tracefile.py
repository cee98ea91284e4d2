"""Trace files: JSON Lines (optionally gzipped), written atomically, read in batches without executing anything."""

from __future__ import annotations

import gzip
import io
import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec

from concurview.engines.events import FORMAT_NAME, FORMAT_VERSION, Event, Footer, Header, Lane

_GZIP_MAGIC = b"\x1f\x8b"
_TAG = b'{"type":"'  # how every tagged (non-event) line starts
_LANE_TAG = b'"type":"lane"'
_FOOTER_TAG = b'"type":"footer"'
_CHUNK = 4 << 20  # bytes of event lines decoded at once
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
_events_dec = msgspec.json.Decoder(list[Event])


class TraceWriter:
    """Streams a trace to `path.partial`, renamed to `path` on close: readers never see a torn file."""

    def __init__(self, path: str | os.PathLike[str], header: Header) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        raw = open(self._tmp, "wb")
        self._file: io.BufferedIOBase = (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if self.path.suffix == ".gz" else raw
        )
        self._raw = raw
        self._flushed = time.monotonic()
        self._write(header)

    def _write(self, obj: object) -> None:
        self._file.write(_encoder.encode(obj) + b"\n")

    def lanes(self, lanes: list[Lane]) -> None:
        for lane in lanes:
            self._write(lane)

    def events(self, events: list[Event]) -> None:
        if events:
            self._file.write(b"\n".join(_encoder.encode(e) for e in events) + b"\n")
        # Flush when the stream has caught up (a small batch) or every _FLUSH_EVERY under a flood.
        now = time.monotonic()
        if len(events) < 256 or now - self._flushed > _FLUSH_EVERY:
            self._file.flush()
            self._raw.flush()
            self._flushed = now

    def close(self, footer: Footer | None) -> Path:
        """Write the footer (None leaves the trace marked incomplete) and move the file into place."""
        if footer is not None:
            self._write(footer)
        self._file.close()
        if self._file is not self._raw:
            self._raw.close()
        os.replace(self._tmp, self.path)
        return self.path


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip (a damaged stream yields its intact prefix)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise TraceFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceFormatError(f"{path}: is a directory, not a trace file") from None
    except OSError as e:
        raise TraceFormatError(f"{path}: cannot read: {e.strerror}") from None
    if data[:2] == _GZIP_MAGIC:
        # Decompress member by member; a truncated or damaged stream keeps what came out intact.
        out = bytearray()
        while data[:2] == _GZIP_MAGIC:
            dec = zlib.decompressobj(wbits=31)
            try:
                out += dec.decompress(data)
            except zlib.error:
                break
            if not dec.eof:
                break
            data = dec.unused_data
        data = bytes(out)
    return data


class TraceReader:
    """Reads a trace file: `header`, then `batches()` of (lanes, events), then `footer`/`truncated`.

    A file cut off mid-line loads its intact prefix and sets `truncated`; any
    other damage raises TraceFormatError naming the line.
    """

    def __init__(self, path: str | os.PathLike[str], data: bytes | None = None) -> None:
        self.path = Path(path)
        self._data = read_bytes(self.path) if data is None else data
        self.footer: Footer | None = None
        self.truncated = False
        self._pos = self._read_header()

    @property
    def complete(self) -> bool:
        return self.footer is not None and self.footer.complete and not self.truncated

    def _read_header(self) -> int:
        data = self._data
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
            return len(data)
        return end + 1

    def batches(self, chunk_bytes: int = _CHUNK) -> Iterator[tuple[list[Lane], list[Event]]]:
        """Lanes and events in file order, about `chunk_bytes` of the file at a time.

        Lane and footer lines are rare and tagged; the event lines between them
        are decoded as one JSON array per chunk (C speed). Only a chunk that
        fails that way is read line by line, to find the torn or damaged line.
        """
        data, pos, n = self._data, self._pos, len(self._data)
        while pos < n:
            window = min(n, pos + chunk_bytes)
            tag = data.find(_TAG, pos, window + len(_TAG))
            stop = window if tag < 0 else data.rfind(b"\n", pos, tag) + 1
            lanes: list[Lane] = []
            events: list[Event] = []
            if stop > pos:  # plain event lines up to the tag, or to the first line end past the window
                if tag < 0 and stop < n:
                    stop = data.find(b"\n", stop) + 1 or n
                events = self._decode_events(pos, stop)
                pos = stop
            else:  # the tagged line itself
                eol = data.find(b"\n", pos)
                line_end = n if eol < 0 else eol
                self._decode_tagged(data[pos:line_end], pos, lanes, last=eol < 0)
                pos = line_end + 1
            if lanes or events:
                yield lanes, events
            if self.truncated:
                break
        self._data = b""

    def _lineno(self, pos: int) -> int:
        return self._data.count(b"\n", 0, pos) + 1

    def _decode_tagged(self, line: bytes, pos: int, lanes: list[Lane], last: bool) -> None:
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
            raise TraceFormatError(f"{self.path}: line {self._lineno(pos)}: {_short(e)}") from None

    def _decode_events(self, start: int, end: int) -> list[Event]:
        body = self._data[start:end].rstrip(b"\n")
        if not body:
            return []
        try:
            return _events_dec.decode(b"[" + body.replace(b"\n", b",") + b"]")
        except _BAD:
            pass
        # Slow path, only for a chunk with a blank, torn or bad line in it.
        out: list[Event] = []
        at_end = end >= len(self._data)
        lines = body.split(b"\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(_event_dec.decode(line))
            except _BAD as e:
                if at_end and i == len(lines) - 1 and isinstance(e, _TORN):
                    self.truncated = True
                    break
                raise TraceFormatError(f"{self.path}: line {self._lineno(start) + i}: {_short(e)}") from None
        return out


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
