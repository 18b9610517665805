"""Threads that block, by construction, for ~2 s each in one known way: a sleep, a socket
recv, a wait for a child process, a POSIX file lock another process holds, and a pool worker
idle on its task queue. tests/e2e/test_blocked_causes.py checks each one's top cause."""

import concurrent.futures
import fcntl
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

BLOCK_S = 2.0


def sleeper() -> None:
    time.sleep(BLOCK_S)


def socket_reader(sock: socket.socket) -> None:
    sock.recv(1)  # blocking socket, no timeout: recvfrom, not poll


def child_waiter() -> None:
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({BLOCK_S})"])
    child.wait()  # no timeout: waitpid, i.e. wait4


def file_locker(path: str) -> None:
    with open(path, "w") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)  # fcntl(F_SETLKW) until the holder lets go
        fcntl.lockf(handle, fcntl.LOCK_UN)


def main() -> None:
    fd, path = tempfile.mkstemp(prefix="threadscope-lock-")
    os.close(fd)
    # POSIX record locks belong to a process: the holder must be another one.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         f"f = open({path!r}, 'w'); fcntl.lockf(f, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\n"
         f"time.sleep({BLOCK_S + 0.3})\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    ours, theirs = socket.socketpair()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool")
    pool.submit(int).result()  # the worker exists now, idle on its SimpleQueue
    threads = [threading.Thread(target=sleeper, name="sleeper"),
               threading.Thread(target=socket_reader, args=(ours,), name="socket-reader"),
               threading.Thread(target=child_waiter, name="child-waiter"),
               threading.Thread(target=file_locker, args=(path,), name="file-locker")]
    for thread in threads:
        thread.start()
    time.sleep(BLOCK_S)
    theirs.send(b"x")
    for thread in threads:
        thread.join()
    holder.wait()
    pool.shutdown()
    os.unlink(path)
    print("done", flush=True)


if __name__ == "__main__":
    main()
