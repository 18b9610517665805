"""threadscope: see what Python threads are doing, and whether the GIL is why it is slow.

The import package is ``tracer``; ``python -m tracer`` is the command line. The public API for
programs under the tracer is :func:`phase` and :func:`mark` (no-ops when not traced).
"""

from __future__ import annotations

from tracer.markers import mark, phase

__version__ = "0.1.0"
__all__ = ["__version__", "mark", "phase"]
