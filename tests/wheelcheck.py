"""What a concurview wheel must hold, checked on the wheel itself (`make wheel`; tests/cli/test_install.py).

    python tests/wheelcheck.py dist/concurview-*.whl
"""

from __future__ import annotations

import struct
import sys
import zipfile

REQUIRED = (
    "concurview/__init__.py",
    "concurview/__main__.py",
    "concurview/cli.py",
    "concurview/trace/store.py",
    "concurview/trace/events.py",
    "concurview/engines/recorder.py",
    "concurview/engines/_pybuffer.py",
    "concurview/engines/speedups.py",
    "concurview/scenarios/asyncio_tasks.py",
    "concurview/tui/concurview.tcss",
)


def elf_sections(data: bytes) -> list[str] | None:
    """The section names of an ELF file (64- or 32-bit, either byte order), None if it is not ELF."""
    if data[:4] != b"\x7fELF":
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)

    def header(i: int) -> tuple[int, int, int]:  # name offset, file offset, size
        at = shoff + i * shentsize
        if wide:
            name, = struct.unpack_from(order + "I", data, at)
            offset, size = struct.unpack_from(order + "QQ", data, at + 0x18)
        else:
            name, = struct.unpack_from(order + "I", data, at)
            offset, size = struct.unpack_from(order + "II", data, at + 0x10)
        return name, offset, size

    _, str_off, str_size = header(shstrndx)
    names = data[str_off:str_off + str_size]
    out = []
    for i in range(shnum):
        name = header(i)[0]
        out.append(names[name:names.index(b"\0", name)].decode("ascii", "replace"))
    return out


def problems(path: str) -> list[str]:
    """What is wrong with the wheel at `path` (nothing: an empty list)."""
    out = []
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        for name in names:
            if name.endswith((".c", ".h")):
                out.append(f"a C source in the wheel: {name}")
            if "__pycache__" in name or name.endswith(".pyc"):
                out.append(f"compiled bytecode in the wheel: {name}")
            if name.split("/")[0] in ("tests", "docs", "benchmarks", "build", "constraints") \
                    or name == "concurview/setup.py":
                out.append(f"not part of the package: {name}")
        for name in REQUIRED:
            if name not in names:
                out.append(f"missing: {name}")
        entry = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        if not entry or "concurview = concurview.__main__:main" not in z.read(entry[0]).decode():
            out.append("no `concurview` console script")
        binaries = [n for n in names if n.startswith("concurview/engines/_speedups.") and n.endswith((".so", ".pyd"))]
        if not binaries:
            out.append("no C speedups (concurview/engines/_speedups.*.so)")
        for name in [n for n in names if n.endswith(".so")]:
            sections = elf_sections(z.read(name))
            if sections is not None and (".symtab" in sections or any(s.startswith(".debug") for s in sections)):
                out.append(f"not stripped: {name} ({z.getinfo(name).file_size:,} bytes, has a symbol table)")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/wheelcheck.py WHEEL", file=sys.stderr)
        return 2
    with zipfile.ZipFile(argv[0]) as z:
        sizes = {n: z.getinfo(n).file_size for n in z.namelist() if n.endswith((".so", ".pyd"))}
    found = problems(argv[0])
    for line in found:
        print(f"{argv[0]}: {line}", file=sys.stderr)
    if not found:
        print(f"{argv[0]}: ok (" + ", ".join(f"{n.rsplit('/', 1)[1]} {s // 1024} KB" for n, s in sizes.items()) + ")")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
