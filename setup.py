"""Build the optional C core of the lock recorder (everything else is in pyproject.toml).

``optional=True``: on a machine without a C compiler the install still succeeds and the lock
recorder uses its pure-Python core, which is correct but distorts lock-heavy programs; the
report then says so. The stable ABI (``py_limited_api``) gives one shared object that every
CPython 3.10+ can load, so a target run with ``--python`` gets the C core too.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracer.instrument._lockcore",
            ["tracer/instrument/_lockcore.c"],
            py_limited_api=True,
            optional=True,
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
