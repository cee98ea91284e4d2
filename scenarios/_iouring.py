"""Asynchronous reads for io-async: raw io_uring through ctypes (Linux x86_64), and glibc POSIX AIO as the fallback.

Not a scenario itself (the underscore keeps it out of the picker). Both
backends have the same shape: `submit(fd, buf)` hands the kernel (or glibc)
a read into `buf` and returns at once; `fileno()` is a descriptor that turns
readable when a read has completed - wait on it with select.epoll, which
releases the GIL; `completions()` then reaps without blocking.

io_uring is driven with raw syscalls (the PyPI `liburing` wheel needs
AVX-512 and dies with SIGILL elsewhere): io_uring_setup, mmap of the SQ/CQ
rings and the SQE array, io_uring_enter to submit only (never to wait: it
would block while holding the GIL), and an eventfd registered with
io_uring_register that the kernel signals on every completion.
"""

import ctypes
import ctypes.util
import errno as errno_mod
import mmap
import os
import platform
import signal
import socket
import struct
import sys

SYS_IO_URING_SETUP, SYS_IO_URING_ENTER, SYS_IO_URING_REGISTER = 425, 426, 427  # x86_64 (and every arch since 5.1)
IORING_OFF_SQ_RING, IORING_OFF_CQ_RING, IORING_OFF_SQES = 0, 0x8000000, 0x10000000
IORING_FEAT_SINGLE_MMAP = 1
IORING_OP_RECVMSG = 10
IORING_REGISTER_EVENTFD = 4
MSG_WAITALL = getattr(socket, "MSG_WAITALL", 0x100)
SO_TIMESTAMPNS = 35
CONTROL_LEN = 64  # room for one SCM_TIMESTAMPNS message


class Unavailable(Exception):
    """This backend cannot run here: `errno` (or None) and a one-line reason."""

    def __init__(self, reason, errno=None):
        super().__init__(reason)
        self.errno = errno


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _Params(ctypes.Structure):
    """struct io_uring_params, with io_sqring_offsets and io_cqring_offsets flattened (120 bytes)."""

    _fields_ = [(n, ctypes.c_uint32) for n in (
        "sq_entries", "cq_entries", "flags", "sq_thread_cpu", "sq_thread_idle", "features", "wq_fd",
        "resv0", "resv1", "resv2",
        "sq_head", "sq_tail", "sq_ring_mask", "sq_ring_entries", "sq_flags", "sq_dropped", "sq_array",
        "sq_resv1")] + [("sq_user_addr", ctypes.c_uint64)] + [(n, ctypes.c_uint32) for n in (
        "cq_head", "cq_tail", "cq_ring_mask", "cq_ring_entries", "cq_overflow", "cq_cqes", "cq_flags",
        "cq_resv1")] + [("cq_user_addr", ctypes.c_uint64)]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_Iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Request:
    """One read in flight: the user buffer and the structures the kernel writes through, kept alive."""

    def __init__(self, buf, offset):
        self.view = (ctypes.c_char * (len(buf) - offset)).from_buffer(buf, offset)
        self.iov = _Iovec(ctypes.addressof(self.view), len(self.view))
        self.control = ctypes.create_string_buffer(CONTROL_LEN)
        self.msg = _Msghdr(None, 0, ctypes.pointer(self.iov), 1, ctypes.addressof(self.control), CONTROL_LEN, 0)

    def kernel_stamp_realtime(self):
        """The SO_TIMESTAMPNS stamp the kernel put in the control buffer (realtime ns), or None."""
        raw = self.control.raw
        length, level, kind = struct.unpack_from("Qii", raw, 0)
        if length >= 32 and level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack_from("qq", raw, 16)
            return sec * 1_000_000_000 + nsec
        return None


