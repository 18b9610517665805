"""Who held the GIL and who waited for it: from the best source a run has.

Exact (perf uprobes on take_gil/drop_gil) wins over sampled (the out-of-process GIL sampler);
with neither, the model keeps the OS view (on/off CPU) and says GIL ownership was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer.model.schema import Interval

PERF_RAW = "perf_gil.txt"
SAMPLED_RAW = "gil_samples.jsonl"


@dataclass
class GilResult:
    method: str  # exact | sampled
    source: str  # the recorder it came from, as named in model.sources
    timelines: dict[int, list[Interval]]  # tid -> states, seconds from t0
    metrics: dict[str, Any] = field(default_factory=dict)  # run-wide figures
    threads: dict[int, dict[str, Any]] = field(default_factory=dict)  # tid -> per-thread figures


def load_gil(raw_dir: Path, thread_events: list[dict[str, Any]], pid: int, t0_ns: int,
             end_ns: int, prefer_exact: bool = True) -> GilResult | None:
    wall_s = (end_ns - t0_ns) / 1e9
    if wall_s <= 0:
        return None
    result = _exact(raw_dir, pid, t0_ns, end_ns) if prefer_exact else None
    if result is None:
        result = _sampled(raw_dir, thread_events, t0_ns, end_ns)
    if result is None:
        return None
    from tracer.model.gil_exact import gil_metrics

    figures = gil_metrics(result.timelines, wall_s)
    per_thread = figures.pop("threads")
    assert isinstance(per_thread, dict)
    result.threads = per_thread
    result.metrics.update({k: round(float(v), 4) for k, v in figures.items()
                           if isinstance(v, (int, float))})
    return result


def _exact(raw_dir: Path, pid: int, t0_ns: int, end_ns: int) -> GilResult | None:
    path = raw_dir / PERF_RAW
    if not path.is_file():
        return None
    from tracer.errors import CorruptRecording
    from tracer.model.gil_exact import gil_timelines, parse_perf_script

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CorruptRecording(f"cannot read {path}: {exc}") from exc
    events = parse_perf_script(text)
    if not events:
        return None
    return GilResult("exact", "perf", gil_timelines(events, t0_ns, end_ns, pid=pid))


def _sampled(raw_dir: Path, thread_events: list[dict[str, Any]], t0_ns: int,
             end_ns: int) -> GilResult | None:
    path = raw_dir / SAMPLED_RAW
    if not path.is_file():
        return None
    try:
        from tracer.model import gil_sampled
    except ImportError:
        return None
    samples = gil_sampled.load_gil_samples(path)
    if not samples:
        return None
    tstates = gil_sampled.tstate_map(thread_events)
    timelines = gil_sampled.sampled_gil_timelines(samples, tstates, t0_ns, end_ns)
    result = GilResult("sampled", "gil-sampler", timelines)
    switches = gil_sampled.sampled_switches(samples, t0_ns, end_ns)
    result.metrics["gil_acquisitions_per_s"] = round(switches / ((end_ns - t0_ns) / 1e9), 1)
    return result
