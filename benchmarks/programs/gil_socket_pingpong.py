"""Two threads bouncing one byte over a socketpair: every send and recv releases the GIL and most
recvs block, so each round trip is a few context switches and GIL hand-offs of microseconds.
Plain script; ``--round-trips N``."""

from __future__ import annotations

import argparse
import socket
import threading

from tracer.markers import phase


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--round-trips", type=int, default=20_000)
    args = parser.parse_args()
    left, right = socket.socketpair()

    def pong() -> None:
        for _ in range(args.round_trips):
            right.sendall(right.recv(16))

    def ping() -> None:
        for _ in range(args.round_trips):
            left.sendall(b"x")
            left.recv(16)

    with phase("round-trips"):
        threads = [threading.Thread(target=pong, name="pong"),
                   threading.Thread(target=ping, name="ping")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
