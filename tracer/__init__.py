"""threadscope: see what Python threads are doing, and whether the GIL is why it is slow.

The import package is ``tracer``; ``python -m tracer`` is the command line. The public API:
:func:`record` records a block of the calling program; :func:`phase` and :func:`mark` leave
markers on the timeline (no-ops when not traced).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.api import record

__version__ = "0.1.0"
__all__ = ["__version__", "mark", "phase", "record"]


def __getattr__(name: str) -> Any:
    """``tracer.record`` is imported on first use: a traced program imports ``tracer`` for its
    markers, and must not pay for the recorders and the report generator it does not use."""
    if name == "record":
        from tracer.api import record

        return record
    raise AttributeError(f"module 'tracer' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tracer`` in Jupyter/IPython: adds the ``%%tracer`` cell magic."""
    from tracer.notebook import load_ipython_extension as load

    load(ipython)
