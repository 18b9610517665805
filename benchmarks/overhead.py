"""Recording overhead of each mode, as the ratio of the scenario's measured time (its phases)
traced against untraced, measured side by side: rounds alternate modes, the median counts."""

from __future__ import annotations

from benchmarks.common import median, run_traced, run_untraced

SCENARIOS = {
    "gil_cpu": ["--threads", "4", "--work", "3000000"],
    "gil_io": ["--threads", "4", "--seconds", "0.5"],
    "lock": ["--threads", "5", "--increments", "50000"],
}

_ALL_OFF = ["--no-viztracer", "--no-pyspy", "--no-perf", "--no-sched", "--no-gil-sampler",
            "--no-locks"]
MODES = {
    "sampled-only (--no-viztracer --no-perf)": ["--no-viztracer", "--no-perf"],
    "exact GIL only (perf)": [f for f in _ALL_OFF if f != "--no-perf"],
    "GIL sampler only": [f for f in _ALL_OFF if f != "--no-gil-sampler"],
    "lock instrumentation only": [f for f in _ALL_OFF if f != "--no-locks"],
    "lock instrumentation only, pure-Python core": [f for f in _ALL_OFF if f != "--no-locks"],
    "VizTracer alone": [f for f in _ALL_OFF if f != "--no-viztracer"],
    "full (default)": [],
}


# The lock recorder's fallback when its C core was not built, for comparison with the C core.
ENV = {"lock instrumentation only, pure-Python core": {"THREADSCOPE_PURE_LOCKS": "1"}}


def measure(rounds: int) -> list[tuple[str, str, float, float]]:
    """Rows of (scenario, mode, median untraced s, median ratio)."""
    rows = []
    for scenario, args in SCENARIOS.items():
        untraced: list[float] = []
        ratios: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(rounds):
            base = run_untraced(scenario, args)
            untraced.append(base)
            for mode, flags in MODES.items():
                traced, _ = run_traced(scenario, args, flags, env=ENV.get(mode))
                ratios[mode].append(traced / base)
        for mode in MODES:
            rows.append((scenario, mode, median(untraced), median(ratios[mode])))
    return rows