class IoUring:
    """A small io_uring: submit RECVMSG requests, learn of completions through an eventfd."""

    name = "io_uring"
    label = "io_uring: the kernel does the read and posts a completion"

    def __init__(self, entries=8):
        if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
            raise Unavailable(f"io_uring via raw syscalls needs Linux x86_64 (this is {sys.platform} "
                              f"{platform.machine()})")
        self.libc = _libc()
        self.libc.syscall.restype = ctypes.c_long
        p = _Params()
        fd = self._syscall(SYS_IO_URING_SETUP, ctypes.c_uint(entries), ctypes.byref(p))
        if fd < 0:
            err = -fd
            raise Unavailable(f"io_uring_setup failed: {errno_mod.errorcode.get(err, err)} "
                              f"({os.strerror(err)})", err)
        self.fd = fd
        self.p = p
        sq_size = p.sq_array + p.sq_entries * 4
        cq_size = p.cq_cqes + p.cq_entries * 16
        prot, flags = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        if p.features & IORING_FEAT_SINGLE_MMAP:
            self.sq = self.cq = mmap.mmap(fd, max(sq_size, cq_size), flags, prot, offset=IORING_OFF_SQ_RING)
        else:
            self.sq = mmap.mmap(fd, sq_size, flags, prot, offset=IORING_OFF_SQ_RING)
            self.cq = mmap.mmap(fd, cq_size, flags, prot, offset=IORING_OFF_CQ_RING)
        self.sqes = mmap.mmap(fd, p.sq_entries * 64, flags, prot, offset=IORING_OFF_SQES)
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        arg = ctypes.c_int32(self.efd)
        r = self._syscall(SYS_IO_URING_REGISTER, ctypes.c_uint(fd), ctypes.c_uint(IORING_REGISTER_EVENTFD),
                          ctypes.byref(arg), ctypes.c_uint(1))
        if r < 0:
            self.close()
            raise Unavailable(f"io_uring_register(EVENTFD) failed: {errno_mod.errorcode.get(-r, -r)}", -r)
        self.requests = {}
        self.next_id = 1

    def _syscall(self, number, *args):
        """A raw syscall (ctypes drops the GIL around it): the result, or -errno."""
        r = self.libc.syscall(ctypes.c_long(number), *args)
        return -ctypes.get_errno() if r < 0 else r

    def fileno(self):
        return self.efd

    def submit(self, fd, buf, offset=0):
        """Queue RECVMSG(fd) into buf[offset:] and tell the kernel; returns the request id at once."""
        p, req = self.p, _Request(buf, offset)
        rid, self.next_id = self.next_id, self.next_id + 1
        self.requests[rid] = req
        tail = struct.unpack_from("I", self.sq, p.sq_tail)[0]
        mask = struct.unpack_from("I", self.sq, p.sq_ring_mask)[0]
        index = tail & mask
        # struct io_uring_sqe: opcode, flags, ioprio, fd, off, addr, len, msg_flags, user_data, (rest zero)
        struct.pack_into("BBHiQQIIQ24x", self.sqes, index * 64, IORING_OP_RECVMSG, 0, 0, fd, 0,
                         ctypes.addressof(req.msg), 1, MSG_WAITALL, rid)
        struct.pack_into("I", self.sq, p.sq_array + index * 4, index)
        struct.pack_into("I", self.sq, p.sq_tail, (tail + 1) & 0xFFFFFFFF)  # x86 stores stay in order
        r = self._syscall(SYS_IO_URING_ENTER, ctypes.c_uint(self.fd), ctypes.c_uint(1), ctypes.c_uint(0),
                          ctypes.c_uint(0), None, ctypes.c_size_t(0))  # submit only: min_complete 0
        if r < 0:
            raise OSError(-r, f"io_uring_enter: {os.strerror(-r)}")
        return rid

    def completions(self):
        """Reap finished requests without blocking: [(id, result or -errno, request)]."""
        try:
            os.eventfd_read(self.efd)
        except BlockingIOError:
            pass
        p, out = self.p, []
        head = struct.unpack_from("I", self.cq, p.cq_head)[0]
        tail = struct.unpack_from("I", self.cq, p.cq_tail)[0]
        mask = struct.unpack_from("I", self.cq, p.cq_ring_mask)[0]
        while head != tail:
            user_data, res, _flags = struct.unpack_from("QiI", self.cq, p.cq_cqes + (head & mask) * 16)
            out.append((user_data, res, self.requests.pop(user_data, None)))
            head = (head + 1) & 0xFFFFFFFF
        struct.pack_into("I", self.cq, p.cq_head, head)
        return out

    def close(self):
        for m in {id(x): x for x in (getattr(self, "sq", None), getattr(self, "cq", None),
                                     getattr(self, "sqes", None)) if x is not None}.values():
            m.close()
        if getattr(self, "efd", None) is not None:
            os.close(self.efd)
        os.close(self.fd)


