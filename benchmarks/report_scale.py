"""How analysis and report time, memory and size grow with the recording: synthetic recordings
of N threads over S seconds (benchmarks/synthetic.py), each analysed in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO
from benchmarks.synthetic import write_recording

_ANALYSE = """
import json, resource, sys, time
from pathlib import Path
from tracer.pipeline import analyse_and_render
from tracer.runfolder import RunFolder
began = time.perf_counter()
analyse_and_render(RunFolder(Path(sys.argv[1])))
took = time.perf_counter() - began
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": took, "peak_mib": peak_mib}))
"""


def _load_seconds(report: Path) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path="/usr/bin/chromium",
                                       args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        began = time.perf_counter()
        page.goto(report.resolve().as_uri(), wait_until="load")
        page.wait_for_function("document.querySelectorAll('.main-svg').length > 0")
        took = time.perf_counter() - began
        browser.close()
    return took


def measure(cases: list[tuple[int, float, int]]) -> list[tuple[int, float, int, float, float,
                                                               float, float, float | None]]:
    """Rows of (threads, seconds, viztracer events, analyse+render s, peak MiB, report MB,
    trace MB, browser load s)."""
    rows = []
    for threads, seconds, events in cases:
        with tempfile.TemporaryDirectory() as tmp:
            root = write_recording(Path(tmp) / "run", threads, seconds, events)
            out = subprocess.run([sys.executable, "-c", _ANALYSE, str(root)], check=True,
                                 capture_output=True, text=True, cwd=REPO).stdout
            result = json.loads(out.strip().splitlines()[-1])
            rows.append((threads, seconds, events, result["seconds"], result["peak_mib"],
                         (root / "report.html").stat().st_size / 1e6,
                         (root / "trace.json").stat().st_size / 1e6,
                         _load_seconds(root / "report.html")))
    return rows
