"""One thread alternating sha256 of a large buffer (native code, GIL released) and a pure-Python
loop (holding the GIL), each some tens of milliseconds: longer than a few of py-spy's 10 ms
sampling periods, which is what a sampled stack can resolve."""

import hashlib
import sys
import threading

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
BUFFER = bytes(192 * 1024 * 1024)


def digest() -> str:
    return hashlib.sha256(BUFFER).hexdigest()


def python_loop() -> int:
    total = 0
    for i in range(1_500_000):
        total += i * i
    return total


def work() -> None:
    for _ in range(ROUNDS):
        digest()
        python_loop()


thread = threading.Thread(target=work, name="hasher")
thread.start()
thread.join()
