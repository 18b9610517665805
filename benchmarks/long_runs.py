"""Long recordings at bounded cost (issue 17): the same program recorded by this checkout and by a
baseline checkout, side by side in one session, in full mode (``--viztracer``) and in the default
mode of a script (no VizTracer; perf, the samplers and the lock recorder on).

For each case it reports what the user waits for after the program ends (stop + analyse +
write, from :mod:`benchmarks.recording_scale`), that time over the recording's length, the peak
memory of the largest process, the sizes left on disk and, for this checkout's full-mode run, how
long ``trace.json`` takes to open in the Perfetto UI that VizTracer ships (served by
``vizviewer``, headless Chromium). Run as::

    python -m benchmarks.long_runs --baseline /path/to/old/checkout 64x10 64x60
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO
from benchmarks.recording_scale import TracedRun, rescale, run_traced, run_untraced, size_work

MODES = {"full": ["--viztracer"], "no VizTracer": ["--no-viztracer"]}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]
OPEN_TIMEOUT_S = 600.0


def perfetto_open_s(trace: Path, process_title: str) -> float | None:
    """Seconds from navigation until Perfetto lists the program's process (None: it did not
    within :data:`OPEN_TIMEOUT_S`, or no browser here)."""
    viewer = shutil.which("vizviewer")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if viewer is None or not Path(CHROMIUM).exists():
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([viewer, "-s", "-p", str(port), str(trace)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                began = time.monotonic()
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector(f"text={process_title}",
                                       timeout=OPEN_TIMEOUT_S * 1000)
                return time.monotonic() - began
            except Exception:  # a timeout or a crashed tab: the row says "did not open"
                return None
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _row(case: str, who: str, mode: str, seconds: float, run: TracedRun,
         open_s: float | str | None) -> str:
    after = run.after_exit_s
    opened = open_s if isinstance(open_s, str) else (
        "did not open" if open_s is None else f"{open_s:.0f} s")
    return (f"| {case} | {who} | {mode} | {run.work_s:.1f} | {after:.1f} = {run.stop_s:.1f}+"
            f"{run.analyse_s:.1f}+{run.write_s:.1f} | {after / seconds:.2f}x | "
            f"{run.peak_mib:.0f} | {run.raw_mb:.0f} | {run.trace_mb:.0f} | {opened} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_runs")
    parser.add_argument("--baseline", type=Path, help="another checkout, measured alongside")
    parser.add_argument("--keep", type=Path, help="keep this checkout's full-mode run folders")
    parser.add_argument("cases", nargs="+", help="THREADSxSECONDS, e.g. 64x60")
    args = parser.parse_args(argv)
    cases = [tuple(int(x) for x in case.split("x")) for case in args.cases]
    probes = size_work(sorted({threads for threads, _ in cases}))
    print("| threads x s | checkout | mode | work s | after end s = stop+analyse+write | "
          "after / length | peak MiB | raw MB | trace.json MB | Perfetto open |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    checkouts = [("this", REPO)] + ([("baseline", args.baseline)] if args.baseline else [])
    for threads, seconds in cases:
        case = f"{threads} x {seconds}"
        iterations = rescale(*probes[threads], wanted_s=seconds)
        untraced = run_untraced(threads, iterations)
        print(f"| {case} | untraced | - | {untraced:.1f} | | | | | | |", flush=True)
        for mode, flags in MODES.items():
            for who, repo in checkouts:
                keep = None
                if who == "this" and mode == "full":
                    keep = (args.keep or Path(tempfile.mkdtemp())) / f"run-{threads}x{seconds}"
                run = run_traced(threads, iterations, flags, seconds, repo=repo, keep=keep)
                if run.status.startswith("failed"):
                    print(f"| {case} | {who} | {mode} | {run.status} |", flush=True)
                    continue
                opened: float | str | None = "-"
                if keep is not None:
                    opened = perfetto_open_s(keep / "trace.json", "scale_target.py (pid")
                print(_row(case, who, mode, seconds, run, opened), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
