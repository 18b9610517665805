"""An asyncio server-like program whose handler blocks the event loop three times in parse(),
a CPU-bound function that spins until 0.3 s of wall time have passed (known by construction,
however loaded the machine), while a ticker task would like to run every 10 ms.
Usage: loop_blocked_three.py [uvloop] (uvloop's event loop instead of asyncio's)."""

import asyncio
import sys
import time

SECONDS = 0.3


def parse(payload: bytes) -> int:
    began = time.monotonic()
    total = 0
    while time.monotonic() - began < SECONDS:
        for byte in payload:
            total += byte
    return total


async def handler(request: int) -> int:
    await asyncio.sleep(0.05)
    return parse(b"x" * 64)


async def ticker(stop: asyncio.Event) -> int:
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


async def main() -> None:
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stop), name="ticker")
    for request in range(3):
        await asyncio.create_task(handler(request), name=f"handler-{request}")
    stop.set()
    print(await tick, "ticks")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
