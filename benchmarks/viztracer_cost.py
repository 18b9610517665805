"""Does the report's estimate of VizTracer's slowdown match reality? Three threaded programs
(benchmarks/programs/viztracer_targets.py: a call-heavy worker pool, a lock-contended LRU cache,
hashing and numpy in parallel threads), rounds alternating between

- the program run plainly;
- ``tracer run --viztracer --no-perf`` (what a user asking for VizTracer gets): the report's
  estimate against the measured ratio to the plain run. That ratio also carries the other
  recorders' cost, the lock instrumentation's above all on the contended cache;
- ``tracer run --no-perf --no-locks`` with and without ``--viztracer``: VizTracer's own share,
  the same recorders on both sides, against the estimate of the ``--viztracer`` run.

Work phase times (the program's ``work`` marker) are compared, as ratios within each round and
their median over the rounds; the estimate is the median of the rounds' estimates. Run it alone:
``python -m benchmarks.run --only viztracer`` (about 10 minutes for 5 rounds on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, median, phase_seconds, read_markers, script_phase_seconds
from tracer import raw_files

PROGRAM = REPO / "benchmarks" / "programs" / "viztracer_targets.py"
# Sizes: about 0.2-2 s untraced on 2 cores, and under the default 5M-event buffer when traced.
CASES = {"pool": ["pool", "--size", "1.5"], "cache": ["cache", "--size", "2"],
         "native": ["native", "--size", "3"]}
USER = ["--no-perf"]
SAME_RECORDERS = ["--no-perf", "--no-locks"]


@dataclass(frozen=True)
class Estimate:
    """The report's figures from one model.json."""

    calls: int
    added_s: float
    point: float
    low: float
    high: float | None  # None: open-ended ("at least low")

    @classmethod
    def median_of(cls, models: list[dict[str, Any]]) -> Estimate:
        # metrics.viztracer.cost (None when VizTracer did not run or its cost was not measured)
        costs: list[dict[str, Any]] = [
            (m["metrics"].get("viztracer") or {}).get("cost") or {} for m in models]

        def pick(key: str) -> float:
            return median([float(cost.get(key) or 0.0) for cost in costs])

        highs = [cost.get("slowdown_high") for cost in costs]
        return cls(calls=round(pick("calls")), added_s=pick("added_s"),
                   point=pick("slowdown"), low=pick("slowdown_low"),
                   high=None if None in highs
                   else median([float(h) for h in highs if h is not None]))

    def band(self) -> str:
        return (f"{self.point:.2f}x ({self.low:.1f}-{self.high:.1f}x)" if self.high is not None
                else f"{self.point:.2f}x (>= {self.low:.1f}x)")

    def holds(self, measured: float) -> bool:
        return self.low <= measured and (self.high is None or measured <= self.high)


@dataclass(frozen=True)
class CostRow:
    program: str
    plain_s: float  # medians of the rounds' work phases
    user_s: float  # --viztracer --no-perf
    without_s: float  # --no-viztracer --no-perf --no-locks
    alone_s: float  # --viztracer --no-perf --no-locks
    user_ratios: list[float]  # per round: --viztracer --no-perf / plain
    alone_ratios: list[float]  # per round: with / without VizTracer, same recorders
    added_s: list[float]  # per round: measured with - without, same recorders
    user: Estimate
    alone: Estimate

    @property
    def user_ratio(self) -> float:
        return median(self.user_ratios)

    @property
    def alone_ratio(self) -> float:
        return median(self.alone_ratios)


def _traced(args: list[str], flags: list[str]) -> tuple[float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "tracer", "run", "--quiet", "--force", "--out",
                        str(out), *flags, str(PROGRAM), "--", *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        model = json.loads((out / "model.json").read_text())
        return phase_seconds(read_markers(out / "raw" / raw_files.MARKERS)), model


def measure(rounds: int = 5) -> list[CostRow]:
    """Ratios are taken within a round (its runs are minutes apart at most) and their median
    over rounds reported: on a shared machine the load drifts between rounds more than within."""
    rows = []
    for program, args in CASES.items():
        times: dict[str, list[float]] = {"plain": [], "user": [], "without": [], "alone": []}
        models: dict[str, list[dict[str, Any]]] = {"user": [], "alone": []}
        for _ in range(rounds):
            times["plain"].append(script_phase_seconds(PROGRAM, args))
            for mode, flags in (("user", [*USER, "--viztracer"]),
                                ("without", [*SAME_RECORDERS, "--no-viztracer"]),
                                ("alone", [*SAME_RECORDERS, "--viztracer"])):
                seconds, model = _traced(args, flags)
                times[mode].append(seconds)
                if mode in models:
                    models[mode].append(model)
        rows.append(CostRow(
            program=program, plain_s=median(times["plain"]), user_s=median(times["user"]),
            without_s=median(times["without"]), alone_s=median(times["alone"]),
            user_ratios=[u / p for u, p in zip(times["user"], times["plain"])],
            alone_ratios=[a / w for a, w in zip(times["alone"], times["without"])],
            added_s=[a - w for a, w in zip(times["alone"], times["without"])],
            user=Estimate.median_of(models["user"]), alone=Estimate.median_of(models["alone"])))
    return rows


HEADER = ["program", "calls", "plain s", "--viztracer s", "ratio (rounds)", "estimate (range)",
          "held", "same recorders without / with s", "ratio (rounds)", "added s meas / est",
          "estimate (range)", "held"]


def _spread(ratios: list[float]) -> str:
    return f"{median(ratios):.2f}x ({min(ratios):.1f}-{max(ratios):.1f})"


def table(rows: list[CostRow]) -> list[list[str]]:
    out = []
    for row in rows:
        out.append([
            row.program, f"{row.alone.calls:,}", f"{row.plain_s:.2f}", f"{row.user_s:.2f}",
            _spread(row.user_ratios), row.user.band(),
            "yes" if row.user.holds(row.user_ratio) else "NO",
            f"{row.without_s:.2f} / {row.alone_s:.2f}", _spread(row.alone_ratios),
            f"{median(row.added_s):.2f} / {row.alone.added_s:.2f}", row.alone.band(),
            "yes" if row.alone.holds(row.alone_ratio) else "NO"])
    return out


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    rows = measure(rounds=int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    console = Console(width=220)
    shown = Table(title="VizTracer's slowdown: the report's estimate against measured runs")
    for column in HEADER:
        shown.add_column(column)
    for cells in table(rows):
        shown.add_row(*cells)
    console.print(shown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
