"""py-spy as one continuous ``py-spy record``: many stacks a second of a busy thread, on the
monotonic clock of the other sources (checked against markers the program leaves around every
call)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import PROGRAMS, require_recorder, tracer
from tracer.recorders.base import RecordContext
from tracer.recorders.pyspy import PySpyRecorder

# Where the thread was, by the markers: the ground truth of the clock check.
Spans = dict[str, list[tuple[int, int]]]


def _spans(raw: Path, tid: int) -> Spans:
    spans: Spans = {"left": [], "right": []}
    entered: dict[str, int] = {}
    for line in (raw / "markers.jsonl").read_text().splitlines():
        mark = json.loads(line)
        if mark.get("tid") != tid:
            continue
        function = mark["fields"]["function"]
        if mark["name"] == "enter":
            entered[function] = mark["t_ns"]
        elif function in entered:
            spans[function].append((entered.pop(function), mark["t_ns"]))
    return spans


def _seen(records: list[dict[str, Any]], tid: int) -> list[tuple[int, str]]:
    """(t_ns, function) of each sample of ``tid`` inside left() or right()."""
    out = []
    for record in records:
        for thread in record["threads"]:
            if thread["tid"] != tid:
                continue
            where = [f.split(" ")[0] for f in thread["frames"]]
            for function in ("left", "right"):
                if function in where:
                    out.append((record["t0"], function))
    return out


# py-spy stamps a sample when it handles it, after reading it: up to ~2 ms later on a busy
# 2-core machine (measured), so a sample may land that much after the span it saw.
SLACK_NS = 2_000_000


def _misplaced(seen: list[tuple[int, str]], spans: Spans, shift_ns: int) -> int:
    return sum(not any(a <= t + shift_ns <= b + SLACK_NS for a, b in spans[function])
               for t, function in seen)


@pytest.fixture(scope="module")
def alternating_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_recorder(lambda: PySpyRecorder().check(RecordContext(Path("."), "python")))
    out = tmp_path_factory.mktemp("pyspy") / "run"
    result = tracer("run", "--out", str(out), "--quiet",
                    str(PROGRAMS / "pyspy_alternating.py"))
    # What is checked here is the recording (raw/): the report after it is other tests' concern.
    run = out / "raw" / "run.json"
    assert run.exists() and json.loads(run.read_text())["status"] == "ok", result.stderr
    return out


def _load(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    lines = [json.loads(line) for line in (run / "raw" / "pyspy.jsonl").read_text().splitlines()]
    header, records = lines[0]["header"], lines[1:]
    threads = [json.loads(line) for line in (run / "raw" / "threads.jsonl").read_text()
               .splitlines()]
    (busy,) = [t["tid"] for t in threads if t.get("ev") == "start" and t["name"] == "busy"]
    return header, records, busy


def test_a_busy_thread_gets_many_stacks_a_second(alternating_run: Path) -> None:
    header, records, busy = _load(alternating_run)
    assert header["rate_hz"] >= 100
    spans = _spans(alternating_run / "raw", busy)
    seconds = (spans["right"][-1][1] - spans["left"][0][0]) / 1e9
    seen = _seen(records, busy)
    # 100 Hz, and the stack changes at most samples: ~60-100 a second; 20 leaves room for a
    # noisy 2-core machine.
    assert len(seen) / seconds > 20, (len(seen), seconds)
    run = json.loads((alternating_run / "raw" / "run.json").read_text())
    source = run["sources"]["py-spy"]
    assert source["used"] and source["method"] == "sampled", source
    assert source["samples"] > 100 * seconds * 0.5  # py-spy's own count: a stack per thread
    assert any("own CPU time" in note for note in source["notes"])


def test_the_stacks_land_where_the_markers_say_the_thread_was(alternating_run: Path) -> None:
    header, records, busy = _load(alternating_run)
    spans = _spans(alternating_run / "raw", busy)
    seen = _seen(records, busy)
    clock = header["clock"]
    # A torn (nonblocking) read or a sample taken inside the marker call may misplace a few.
    allowed = max(2, len(seen) // 20)
    assert _misplaced(seen, spans, 0) <= allowed, (_misplaced(seen, spans, 0), len(seen))
    # The shifts the markers allow (0.1 ms steps): the true offset is among them, and must be
    # inside the interval the recorder stated.
    shifts = [s * 100_000 for s in range(-300, 301)]
    counts = {s: _misplaced(seen, spans, s) for s in shifts}
    best = min(counts.values())
    good = [s for s in shifts if counts[s] == best]
    low, high = clock["low_ns"] - clock["offset_ns"], clock["high_ns"] - clock["offset_ns"]
    assert low - SLACK_NS <= max(good) and min(good) <= high + SLACK_NS, (good, clock)
    print(f"best shift by the markers: {min(good) / 1e6:+.1f} to {max(good) / 1e6:+.1f} ms; "
          f"stated uncertainty {clock['uncertainty_ns'] / 1e6:.1f} ms")
