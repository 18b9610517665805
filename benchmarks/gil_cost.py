"""The exact GIL path on programs that release the GIL very often (sqlite writers, hashing in
4 KiB chunks, a socket ping-pong) next to a CPU convoy and a lock convoy (an LRU cache behind one
lock: the default mode's lock recorder is the cost there): what recording costs, whether the
cost guard kept exact recording, and how the wait counts compare with an independent count.

- Cost: each program's own work phase (its phase markers), traced / untraced, rounds alternating
  modes, median; modes are the launcher with every recorder off (what starting the target through
  the bootstrap costs by itself), perf alone, the default for a user's script (everything but
  VizTracer) and sampled-only (``--no-perf``). The programs run about a second each: shorter
  runs measured their first moments' noise more than the recording.
- Waits: the worker threads' GIL waits (count, longest) from the default run (exact unless the
  guard fell back to the sampler), from the sampled-only run, and from an independent count:
  ``../shared/tools/gil_truth.py`` (perf uprobes on take_gil/drop_gil, its own tool; waits are
  requests that blocked > 20 us). That count is made in a separate run that its uprobes slow down
  (3-14x on the GIL-release-heavy programs), so it counts the waits of a slower program; for the
  convoy it is close to an untraced one.
- Same-run check (``same_run``): the futex events of this recorder and the uprobes recorded in
  one perf session, so both count the waits of the same execution.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, phase_seconds, read_markers, script_phase_seconds
from tracer import raw_files

PROGRAMS = REPO / "benchmarks" / "programs"
TRUTH_TOOL = REPO.parent / "shared" / "tools" / "gil_truth.py"
CASES: dict[str, tuple[str, list[str], str]] = {
    # name: (script, arguments, prefix of the worker threads)
    "sqlite writers (3 threads)": ("gil_sqlite_writers.py", [], "writer-"),
    "hashing 4 KiB chunks (2 threads)": ("gil_chunked_hash.py", [], "hasher-"),
    "socket ping-pong (2 threads)": ("gil_socket_pingpong.py", [], "p"),
    "echo client next to a CPU spinner": ("gil_echo_convoy.py", [], ""),
    "4 CPU-bound threads": ("gil_cpu4.py", [], "cpu-"),
    "lock-contended LRU cache (4 threads)": ("lock_lru_cache.py", [], "cache-"),
}
_ALL_OFF = ["--no-viztracer", "--no-pyspy", "--no-perf", "--no-sched", "--no-gil-sampler",
            "--no-locks"]
MODES = {
    "launcher only": _ALL_OFF,
    "perf alone": [f for f in _ALL_OFF if f != "--no-perf"],
    "default (script)": ["--no-viztracer"],
    "sampled only": ["--no-viztracer", "--no-perf"],
}


@dataclass
class Waits:
    count: int
    longest_ms: float
    note: str = ""


@dataclass
class CostRow:
    case: str
    untraced_s: float
    ratios: dict[str, float] = field(default_factory=dict)
    exact_kept: bool | None = None  # did the guard let perf record the whole run
    waits: dict[str, Waits] = field(default_factory=dict)  # exact/default, sampled, independent


def _traced(script: Path, args: list[str], flags: list[str]) -> tuple[float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "tracer", "run", "--quiet", "--out", str(out),
                        *flags, str(script), "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        seconds = phase_seconds(read_markers(out / "raw" / raw_files.MARKERS))
        return seconds, json.loads((out / "model.json").read_text())


def _worker_waits(model: dict[str, Any], prefix: str) -> Waits:
    workers = [t for t in model["threads"] if t["name"].startswith(prefix) and not t["is_main"]]
    count = sum(int(t.get("gil_waits") or 0) for t in workers)
    longest = max((float(t.get("max_gil_wait_s") or 0) for t in workers), default=0.0)
    return Waits(count, longest * 1e3, model["figure_sources"].get("gil", "missing"))


def independent_waits(script: Path, prefix: str) -> Waits | None:
    """The worker threads' waits as ``gil_truth.py`` counts them (None without the tool)."""
    if not TRUTH_TOOL.exists():
        return None
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(TRUTH_TOOL), str(script)], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    start = done.stdout.find("{\n")
    if start < 0:
        return None
    rows = json.loads(done.stdout[start:])["threads"]
    workers = [r for r in rows if str(r["name"]).startswith(prefix) and r["name"] != "MainThread"]
    return Waits(sum(int(r["waits"]) for r in workers),
                 max((float(r["max_wait_ms"]) for r in workers), default=0.0),
                 f"wall {json.loads(done.stdout[start:])['wall_s']:.2f} s under uprobes")


def measure(rounds: int) -> list[CostRow]:
    rows = []
    for case, (name, args, prefix) in CASES.items():
        script = PROGRAMS / name
        row = CostRow(case, 0.0)
        untraced: list[float] = []
        ratios: dict[str, list[float]] = {mode: [] for mode in MODES}
        models: dict[str, dict[str, Any]] = {}
        for _ in range(rounds):
            base = script_phase_seconds(script, args)
            untraced.append(base)
            for mode, flags in MODES.items():
                seconds, models[mode] = _traced(script, args, flags)
                ratios[mode].append(seconds / base if base > 0 else float("nan"))
        row.untraced_s = statistics.median(untraced)
        row.ratios = {mode: statistics.median(values) for mode, values in ratios.items()}
        default = models["default (script)"]
        row.exact_kept = default["figure_sources"].get("gil") == "exact"
        row.waits["default"] = _worker_waits(default, prefix)
        row.waits["sampled"] = _worker_waits(models["sampled only"], prefix)
        truth = independent_waits(script, prefix)
        if truth is not None:
            row.waits["independent"] = truth
        rows.append(row)
    return rows


