"""Three threads writing rows to their own SQLite databases: the sqlite3 module releases the GIL
around every call into SQLite, so the GIL is released and taken again hundreds of thousands of
times a second, mostly uncontended and in microseconds. The case that made take_gil/drop_gil
uprobes 14x slower. Plain script; ``--rows N`` per commit, ``--commits N`` per thread."""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading

from tracer.markers import phase


def write(path: str, rows: int, commits: int) -> None:
    connection = sqlite3.connect(path)
    connection.execute("create table t (a integer, b text)")
    for _ in range(commits):
        connection.executemany("insert into t values (?, ?)", ((k, "x" * 20) for k in range(rows)))
        connection.commit()
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--commits", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, phase("write"):
        threads = [threading.Thread(target=write, name=f"writer-{i}",
                                    args=(os.path.join(folder, f"w{i}.db"), args.rows,
                                          args.commits))
                   for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
