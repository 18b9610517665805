"""The perf GIL recorder on real targets, for every pyenv CPython here (3.11, 3.12, 3.13), and on
Debian's stripped /usr/bin/python3.11.

Facts asserted are robust on a noisy 2-core box: three CPU-bound threads each hold the GIL between
15% and 55% of the time they all run (a fair GIL gives ~33%) and wait for it many times; the threads
together never hold it longer than the wall time; a thread that releases the GIL 100,000 times
while nobody waits for it leaves (almost) no GIL event, which is why the recorder costs nothing
there; perf's clock is the target's CLOCK_MONOTONIC (causal order of a marker, below); perf stops
when the session is interrupted, and stops itself when the session is killed outright.

Clock alignment: the target reads ``time.monotonic_ns()`` (t1), sleeps 1 ms (the thread goes off the
CPU, then on again) and reads it again (t2). On one clock, t1 <= switch-out <= switch-in <= t2 must
hold; the slack is the interpreter's path between the clock read and the syscall (measured here:
3-200 us, and up to 5 ms when the thread waited for a CPU or a GIL hand-off in between). The test
allows 20 ms: a clock that is not the target's would be off by far more.

On a CI machine (CI=true) that is root and has perf, an unavailable recorder fails these tests
instead of skipping them: the exact path must run there for real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, pyenv_interpreters, require_recorder
from tracer.errors import RecorderUnavailable
from tracer.instrument.gil_probe import FutexWords
from tracer.model.gil_exact import Ev, GilEvent, gil_metrics, parse_perf_script, reconstruct
from tracer.model.schema import RUNNING
from tracer.recorders.base import RecordContext
from tracer.recorders.perf_gil import PerfGilRecorder

pytestmark = pytest.mark.perf

# The target finds its own GIL (as the bootstrap does) and prints the layout, then waits for "go".
PRELUDE = textwrap.dedent(
    r"""
    import json, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    from tracer.instrument import gil_probe
    print(json.dumps(gil_probe.calibrate()), flush=True)
    marks, spans = [], {}
    def marker():
        t1 = time.monotonic_ns()
        time.sleep(0.001)
        t2 = time.monotonic_ns()
        marks.append((threading.get_native_id(), t1, t2))
        return t2
    sys.stdin.buffer.read(1)
    go = time.monotonic_ns()
    marker()
    """
)
# Three threads, each a fixed amount of pure-Python work (~0.15 s alone on this machine, ~0.5 s
# for all three under the GIL), each starting with the clock marker.
SPINNERS = PRELUDE + textwrap.dedent(
    r"""
    def spin(n):
        start = marker()
        x = 0
        for i in range(n):
            x += i
        spans[threading.get_native_id()] = (start, time.monotonic_ns())
    threads = [threading.Thread(target=spin, args=(int(sys.argv[2]),)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"go": go, "end": time.monotonic_ns(), "marks": marks, "spans": spans}),
          flush=True)
    """
)
WORK = "6000000"  # loop iterations per thread: long enough that all three overlap for ~0.3 s
# One thread hashing 4 KiB chunks: hashlib releases and retakes the GIL around each update, with
# nobody else wanting it. Uprobes on take_gil/drop_gil fired 200,000 times here.
HASHER = PRELUDE + textwrap.dedent(
    r"""
    import hashlib
    chunk, h = bytes(4096), hashlib.sha256()
    for _ in range(int(sys.argv[2])):
        h.update(chunk)
    print(json.dumps({"go": go, "end": time.monotonic_ns(), "marks": marks, "spans": {}}),
          flush=True)
    """
)
CHUNKS = "100000"


def _available(python: str, tmp_path: Path) -> PerfGilRecorder:
    recorder = PerfGilRecorder()
    require_recorder(lambda: recorder.check(RecordContext(raw_dir=tmp_path, python=python)),
                     needs_perf=True)
    return recorder


def _record(python: str, tmp_path: Path, recorder: PerfGilRecorder, program: str,
            arg: str) -> tuple[dict[str, object], FutexWords]:
    """Run ``program`` under the recorder; return what it printed and its GIL's futex words."""
    target = subprocess.Popen([python, "-c", program, str(REPO), arg], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert target.stdin is not None and target.stdout is not None
    try:
        layout = json.loads(target.stdout.readline())
        assert "gil_addr" in layout, layout
        (tmp_path / "gil_layout.json").write_text(json.dumps(layout))
        recorder.start(RecordContext(raw_dir=tmp_path, python=python, pid=target.pid))
        target.stdin.write("g")
        target.stdin.close()
        printed: dict[str, object] = json.loads(target.stdout.readline())
        assert target.wait(timeout=60) == 0
    finally:
        if target.poll() is None:
            target.kill()
            target.wait(timeout=10)
        recorder.stop()
    return printed, FutexWords(int(layout["gil_addr"]))


def _events(tmp_path: Path, words: FutexWords) -> list[GilEvent]:
    with (tmp_path / "perf_gil.txt").open() as lines:
        return parse_perf_script(lines, words)


def _clock_bounds(events: list[GilEvent], marks: list[list[int]]) -> list[tuple[int, int]]:
    """Per marker (tid, t1, t2): (switch-out - t1, t2 - switch-in) of the sleep inside. Once in
    a full-suite run (of about ten) one marker's 1 ms sleep had no switch pair on file; all but
    one must have one, and those must bound the clock."""
    bounds = []
    for tid, t1, t2 in marks:
        mine = [e for e in events if e.tid == tid and t1 <= e.t_ns <= t2]
        outs = [e.t_ns for e in mine if e.kind is Ev.SWITCH_OUT]
        ins = [e.t_ns for e in mine if e.kind is Ev.SWITCH_IN]
        if outs and ins:
            assert min(outs) <= max(ins)
            bounds.append((min(outs) - t1, t2 - max(ins)))
    assert len(bounds) >= len(marks) - 1, "markers without a switch out/in between their reads"
    return bounds


def _pythons() -> list[object]:
    debian = Path("/usr/bin/python3.11")  # statically linked and stripped: no symbols at all
    extra = [pytest.param(str(debian), id="debian-3.11")] if debian.exists() else []
    return [*pyenv_interpreters(), *extra]


@pytest.mark.parametrize("python", _pythons())
def test_three_cpu_threads_share_the_gil(python: str, tmp_path: Path) -> None:
    recorder = _available(python, tmp_path)
    printed, words = _record(python, tmp_path, recorder, SPINNERS, WORK)
    source = recorder.describe()
    assert source.used, source.reason
    assert source.method == "exact"
    events = _events(tmp_path, words)
    go, end = int(str(printed["go"])), int(str(printed["end"]))
    wall_s = (end - go) / 1e9

    marks = printed["marks"]
    assert isinstance(marks, list) and len(marks) == 4
    bounds = _clock_bounds(events, marks)
    assert all(0 <= a < 20_000_000 and 0 <= b < 20_000_000 for a, b in bounds), bounds
    print(f"{python}: clock bounds (out - t1, t2 - in) in us:",
          [(a / 1e3, b / 1e3) for a, b in bounds])

    threads = reconstruct(events, go, end)
    spans = {int(tid): span for tid, span in dict(printed["spans"]).items()}  # type: ignore[call-overload]
    assert set(spans) <= set(threads)
    overlap = (max(s for s, _ in spans.values()), min(e for _, e in spans.values()))
    overlap_s = (overlap[1] - overlap[0]) / 1e9
    assert overlap_s > 0.05, "the three threads barely overlapped; the machine is too loaded"
    shares = []
    for tid in spans:
        lo, hi = (overlap[0] - go) / 1e9, (overlap[1] - go) / 1e9
        held = sum(max(0.0, min(iv.end, hi) - max(iv.start, lo))
                   for iv in threads[tid].intervals if iv.state == RUNNING)
        shares.append(round(held / overlap_s, 3))
        # Each waits about once per turn of the other two (5 ms switch interval): many waits.
        # Turns stretch when the OS preempts the holder on two busy cores: a clean CI run once
        # counted 18 in 0.46 s (one per 25 ms), so the bar is one per 50 ms.
        assert sum(w.slept for w in threads[tid].waits) >= 0.1 * overlap_s / 0.005
    print(f"{python}: GIL held share per thread over {overlap_s:.3f} s of overlap: {shares}")
    # One GIL: together they held it nearly all the time, never more; each got turns. How fair
    # the turns are is the OS's business on a loaded 2-core machine (one got 11% once).
    assert 0.8 <= sum(shares) <= 1.02, shares
    assert all(0.05 <= share <= 0.65 for share in shares), shares

    metrics = gil_metrics({tid: t.intervals for tid, t in threads.items()}, wall_s)
    figures = metrics.threads
    assert isinstance(figures, dict)
    assert sum(t.held_s for t in figures.values()) <= wall_s * 1.02
    assert float(str(metrics.switches_per_s)) > 10  # 5 ms switch interval: ~200/s


@pytest.mark.parametrize("python", pyenv_interpreters()[:1])
def test_uncontended_gil_releases_leave_no_events(python: str, tmp_path: Path) -> None:
    recorder = _available(python, tmp_path)
    _record(python, tmp_path, recorder, HASHER, CHUNKS)
    events = _events(tmp_path, words=FutexWords(
        int(json.loads((tmp_path / "gil_layout.json").read_text())["gil_addr"])))
    gil_calls = [e for e in events if e.kind in (Ev.WAIT, Ev.WAKE, Ev.MUTEX_WAIT,
                                                  Ev.HANDOFF_WAIT, Ev.HANDOFF_WAKE)]
    # 100,000 releases and re-takes of the GIL, none of them contended: a handful of events at
    # most (the interpreter's own threads at start and exit), against 200,000 uprobe hits.
    assert len(gil_calls) < 100, len(gil_calls)


DRIVER = textwrap.dedent(
    r"""
    import json, subprocess, sys, time
    from pathlib import Path
    from tracer.instrument import gil_probe
    from tracer.recorders.base import RecordContext
    from tracer.recorders.perf_gil import PerfGilRecorder
    python, raw = sys.argv[1], Path(sys.argv[2])
    target = subprocess.Popen([python, "-c", "import time; time.sleep(60)"])
    print(target.pid, flush=True)
    layout = gil_probe.calibrate()  # any real layout will do for a sleeping target
    layout["pid"] = target.pid
    (raw / "gil_layout.json").write_text(json.dumps(layout))
    recorder = PerfGilRecorder()
    ctx = RecordContext(raw_dir=raw, python=python, pid=target.pid)
    recorder.check(ctx)
    recorder.start(ctx)
    print("recording", flush=True)
    time.sleep(60)  # never stops on its own
    """
)


def _perf_record_of(pid: int) -> bool:
    found = subprocess.run(
        ["pgrep", "-f", f"perf record .* -p {pid} "], capture_output=True, timeout=10, check=False
    )
    return found.returncode == 0


def _drive(python: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, python, str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert driver.stdout is not None
    target_pid = int(driver.stdout.readline())
    assert driver.stdout.readline().strip() == "recording", driver.stderr
    assert _perf_record_of(target_pid), "perf record should run while recording"
    return driver, target_pid


def _gone_soon(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while _perf_record_of(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _perf_record_of(pid)


@pytest.mark.parametrize(("how", "sig"), [("ctrl-c", signal.SIGINT), ("kill -9", signal.SIGKILL)])
def test_perf_never_outlives_its_session(how: str, sig: int, tmp_path: Path) -> None:
    python = sys.executable
    _available(python, tmp_path)
    driver, target_pid = _drive(python, tmp_path)
    try:
        driver.send_signal(sig)
        driver.wait(timeout=60)
        # Ctrl-C: the session stops perf in order. kill -9: perf notices its parent died
        # (PR_SET_PDEATHSIG) and stops itself, writing what it had.
        assert _gone_soon(target_pid), f"perf record outlived the session ({how})"
        assert (tmp_path / "perf.data").exists()
    finally:
        if driver.poll() is None:
            driver.kill()
        os.kill(target_pid, signal.SIGKILL)


# -- check(): each reason is precise and says what to do ------------------------------------------


def test_check_explains_missing_perf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("tracer.recorders.perf_gil.shutil.which", lambda name: None)
    with pytest.raises(RecorderUnavailable, match="perf` is not on PATH; install"):
        PerfGilRecorder().check(RecordContext(raw_dir=tmp_path, python=sys.executable))


def test_check_explains_non_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if sys.platform != "linux" or not Path("/proc/sys/kernel/perf_event_paranoid").exists():
        pytest.skip("Linux only")
    if int(Path("/proc/sys/kernel/perf_event_paranoid").read_text()) <= -1:
        pytest.skip("perf_event_paranoid allows it here")
    monkeypatch.setattr("tracer.recorders.perf_gil.os.geteuid", lambda: 1000)
    monkeypatch.setattr("tracer.recorders.perf_gil.shutil.which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(RecorderUnavailable, match=r"need root.*sysctl kernel.perf_event_paranoid"):
        PerfGilRecorder().check(RecordContext(raw_dir=tmp_path, python=sys.executable))


def test_start_explains_a_c_library_without_glibc_condition_variables(tmp_path: Path) -> None:
    if shutil.which("perf") is None:
        pytest.skip("needs perf")
    recorder = _available(sys.executable, tmp_path)
    (tmp_path / "gil_layout.json").write_text(json.dumps({
        "gil_addr": 4096, "wait_range": [32, 120], "handoff_range": [120, 208], "libc": ""}))
    with pytest.raises(RecorderUnavailable, match="need glibc"):
        recorder.start(RecordContext(raw_dir=tmp_path, python=sys.executable, pid=os.getpid()))


def test_a_program_too_costly_to_record_exactly_falls_back_to_the_sampler(tmp_path: Path) -> None:
    # Two threads bouncing a byte over a socketpair switch 70,000-170,000 times a second here,
    # several times the guard's budget (25,000/s): recording every switch slowed them 1.6x.
    from tests.e2e.helpers import load_model, tracer

    _available(sys.executable, tmp_path)
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), "--no-viztracer", "--no-pyspy",
                    str(REPO / "benchmarks" / "programs" / "gil_socket_pingpong.py"))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    assert model["figure_sources"]["gil"] == "sampled"
    assert any("Exact GIL recording stopped" in w and "switched threads" in w
               for w in model["warnings"]), model["warnings"]
    assert any("to keep within its cost budget" in n for n in model["sources"]["perf"]["notes"])
