"""How right the sampled GIL figures are. Shares: sampled against exact states from the same run
(perf and the GIL sampler record side by side, the model is built once from each; error =
|sampled - exact| of each thread's GIL-held and GIL-wait share of its lifetime, in percentage
points). Wait counts and longest waits: the sampled-only mode against an independent count of
the same run (:func:`measure_waits`), with whether it falls inside the bounds the samples
claim."""

from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, run_traced
from tracer import raw_files
from tracer.model.gil import load_gil
from tracer.model.gil_exact import gil_metrics
from tracer.model.rawfiles import read_jsonl

CASES = {
    "gil_cpu, 1 thread": ("gil_cpu", ["--threads", "1", "--work", "4000000"]),
    "gil_cpu, 2 threads": ("gil_cpu", ["--threads", "2", "--work", "3000000"]),
    "gil_cpu, 4 threads": ("gil_cpu", ["--threads", "4", "--work", "2000000"]),
    "gil_cpu, 8 threads": ("gil_cpu", ["--threads", "8", "--work", "1000000"]),
    "gil_native": ("gil_native", ["--mb", "300"]),
    "gil_convoy": ("gil_convoy", []),
}


def _shares(folder: Path, model: dict[str, Any], exact: bool) -> dict[int, tuple[float, float]]:
    raw = folder / "raw"
    events = list(read_jsonl(raw / raw_files.THREADS))
    pid = model["threads"][0]["pid"]
    end_ns = model["t0_ns"] + int(model["wall_s"] * 1e9)
    gil = load_gil(raw, events, pid, model["t0_ns"], end_ns, prefer_exact=exact)
    if gil is None or (gil.method == "exact") != exact:
        return {}
    shares = {}
    per_thread = gil_metrics(gil.timelines, max(model["wall_s"], 1e-9)).threads
    for thread in model["threads"]:
        figures = per_thread.get(thread["tid"])
        life = (thread["end_s"] or 0) - (thread["start_s"] or 0)
        if figures is None or life < 0.05:
            continue
        shares[thread["tid"]] = (figures.held_s / life, figures.wait_s / life)
    return shares


def measure() -> list[tuple[str, int, float, float, float, float]]:
    """Rows of (case, threads compared, max held error pp, mean held error pp, max wait error
    pp, mean wait error pp)."""
    rows = []
    for label, (scenario, args) in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "run"
            _, model = run_traced(scenario, args, ["--no-viztracer"], keep=folder)
            model = json.loads((folder / "model.json").read_text())
            exact = _shares(folder, model, exact=True)
            sampled = _shares(folder, model, exact=False)
        common = sorted(set(exact) & set(sampled))
        if not common:
            rows.append((label, 0, float("nan"), float("nan"), float("nan"), float("nan")))
            continue
        held = [abs(sampled[t][0] - exact[t][0]) * 100 for t in common]
        wait = [abs(sampled[t][1] - exact[t][1]) * 100 for t in common]
        rows.append((label, len(common), max(held), sum(held) / len(held), max(wait),
                     sum(wait) / len(wait)))
    return rows


# ---------------------------------------------------------------------------------------------
# Wait counts and longest waits of the sampled-only mode, against an independent count
#
# perf's own GIL recorder now reads the GIL's futex calls, and the model fills it from the
# sampler: not independent. So the count here is made the way /work/shared/tools/gil_truth.py
# makes it: uprobes on take_gil (entry and return) and drop_gil, in a probe group of this
# benchmark's own, attached by pid to the target of ``tracer run --no-perf``. The target waits
# for a go file (a wrapper) until perf has started, so both see the whole program. A wait is a
# take_gil that lasted more than 20 us while another thread of the target held the GIL (a slow
# take of a free GIL, e.g. preempted inside take_gil, is not a wait).

WAIT_CASES = {
    "echo client+server next to a CPU thread (in-process)": "benchmarks/programs/"
                                                            "gil_echo_convoy.py",
    "gil_convoy scenario (server in another process)": "scenarios/gil_convoy.py",
    "4 CPU threads": "benchmarks/programs/gil_cpu4.py",
}
PROBE_GROUP = "threadscope_bench"
WAIT_MIN_NS = 20_000
_WRAPPER = """
import os, runpy, sys, time
while not os.path.exists({go!r}):
    time.sleep(0.001)
sys.argv = [{target!r}]
runpy.run_path({target!r}, run_name="__main__")
"""


@dataclass
class WaitRow:
    """One thread in one run: the sampled figures, their bounds, and the independent count."""

    case: str
    thread: str
    waits: int
    waits_low: int
    waits_high: int | None
    truth_waits: int
    longest_s: float
    longest_low_s: float
    longest_high_s: float
    truth_longest_s: float

    @property
    def inside(self) -> bool:
        """The independent figures lie inside the bounds the samples claim."""
        return (self.waits_low <= self.truth_waits
                and (self.waits_high is None or self.truth_waits <= self.waits_high)
                and self.truth_longest_s <= self.longest_high_s + 1e-4)


