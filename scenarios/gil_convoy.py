"""The convoy effect: an I/O thread doing many short blocking round trips next to one CPU-bound
thread. Each time the I/O thread's data arrives it must win the GIL back from the CPU thread,
which CPython hands over only when the switch interval (5 ms) expires: every tiny operation
now costs about one switch interval, and throughput collapses."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario, params_from_argv
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

# The echo server is another process (its own GIL) that answers after a short delay, like a
# fast local service would: long enough that the I/O thread's wait really blocks and the CPU
# thread gets the GIL in the meantime (an instant answer is often back before the other thread
# even wakes up, and then no hand-off happens at all).
ECHO_SERVER = """
import socket, sys, time
conn = socket.socket(fileno=int(sys.argv[1]))
delay = float(sys.argv[2])
while True:
    data = conn.recv(64)
    if not data:
        break
    time.sleep(delay)
    conn.sendall(data)
"""


def check(model: RunModel) -> list[Claim]:
    from tracer.model.queries import phase_seconds
    from tracer.model.schema import Claim

    params = params_from_argv(SCENARIO, model.target.argv)
    alone = phase_seconds(model, "io_alone")
    convoy = phase_seconds(model, "io_with_cpu")
    short = phase_seconds(model, "io_with_cpu_short_interval")
    claims = []
    if alone and convoy:
        per_op_alone = alone / params.ops
        per_op = convoy / params.ops
        interval = params.interval_ms / 1000
        claims.append(Claim(
            claim="Next to a CPU-bound thread, each short I/O operation waits about one switch "
                  "interval for the GIL",
            held=0.3 * interval <= per_op - per_op_alone <= 3 * interval,
            detail=f"{per_op * 1000:.2f} ms per round trip with the CPU thread vs "
                   f"{per_op_alone * 1000:.3f} ms alone; switch interval {params.interval_ms:g} ms",
        ))
        claims.append(Claim(
            claim="The I/O thread's throughput collapses compared with running alone",
            held=convoy > 3 * alone,
            detail=f"{params.ops / alone:,.0f} round trips/s alone vs "
                   f"{params.ops / convoy:,.0f}/s next to the CPU thread",
        ))
    if convoy and short:
        claims.append(Claim(
            claim=f"A shorter switch interval ({params.short_interval_ms:g} ms) shortens the wait",
            held=short < convoy * 0.7,
            detail=f"{short / params.ops * 1000:.2f} ms per round trip at "
                   f"{params.short_interval_ms:g} ms vs {convoy / params.ops * 1000:.2f} ms at "
                   f"{params.interval_ms:g} ms",
        ))
    return claims


SCENARIO = Scenario(
    name="gil_convoy",
    concept="The GIL",
    section="GIL: I/O-bound threading next to CPU-bound work",
    summary="Short loopback round trips next to a CPU-bound thread: each waits a switch interval",
    claim="I/O threads do well under the GIL, unless a CPU-bound thread holds it: then each "
          "wake-up waits for the switch interval",
    look_for="The I/O thread in gil_wait for ~5 ms after every round trip while the CPU thread "
             "runs; the effect of sys.setswitchinterval",
    params=(
        Param("ops", 100, "round trips per phase"),
        Param("server_delay_ms", 0.2, "how long the echo server takes to answer"),
        Param("interval_ms", 5.0, "switch interval for the main comparison (CPython: 5 ms)"),
        Param("short_interval_ms", 1.0, "a shorter switch interval to compare with"),
    ),
    check=check,
)


def round_trips(conn: socket.socket, ops: int) -> float:
    began = time.perf_counter()
    for _ in range(ops):
        conn.sendall(b"x")
        conn.recv(64)
    return time.perf_counter() - began


def spin(stop: threading.Event) -> None:
    """CPU-bound until told to stop; checks the flag rarely, so it holds the GIL for whole
    switch intervals like any number-crunching loop would."""
    total = 0
    while not stop.is_set():
        for i in range(10_000):
            total += i


def with_cpu_thread(conn: socket.socket, ops: int) -> float:
    stop = threading.Event()
    cpu = threading.Thread(target=spin, args=(stop,), name="cpu-bound")
    cpu.start()
    time.sleep(0.02)  # let it get going, so every round trip competes with it
    try:
        return round_trips(conn, ops)
    finally:
        stop.set()
        cpu.join()


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    ours, theirs = socket.socketpair()
    server = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, str(theirs.fileno()), str(args.server_delay_ms / 1000)],
        pass_fds=(theirs.fileno(),),
    )
    theirs.close()
    previous = sys.getswitchinterval()
    results: dict[str, float] = {}

    def io_worker() -> None:
        round_trips(ours, 10)  # warm up the echo server
        sys.setswitchinterval(args.interval_ms / 1000)
        with phase("io_alone"):
            results["alone"] = round_trips(ours, args.ops)
        with phase("io_with_cpu"):
            results["convoy"] = with_cpu_thread(ours, args.ops)
        sys.setswitchinterval(args.short_interval_ms / 1000)
        mark("switch_interval", ms=args.short_interval_ms)
        with phase("io_with_cpu_short_interval"):
            results["short"] = with_cpu_thread(ours, args.ops)

    worker = threading.Thread(target=io_worker, name="io-round-trips")
    try:
        worker.start()
        worker.join()
    finally:
        sys.setswitchinterval(previous)
        ours.close()
        server.wait(timeout=10)
    for label, key, interval in (("alone", "alone", args.interval_ms),
                                 ("with a CPU thread", "convoy", args.interval_ms),
                                 ("with a CPU thread", "short", args.short_interval_ms)):
        seconds = results[key]
        print(f"{label:>18} (switch interval {interval:g} ms): {args.ops / seconds:8,.0f} "
              f"round trips/s, {seconds / args.ops * 1000:.3f} ms each")


if __name__ == "__main__":
    main(sys.argv[1:])
