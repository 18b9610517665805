"""Small questions answered from ``/proc`` (Linux) or signals (elsewhere), shared by the
out-of-process recorders and attach mode."""

from __future__ import annotations

import os


def read_text(path: str) -> str:
    """A /proc file's text, or "" once the process or thread is gone."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def process_state(pid: int) -> str:
    """The state letter of ``/proc/PID/stat`` (R, S, D, Z, ...), or "" if unknown. The command
    name before it may hold spaces and parentheses, so it is found from the last ``)``."""
    stat = read_text(f"/proc/{pid}/stat")
    end = stat.rfind(")")
    return stat[end + 2 : end + 3] if end >= 0 else ""


def parent_pid(pid: int) -> int | None:
    stat = read_text(f"/proc/{pid}/stat")
    try:
        return int(stat[stat.rfind(")") + 2 :].split()[1])
    except (ValueError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """Running, not merely a zombie waiting to be reaped (a zombie still answers kill(0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return process_state(pid) != "Z"


def descendants(root_pid: int, exclude: int | None = None) -> list[int]:
    """``root_pid`` and every process below it, via ``/proc/PID/task/TID/children`` (each thread
    lists the children it forked); ``exclude`` (and what is below it) is left out."""
    seen: list[int] = []
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        if pid in seen or pid == exclude:
            continue
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            todo.extend(int(c) for c in read_text(f"/proc/{pid}/task/{tid}/children").split())
    return seen
