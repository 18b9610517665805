"""Walking a CPython thread list in fake memory: what is trusted, what is refused, and the
``threads.jsonl`` records attach mode writes from it."""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracer.attached_threads import (
    PTHREAD_TID_OFFSET,
    THREAD_OFFSETS,
    AttachedThreads,
    python_threads,
    thread_offsets,
)
from tracer.errors import RecorderUnavailable
from tracer.gil_locate import Interpreter
from tracer.procmem import ProcessMemory

RUNTIME = 0x7F0000010000
INTERP = 0x7F0000020000  # 3.11+ embed the main interpreter in _PyRuntime; any address will do


class FakeMemory(ProcessMemory):
    """Sparse memory: little-endian words written by the test; reading anything else fails."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cells: dict[int, int] = {}

    def put(self, address: int, value: int, size: int = 8) -> None:
        for i, byte in enumerate(value.to_bytes(size, "little")):
            self.cells[address + i] = byte

    def put_bytes(self, address: int, blob: bytes) -> None:
        for i, byte in enumerate(blob):
            self.cells[address + i] = byte

    def read(self, address: int, size: int) -> bytes:
        try:
            return bytes(self.cells[address + i] for i in range(size))
        except KeyError as exc:
            raise OSError(f"unmapped {address:#x}") from exc


def interpreter(version: tuple[int, int], memory: FakeMemory) -> Interpreter:
    return Interpreter(pid=os.getpid(), image="libpython", version=version,
                       version_text=f"{version[0]}.{version[1]}.0", runtime_addr=RUNTIME,
                       runtime_size=4096, maps=(), libc="glibc 2.36", memory=memory)


def thread_list(memory: FakeMemory, version: tuple[int, int],
                threads: list[tuple[int, int]], interp: int = INTERP) -> None:
    """Lay out _PyRuntime -> interpreter -> [(tstate, tid), ...] as ``version`` does."""
    o = THREAD_OFFSETS[version]
    memory.put(RUNTIME + o.interpreters_head, interp)
    memory.put(interp + o.interp_next, 0)
    memory.put(interp + o.threads_head, threads[0][0] if threads else 0)
    for i, (tstate, tid) in enumerate(threads):
        memory.put(tstate + o.tstate_interp, interp)
        memory.put(tstate + o.tstate_next, threads[i + 1][0] if i + 1 < len(threads) else 0)
        if o.native_thread_id is not None:
            memory.put(tstate + o.native_thread_id, tid)
        else:  # 3.10: through glibc's struct pthread
            pthread = 0x7F00AA000000 + i * 0x10000
            memory.put(tstate + o.thread_id, pthread)
            memory.put(pthread + PTHREAD_TID_OFFSET, tid, size=4)


@pytest.mark.parametrize("version", sorted(THREAD_OFFSETS))
def test_walk_maps_each_live_thread_to_its_state(version: tuple[int, int]) -> None:
    memory = FakeMemory()
    thread_list(memory, version, [(0x5500_0000_1000, 102), (0x5500_0000_2000, 101),
                                  (0x5500_0000_3000, 999)])
    offsets = THREAD_OFFSETS[version]
    # 999 is not a thread of the process (its thread ended, the state is not freed yet): left out.
    assert python_threads(interpreter(version, memory), offsets, {100, 101, 102}) == {
        102: 0x5500_0000_1000, 101: 0x5500_0000_2000}


def test_walk_refuses_a_state_of_another_interpreter() -> None:
    memory = FakeMemory()
    thread_list(memory, (3, 12), [(0x5500_0000_1000, 101), (0x5500_0000_2000, 102)])
    memory.put(0x5500_0000_2000 + 16, INTERP + 8)  # torn: freed and reused meanwhile
    with pytest.raises(RecorderUnavailable, match="does not point back"):
        python_threads(interpreter((3, 12), memory), THREAD_OFFSETS[(3, 12)], {101, 102})


def test_walk_refuses_a_loop_and_a_thread_with_two_states() -> None:
    memory = FakeMemory()
    thread_list(memory, (3, 11), [(0x5500_0000_1000, 101), (0x5500_0000_2000, 102)])
    memory.put(0x5500_0000_2000 + 8, 0x5500_0000_1000)
    with pytest.raises(RecorderUnavailable, match="seen twice"):
        python_threads(interpreter((3, 11), memory), THREAD_OFFSETS[(3, 11)], {101, 102})
    thread_list(memory, (3, 11), [(0x5500_0000_1000, 101), (0x5500_0000_2000, 101)])
    with pytest.raises(RecorderUnavailable, match="two thread states"):
        python_threads(interpreter((3, 11), memory), THREAD_OFFSETS[(3, 11)], {101})


def test_walk_refuses_when_no_state_names_a_thread() -> None:
    # What wrong offsets look like: thread ids that are no threads of the process.
    memory = FakeMemory()
    thread_list(memory, (3, 12), [(0x5500_0000_1000, 7), (0x5500_0000_2000, 8)])
    with pytest.raises(RecorderUnavailable, match="unknown thread state layout"):
        python_threads(interpreter((3, 12), memory), THREAD_OFFSETS[(3, 12)], {101, 102})


def test_unreadable_memory_is_refused() -> None:
    memory = FakeMemory()
    memory.put(RUNTIME + THREAD_OFFSETS[(3, 12)].interpreters_head, INTERP)
    with pytest.raises(RecorderUnavailable, match="cannot read the interpreter's thread list"):
        python_threads(interpreter((3, 12), memory), THREAD_OFFSETS[(3, 12)], {101})


def test_3_13_offsets_come_from_its_debug_offsets() -> None:
    memory = FakeMemory()
    words = [0] * 26
    words[5], words[8], words[9] = 1000, 2000, 3000  # interpreters_head, interp next, threads_head
    words[21], words[22], words[24], words[25] = 40, 48, 64, 72  # next, interp, ids
    memory.put_bytes(RUNTIME, b"xdebugpy" + struct.pack("<25Q", *words[1:]))
    offsets = thread_offsets(interpreter((3, 13), memory))
    assert (offsets.interpreters_head, offsets.interp_next, offsets.threads_head) == (
        1000, 2000, 3000)
    assert (offsets.tstate_next, offsets.tstate_interp, offsets.thread_id,
            offsets.native_thread_id) == (40, 48, 64, 72)
    memory.put_bytes(RUNTIME, b"notdebug" + bytes(200))  # no cookie: the measured table
    assert thread_offsets(interpreter((3, 13), memory)) == THREAD_OFFSETS[(3, 13)]


@pytest.fixture
def helper_tids() -> Iterator[list[int]]:
    """Native ids of two threads of this process, alive for the test."""
    release = threading.Event()
    workers = [threading.Thread(target=release.wait) for _ in range(2)]
    for worker in workers:
        worker.start()
    yield [int(worker.native_id or 0) for worker in workers]
    release.set()
    for worker in workers:
        worker.join()


def test_attached_threads_logs_what_exists_starts_and_ends(tmp_path: Path,
                                                           helper_tids: list[int]) -> None:
    main, first, second = os.getpid(), *helper_tids
    memory = FakeMemory()
    version = (3, 12)
    thread_list(memory, version, [(0x5500_0000_1000, first), (0x5500_0000_9000, main)])
    log = tmp_path / "threads.jsonl"
    threads = AttachedThreads(interpreter(version, memory), str(log))
    threads.REWALK_S = 0  # walk on every poll
    threads.start()
    threads.poll()  # nothing changed: nothing logged
    thread_list(memory, version, [(0x5500_0000_2000, second), (0x5500_0000_9000, main)])
    threads.poll()
    threads.close()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["ev"], e["tid"], e.get("tstate")) for e in events] == [
        ("main", main, 0x5500_0000_9000),
        ("existing", first, 0x5500_0000_1000),
        ("end", first, None),
        ("start", second, 0x5500_0000_2000),
    ]
    attach_ns, _, end_ns, start_ns = (e["t_ns"] for e in events)
    assert events[1]["t_ns"] == attach_ns
    # The new thread's state may hold the GIL from the poll before the one that saw it.
    assert attach_ns <= start_ns <= end_ns
