"""Six tasks of 0.3 s (time.sleep: known by construction, whatever the load) on a pool of two
workers, submitted at once: tasks 1-2 start at once, 3-4 wait ~0.3 s, 5-6 wait ~0.6 s for a
free worker. The fourth task raises, and one more is cancelled before it can start."""

import time
from concurrent.futures import ThreadPoolExecutor, wait

SECONDS = 0.3


def fetch(n: int) -> int:
    time.sleep(SECONDS)
    if n == 3:
        raise LookupError(n)
    return n


def main() -> None:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetcher") as pool:
        futures = [pool.submit(fetch, n) for n in range(6)]
        extra = pool.submit(fetch, 99)
        extra.cancel()
        wait(futures)
    print(sum(1 for f in futures if f.exception() is None), "ok")


if __name__ == "__main__":
    main()
