"""Files concurview writes for the user: never over a device, an input, or through a planted link; errors in one line."""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

# Names of our own open file descriptors: written to as they are, like a pipe (`-o /dev/stdout`).
_STD_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_FD_NAME = re.compile(r"/(?:dev/fd|proc/self/fd|proc/(\d+)/fd)/(\d+)")

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class OutputError(OSError):
    """An output file could not be written: `str()` is one line for the user.

    An OSError (the app's export catches those): `filename` is the output,
    `strerror` the rest of the line, `partial` the kept temp file (or None).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, code: int = 0,
                 partial: Path | None = None) -> None:
        super().__init__(code, reason, os.fspath(path))
        self.partial = partial

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _fd_alias(path: str) -> int | None:
    """The descriptor `path` names (/dev/stdout, /dev/fd/N, /proc/self/fd/N), or None."""
    name = os.path.normpath(os.path.abspath(path))
    if name in _STD_NAMES:
        return _STD_NAMES[name]
    m = _FD_NAME.fullmatch(name)
    if m and (m[1] is None or int(m[1]) == os.getpid()):
        return int(m[2])
    return None


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether a and b are one file (through symlinks and hard links); False when either is missing."""
    try:
        return _identity(os.stat(a)) == _identity(os.stat(b))
    except (OSError, ValueError):
        return False


def _refuse_inputs(path: str | os.PathLike[str], st: os.stat_result | None,
                   inputs: Iterable[str | os.PathLike[str]]) -> None:
    if st is None:
        return
    for inp in inputs:
        try:
            seen = os.stat(inp)
        except (OSError, ValueError):
            continue
        if _identity(seen) == _identity(st):
            raise OutputError(path, f"is the input {os.fspath(inp)} itself (or a link to it); "
                                    "give another output file", errno.EEXIST)


def check(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()) -> str:
    """How `path` will be written, or OutputError saying why it cannot be.

    "fd": one of our open descriptors (/dev/stdout), written as it is; "stream": an
    existing character device or FIFO (/dev/null, a named pipe), opened and written
    through; "replace": a regular file, a symlink or a new name, written under a
    temporary name beside it and renamed over it (a symlink is replaced, its target
    left alone). A block device, socket or directory is refused, and so is any of
    `inputs`, through whatever links.
    """
    text = os.fspath(path)
    if not text:
        raise OutputError("''", "an empty file name", errno.ENOENT)
    fd = _fd_alias(text)
    if fd is not None:
        try:
            st = os.fstat(fd)
        except OSError:
            raise OutputError(text, f"file descriptor {fd} is not open", errno.EBADF) from None
        _refuse_inputs(text, st, inputs)
        return "fd"
    try:
        st: os.stat_result | None = os.lstat(text)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(text, "a folder on its path is not a directory", errno.ENOTDIR) from None
    except OSError as e:
        raise OutputError(text, e.strerror or str(e), e.errno or 0) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(text, "is a directory", errno.EISDIR)
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        _refuse_inputs(text, st, inputs)
        return "stream"
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        what = "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) \
            else "not a regular file"
        raise OutputError(text, f"is {what}; not writing over it", errno.EINVAL)
    folder = os.path.dirname(text) or "."
    if not os.path.isdir(folder):
        raise OutputError(text, f"no such directory: {folder}", errno.ENOENT)
    if st is not None:
        try:
            _refuse_inputs(text, os.stat(text), inputs)  # through the link, if it is one
        except FileNotFoundError:
            pass  # a dangling link: replaced like any name
        if stat.S_ISREG(st.st_mode) and not os.access(text, os.W_OK):
            raise OutputError(text, "is read-only (permission denied); not replacing it", errno.EACCES)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(text, f"cannot create files in {folder}: permission denied", errno.EACCES)
    return "replace"


