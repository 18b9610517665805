"""pool_six_on_two.py's six tasks of 0.3 s on a process pool of two workers, submitted at
once: tasks 1-2 start at once, 3-4 wait ~0.3 s, 5-6 ~0.6 s for a free worker. The fourth raises.
Usage: process_pool_six_on_two.py [START_METHOD]."""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, wait

from pool_six_on_two import fetch


def main() -> None:
    context = multiprocessing.get_context(sys.argv[1] if len(sys.argv) > 1 else "fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [pool.submit(fetch, n) for n in range(6)]
        wait(futures)
    print(sum(1 for f in futures if f.exception() is None), "ok")


if __name__ == "__main__":
    main()
