"""The Python API (`with tracer.record()`) and `tracer attach PID`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.helpers import PROGRAMS, load_model, thread_named, tracer


def test_record_block_writes_a_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "api"
    result = subprocess.run([sys.executable, str(PROGRAMS / "api_block.py"), str(out)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "after the block" in result.stdout
    for name in ("report.html", "trace.json", "model.json"):
        assert (out / name).is_file()
    model = load_model(out)
    assert model["target"]["kind"] == "api"
    # record() leaves VizTracer off unless asked (record(viztracer=True)), and says so
    assert model["sources"]["viztracer"]["used"] is False
    assert "off by default" in model["sources"]["viztracer"]["reason"]
    assert not (out / "raw" / "viztracer.json").exists()
    assert len(thread_named(model, "burner-")) == 2
    holders = thread_named(model, "holder-")
    # Two threads each hold the lock 0.15 s: one of them waited about 0.15 s for the other.
    waited = max(h["state_s"].get("lock_wait", 0.0) for h in holders)
    assert 0.1 < waited < 0.3
    assert not [t for t in model["threads"] if t["pid"] != model["threads"][0]["pid"]]


def test_attach_records_a_running_process(tmp_path: Path) -> None:
    code = ("import threading, time\n"
            "def spin():\n"
            "    end = time.monotonic() + 20\n"
            "    while time.monotonic() < end:\n"
            "        sum(range(1000))\n"
            "threading.Thread(target=spin, name='spinner', daemon=True).start()\n"
            "time.sleep(20)\n")
    target = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        out = tmp_path / "attached"
        result = tracer("attach", str(target.pid), "--duration", "1", "--out", str(out),
                        "--no-perf")
        assert result.returncode == 0, result.stderr
        model = load_model(out)
        assert model["target"]["kind"] == "attach"
        assert model["sources"]["viztracer"]["used"] is False
        assert any("Attached to a running process" in w for w in model["warnings"])
        (spinner,) = thread_named(model, "spinner")
        assert spinner["cpu_s"] > 0.3
    finally:
        target.kill()
        target.wait()


def test_attach_to_a_missing_pid_is_one_line(tmp_path: Path) -> None:
    result = tracer("attach", "999999999", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "no process" in result.stderr and "Traceback" not in result.stderr