def measure_waits(rounds: int = 3, min_truth_waits: int = 10) -> list[WaitRow]:
    """Per case, round and waiting thread (at least ``min_truth_waits`` independent waits)."""
    if os.geteuid() != 0 or shutil.which("perf") is None:
        return []
    rows: list[WaitRow] = []
    for case, program in WAIT_CASES.items():
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                rows += _one_wait_run(case, REPO / program, Path(tmp), min_truth_waits)
    return rows


def _one_wait_run(case: str, program: Path, tmp: Path, min_truth_waits: int) -> list[WaitRow]:
    folder, go, wrapper = tmp / "run", tmp / "go", tmp / "wrap.py"
    wrapper.write_text(_WRAPPER.format(go=str(go), target=str(program)))
    lib = subprocess.run([sys.executable, "-c", "import os, sysconfig; print(os.path.join("
                          "sysconfig.get_config_var('LIBDIR'), "
                          "sysconfig.get_config_var('INSTSONAME')))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    events = [f"{PROBE_GROUP}:take=take_gil", f"{PROBE_GROUP}:taken=take_gil%return",
              f"{PROBE_GROUP}:drop=drop_gil"]
    data = tmp / "perf.data"
    try:
        for event in events:
            subprocess.run(["perf", "probe", "-q", "-x", lib, "-a", event], check=True,
                           capture_output=True)
        run = subprocess.Popen([sys.executable, "-m", "tracer", "run", "--quiet", "--force",
                                "--no-perf", "--no-pyspy", "--no-viztracer", "--out",
                                str(folder), str(wrapper)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = _wait_for_target(folder, run)
        perf = subprocess.Popen(["perf", "record", "-q", "-k", "mono", "-o", str(data), "-p",
                                 str(pid), "-e", f"{PROBE_GROUP}:take", "-e",
                                 f"{PROBE_GROUP}:taken__return", "-e", f"{PROBE_GROUP}:drop"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # perf's start-up; it prints nothing when ready
        go.touch()
        run.wait(timeout=300)
        perf.wait(timeout=60)
        script = subprocess.run(["perf", "script", "-i", str(data), "-F", "tid,time,event",
                                 "--ns"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", f"{PROBE_GROUP}:*"], capture_output=True)
    model = json.loads((folder / "model.json").read_text())
    return _wait_rows(case, model, script, min_truth_waits)


def _wait_for_target(folder: Path, run: subprocess.Popen[bytes]) -> int:
    """The pid of the target tracer runs (its bootstrap names the run folder)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and run.poll() is None:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"tracer.bootstrap" in argv and any(str(folder).encode() in a for a in argv):
                return int(proc.name)
        time.sleep(0.002)
    raise RuntimeError("the target of tracer run did not start")


def _wait_rows(case: str, model: dict[str, Any], script: str,
               min_truth_waits: int) -> list[WaitRow]:
    t0 = int(model["t0_ns"])
    pid = next(int(t["pid"]) for t in model["threads"] if t["is_main"])
    tids = {int(t["tid"]) for t in model["threads"] if int(t["pid"]) == pid}  # one GIL
    asked: dict[int, int] = {}
    holding: dict[int, int] = {}
    holds: list[tuple[int, int, int]] = []
    requests: list[tuple[int, int, int]] = []
    for line in script.splitlines():
        found = re.match(r"\s*(\d+)\s+(\d+)\.(\d+):\s+\S+:(\w+?)(?:__return)?:", line)
        if found is None or int(found[1]) not in tids:
            continue
        tid, t = int(found[1]), int(found[2]) * 10**9 + int(found[3].ljust(9, "0")) - t0
        if found[4] == "take":
            asked[tid] = t
        elif found[4] == "taken" and tid in asked:
            requests.append((asked.pop(tid), t, tid))
            holding[tid] = t
        elif found[4] == "drop" and tid in holding:
            holds.append((holding.pop(tid), t, tid))
    holds.sort()
    starts = [h[0] for h in holds]
    waits: dict[int, list[int]] = {}
    for start, end, tid in requests:
        if end - start <= WAIT_MIN_NS:
            continue
        k = bisect.bisect_left(starts, end) - 1
        while k >= 0 and holds[k][2] == tid:
            k -= 1
        if k >= 0 and holds[k][1] > start:  # another thread held the GIL during it
            waits.setdefault(tid, []).append(end - start)
    rows = []
    for thread in model["threads"]:
        sampled, truth = thread.get("gil_sampled"), waits.get(int(thread["tid"]), [])
        if sampled is None or len(truth) < min_truth_waits:
            continue
        rows.append(WaitRow(
            case=case, thread=str(thread["name"]), waits=int(thread["gil_waits"]),
            waits_low=int(sampled["gil_waits_low"]), waits_high=sampled["gil_waits_high"],
            truth_waits=len(truth), longest_s=float(thread["max_gil_wait_s"]),
            longest_low_s=float(sampled["max_gil_wait_low_s"]),
            longest_high_s=float(sampled["max_gil_wait_high_s"]),
            truth_longest_s=max(truth) / 1e9))
    return rows
