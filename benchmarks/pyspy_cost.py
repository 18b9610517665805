"""What the continuous py-spy recorder costs the program it samples: gil_cpu's work phase (its
phase markers) untraced and traced with only py-spy on, side by side in alternating rounds,
median ratio; beside it, ``py-spy record`` run by hand on the same script (it starts the script
itself) to compare its options: ``--nonblocking`` (what the recorder uses) against blocking
(py-spy pauses the target for each sample) and ``--gil`` (only the GIL holder's stack).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import REPO, phase_seconds, read_markers, run_untraced
from tracer import raw_files
from tracer.recorders.pyspy import DEFAULT_RATE_HZ, find_pyspy

SCENARIO = "gil_cpu"
PYSPY_ONLY = ["--no-perf", "--no-gil-sampler", "--no-sched", "--no-locks", "--no-viztracer"]
_RATE = f"{DEFAULT_RATE_HZ:g}"
# name: py-spy record's options, or None for threadscope's recorder (py-spy only)
MODES: dict[str, list[str] | None] = {
    f"tracer run, py-spy only ({_RATE} Hz)": None,
    f"py-spy record --nonblocking --idle ({_RATE} Hz)": ["--nonblocking", "--idle"],
    f"py-spy record --nonblocking --idle --gil ({_RATE} Hz)": ["--nonblocking", "--idle",
                                                               "--gil"],
    f"py-spy record --idle, blocking ({_RATE} Hz)": ["--idle"],
}
HEADER = ["mode", "untraced s (median)", "ratio (median)", "ratio min-max", "rounds"]


def _traced_by_tracer() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "tracer", "run", "--quiet", "--out", str(out),
                        *PYSPY_ONLY, SCENARIO], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=REPO)
        return phase_seconds(read_markers(out / "raw" / raw_files.MARKERS))


def _traced_by_pyspy(exe: str, options: list[str]) -> float:
    script = REPO / "scenarios" / f"{SCENARIO}.py"
    with tempfile.TemporaryDirectory() as tmp:
        sink = Path(tmp) / raw_files.MARKERS
        env = {**os.environ, "THREADSCOPE_MARKERS": str(sink), "PYTHONPATH": str(REPO)}
        subprocess.run([exe, "record", "--format", "chrometrace", "--threads", "--rate", _RATE,
                        *options, "--output", str(Path(tmp) / "trace.json"), "--",
                        sys.executable, str(script)], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        return phase_seconds(read_markers(sink))


def measure(rounds: int) -> list[list[str]]:
    exe = find_pyspy()
    if exe is None:
        return [["(py-spy is not installed)", "", "", "", ""]]
    untraced: list[float] = []
    ratios: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode, options in MODES.items():  # an untraced run right before each traced one
            base = run_untraced(SCENARIO, [])
            untraced.append(base)
            seconds = _traced_by_tracer() if options is None else _traced_by_pyspy(exe, options)
            ratios[mode].append(seconds / base if base > 0 else float("nan"))
    base_s = statistics.median(untraced)
    return [[mode, f"{base_s:.3f}", f"{statistics.median(values):.3f}x",
             f"{min(values):.3f}-{max(values):.3f}x", str(len(values))]
            for mode, values in ratios.items()]


if __name__ == "__main__":
    for row in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        print(" | ".join(row))
