"""A large synthetic recording, written as the recorders would write it, for measuring how the
analysis and the report scale: N threads over S seconds, with VizTracer events, OS samples at
200 Hz, GIL samples at 1 kHz and perf GIL events, all on one clock."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson

from tracer import raw_files

T0 = 1_000_000_000_000  # an arbitrary CLOCK_MONOTONIC origin
PID = 4242


def write_recording(root: Path, threads: int = 64, seconds: float = 60.0,
                    viztracer_events: int = 1_000_000, seed: int = 1) -> Path:
    """Write ``root/raw`` and return ``root``."""
    rng = random.Random(seed)
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    end = T0 + int(seconds * 1e9)
    tids = [PID] + [PID + 1 + i for i in range(threads)]
    tstates = {tid: 0x5000_0000 + i * 0x1000 for i, tid in enumerate(tids)}
    _run_json(raw, end, seconds)
    _threads_jsonl(raw, tids, tstates, end)
    _sched(raw, tids, end, rng)
    _gil_samples(raw, tids, tstates, end, rng)
    _perf(raw, tids, end, rng)
    _viztracer(raw, tids, end, viztracer_events, rng)
    return root


def _run_json(raw: Path, end: int, seconds: float) -> None:
    run = {
        "threadscope_version": "synthetic", "mode": "run",
        "target": {"kind": "script", "name": "synthetic.py", "run": "synthetic.py",
                   "argv": ["synthetic.py"]},
        "python": "python3", "options": {"viztracer": True, "locks": False},
        "started_ns": T0 - 10**8, "go_ns": T0, "exit_ns": end, "exit_code": 0,
        "status": "ok", "pid": PID, "cores": 2,
        "sources": {"sched": {"used": True, "method": "sampled", "rate_hz": 200.0},
                    "gil-sampler": {"used": True, "method": "sampled", "rate_hz": 1000.0},
                    "perf": {"used": True, "method": "exact"}},
    }
    (raw / raw_files.RUN).write_text(json.dumps(run))
    (raw / raw_files.TARGET).write_text(json.dumps({
        "t0_ns": T0, "end_ns": end, "exit_code": 0, "status": "ok", "pid": PID,
        "python": "python3", "python_version": "3.11.7", "viztracer_clock": [[T0 / 1000, T0],
                                                                            [end / 1000, end]],
        "viztracer_entries": 1_000_000, "daemon_alive": []}))


def _threads_jsonl(raw: Path, tids: list[int], tstates: dict[int, int], end: int) -> None:
    lines = [{"ev": "main", "t_ns": T0, "tid": PID, "name": "MainThread", "tstate": tstates[PID]},
             {"ev": "run_start", "t_ns": T0}]
    for i, tid in enumerate(tids[1:]):
        lines.append({"ev": "start", "t_ns": T0 + 1_000_000 * i, "tid": tid, "name": f"worker-{i}",
                      "daemon": False, "tstate": tstates[tid]})
        lines.append({"ev": "end", "t_ns": end - 1_000_000 * i, "tid": tid, "name": f"worker-{i}"})
    (raw / raw_files.THREADS).write_text("".join(json.dumps(x) + "\n" for x in lines))


def _holder_at(t: int, workers: list[int]) -> int:
    """Workers take turns every 5 ms, like GIL-bound threads."""
    return workers[((t - T0) // 5_000_000) % len(workers)]


def _sched(raw: Path, tids: list[int], end: int, rng: random.Random) -> None:
    cpu = dict.fromkeys(tids, 0)
    with (raw / raw_files.SCHED).open("wb") as out:
        meta = {"kind": "meta", "rate_hz": 200, "root_pid": PID, "cores": 2}
        out.write(orjson.dumps(meta) + b"\n")
        for tid in tids:
            out.write(orjson.dumps({"kind": "thread", "t": T0, "pid": PID, "tid": tid,
                                    "comm": "python"}) + b"\n")
        t = T0
        while t <= end:
            holder = _holder_at(t, tids[1:])
            cpu[holder] += 5_000_000
            rows = [[PID, tid, cpu[tid], 0, "R" if tid == holder else "S"] for tid in tids]
            out.write(orjson.dumps({"kind": "s", "t": t, "r": rows}) + b"\n")
            t += 5_000_000


def _gil_samples(raw: Path, tids: list[int], tstates: dict[int, int], end: int,
                 rng: random.Random) -> None:
    with (raw / raw_files.GIL_SAMPLES).open("wb") as out:
        out.write(orjson.dumps({"kind": "meta", "rate_hz": 1000}) + b"\n")
        t, n = T0, 0
        while t <= end:
            holder = _holder_at(t, tids[1:])
            n += 1
            rows = [[tid, "R" if tid == holder else "G", 0] for tid in tids[1:]]
            rows.append([PID, "B", 0])
            out.write(orjson.dumps({"t": t, "h": tstates[holder], "l": 1, "n": n, "th": rows})
                      + b"\n")
            t += 1_000_000


def _perf(raw: Path, tids: list[int], end: int, rng: random.Random) -> None:
    lines = []
    t = T0
    previous = None
    while t < end:
        holder = _holder_at(t, tids[1:])
        if holder != previous:
            if previous is not None:
                lines.append(f"{PID}/{previous} {t // 10**9}.{t % 10**9:09d}: g:drop_gil: (0)")
                lines.append(f"{PID}/{previous} {t // 10**9}.{t % 10**9:09d}: g:take_gil: (0)")
            lines.append(f"{PID}/{holder} {(t + 20_000) // 10**9}.{(t + 20_000) % 10**9:09d}: "
                         "g:take_gil__return: (0 <- 0)")
            previous = holder
        t += 5_000_000
    (raw / raw_files.PERF_TEXT).write_text("\n".join(lines) + "\n")


def _viztracer(raw: Path, tids: list[int], end: int, count: int, rng: random.Random) -> None:
    span_us = (end - T0) / 1000
    per_thread = max(1, count // len(tids))
    events: list[dict[str, object]] = []
    for tid in tids:
        step = span_us / per_thread
        for k in range(per_thread):
            events.append({"pid": PID, "tid": tid, "ts": T0 / 1000 + k * step, "ph": "X",
                           "dur": step * 0.8, "name": f"work_{k % 50} (app.py:{k % 300})",
                           "cat": "FEE"})
    doc = {"traceEvents": events, "viztracer_metadata": {"version": "synthetic",
                                                         "overflow": False}}
    (raw / raw_files.VIZTRACER).write_bytes(orjson.dumps(doc))
