"""C code that releases the GIL runs in parallel: threads hashing large buffers with hashlib
(which drops the GIL for inputs over 2 KiB) next to threads of pure-Python work."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario, params_from_argv
from scenarios.workloads import count
from tracer.markers import phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from tracer.model.queries import phase_parallelism, threads_named
    from tracer.model.schema import Claim

    params = params_from_argv(SCENARIO, model.target.argv)
    claims = []
    parallelism = phase_parallelism(model, "mixed")
    if parallelism is not None and model.cores >= 2:
        claims.append(Claim(
            claim="Threads running C code that releases the GIL use more than one core",
            held=parallelism > 1.5,
            detail=f"CPU parallelism {parallelism:.2f} with {params.hash_threads} hashing and "
                   f"{params.py_threads} pure-Python threads on {model.cores} cores",
        ))
    hashers = threads_named(model, "hash-")
    native = sum(t.state_s.get("native", 0.0) for t in hashers)
    busy = sum(t.state_s.get(s, 0.0) for t in hashers for s in ("native", "running", "on_cpu"))
    if busy > 0 and any("native" in t.state_s or "running" in t.state_s for t in hashers):
        claims.append(Claim(
            claim="The hashing threads spend their CPU time without the GIL (native)",
            held=native / busy > 0.7,
            detail=f"{native:.2f} s of {busy:.2f} s on CPU was native ({native / busy:.0%})",
        ))
    return claims


SCENARIO = Scenario(
    name="gil_native",
    concept="The GIL",
    section="GIL: when it does not matter (C code that releases it)",
    summary="hashlib threads (GIL released) next to pure-Python threads: real parallelism",
    claim="C extensions that release the GIL let threads use several cores",
    look_for="Hashing threads in the native state side by side with the Python thread holding "
             "the GIL; CPU parallelism above 1.5 on 2 cores",
    params=(
        Param("hash_threads", 2, "threads hashing large buffers"),
        Param("py_threads", 1, "threads doing pure-Python work"),
        Param("mb", 400, "megabytes each hashing thread digests"),
        Param("work", 6_000_000, "loop iterations per pure-Python thread"),
    ),
    check=check,
)

CHUNK = 16 * 1024 * 1024


def digest(megabytes: int) -> str:
    buffer = b"\x5a" * CHUNK
    hasher = hashlib.sha256()
    for _ in range(max(1, megabytes * 1024 * 1024 // CHUNK)):
        hasher.update(buffer)
    return hasher.hexdigest()


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    workers = [threading.Thread(target=digest, args=(args.mb,), name=f"hash-{i}")
               for i in range(args.hash_threads)]
    workers += [threading.Thread(target=count, args=(args.work,), name=f"python-{i}")
                for i in range(args.py_threads)]
    with phase("mixed"):
        began = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    print(f"{args.hash_threads} hashing + {args.py_threads} Python threads: "
          f"{time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