HEADER = ["program", "untraced s", *MODES, "exact kept", "waits: default", "sampled",
          "independent", "longest ms: default", "sampled", "independent"]


def table(rows: list[CostRow]) -> list[list[str]]:
    out = []
    for row in rows:
        waits = [row.waits.get(k) for k in ("default", "sampled", "independent")]
        out.append([
            row.case, f"{row.untraced_s:.2f}", *(f"{row.ratios[m]:.2f}x" for m in MODES),
            "yes" if row.exact_kept else "no (sampled)",
            *(f"{w.count:,}" if w else "-" for w in waits),
            *(f"{w.longest_ms:.1f}" if w else "-" for w in waits),
        ])
    return out


# -- the same execution counted twice -------------------------------------------------------------

# The target: find its own GIL (as the bootstrap does), wait for "go", run the script, and print
# the names of its threads at exit.
_WRAPPER = r"""
import atexit, json, runpy, sys, threading
sys.path.insert(0, sys.argv[1])
from tracer.instrument import gil_probe
print(json.dumps(gil_probe.calibrate()), flush=True)
names = {threading.get_native_id(): "MainThread"}
_run = threading.Thread.run
def run(self):
    names[threading.get_native_id()] = self.name
    _run(self)
threading.Thread.run = run
atexit.register(lambda: print(json.dumps(names), flush=True))
sys.stdin.read(1)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
_GROUP = "tsbench"
_UPROBE = re.compile(r"^\s*\d+/(\d+)\s+(\d+)\.(\d{9}):\s*" + _GROUP + r":(\w+?)(?:__return)?:")


def _libpython(python: str) -> str:
    query = ("import os, sysconfig as s; "
             "print(os.path.join(s.get_config_var('LIBDIR'), s.get_config_var('INSTSONAME')))")
    return subprocess.run([python, "-c", query], capture_output=True, text=True,
                          check=True).stdout.strip()


def _uprobe_waits(lines: list[str]) -> dict[int, int]:
    """Per tid: take_gil calls that took > 20 us to return (gil_truth.py's definition: it also
    counts a request slowed by a preemption or a page fault, not only one that found the GIL
    held)."""
    asked: dict[int, int] = {}
    waits: dict[int, int] = {}
    for line in lines:
        match = _UPROBE.match(line)
        if match is None:
            continue
        tid, t_ns, probe = int(match[1]), int(match[2]) * 10**9 + int(match[3]), match[4]
        if probe == "take":
            asked[tid] = t_ns
        elif probe == "taken" and tid in asked and t_ns - asked.pop(tid) > 20_000:
            waits[tid] = waits.get(tid, 0) + 1
    return waits


def same_run(script: Path, prefix: str, args: list[str] | None = None,
             python: str = sys.executable) -> dict[str, tuple[int, int]]:
    """Per worker thread: (GIL waits this recorder's events count, take_gil calls that took
    > 20 us by uprobes), from one perf session that recorded both on one execution. Needs root,
    perf and a libpython with symbols."""
    from tracer.instrument.gil_probe import FutexWords
    from tracer.model.gil_exact import parse_perf_script, reconstruct
    from tracer.recorders.perf_gil import futex_filter

    library = _libpython(python)
    subprocess.run(["perf", "probe", "-q", "-d", f"{_GROUP}:*"], capture_output=True, check=False)
    subprocess.run(["perf", "probe", "-q", "-x", library, "-a", f"{_GROUP}:take=take_gil",
                    "-a", f"{_GROUP}:taken=take_gil%return", "-a", f"{_GROUP}:drop=drop_gil"],
                   check=True, capture_output=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            target = subprocess.Popen([python, "-c", _WRAPPER, str(REPO), str(script),
                                       *(args or [])],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert target.stdin is not None and target.stdout is not None
            layout = json.loads(target.stdout.readline())
            words = FutexWords(int(layout["gil_addr"]))
            data = Path(tmp) / "perf.data"
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-k", "mono", "-m", "4096", "--switch-events",
                 "-e", f"{_GROUP}:take", "-e", f"{_GROUP}:taken__return", "-e", f"{_GROUP}:drop",
                 "-e", "syscalls:sys_enter_futex", "--filter", futex_filter(words),
                 "-e", "syscalls:sys_exit_futex", "--filter", "ret == -11",
                 "-p", str(target.pid), "-o", str(data)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_until_recording(data)
            target.stdin.write("g")
            target.stdin.close()
            printed = target.stdout.read().splitlines()[-1]
            names = {int(k): v for k, v in json.loads(printed).items()}
            target.wait(timeout=600)
            perf.wait(timeout=60)  # -p: perf ends with its target
            text = subprocess.run(
                ["perf", "script", "-i", str(data), "-F", "tid,pid,time,event,trace", "--ns",
                 "--show-switch-events", "--show-task-events"],
                capture_output=True, text=True, check=True).stdout.splitlines()
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", f"{_GROUP}:*"], capture_output=True,
                       check=False)
    events = parse_perf_script([line for line in text if f"{_GROUP}:" not in line], words)
    first, last = min(e.t_ns for e in events), max(e.t_ns for e in events)
    ours = {tid: sum(w.slept for w in thread.waits)
            for tid, thread in reconstruct(events, first, last).items()}
    theirs = _uprobe_waits(text)
    return {name: (ours.get(tid, 0), theirs.get(tid, 0)) for tid, name in names.items()
            if name.startswith(prefix) and name != "MainThread"}


def _wait_until_recording(data: Path, timeout_s: float = 20.0) -> None:
    """perf record writes its header once its events are set up."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if data.exists() and data.stat().st_size > 0:
            time.sleep(0.3)
            return
        time.sleep(0.02)
    raise RuntimeError("perf record did not start")