def _create_partial(path: Path) -> tuple[int, Path]:
    """A new temp file beside `path`: `NAME.partial`, or `NAME.XXXXXXXX.partial` when that name is taken.

    O_EXCL|O_NOFOLLOW: a file or symlink already at the name (another run's, or planted)
    is never opened, followed or truncated; another name is tried.
    """
    for attempt in range(100):
        name = path.name + ".partial" if attempt == 0 else f"{path.name}.{secrets.token_hex(4)}.partial"
        tmp = path.with_name(name)
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                tmp = path.with_name(f".concurview-{secrets.token_hex(4)}.partial")
                try:
                    return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
                except FileExistsError:
                    continue
                except OSError as e2:
                    e = e2
            raise OutputError(path, f"cannot create {tmp.name}: {e.strerror}", e.errno or 0) from None
    raise OutputError(path, "no free temporary name beside it", errno.EEXIST)


class OutputFile:
    """One output: `file` (binary, buffered) to write into, then `commit()`; `abandon()` on failure.

    A regular file is written as `NAME.partial` (see _create_partial) and renamed over
    NAME at commit, so readers never see a torn file; devices, FIFOs and /dev/stdout
    are streamed to, as a pipe would be (see `check`).
    """

    def __init__(self, path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.kind = check(path, inputs)
        self.path = Path(path)
        self.partial: Path | None = None
        try:
            if self.kind == "fd":
                fd = os.dup(_fd_alias(os.fspath(path)))  # type: ignore[arg-type]
            elif self.kind == "stream":
                # No O_CREAT, O_TRUNC or following links: only the device or FIFO check() saw.
                # A FIFO's open waits for its reader, as a shell's `>` does.
                fd = os.open(self.path, os.O_WRONLY | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
            else:
                fd, self.partial = _create_partial(self.path)
        except OutputError:
            raise
        except OSError as e:
            raise OutputError(self.path, f"cannot open: {e.strerror}", e.errno or 0) from None
        self.file = os.fdopen(fd, "wb")

    def failed(self, e: OSError, doing: str = "write") -> OutputError:
        """`e`, raised while writing, as an OutputError naming the kept partial (the file is closed)."""
        if isinstance(e, OutputError):
            return e
        partial = self.abandon()
        reason = f"cannot {doing}: {e.strerror or e}"
        if partial is not None:
            reason += f"; what was written is kept in {partial}"
        return OutputError(self.path, reason, e.errno or 0, partial)

    def commit(self) -> Path:
        """Close and move the partial into place (or just close a stream): OutputError keeps the partial."""
        try:
            self.file.close()
        except OSError as e:
            raise self.failed(e) from None
        if self.partial is None:
            return self.path
        try:
            st = os.lstat(self.path)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                # Something else took the name while we wrote: never rename over it.
                raise OutputError(self.path, f"is no longer a regular file; the output is kept in {self.partial}",
                                  errno.EEXIST, self.partial)
        except FileNotFoundError:
            pass
        except OutputError:
            raise
        except OSError as e:
            raise OutputError(self.path, f"{e.strerror}; the output is kept in {self.partial}",
                              e.errno or 0, self.partial) from None
        try:
            os.replace(self.partial, self.path)
        except OSError as e:
            raise OutputError(self.path, f"cannot replace: {e.strerror}; the output is kept in {self.partial}",
                              e.errno or 0, self.partial) from None
        return self.path

    def abandon(self) -> Path | None:
        """Close without moving anything; the partial stays (nothing written is lost). Returns its path."""
        try:
            self.file.close()
        except OSError:
            pass  # the buffered tail could not be written either
        return self.partial if self.partial is not None and self.partial.exists() else None

    def discard(self) -> None:
        """Close and remove the partial: for an output nothing was written to yet."""
        self.abandon()
        if self.partial is not None:
            try:
                os.unlink(self.partial)
            except OSError:
                pass


def write_output(path: str | os.PathLike[str], data: bytes,
                 inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Write `data` to `path` as OutputFile does (atomically for files); OutputError says why not."""
    out = OutputFile(path, inputs)
    try:
        out.file.write(data)
    except OSError as e:
        raise out.failed(e) from None
    return out.commit()
