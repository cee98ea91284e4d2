"""A small msgpack writer and reader for the wire's frames, in pure Python and without msgspec.

The traced child writes its frames with this where the C EventBuffer is not in use (the pure path, or an
interpreter traced with `run --python` that has no extension built for it and maybe no msgspec): the
bytes are msgspec's for the same values (nil, bool, int, str, bytes, arrays: what a Frame holds), each
in its narrowest form, as tests/unit/test_msgpack.py checks byte for byte. `unpack` reads them back
(the recorder's reconnect re-reads frames it already encoded).
"""

from __future__ import annotations

from struct import Struct

_B, _H, _I, _Q = Struct(">B"), Struct(">H"), Struct(">I"), Struct(">Q")
_b, _h, _i, _q = Struct(">b"), Struct(">h"), Struct(">i"), Struct(">q")


def pack_into(out: bytearray, obj) -> None:
    """Append obj's msgpack encoding to out (what msgspec.msgpack.encode(obj) gives; strings with lone
    surrogates have each sent as '?', as the C encoder does)."""
    t = type(obj)
    if t is int:
        if 0 <= obj:
            if obj < 0x80:
                out.append(obj)
            elif obj <= 0xFF:
                out += b"\xcc" + _B.pack(obj)
            elif obj <= 0xFFFF:
                out += b"\xcd" + _H.pack(obj)
            elif obj <= 0xFFFFFFFF:
                out += b"\xce" + _I.pack(obj)
            else:
                out += b"\xcf" + _Q.pack(obj)
        elif obj >= -32:
            out.append(obj & 0xFF)
        elif obj >= -0x80:
            out += b"\xd0" + _b.pack(obj)
        elif obj >= -0x8000:
            out += b"\xd1" + _h.pack(obj)
        elif obj >= -0x80000000:
            out += b"\xd2" + _i.pack(obj)
        else:
            out += b"\xd3" + _q.pack(obj)
    elif t is str:
        try:
            data = obj.encode("utf-8")
        except UnicodeEncodeError:
            data = obj.encode("utf-8", "replace")
        n = len(data)
        if n < 32:
            out.append(0xA0 | n)
        else:
            _sized(out, n, b"\xd9", b"\xda", b"\xdb")
        out += data
    elif t is list or t is tuple:
        n = len(obj)
        if n < 16:
            out.append(0x90 | n)
        elif n <= 0xFFFF:
            out += b"\xdc" + _H.pack(n)
        else:
            out += b"\xdd" + _I.pack(n)
        for item in obj:
            pack_into(out, item)
    elif obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif t is bytes or t is bytearray or t is memoryview:
        _sized(out, len(obj), b"\xc4", b"\xc5", b"\xc6")
        out += obj
    elif isinstance(obj, int):  # an int subclass (a bool was taken above): as its value
        pack_into(out, int(obj))
    else:
        raise TypeError(f"cannot write {t.__name__} into a frame")


def _sized(out: bytearray, n: int, code8: bytes, code16: bytes, code32: bytes) -> None:
    """A str's or bin's type byte and length, in the narrowest of the three widths that holds `n`."""
    if n <= 0xFF:
        out += code8 + _B.pack(n)
    elif n <= 0xFFFF:
        out += code16 + _H.pack(n)
    else:
        out += code32 + _I.pack(n)


def pack(obj) -> bytes:
    out = bytearray()
    pack_into(out, obj)
    return bytes(out)


def unpack(data: bytes):
    """The value msgpack `data` holds (arrays as lists, bin as bytes); ValueError when it is not one whole value."""
    value, end = _read(memoryview(data), 0)
    if end != len(data):
        raise ValueError("trailing bytes after a msgpack value")
    return value


_FIXED = {0xCC: _B, 0xCD: _H, 0xCE: _I, 0xCF: _Q, 0xD0: _b, 0xD1: _h, 0xD2: _i, 0xD3: _q}
_SIZED = {0xD9: _B, 0xDA: _H, 0xDB: _I, 0xC4: _B, 0xC5: _H, 0xC6: _I, 0xDC: _H, 0xDD: _I}


def _read(buf: memoryview, pos: int):
    try:
        c = buf[pos]
    except IndexError:
        raise ValueError("a msgpack value cut short") from None
    pos += 1
    if c < 0x80:
        return c, pos
    if c >= 0xE0:
        return c - 0x100, pos
    if 0xA0 <= c <= 0xBF:
        n = c & 0x1F
        return _text(buf, pos, n), pos + n
    if 0x90 <= c <= 0x9F:
        return _array(buf, pos, c & 0x0F)
    if c == 0xC0:
        return None, pos
    if c in (0xC2, 0xC3):
        return c == 0xC3, pos
    fmt = _FIXED.get(c)
    if fmt is not None:
        return fmt.unpack_from(buf, pos)[0], pos + fmt.size
    fmt = _SIZED.get(c)
    if fmt is None:
        raise ValueError(f"msgpack type 0x{c:02x} is not one a frame holds")
    n = fmt.unpack_from(buf, pos)[0]
    pos += fmt.size
    if c >= 0xDC:
        return _array(buf, pos, n)
    if c >= 0xD9:
        return _text(buf, pos, n), pos + n
    if pos + n > len(buf):
        raise ValueError("a msgpack value cut short")
    return bytes(buf[pos:pos + n]), pos + n


def _text(buf: memoryview, pos: int, n: int) -> str:
    if pos + n > len(buf):
        raise ValueError("a msgpack value cut short")
    return str(buf[pos:pos + n], "utf-8")


def _array(buf: memoryview, pos: int, n: int):
    items = []
    for _ in range(n):
        item, pos = _read(buf, pos)
        items.append(item)
    return items, pos
