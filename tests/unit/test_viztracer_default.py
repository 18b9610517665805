"""VizTracer is on for the bundled scenarios and off for the user's own code unless asked for:
the command line, ``%%tracer`` and ``tracer.record()`` agree, and the cost is measured in a form
the model can use."""

from __future__ import annotations

import argparse
import inspect

import pytest

from tracer.commands.run import RunCommand
from tracer.inprocess import DEFAULT_TRACER_ENTRIES, measure_viztracer_cost
from tracer.session import RecordOptions


def run_options(*argv: str, scenario: bool) -> RecordOptions:
    parser = argparse.ArgumentParser()
    RunCommand().prepare_parser(parser)
    return RunCommand._options(parser.parse_args([*argv, "target"]), scenario=scenario)


@pytest.mark.parametrize(("flags", "scenario", "on", "by_default"), [
    ((), True, True, True),
    ((), False, False, True),
    (("--viztracer",), False, True, False),
    (("--no-viztracer",), True, False, False),
    (("--no-viztracer",), False, False, False),
    (("--viztracer",), True, True, False),
])
def test_run_decides_viztracer_by_target_unless_asked(flags: tuple[str, ...], scenario: bool,
                                                      on: bool, by_default: bool) -> None:
    options = run_options(*flags, scenario=scenario)
    assert options.viztracer is on
    assert options.viztracer_by_default is by_default
    assert options.tracer_entries == DEFAULT_TRACER_ENTRIES


def test_defaults_elsewhere_are_off() -> None:
    assert RecordOptions().viztracer is False
    from tracer.api import record

    assert inspect.signature(record).parameters["viztracer"].default is False


def test_notebook_magic_takes_viztracer_and_still_accepts_no_viztracer() -> None:
    pytest.importorskip("IPython")
    from tracer.notebook import _parser

    assert _parser().parse_args([]).viztracer is False
    assert _parser().parse_args(["--viztracer"]).viztracer is True
    assert _parser().parse_args(["--no-viztracer"]).viztracer is False


def test_cost_measurement_gives_what_the_estimate_needs() -> None:
    """Structure and sign only: the numbers are timings, checked in benchmarks/."""
    viztracer = pytest.importorskip("viztracer")
    tracer = viztracer.VizTracer(tracer_entries=200_000, verbose=0, register_global=False)
    cost = measure_viztracer_cost(tracer)
    assert set(cost) == {"python_call_ns", "c_call_ns", "loop_slowdown", "fresh_entry_ns",
                         "rounds"}
    assert cost["python_call_ns"] > 0 and cost["c_call_ns"] > 0 and cost["loop_slowdown"] > 0
    assert cost["fresh_entry_ns"] >= 0
    tracer.start()
    tracer.stop()
    assert not [e for e in tracer.load() if e.get("ph") == "X"]  # its own calls were cleared
