"""Sampled GIL states against exact ones, from the same run: perf's uprobes and the GIL sampler
record side by side, and the model is built once from each. Error = |sampled - exact| of each
thread's GIL-held and GIL-wait share of its lifetime, in percentage points."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import run_traced
from tracer.model.gil import load_gil
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
    events = list(read_jsonl(raw / "threads.jsonl"))
    pid = model["threads"][0]["pid"]
    end_ns = model["t0_ns"] + int(model["wall_s"] * 1e9)
    gil = load_gil(raw, events, pid, model["t0_ns"], end_ns, prefer_exact=exact)
    if gil is None or (gil.method == "exact") != exact:
        return {}
    shares = {}
    for thread in model["threads"]:
        figures = gil.threads.get(thread["tid"])
        life = (thread["end_s"] or 0) - (thread["start_s"] or 0)
        if figures is None or life < 0.05:
            continue
        shares[thread["tid"]] = (float(figures["gil_held_s"]) / life,
                                 float(figures["gil_wait_s"]) / life)
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
