"""The pieces of the from-outside GIL search that need no process: the shape filter on synthetic
bytes, the choice among several matches, and the refusals (version, C library, build)."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.errors import RecorderUnavailable
from tracer.gil_locate import (
    GIL_OFFSETS,
    GIL_SIZE,
    MAX_INTERVAL_US,
    Interpreter,
    MapEntry,
    choose_gil,
    gil_candidates,
    glibc_mapping,
    parse_maps,
    version_from_names,
    version_of,
)
from tracer.procmem import ProcessMemory

BASE = 0x7F2656444000
HEAP = (0x559969B00000, 0x559969E00000)


def on_heap(address: int) -> bool:
    return HEAP[0] <= address < HEAP[1]


def cond(waiters: int = 0, wake_flag: bool = False, shared: bool = False, monotonic: bool = True,
         wseq: int = 0, signals: tuple[int, int] = (0, 0)) -> bytes:
    """A glibc pthread_cond_t as CPython's PyCOND_INIT leaves it (monotonic, private)."""
    wrefs = (waiters << 3) | (4 if wake_flag else 0) | (2 if monotonic else 0) | int(shared)
    return struct.pack("<QQIIIIIIII", wseq, 0, 0, 0, 0, 0, 0, wrefs, *signals)


def mutex(lock: int = 0, count: int = 0, owner: int = 0, nusers: int = 0, kind: int = 0,
          robust_list: tuple[int, int] = (0, 0)) -> bytes:
    return struct.pack("<iIiIihhQQ", lock, count, owner, nusers, kind, 0, 0, *robust_list)


def gil(interval: int = 5000, holder: int = HEAP[0] + 0x4A90, locked: int = 1,
        switches: int = 12345, padding: int = 0, first: tuple[bytes, bytes] | None = None,
        second: tuple[bytes, bytes] | None = None) -> bytes:
    head = struct.pack("<QQiIQ", interval, holder, locked, padding, switches)
    pair = first or (cond(), mutex())
    switch = second or (cond(), mutex())
    return head + pair[0] + pair[1] + switch[0] + switch[1]