class _Aiocb(ctypes.Structure):
    """glibc's struct aiocb on 64-bit Linux (168 bytes; sigevent is 64)."""

    _fields_ = [("fildes", ctypes.c_int), ("lio_opcode", ctypes.c_int), ("reqprio", ctypes.c_int),
                ("buf", ctypes.c_void_p), ("nbytes", ctypes.c_size_t),
                ("sigev_value", ctypes.c_void_p), ("sigev_signo", ctypes.c_int), ("sigev_notify", ctypes.c_int),
                ("sigev_rest", ctypes.c_char * 48),
                ("next_prio", ctypes.c_void_p), ("abs_prio", ctypes.c_int), ("policy", ctypes.c_int),
                ("error_code", ctypes.c_int), ("return_value", ctypes.c_ssize_t), ("offset", ctypes.c_int64),
                ("reserved", ctypes.c_char * 32)]


SIGEV_SIGNAL = 0


class PosixAio:
    """glibc POSIX AIO: aio_read() hands the read to a glibc helper thread; a signal says it is done.

    Not asynchronous in the kernel: a thread glibc starts inside this process
    blocks in read() for us. Completion raises `signo`; Python's wake-up fd
    turns that into a readable descriptor for epoll.
    """

    name = "posix_aio"
    label = "POSIX AIO: emulated by a helper thread (glibc)"

    def __init__(self, signo=None):
        if not sys.platform.startswith("linux") or struct.calcsize("P") != 8:
            raise Unavailable(f"glibc POSIX AIO via ctypes needs 64-bit Linux (this is {sys.platform})")
        self.libc = _libc()
        if not hasattr(self.libc, "aio_read"):  # glibc < 2.34 keeps it in librt
            self.libc = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)
        self.libc.aio_error.argtypes = [ctypes.POINTER(_Aiocb)]
        self.libc.aio_return.argtypes = [ctypes.POINTER(_Aiocb)]
        self.libc.aio_return.restype = ctypes.c_ssize_t
        self.libc.aio_read.argtypes = [ctypes.POINTER(_Aiocb)]
        self.signo = signo or signal.SIGUSR1
        self.rsock, self.wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self.wsock.setblocking(False)
        self.old_handler = signal.signal(self.signo, lambda *_: None)  # the wake-up fd does the work
        self.old_wakeup = signal.set_wakeup_fd(self.wsock.fileno(), warn_on_full_buffer=False)
        self.requests = {}
        self.next_id = 1

    def fileno(self):
        return self.rsock.fileno()

    def submit(self, fd, buf, offset=0):
        view = (ctypes.c_char * (len(buf) - offset)).from_buffer(buf, offset)
        cb = _Aiocb(fildes=fd, buf=ctypes.addressof(view), nbytes=len(view), sigev_signo=self.signo,
                    sigev_notify=SIGEV_SIGNAL)
        if self.libc.aio_read(ctypes.byref(cb)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"aio_read: {os.strerror(err)}")
        rid, self.next_id = self.next_id, self.next_id + 1
        self.requests[rid] = (cb, view)
        return rid

    def completions(self):
        try:
            while self.rsock.recv(256):  # the wake-up fd's bytes, not the data
                pass
        except BlockingIOError:
            pass
        out = []
        for rid, (cb, view) in list(self.requests.items()):
            err = self.libc.aio_error(ctypes.byref(cb))
            if err == errno_mod.EINPROGRESS:
                continue
            res = self.libc.aio_return(ctypes.byref(cb))
            del self.requests[rid]
            out.append((rid, res if err == 0 else -err, None))
        return out

    def close(self):
        signal.set_wakeup_fd(self.old_wakeup)
        signal.signal(self.signo, self.old_handler)
        self.rsock.close()
        self.wsock.close()


def open_backend(choice):
    """(backend, why io_uring was not used or None): `choice` is auto, io_uring or posix_aio."""
    if choice == "posix_aio":
        return PosixAio(), "posix_aio requested"
    try:
        return IoUring(), None
    except Unavailable as e:
        if choice == "io_uring":
            raise
        return PosixAio(), str(e)
