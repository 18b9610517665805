"""Two threads hashing 4 KiB chunks: hashlib releases the GIL for each chunk (>= 2 KiB), so the
GIL changes hands tens of thousands of times a second and most waits are far shorter than a
sampling period: a sampler can bound their number, not count them. Plain script."""

from __future__ import annotations

import hashlib
import threading

CHUNK = bytes(4096)
CHUNKS = 60_000


def hash_chunks() -> None:
    digest = hashlib.sha256()
    for _ in range(CHUNKS):
        digest.update(CHUNK)


def main() -> None:
    threads = [threading.Thread(target=hash_chunks, name=f"hash-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
