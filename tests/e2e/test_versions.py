"""The exact (perf) and sampled (GIL sampler) paths on every CPython the machine has (pyenv
3.11, 3.12, 3.13): each gives GIL states that match what the workload must do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import load_model, pyenv_interpreters, thread_named, tracer

# The exact path is perf with the sampler beside it: perf's events prove every wait and contended
# hand-off, and a thread on a CPU while nobody waited for the GIL takes the sampler's view.
METHODS = {"exact": ("perf", []), "sampled": ("gil-sampler", ["--no-perf"])}


def _run(tmp_path: Path, python: str, method: str, scenario: str, args: list[str]) -> dict:
    source, flags = METHODS[method]
    out = tmp_path / f"{scenario}-{method}"
    result = tracer("run", "--out", str(out), "--no-viztracer", "--python", python, *flags,
                    scenario, "--", *args)
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    if not model["sources"].get(source, {}).get("used"):
        pytest.skip(f"{source} unavailable: {model['sources'].get(source, {}).get('reason')}")
    assert model["figure_sources"]["gil"] == method
    assert python.endswith(model["target"]["python_version"].rsplit(".", 1)[0])
    return model


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("python", pyenv_interpreters())
def test_cpu_threads_share_the_gil(python: str, method: str, tmp_path: Path) -> None:
    model = _run(tmp_path, python, method, "gil_cpu", ["--threads", "3", "--work", "1500000"])
    workers = thread_named(model, "cpu-")
    assert len(workers) == 3
    for worker in workers:
        life = worker["end_s"] - worker["start_s"]
        # Three threads taking turns: each holds the GIL about a third of its life, and waits
        # for it most of the rest. Wide margins: a loaded 2-core machine skews turns.
        assert 0.12 < worker["gil_held_s"] / life < 0.6
        assert worker["gil_wait_s"] / life > 0.25
        assert worker["gil_waits"] > 3
    held = sum(t["gil_held_s"] or 0 for t in model["threads"])
    assert held <= model["wall_s"] * 1.02
    assert model["metrics"]["gil"]["switches_per_s"] > 10


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("python", pyenv_interpreters())
def test_hashing_threads_run_native(python: str, method: str, tmp_path: Path) -> None:
    model = _run(tmp_path, python, method, "gil_native",
                 ["--hash-threads", "2", "--py-threads", "1", "--mb", "160", "--work", "1500000"])
    for hasher in thread_named(model, "hash-"):
        states = hasher["state_s"]
        # hashlib drops the GIL for big buffers: hashing threads run mostly without it (on an
        # idle machine by far; a loaded one preempts them, which shows as cpu_wait instead).
        assert states.get("native", 0) > states.get("running", 0)
        assert states.get("native", 0) > 0.05
