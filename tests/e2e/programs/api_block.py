"""Uses the Python API around a block; the program goes on after it."""

import sys
import threading
import time

import tracer


def burn(n: int) -> None:
    total = 0
    for i in range(n):
        total += i


with tracer.record(sys.argv[1], force=True, quiet=True):
    lock = threading.Lock()  # made inside the block: instrumented

    def hold() -> None:
        with lock:
            time.sleep(0.15)

    threads = [threading.Thread(target=burn, args=(800_000,), name=f"burner-{i}") for i in range(2)]
    threads += [threading.Thread(target=hold, name=f"holder-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
print("after the block")
assert threading.Lock is not type(lock), "the instrumentation must be removed after the block"
