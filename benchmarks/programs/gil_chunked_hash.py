"""Threads hashing a buffer in 4 KiB chunks: hashlib releases the GIL for each chunk (>= 2 KiB),
so each thread releases and takes it back ~100,000 times a second; with two threads the hand-offs
are microseconds apart. Plain script; ``--threads N --chunks N``."""

from __future__ import annotations

import argparse
import hashlib
import threading

from tracer.markers import phase

CHUNK = bytes(range(256)) * 16  # 4 KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=200_000)
    args = parser.parse_args()

    def work() -> None:
        digest = hashlib.sha256()
        for _ in range(args.chunks):
            digest.update(CHUNK)

    with phase("hash"):
        threads = [threading.Thread(target=work, name=f"hasher-{i}") for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
