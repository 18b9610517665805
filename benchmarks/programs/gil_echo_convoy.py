"""An echo client and its server on localhost, in one process, next to a CPU-spinning thread:
the convoy pattern. Every time the client's or the server's data arrives, that thread must win
the GIL back from the spinner, which gives it up only when the switch interval (5 ms) expires,
so each round trip costs one or two GIL waits of about 5 ms, each followed by a turn of a few
microseconds. A 1 kHz sampler sees those turns only through the GIL word's switch counter and
the threads' context-switch counters (benchmarks/gil_accuracy.py measures it). Plain script; the
round trips are one phase (tracer.markers: a no-op unless traced or timed)."""

from __future__ import annotations

import socket
import threading
import time

from tracer.markers import phase

ROUND_TRIPS = 400
# The server answers after a short pause, like a fast local service: long enough that the client
# really blocks in recv and the spinner gets the GIL in the meantime.
SERVER_DELAY_S = 0.0002


def serve(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        while data := conn.recv(64):
            time.sleep(SERVER_DELAY_S)
            conn.sendall(data)


def spin(stop: threading.Event) -> None:
    total = 0
    while not stop.is_set():
        for i in range(10_000):
            total += i


def client(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for _ in range(ROUND_TRIPS):
            conn.sendall(b"x")
            conn.recv(64)


def main() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    server = threading.Thread(target=serve, args=(listener,), name="echo-server")
    server.start()
    stop = threading.Event()
    cpu = threading.Thread(target=spin, args=(stop,), name="cpu-spin")
    cpu.start()
    io = threading.Thread(target=client, args=(listener.getsockname()[1],), name="echo-client")
    with phase("round-trips"):
        io.start()
        io.join()
    stop.set()
    cpu.join()
    server.join()
    listener.close()


if __name__ == "__main__":
    main()
