"""Threaded programs for checking threadscope's estimate of VizTracer's slowdown against a real
untraced run (benchmarks/viztracer_cost.py). Each is the kind of program that made VizTracer's
cost visible on real code: a call-heavy pure-Python worker pool, a lock-contended LRU cache, and
threads that hash and multiply matrices in native code (numpy when installed) with Python glue
between the calls, so some of the run is parallel and some serialised by the GIL.

The work is fixed by the arguments, not by a clock, so traced and untraced runs do the same work;
the ``work`` phase marker times it. A plain script: it runs without the tracer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tracer.markers import phase

# numpy's BLAS would start a thread per core for each product: four Python threads would then
# oversubscribe two cores, and the run time would measure the scheduler, not the program.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# -- a call-heavy worker pool: small helpers called per token, as parsers and validators do --

def _is_word(token: str) -> bool:
    return token.isalpha()


def _normalise(token: str) -> str:
    return token.lower().strip(".,")


def _score(token: str) -> int:
    return sum(ord(c) for c in token) % 97


def parse_document(text: str) -> int:
    total = 0
    for token in text.split():
        word = _normalise(token)
        if _is_word(word):
            total += _score(word)
    return total


def pool(tasks: int, workers: int) -> int:
    rng = random.Random(1)
    words = ["alpha", "Beta,", "gamma.", "42", "delta", "x1", "Epsilon", "zeta"]
    docs = [" ".join(rng.choice(words) for _ in range(2000)) for _ in range(tasks)]
    with ThreadPoolExecutor(max_workers=workers) as executor:
        return sum(executor.map(parse_document, docs))


# -- a lock-contended LRU cache: every get and put under one lock ----------------------------

class LruCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[int, int] = OrderedDict()

    def get(self, key: int) -> int | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: int, value: int) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._size:
                self._items.popitem(last=False)


def _expensive(key: int) -> int:
    value = key
    for _ in range(20):
        value = (value * 1103515245 + 12345) & 0x7FFFFFFF
    return value


def _cache_worker(cache: LruCache, seed: int, lookups: int) -> None:
    rng = random.Random(seed)
    for _ in range(lookups):
        key = int(rng.paretovariate(1.2)) % 5000
        if cache.get(key) is None:
            cache.put(key, _expensive(key))


def cache(threads: int, lookups: int) -> None:
    shared = LruCache(1000)
    workers = [threading.Thread(target=_cache_worker, args=(shared, seed, lookups),
                                name=f"cache-{seed}") for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


# -- native work in parallel: hashing (releases the GIL) and numpy, with Python glue ------------

def _hash_blocks(blob: bytes, rounds: int) -> str:
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(blob + digest).digest()
    return digest.hex()


def _glue(values: list[int]) -> int:
    return sum(v & 0xFF for v in values)


def _native_worker(seed: int, items: int) -> None:
    blob = random.Random(seed).randbytes(1 << 20)
    multiply = _matrix_work(seed)
    for item in range(items):
        _hash_blocks(blob, 2)
        multiply()
        _glue(list(range(item % 500)))


def _matrix_work(seed: int) -> Callable[[], None]:
    """numpy's matrix product releases the GIL; without numpy, hashing alone does."""
    try:
        import numpy as np
    except ImportError:
        return lambda: None
    state = [np.random.default_rng(seed).random((200, 200))]

    def multiply() -> None:
        state[0] = (state[0] @ state[0]) / 200.0

    return multiply


def native(threads: int, items: int) -> None:
    workers = [threading.Thread(target=_native_worker, args=(seed, items), name=f"native-{seed}")
               for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("program", choices=["pool", "cache", "native"])
    parser.add_argument("--size", type=float, default=1.0, help="work multiplier")
    args = parser.parse_args()
    with phase("work"):
        if args.program == "pool":
            pool(tasks=round(60 * args.size), workers=4)
        elif args.program == "cache":
            cache(threads=4, lookups=round(60_000 * args.size))
        else:
            native(threads=4, items=round(40 * args.size))


if __name__ == "__main__":
    main()