def embed(structure: bytes, at: int = 1024, size: int = 4096, fill: bytes = b"\0") -> bytes:
    blob = bytearray(fill * (size // len(fill)))
    blob[at : at + len(structure)] = structure
    return bytes(blob)


def test_the_gil_has_the_size_the_sampler_assumes() -> None:
    assert len(gil()) == GIL_SIZE == 208


@pytest.mark.parametrize("structure", [
    gil(),
    gil(holder=0, locked=0),  # released, nobody held it yet
    gil(interval=4321),  # the probe's own interval, left behind by nothing but allowed anyway
    gil(interval=1, switches=2**64 - 1),
    gil(first=(cond(waiters=3, wake_flag=True, wseq=88, signals=(1, 0)),
               mutex(lock=2, owner=41234, nusers=1))),  # contended: waiters asleep on it
    gil(second=(cond(waiters=1), mutex(lock=1, owner=77, nusers=1, kind=256))),  # elision flag
], ids=["held", "released", "probe-interval", "extremes", "contended", "elision"])
def test_finds_a_gil(structure: bytes) -> None:
    assert gil_candidates(embed(structure), BASE, on_heap) == [BASE + 1024]


@pytest.mark.parametrize("structure", [
    gil(interval=MAX_INTERVAL_US + 1),
    gil(holder=0x1234),  # not a pointer into writable memory
    gil(holder=HEAP[0] + 4),  # a thread state is 8-aligned
    gil(locked=2),
    gil(locked=-1),  # the GIL is not created (yet, or any more)
    gil(padding=7),
    gil(first=(cond(monotonic=False), mutex())),
    gil(first=(cond(shared=True), mutex())),
    gil(second=(cond(), mutex(lock=3))),
    gil(second=(cond(), mutex(count=1))),  # a recursive mutex counts: never the GIL's
    gil(first=(cond(), mutex(kind=1))),
    gil(first=(cond(), mutex(robust_list=(HEAP[0], HEAP[0])))),
    gil(first=(cond(), mutex(owner=-5))),
], ids=["interval", "holder", "unaligned-holder", "locked", "not-created", "padding",
        "realtime-cond", "shared-cond", "mutex-lock", "mutex-count", "mutex-kind", "robust",
        "owner"])
def test_rejects_what_is_not_a_gil(structure: bytes) -> None:
    assert gil_candidates(embed(structure), BASE, on_heap) == []


def test_zeroed_memory_is_not_a_gil() -> None:
    # Zeroes pass every mutex check and most head checks; the condition variable's clock bit is
    # what a real GIL has and empty memory has not.
    assert gil_candidates(bytes(4096), BASE, on_heap) == []


def test_every_match_is_reported_and_offsets_are_8_aligned() -> None:
    blob = bytearray(embed(gil(), at=512))
    blob[2048 : 2048 + GIL_SIZE] = gil(holder=0, locked=0)
    blob[3072 : 3072 + GIL_SIZE] = gil()
    assert gil_candidates(bytes(blob), BASE, on_heap) == [BASE + 512, BASE + 2048, BASE + 3072]
    unaligned = embed(gil(), at=1028)
    assert gil_candidates(unaligned, BASE, on_heap) == []
    with pytest.raises(ValueError, match="aligned"):
        gil_candidates(bytes(blob), BASE + 4, on_heap)


@settings(max_examples=200, deadline=None)
@given(noise=st.binary(min_size=8, max_size=64), slot=st.integers(0, 200),
       interval=st.integers(0, MAX_INTERVAL_US), held=st.booleans(),
       switches=st.integers(0, 2**64 - 1), waiters=st.integers(0, 40),
       owner=st.integers(0, (1 << 22) - 1), lock=st.sampled_from([0, 1, 2]),
       wake=st.booleans())
def test_a_gil_in_any_state_is_found_among_noise(noise: bytes, slot: int, interval: int,
                                                  held: bool, switches: int, waiters: int,
                                                  owner: int, lock: int, wake: bool) -> None:
    structure = gil(interval=interval, holder=HEAP[0] + 0x100 if held else 0, locked=int(held),
                    switches=switches,
                    first=(cond(waiters=waiters, wake_flag=wake), mutex(lock, 0, owner, 1)),
                    second=(cond(waiters=min(waiters, 1)), mutex(lock, 0, owner, lock > 0)))
    at = 8 * slot
    blob = embed(structure, at=at, size=8 * 256 + GIL_SIZE + 64, fill=noise)
    assert BASE + at in gil_candidates(blob, BASE, on_heap)


def _interpreter(version: tuple[int, int]) -> Interpreter:
    return Interpreter(pid=os.getpid(), image="libpython.so", version=version,
                       version_text=f"{version[0]}.{version[1]}.0", runtime_addr=BASE,
                       runtime_size=200_000, maps=(), libc="glibc 2.36",
                       memory=ProcessMemory(os.getpid()))


def test_several_matches_resolve_to_the_known_offset() -> None:
    known = BASE + GIL_OFFSETS[(3, 12)]
    assert choose_gil([BASE + 64, known], b"", _interpreter((3, 12))) == known


def test_several_matches_resolve_to_the_one_pointed_at() -> None:
    # 3.12+: the interpreter's ceval.gil points at the GIL from inside _PyRuntime.
    blob = bytes(64) + struct.pack("<Q", BASE + 4096) + bytes(64)
    assert choose_gil([BASE + 512, BASE + 4096], blob, _interpreter((3, 12))) == BASE + 4096


def test_refuses_to_guess() -> None:
    with pytest.raises(RecorderUnavailable, match=r"2 GIL-shaped .* \+512, \+4096"):
        choose_gil([BASE + 512, BASE + 4096], bytes(64), _interpreter((3, 12)))
    with pytest.raises(RecorderUnavailable, match="nothing shaped like the GIL"):
        choose_gil([], bytes(64), _interpreter((3, 11)))


MAPS = """\
00400000-00420000 r--p 00000000 08:01 1234 /usr/bin/python3.11
0946000-0a85000 rw-p 00546000 08:01 1234 /usr/bin/python3.11
55d0c9a00000-55d0c9c00000 rw-p 00000000 00:00 0 [heap]
7f2656200000-7f2656226000 r--p 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7f2656444000-7f2656578000 rw-p 00000000 00:00 0
7ffd1000-7ffd2000 r-xp 00000000 00:00 0                  [vdso]
7f26565a0000-7f26565b0000 r--p 00000000 08:01 7 /opt/py/lib/libpython3.11.so.1.0 (deleted)
"""


def test_parse_maps() -> None:
    maps = parse_maps(MAPS + "garbage line\n")
    assert len(maps) == 7
    assert maps[1] == MapEntry(0x946000, 0xA85000, "rw-p", 0x546000, 1234, "/usr/bin/python3.11")
    assert maps[2].path == "[heap]" and maps[2].writable
    assert maps[4].path == "" and not maps[5].writable
    assert maps[6].path == "/opt/py/lib/libpython3.11.so.1.0 (deleted)"


def test_only_glibc_is_accepted() -> None:
    assert glibc_mapping(parse_maps(MAPS)).lo == 0x7F2656200000
    musl = MAPS.replace("/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/ld-musl-x86_64.so.1")
    with pytest.raises(RecorderUnavailable, match="musl"):
        glibc_mapping(parse_maps(musl))
    with pytest.raises(RecorderUnavailable, match="no glibc"):
        glibc_mapping(parse_maps(MAPS.replace("libc.so.6", "libfoo.so")))


@pytest.mark.parametrize(("paths", "expected"), [
    (["/usr/lib/libpython3.12.so.1.0"], ((3, 12), "")),
    (["/opt/lib/libpython3.13t.so.1.0"], ((3, 13), "t")),
    (["/usr/bin/python3.11"], ((3, 11), "")),
    (["/usr/local/bin/uwsgi", "/root/.pyenv/versions/3.13.0/bin/python3.13t"], ((3, 13), "t")),
    (["/venv/bin/python"], (None, "")),
    (["/usr/lib/libpython2.7.so.1.0"], (None, "")),
])
def test_version_from_names(paths: list[str], expected: tuple[object, str]) -> None:
    assert version_from_names(paths) == expected


@pytest.mark.parametrize(("hexversion", "text"), [
    (0x030B07F0, "3.11.7"), (0x030D00F0, "3.13.0"), (0x030D00C1, "3.13.0rc1"),
    (0x030C00A7, "3.12.0a7"), (0x030A0DB2, "3.10.13b2"),
])
def test_version_from_py_version(hexversion: int, text: str) -> None:
    assert version_of(None, hexversion, "x")[1] == text


def test_version_disagreement_is_refused() -> None:
    assert version_of((3, 11), 0x030B07F0, "x") == ((3, 11), "3.11.7")
    assert version_of((3, 10), None, "x") == ((3, 10), "3.10")
    with pytest.raises(RecorderUnavailable, match="Py_Version"):
        version_of((3, 12), 0x030B07F0, "libpython3.12.so")
    with pytest.raises(RecorderUnavailable, match="cannot tell"):
        version_of(None, None, "/venv/bin/python")
