"""reports.intervals holds the interval algebra the figures and the Perfetto writer share, so that
writing trace.json does not import Plotly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.intervals import dominant_per_bin

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: this test session has imported Plotly long since.
_PROBE = """
import sys
import {module}
print("plotly" in sys.modules)
import reports.figures
print("plotly" in sys.modules)
"""


@pytest.mark.parametrize("module", ["reports.perfetto", "reports.intervals"])
def test_importing_module_does_not_import_plotly(module: str) -> None:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    after_module, after_figures = done.stdout.split()
    assert after_module == "False", f"importing {module} imported plotly"
    # The probe can see Plotly being imported: the figures still do.
    assert after_figures == "True"


def test_dominant_per_bin_keeps_the_main_key_and_merges_equal_neighbours() -> None:
    pieces = [(0.0, 0.25, "a"), (0.25, 0.3, "b"), (0.3, 1.0, "b")]
    assert dominant_per_bin(pieces, 0.25, 4) == [(0.0, 0.25, "a"), (0.25, 1.0, "b")]
