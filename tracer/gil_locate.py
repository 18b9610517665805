"""Finding the GIL of a CPython process from outside, for ``tracer attach PID``.

When threadscope starts the target, :mod:`tracer.instrument.gil_probe` finds the GIL from inside
and writes ``raw/gil_layout.json``; a process we attach to never ran that code, yet the GIL
sampler (and the exact recorder's in-kernel futex filter) need the same layout. So this module
finds it by reading the process: ``_PyRuntime``'s address and size from the ELF symbol table of
libpython (or of the executable of a static build) plus the load bias from ``/proc/PID/maps``,
then one ``process_vm_readv`` of the whole ``_PyRuntime`` object, searched for the shape of
``struct _gil_runtime_state`` (see :func:`gil_candidates`). The shape, not a value: the target
may have set any switch interval, and nothing may be changed in it.

It is deliberately narrow: CPython 3.10-3.13 with the GIL, glibc, x86_64, the combinations the
search was checked on against ``gil_probe.calibrate()`` run inside the same process. Anything else
raises :class:`~tracer.errors.RecorderUnavailable` saying what was found, rather than guess: a
wrong address would not fail loudly, it would draw a wrong picture.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer.elf_symbols import EM_X86_64, ElfError, ElfImage, find_symbols, read_elf
from tracer.errors import RecorderUnavailable
from tracer.procmem import ProcessMemory

KNOWN_MINORS = (10, 11, 12, 13)

# Offset of the GIL inside _PyRuntime, measured by running gil_probe.calibrate() in pyenv's
# 3.10.13, 3.11.7, 3.12.1, 3.13.0 and Debian's 3.11.2 (the same 360 as pyenv's 3.11). 3.10/3.11:
# _PyRuntime.ceval.gil; 3.12+: the main interpreter's _gil (the interpreter is embedded in
# _PyRuntime from 3.11 on). Used only to choose when the shape matches more than once.
GIL_OFFSETS = {(3, 10): 352, (3, 11): 360, (3, 12): 77432, (3, 13): 96104}

# struct _gil_runtime_state on x86_64 glibc: the head gil_probe describes (interval, last_holder,
# locked + 4 bytes of padding, switch_number), then cond/mutex and switch_cond/switch_mutex.
HEAD_SIZE = 32
COND_SIZE = 48  # glibc pthread_cond_t
MUTEX_SIZE = 40  # glibc pthread_mutex_t on x86_64
GIL_SIZE = HEAD_SIZE + 2 * (COND_SIZE + MUTEX_SIZE)
# Up to 10^10 us (about 3 hours), far past any interval a program sets (CPython's default is 5000):
# the bound only keeps arbitrary words out; the pthread fields below do the real filtering.
MAX_INTERVAL_US = 10**10
# glibc's __wrefs: bit 0 process-shared, bit 1 CLOCK_MONOTONIC (CPython always asks for it when
# the platform has pthread_condattr_setclock, which glibc does), bit 2 a wake-request flag, bits 3+
# the waiter count.
_COND_CLOCK_MASK, _COND_MONOTONIC = 0b11, 0b10
# glibc's __kind for a default mutex is 0 (PTHREAD_MUTEX_TIMED_NP); lock elision may set 256/512.
_MUTEX_ELISION_BITS = 0x300
_PID_MAX = 1 << 22  # the kernel's PID_MAX_LIMIT on 64-bit: a mutex owner is a thread id below it

_GLIBC = re.compile(r"^(libc\.so\.6|libc-2\.\d+\.so)$")
_LIBPYTHON = re.compile(r"^libpython3\.(\d+)([a-z]*)\.so")
_PYTHON_EXE = re.compile(r"^python3\.(\d+)([a-z]*)$")
_VERSION_310 = re.compile(rb"(3\.10\.\d+(?:(?:a|b|rc)\d+)?\+?) \(")
_RELEASE_LEVEL = {0xA: "a", 0xB: "b", 0xC: "rc"}
_DEBUG_COOKIE = b"xdebugpy"  # 3.13+: _PyRuntime starts with _Py_DebugOffsets behind this cookie


@dataclass(frozen=True)
class MapEntry:
    """One line of ``/proc/PID/maps``."""

    lo: int
    hi: int
    perms: str
    offset: int
    inode: int
    path: str

    @property
    def writable(self) -> bool:
        return self.perms.startswith("rw")


@dataclass(frozen=True)
class Interpreter:
    """A CPython found in another process: where its ``_PyRuntime`` is and which version it is."""

    pid: int
    image: str  # the mapped file holding _PyRuntime: libpython, or the executable
    version: tuple[int, int]
    version_text: str  # like the first word of its sys.version
    runtime_addr: int
    runtime_size: int
    maps: tuple[MapEntry, ...]
    libc: str  # what its C library calls itself, as os.confstr("CS_GNU_LIBC_VERSION") inside
    memory: ProcessMemory = field(compare=False, repr=False)


def parse_maps(text: str) -> list[MapEntry]:
    entries: list[MapEntry] = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        lo_text, _, hi_text = fields[0].partition("-")
        try:
            entries.append(MapEntry(int(lo_text, 16), int(hi_text, 16), fields[1],
                                    int(fields[2], 16), int(fields[4]),
                                    fields[5].strip() if len(fields) > 5 else ""))
        except ValueError:
            continue
    return entries


def locate_gil(pid: int) -> dict[str, Any]:
    """The GIL layout of process ``pid``, with the keys ``gil_probe.calibrate()`` returns inside
    a process; RecorderUnavailable with the reason when it cannot be found for sure."""
    return gil_layout(find_interpreter(pid))


def find_interpreter(pid: int) -> Interpreter:
    """The CPython runtime of ``pid``: its image, version and ``_PyRuntime`` (address, size)."""
    if not sys.platform.startswith("linux"):
        raise RecorderUnavailable(f"locating the GIL from outside needs Linux ({sys.platform})")
    if platform.machine() != "x86_64":
        raise RecorderUnavailable(f"the GIL search knows x86_64's pthread layout, not "
                                  f"{platform.machine()}'s")
    maps = _read_maps(pid)
    libc = _glibc_version(pid, glibc_mapping(maps))
    entry, image = _python_image(pid, maps)
    try:
        symbols = find_symbols(_openable(pid, entry), {"_PyRuntime", "Py_Version"})
    except (OSError, ElfError) as exc:
        raise RecorderUnavailable(f"cannot read the symbols of {entry.path}: {exc}") from exc
    runtime = symbols.get("_PyRuntime")
    if runtime is None or runtime.size == 0:
        raise RecorderUnavailable(f"{entry.path} has no _PyRuntime symbol (with a size) in its "
                                  "symbol tables: not a CPython runtime this can read")
    bias = _load_bias(maps, entry, image)
    runtime_addr = runtime.value + bias
    if _writable_entry(maps, runtime_addr) is None:
        raise RecorderUnavailable(f"_PyRuntime ({runtime_addr:#x}) is not in a writable mapping "
                                  f"of process {pid}")
    try:
        memory = ProcessMemory(pid)
    except OSError as exc:
        raise RecorderUnavailable(str(exc)) from exc
    names = [entry.path]
    with contextlib.suppress(OSError):
        names.append(os.readlink(f"/proc/{pid}/exe"))
    name_version, flags = version_from_names(names)
    if "t" in flags:
        raise RecorderUnavailable(f"{os.path.basename(entry.path)}: {FREE_THREADED}")
    hexversion = None
    if "Py_Version" in symbols:
        hexversion = _read_word(memory, symbols["Py_Version"].value + bias)
    version, text = version_of(name_version, hexversion, entry.path)
    if version == (3, 10):
        text = _version_text_310(memory, image, bias) or text
    if version[0] != 3 or version[1] not in KNOWN_MINORS:
        raise RecorderUnavailable(f"CPython {text}: the GIL layout is known for 3.10-3.13 only")
    interpreter = Interpreter(pid, entry.path, version, text, runtime_addr, runtime.size,
                              tuple(maps), libc, memory)
    if _free_threaded_by_debug_offsets(interpreter):
        raise RecorderUnavailable(f"CPython {text} (its debug offsets say so): {FREE_THREADED}")
    return interpreter


def gil_layout(interpreter: Interpreter) -> dict[str, Any]:
    """Search ``_PyRuntime`` for the GIL and describe it as ``gil_probe.calibrate()`` does."""
    try:
        blob = interpreter.memory.read(interpreter.runtime_addr, interpreter.runtime_size)
    except OSError as exc:
        raise RecorderUnavailable(f"cannot read process {interpreter.pid}'s _PyRuntime: {exc} "
                                  "(needs root or ptrace rights over it)") from exc
    writable = [(e.lo, e.hi) for e in interpreter.maps if e.writable]
    found = gil_candidates(blob, interpreter.runtime_addr,
                           lambda address: any(lo <= address < hi for lo, hi in writable))
    gil = choose_gil(found, blob, interpreter)
    entry = _writable_entry(interpreter.maps, interpreter.runtime_addr)
    assert entry is not None  # find_interpreter checked it
    return {
        "gil_addr": gil,
        "map_lo": entry.lo,
        "map_hi": entry.hi,
        "mapping": entry.path,
        "python_version": interpreter.version_text,
        "pid": interpreter.pid,
        "head_size": HEAD_SIZE,
        "offsets": {"interval": 0, "last_holder": 8, "locked": 16, "switch_number": 24},
        "wait_range": [HEAD_SIZE, HEAD_SIZE + COND_SIZE + MUTEX_SIZE],
        "handoff_range": [HEAD_SIZE + COND_SIZE + MUTEX_SIZE, GIL_SIZE],
        "pointer_size": 8,
        "libc": interpreter.libc,
    }


def gil_candidates(blob: bytes, base: int, is_data_pointer: Callable[[int], bool]) -> list[int]:
    """Addresses (``base`` + 8-aligned offset) where ``blob`` holds something shaped like
    ``struct _gil_runtime_state``:

    - ``interval`` 0..MAX_INTERVAL_US, ``last_holder`` NULL or an aligned pointer into writable
      memory (a PyThreadState: heap, or _PyRuntime itself for 3.11+'s main thread), ``locked`` 0
      or 1 with its 4 padding bytes zero, ``switch_number`` anything;
    - twice a glibc condition variable made for CLOCK_MONOTONIC and process-private (as
      CPython's ``PyCOND_INIT`` makes them) followed by a default, non-robust glibc mutex.

    Each field is checked on its own, so a torn read of a GIL changing hands still matches.
    """
    if base % 8:
        raise ValueError(f"base {base:#x} is not 8-byte aligned")
    words = memoryview(blob)[: len(blob) - len(blob) % 8].cast("Q")
    found: list[int] = []
    for i in range(len(words) - GIL_SIZE // 8 + 1):
        if words[i + 2] > 1 or words[i] > MAX_INTERVAL_US:
            continue
        holder = words[i + 1]
        if holder and (holder % 8 or not is_data_pointer(holder)):
            continue
        at = 8 * i
        wait, handoff = at + HEAD_SIZE, at + HEAD_SIZE + COND_SIZE + MUTEX_SIZE
        if (_is_cond(blob, wait) and _is_mutex(blob, wait + COND_SIZE)
                and _is_cond(blob, handoff) and _is_mutex(blob, handoff + COND_SIZE)):
            found.append(base + at)
    return found


def _is_cond(blob: bytes, at: int) -> bool:
    wrefs = struct.unpack_from("<I", blob, at + 36)[0]
    return bool((wrefs & _COND_CLOCK_MASK) == _COND_MONOTONIC)


def _is_mutex(blob: bytes, at: int) -> bool:
    lock, count, owner, _, kind, _, _, prev, nxt = struct.unpack_from("<iIiIihhQQ", blob, at)
    return (lock in (0, 1, 2) and count == 0 and 0 <= owner < _PID_MAX
            and kind & ~_MUTEX_ELISION_BITS == 0 and prev == 0 and nxt == 0)


def choose_gil(found: list[int], blob: bytes, interpreter: Interpreter) -> int:
    """The one match; of several, the one at the offset this version's GIL was measured at, or
    else the only one something in ``_PyRuntime`` points at; RecorderUnavailable otherwise."""
    where = f"in _PyRuntime of process {interpreter.pid} (CPython {interpreter.version_text})"
    if not found:
        raise RecorderUnavailable(f"nothing shaped like the GIL {where}: an unknown build, or "
                                  "the interpreter is starting or shutting down")
    if len(found) == 1:
        return found[0]
    expected = interpreter.runtime_addr + GIL_OFFSETS.get(interpreter.version, -1)
    if expected in found:
        return expected
    # 3.12+: the interpreter's ceval.gil points at its GIL, from inside _PyRuntime.
    pointers = {v for (v,) in struct.iter_unpack("<Q", blob[: len(blob) - len(blob) % 8])}
    pointed = [address for address in found if address in pointers]
    if len(pointed) == 1:
        return pointed[0]
    offsets = ", ".join(f"+{a - interpreter.runtime_addr}" for a in found)
    raise RecorderUnavailable(f"{len(found)} GIL-shaped structures {where} at {offsets}, none "
                              "at a known offset: refusing to guess")


def _read_maps(pid: int) -> list[MapEntry]:
    try:
        text = Path(f"/proc/{pid}/maps").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError as exc:
        raise RecorderUnavailable(f"no process {pid}") from exc
    except OSError as exc:
        raise RecorderUnavailable(f"cannot read /proc/{pid}/maps: {exc}") from exc
    maps = parse_maps(text)
    if not maps:
        raise RecorderUnavailable(f"/proc/{pid}/maps is empty (a kernel thread, or exiting)")
    return maps


def glibc_mapping(maps: list[MapEntry]) -> MapEntry:
    """The lowest mapping of glibc's libc.so.6; RecorderUnavailable for any other C library."""
    named = [e for e in maps if e.path.startswith("/")]
    musl = sorted({os.path.basename(e.path) for e in named if "musl" in os.path.basename(e.path)})
    if musl:
        raise RecorderUnavailable(f"the process uses musl ({musl[0]}): the GIL search knows "
                                  "glibc's pthread layout only")
    libc = [e for e in named if _GLIBC.match(os.path.basename(e.path))]
    if not libc:
        raise RecorderUnavailable("no glibc (libc.so.6) mapped in the process: the GIL search "
                                  "knows glibc's pthread layout only")
    return min(libc, key=lambda e: (e.offset, e.lo))


def _glibc_version(pid: int, entry: MapEntry) -> str:
    """``glibc 2.36``: what glibc's confstr(_CS_GNU_LIBC_VERSION) returns, from its .rodata."""
    try:
        image = read_elf(_openable(pid, entry))
        rodata = image.section(".rodata")
        if rodata is None or rodata.size > 64 << 20:
            return ""
        with open(_openable(pid, entry), "rb") as handle:
            handle.seek(rodata.offset)
            blob = handle.read(rodata.size)
    except (OSError, ElfError):
        return ""
    found = set(re.findall(rb"\0(glibc \d+\.\d+(?:\.\d+)?)\0", blob))
    return found.pop().decode() if len(found) == 1 else ""


def _python_image(pid: int, maps: list[MapEntry]) -> tuple[MapEntry, ElfImage]:
    """The lowest mapping of libpython, else of the executable (a static build), and its ELF."""
    libpython = [e for e in maps if _LIBPYTHON.match(os.path.basename(e.path))]
    if libpython:
        path = libpython[0].path
    else:
        try:
            path = os.readlink(f"/proc/{pid}/exe")
        except OSError as exc:
            raise RecorderUnavailable(f"cannot read /proc/{pid}/exe: {exc}") from exc
    mine = [e for e in maps if e.path == path]
    if not mine:
        raise RecorderUnavailable(f"neither libpython nor {path} is mapped in process {pid}")
    entry = min(mine, key=lambda e: (e.offset, e.lo))
    try:
        image = read_elf(_openable(pid, entry))
    except (OSError, ElfError) as exc:
        raise RecorderUnavailable(f"cannot read {path} as ELF: {exc}") from exc
    if image.machine != EM_X86_64:
        raise RecorderUnavailable(f"{path} is not an x86_64 ELF file")
    return entry, image


def _openable(pid: int, entry: MapEntry) -> str:
    """A path that opens the very file mapped (even if replaced or deleted since, or in another
    mount namespace): the ``map_files`` link (root), else the path seen from the process's root."""
    link = f"/proc/{pid}/map_files/{entry.lo:x}-{entry.hi:x}"
    if os.access(link, os.R_OK):
        return link
    inside = f"/proc/{pid}/root{entry.path}"
    return inside if os.access(inside, os.R_OK) else entry.path


def _load_bias(maps: list[MapEntry], entry: MapEntry, image: ElfImage) -> int:
    try:
        bias = image.load_bias(entry.lo, entry.offset)
    except ElfError as exc:
        raise RecorderUnavailable(str(exc)) from exc
    if image.elf_type == 2 and bias != 0:  # ET_EXEC: linked at fixed addresses
        raise RecorderUnavailable(f"{entry.path} is not position-independent, yet mapped "
                                  f"{bias:#x} away from its link address")
    return bias


def _writable_entry(maps: Iterable[MapEntry], address: int) -> MapEntry | None:
    for entry in maps:
        if entry.lo <= address < entry.hi:
            return entry if entry.writable else None
    return None


def version_from_names(paths: Iterable[str]) -> tuple[tuple[int, int] | None, str]:
    """(3, minor) and build flags (``t`` free-threaded, ``d`` debug) from the first of ``paths``
    named like libpython3.Xt.so or python3.Xt; (None, "") if none is (a renamed copy)."""
    for name in (os.path.basename(path) for path in paths):
        match = _LIBPYTHON.match(name) or _PYTHON_EXE.match(name)
        if match:
            return (3, int(match.group(1))), match.group(2)
    return None, ""


def version_of(from_name: tuple[int, int] | None, hexversion: int | None,
             path: str) -> tuple[tuple[int, int], str]:
    if hexversion is not None:
        major, minor = hexversion >> 24 & 0xFF, hexversion >> 16 & 0xFF
        micro, level, serial = hexversion >> 8 & 0xFF, hexversion >> 4 & 0xF, hexversion & 0xF
        if from_name is not None and from_name != (major, minor):
            raise RecorderUnavailable(f"{path} says CPython {from_name[0]}.{from_name[1]} by "
                                      f"name but Py_Version is {hexversion:#x}")
        suffix = f"{_RELEASE_LEVEL[level]}{serial}" if level in _RELEASE_LEVEL else ""
        return (major, minor), f"{major}.{minor}.{micro}{suffix}"
    if from_name is None:
        raise RecorderUnavailable(f"cannot tell the CPython version of {path}: no Py_Version "
                                  "symbol and no version in its name")
    return from_name, f"{from_name[0]}.{from_name[1]}"


def _version_text_310(memory: ProcessMemory, image: ElfImage, bias: int) -> str | None:
    """3.10 exports no Py_Version; its full version is the start of the string Py_GetVersion()
    formats into a static buffer in .bss at start-up (that is sys.version)."""
    bss = image.section(".bss")
    if bss is None or bss.size > 64 << 20:
        return None
    try:
        blob = memory.read(bss.addr + bias, bss.size)
    except OSError:
        return None
    found = {m.group(1).decode() for m in _VERSION_310.finditer(blob)}
    return found.pop() if len(found) == 1 else None


def _read_word(memory: ProcessMemory, address: int) -> int | None:
    try:
        return memory.word(address)
    except OSError:
        return None


def _free_threaded_by_debug_offsets(interpreter: Interpreter) -> bool:
    """3.13+ says in ``_PyRuntime.debug_offsets.free_threaded`` whether it was built without the
    GIL; a build renamed so its name does not say ``t`` is still caught here."""
    if interpreter.version < (3, 13):
        return False
    try:
        head = interpreter.memory.read(interpreter.runtime_addr, 24)
    except OSError:
        return False
    return head[:8] == _DEBUG_COOKIE and struct.unpack_from("<Q", head, 16)[0] != 0


# ----------------------------------------------------------------------------------------------
# Free-threaded builds (Py_GIL_DISABLED): GIL figures do not apply

FREE_THREADED = "free-threaded build: there is no GIL to measure"
# Runs in the target's interpreter: whether it was built without the GIL, and whether the GIL is
# off as it starts (3.13t turns it back on with PYTHON_GIL=1, or for an extension that needs it).
GIL_BUILD_PROBE = (
    "import json, sys, sysconfig\n"
    "enabled = getattr(sys, '_is_gil_enabled', None)\n"
    "print(json.dumps({'gil_disabled_build': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
    " 'gil_enabled': enabled() if enabled is not None else True}))\n"
)
GIL_PROBE_TIMEOUT_S = 30.0  # one interpreter start-up, importing sysconfig


def free_threaded_reason(build: dict[str, Any]) -> str:
    """Why GIL figures do not apply to an interpreter that answered :data:`GIL_BUILD_PROBE`
    (``""`` when they do, or when it did not answer: the recorders' own checks then decide)."""
    if not build.get("gil_disabled_build"):
        return ""
    if build.get("gil_enabled") is False:
        return FREE_THREADED
    return (f"{FREE_THREADED} (the GIL is turned back on here, PYTHON_GIL=1 or -X gil=1, but "
            "its free-threaded layout is not one threadscope knows)")


def probe_gil_build(python: str) -> dict[str, Any]:
    """:data:`GIL_BUILD_PROBE`'s answer from ``python``; ``{}`` when it gives none."""
    try:
        done = subprocess.run([python, "-c", GIL_BUILD_PROBE], capture_output=True, text=True,
                              timeout=GIL_PROBE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return {}
    return answer if isinstance(answer, dict) else {}


_build_answers: dict[str, dict[str, Any]] = {}


def check_has_gil(python: str, probe: Callable[[str], dict[str, Any]] | None = None) -> None:
    """RecorderUnavailable(:data:`FREE_THREADED`...) when ``python`` is a free-threaded build:
    the GIL recorders' ``check()`` calls it, so such a run says why it has no GIL figures
    instead of failing later. The answer is kept per interpreter (one probe per process)."""
    if probe is None:
        if python not in _build_answers:
            _build_answers[python] = probe_gil_build(python)
        build = _build_answers[python]
    else:
        build = probe(python)
    reason = free_threaded_reason(build)
    if reason:
        raise RecorderUnavailable(reason)
