"""Build the optional C cores of the lock and task recorders, of the perf text reader and of the
exact GIL walk (the rest is in pyproject.toml).

``optional=True``: on a machine without a C compiler the install still succeeds and the
recorders use their pure-Python hooks, which are correct but distort lock-heavy programs and
pools of short tasks (the report then says so), and the analysis reads perf's text and walks the GIL
events in Python, which is slower. The stable ABI (``py_limited_api``) gives one
shared object that every CPython 3.10+ can load, so a target run with ``--python`` gets the C
cores too.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracer.instrument._lockcore",
            ["tracer/instrument/_lockcore.c"],
            py_limited_api=True,
            optional=True,
        ),
        Extension(
            "tracer.instrument._taskcore",
            ["tracer/instrument/_taskcore.c"],
            py_limited_api=True,
            optional=True,
        ),
        Extension(
            "tracer.model._gilwalk",
            ["tracer/model/_gilwalk.c"],
            py_limited_api=True,
            optional=True,
        ),
        Extension(
            "tracer.model._perfscan",
            ["tracer/model/_perfscan.c"],
            py_limited_api=True,
            optional=True,
        ),
    ],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
