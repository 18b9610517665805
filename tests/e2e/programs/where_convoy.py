"""A convoy: an I/O thread doing socket round trips next to a CPU-bound thread. Each time the
I/O thread's recv returns it must wait for the GIL the spinner holds."""

import socket
import sys
import threading

TRIPS = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def spin(stop: threading.Event) -> None:
    total = 0
    while not stop.is_set():
        for i in range(10_000):
            total += i


def serve(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    while data := conn.recv(16):
        conn.sendall(data)


def round_trips(port: int) -> None:
    client = socket.create_connection(("127.0.0.1", port))
    for _ in range(TRIPS):
        client.sendall(b"ping")
        client.recv(16)
    client.close()


def main() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener,), name="echo-server", daemon=True).start()
    stop = threading.Event()
    spinner = threading.Thread(target=spin, args=(stop,), name="cpu-spinner")
    spinner.start()
    io = threading.Thread(target=round_trips, args=(port,), name="io-client")
    io.start()
    io.join()
    stop.set()
    spinner.join()


main()
