"""`%load_ext tracer` and the `%%tracer` cell magic, in a real IPython shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("IPython")

SESSION = """
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "tracer")
shell.run_cell_magic("tracer", "--out {out} --no-viztracer --height 300", '''
import threading, time
worker = threading.Thread(target=time.sleep, args=(0.2,), name="cell-worker")
worker.start()
worker.join()
answer = 42
''')
assert shell.user_ns["answer"] == 42, "the cell ran in the user's namespace"
"""


def test_cell_magic_records_the_cell_and_shows_the_report(tmp_path: Path) -> None:
    out = tmp_path / "cell"
    result = subprocess.run([sys.executable, "-c", SESSION.format(out=out)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "<IPython.core.display.HTML object>" in result.stdout
    model = (out / "model.json").read_text()
    assert "cell-worker" in model
    from tracer.notebook import report_iframe

    frame = report_iframe(out / "report.html", 300)
    assert frame.startswith("<iframe srcdoc=") and "<script" not in frame.split('"')[1][:200]
