"""Reading another process's memory without stopping it (``process_vm_readv``).

Locating the GIL and the thread states of a process we attach to means reading its interpreter's
data from outside. ``process_vm_readv`` needs the same rights as ptrace-attach (root, or Yama
``ptrace_scope`` allowing it) but never stops the target, unlike ptrace or ``/proc/PID/mem``
reads that py-spy's blocking mode pairs with a pause.
"""

from __future__ import annotations

import ctypes
import os
import struct


class _Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class ProcessMemory:
    """Reads of one process's memory; each read is one system call."""

    def __init__(self, pid: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            self._call = libc.process_vm_readv
        except AttributeError as exc:
            raise OSError("the C library has no process_vm_readv") from exc
        self._call.argtypes = (ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_ulong,
                               ctypes.POINTER(_Iovec), ctypes.c_ulong, ctypes.c_ulong)
        self._call.restype = ctypes.c_ssize_t
        self.pid = pid

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address``; OSError if any of them is not mapped or not readable."""
        if size <= 0:
            return b""
        buffer = ctypes.create_string_buffer(size)
        local = _Iovec(ctypes.addressof(buffer), size)
        remote = _Iovec(address, size)
        got = self._call(self.pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got != size:
            errno = ctypes.get_errno()
            if got < 0:
                raise OSError(errno, f"process_vm_readv of {size} bytes at {address:#x} in "
                                     f"process {self.pid}: {os.strerror(errno)}")
            raise OSError(f"short read of {got} of {size} bytes at {address:#x} "
                          f"in process {self.pid}")
        return buffer.raw

    def word(self, address: int) -> int:
        """One unsigned 64-bit word."""
        value: int = struct.unpack("<Q", self.read(address, 8))[0]
        return value
